//! Every button of every rich menu, tapped as a resident through the LINE stand-in, answers: each postback
//! gets a reply, each link to Sonae's own pages answers 200 with real content; and a question nobody
//! understands gets the fallback's list of what the account can do, never silence.

use std::path::Path;

use serde_json::{json, Value};
use sonae::app::Application;
use sonae::config::{Config, Secrets};
use sonae::line::sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use sonae::secret::Secret;

const SECRET: &str = "menu-walk-secret";
const TOKEN: &str = "menu-walk-token";

async fn post_event(sb: &SandboxHandle, user: &str, ev: Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/sandbox/users/{user}/events", sb.url()))
        .json(&ev)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{ev}: {}", r.status());
}

fn replies(sb: &SandboxHandle, user: &str) -> Vec<Value> {
    sb.with_state(|s| s.received(user))
        .into_iter()
        .map(|r| r.message)
        .collect()
}

async fn wait_reply(sb: &SandboxHandle, user: &str, before: usize, what: &str) -> Value {
    for _ in 0..200 {
        let got = replies(sb, user);
        if got.len() > before {
            return got[before].clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: no reply within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rich_menu_button_and_an_unknown_question_get_a_useful_answer() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sb = Sandbox::start(SandboxConfig {
        channel_secret: SECRET.into(),
        access_token: TOKEN.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n[store]\npath = \"{db}\"\n[line]\napi_base = \"{u}\"\napi_data_base = \"{u}\"\n\
         [place]\ncity_name = \"札幌市\"\ndistricts = \"{d}\"\nshelters = [\"{s}\"]\n[jma]\nfeeds = []\n",
        db = dir.path().join("sonae.db").display(),
        u = sb.url(),
        d = repo.join("deploy/demo/sapporo-districts.geojson").display(),
        s = repo
            .join("deploy/demo/sapporo-01100-shitei-kinkyu-hinanbasho.csv")
            .display(),
    );
    let config = Config::parse(&text).unwrap();
    let public_url = config.server.public_url.clone();
    let secrets = Secrets {
        line_channel_secret: Secret::new(SECRET),
        line_channel_access_token: Secret::new(TOKEN),
        api_token: None,
    };
    let app = Application::build(config, secrets).await.unwrap();
    let addr = app.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    sb.set_webhook_url(&format!("http://{addr}/webhook"));
    let base = format!("http://{addr}");

    let user = "U0000000000000000000000000000a11c";
    post_event(&sb, user, json!({"type": "follow"})).await;
    wait_reply(&sb, user, 0, "follow").await;

    let mut walked = 0;
    for menu in ["normal-a", "normal-b", "emergency", "emergency-snow"] {
        let t: Value = serde_json::from_str(
            &std::fs::read_to_string(repo.join(format!("templates/richmenus/{menu}.json")))
                .unwrap(),
        )
        .unwrap();
        for area in t["richmenu"]["areas"].as_array().unwrap() {
            let a = &area["action"];
            let label = a["label"].as_str().unwrap_or("");
            let what = format!("{menu} 「{label}」");
            walked += 1;
            match a["type"].as_str().unwrap() {
                "postback" => {
                    let before = replies(&sb, user).len();
                    post_event(&sb, user, json!({"type": "postback", "data": a["data"]})).await;
                    let r = wait_reply(&sb, user, before, &what).await;
                    let text = r.to_string();
                    assert!(
                        text.chars().count() > 40,
                        "{what}: a useful reply, got {text}"
                    );
                    sonae::line::spec::validate_schema("Message", &r)
                        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
                }
                "uri" => {
                    let uri = a["uri"].as_str().unwrap();
                    let Some(path) = uri.strip_prefix("{public_url}") else {
                        // Pages of JMA and GSI: their own sites.
                        assert!(uri.starts_with("https://"), "{what}: {uri}");
                        continue;
                    };
                    let _ = &public_url;
                    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
                    assert_eq!(r.status(), 200, "{what}: {path}");
                    let body = r.text().await.unwrap();
                    assert!(
                        body.contains("<title>") && body.chars().count() > 300,
                        "{what}: {body}"
                    );
                    if path == "/shelters" {
                        // Opened without a district, the page's API answers for the whole city.
                        let api: Value = reqwest::get(format!("{base}/api/shelters"))
                            .await
                            .unwrap()
                            .json()
                            .await
                            .unwrap();
                        assert!(
                            !api["shelters"].as_array().unwrap().is_empty(),
                            "{what}: {api}"
                        );
                    }
                }
                "richmenuswitch" => {
                    // A tab: the stand-in switches the menu itself; Sonae only records it.
                    assert!(
                        a["richMenuAliasId"].as_str().is_some_and(|s| !s.is_empty()),
                        "{what}"
                    );
                }
                other => panic!("{what}: unexpected action type {other}"),
            }
        }
    }
    assert_eq!(walked, 28, "the four menus have 28 areas");

    // A question nobody understands gets the list of what the account can do.
    let before = replies(&sb, user).len();
    post_event(
        &sb,
        user,
        json!({"type": "text", "text": "燃えるごみはいつ？"}),
    )
    .await;
    let r = wait_reply(&sb, user, before, "free text").await;
    assert!(r["text"].as_str().unwrap().contains("できること"), "{r}");
    assert!(
        r["quickReply"]["items"].as_array().unwrap().len() >= 3,
        "{r}"
    );
    // And an unknown postback (an old button) too.
    let before = replies(&sb, user).len();
    post_event(
        &sb,
        user,
        json!({"type": "postback", "data": "action=no-such-thing"}),
    )
    .await;
    let r = wait_reply(&sb, user, before, "unknown postback").await;
    assert!(r["text"].as_str().unwrap().contains("古いボタン"), "{r}");

    let _ = tx.send(());
    task.await.unwrap();
}

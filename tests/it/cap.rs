//! The CAP 1.2 feed end to end (issue 12, item 7): a real JMA flow through the daemon (feed server, pipeline,
//! disaster cycle, outbox, LINE stand-in — `super` is `flows.rs`, whose machinery this reuses), two manual city
//! alerts written as the console writes them, then `/cap/feed.xml` and every `/cap/{id}.xml` fetched over HTTP
//! and validated with `xmllint --schema` against the vendored OASIS XSD (`src/cap/schema/`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use super::*;

const XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/cap/schema/CAP-v1.2.xsd");

/// `xmllint --noout [--schema XSD] file`; panics with xmllint's words when the document is not valid.
fn xmllint(doc: &[u8], schema: Option<&str>, dir: &Path, name: &str) {
    let path = dir.join(name);
    std::fs::write(&path, doc).unwrap();
    let mut cmd = Command::new("xmllint");
    cmd.arg("--noout");
    if let Some(s) = schema {
        cmd.args(["--schema", s]);
    }
    let out = cmd
        .arg(&path)
        .output()
        .expect("xmllint (Debian libxml2-utils; run scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "{name} is not valid:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(doc)
    );
}

async fn get(url: &str) -> (u16, String, String) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().await.unwrap())
}

/// Every text of the elements named `name`, in document order.
fn all<'a>(doc: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let j = after.find(&close).unwrap();
        out.push(&after[..j]);
        rest = &after[j..];
    }
    out
}

fn one<'a>(doc: &'a str, name: &str) -> &'a str {
    let v = all(doc, name);
    assert_eq!(v.len(), 1, "<{name}> once in\n{doc}");
    v[0]
}

/// Inserts a manual alert the way the console's approval does: a `delivery_alerts` row, source `manual`.
async fn manual_alert(store: &Store, key: &str, detail: serde_json::Value) -> i64 {
    let key = key.to_string();
    store
        .write(move |tx| {
            let alert = sonae::delivery::NewAlert {
                step_key: key,
                source: "manual".into(),
                kind: "manual".into(),
                priority: 100,
                summary: detail["headline"].as_str().unwrap_or("").to_string(),
                detail,
            };
            Ok(sonae::delivery::enqueue(tx, &alert, &[], 0)?.alert_id())
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_alert_sent_is_published_as_cap_1_2_valid_against_the_oasis_schema_with_references_and_no_drill(
) {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(sandbox_config()).await.unwrap();
    let feed = JmaFeed::start().await;
    let people = People::new();
    let addr: SocketAddr = format!("127.0.0.1:{}", crate::helpers::free_port())
        .parse()
        .unwrap();
    let base = format!("http://{addr}");
    let public = base.clone();
    let app = start_app_with(dir.path(), &sandbox, &feed, &["extra.xml"], &people, |c| {
        c.server.listen = addr;
        c.server.public_url = public;
    })
    .await;

    // A warning thread from issue to lift, a correction, a withdrawal, a withdrawal that leaves a warning in
    // force, and a drill.
    let flow = [
        "esc1_VPWW55.xml", // 1 大雨警報 issue
        "esc2_VPWW56.xml", // 2 土砂災害危険警報 issue
        "esc3_VPWW55.xml", // 3 大雨特別警報 escalation
        "esc4_VPWW55.xml", // 4 大雨 lift
        "esc5_VPWW56.xml", // 5 土砂 lift
        "cor1_VPWW55.xml", // 6 大雨危険警報 issue (new episode)
        "cor2_VPWW55.xml", // 7 訂正 to 大雨警報
        "can1_VPWW56.xml", // 8 土砂災害警報 issue (new episode)
        "can2_VPWW56.xml", // 9 取消: nothing left
        "can3_VPWW55.xml", // 10 大雨特別警報 escalation
        "can4_VPWW55.xml", // 11 取消: the 大雨警報 is in force again
        "drl1_VPWW56.xml", // 12 訓練
    ];
    for (i, f) in flow.iter().enumerate() {
        feed.publish(f, &["extra.xml", "extra_l.xml"]);
        settled(&app.store, i + 1).await;
    }
    let rows: Vec<(i64, String, String)> = app
        .store
        .read(|c| {
            let mut st = c.prepare("SELECT id, source, kind FROM delivery_alerts ORDER BY id")?;
            let v = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(v)
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "issue",
            "issue",
            "escalation",
            "lift",
            "lift",
            "issue",
            "correction",
            "issue",
            "cancellation",
            "escalation",
            "cancellation",
            "issue"
        ]
    );
    assert_eq!(rows[11].1, "drill");
    let id = |n: usize| rows[n - 1].0;

    // The city's own order for one district, and its lift, as the console writes them.
    let order = manual_alert(
        &app.store,
        "manual-1",
        serde_json::json!({
            "level": 4, "level_label": "避難指示", "hazard": "洪水", "districts": ["01101-0001", "01102-0001"],
            "headline": "【避難指示】中央区・北区の一部に避難指示を発令しました", "text": "豊平川が氾濫するおそれがあります。\n直ちに避難してください。",
            "references": null, "msg_type": "Alert", "drafted_by": "tanaka", "approved_by": "suzuki"
        }),
    )
    .await;
    let lift = manual_alert(
        &app.store,
        "manual-2",
        serde_json::json!({
            "level": 0, "level_label": "解除", "hazard": "洪水", "districts": ["01101-0001", "01102-0001"],
            "headline": "避難指示を解除しました", "text": "", "references": order, "msg_type": "Update",
            "drafted_by": "tanaka", "approved_by": "suzuki"
        }),
    )
    .await;

    // The feed: well-formed Atom, newest first, every alert but the drill.
    let (status, ct, atom) = get(&format!("{base}/cap/feed.xml")).await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/atom+xml"), "{ct}");
    xmllint(atom.as_bytes(), None, dir.path(), "feed.xml");
    let linked: Vec<i64> = atom
        .split("type=\"application/cap+xml\" href=\"")
        .skip(1)
        .map(|s| {
            let url = &s[..s.find('"').unwrap()];
            assert!(url.starts_with(&format!("{base}/cap/")), "{url}");
            url.rsplit('/')
                .next()
                .unwrap()
                .trim_end_matches(".xml")
                .parse()
                .unwrap()
        })
        .collect();
    let mut want: Vec<i64> = (1..=11).map(id).chain([order, lift]).collect();
    want.reverse();
    assert_eq!(linked, want, "newest first, no drill:\n{atom}");
    assert!(!atom.contains("訓練"), "{atom}");

    // Every document: valid against the XSD, Japanese, with areas; remember identity and refs.
    let mut docs: BTreeMap<i64, String> = BTreeMap::new();
    for n in &linked {
        let (status, ct, doc) = get(&format!("{base}/cap/{n}.xml")).await;
        assert_eq!(status, 200, "{n}: {doc}");
        assert!(ct.starts_with("application/cap+xml"), "{ct}");
        xmllint(doc.as_bytes(), Some(XSD), dir.path(), &format!("{n}.xml"));
        assert_eq!(one(&doc, "identifier"), format!("sonae-alert-{n}"));
        assert_eq!(one(&doc, "sender"), "127.0.0.1");
        assert_eq!(one(&doc, "status"), "Actual");
        assert_eq!(one(&doc, "language"), "ja-JP");
        assert!(one(&doc, "sent").ends_with("+09:00"), "{doc}");
        let polygons = all(&doc, "polygon");
        assert!(!polygons.is_empty(), "{n} has area polygons:\n{doc}");
        for p in polygons {
            let pairs: Vec<&str> = p.split(' ').collect();
            assert!(pairs.len() >= 4 && pairs.first() == pairs.last(), "{p}");
            for pair in pairs {
                let (lat, lon) = pair.split_once(',').unwrap();
                let (lat, lon): (f64, f64) = (lat.parse().unwrap(), lon.parse().unwrap());
                assert!(
                    (42.5..44.0).contains(&lat) && (140.5..142.5).contains(&lon),
                    "{pair}"
                );
            }
        }
        docs.insert(*n, doc);
    }
    let triple = |n: i64| {
        let d = &docs[&n];
        format!("127.0.0.1,sonae-alert-{n},{}", one(d, "sent"))
    };
    let refs = |n: i64| {
        all(&docs[&n], "references")
            .first()
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    let msg = |n: i64| one(&docs[&n], "msgType").to_string();

    // The 大雨 thread: issue → escalation → lift, each referencing the whole episode so far.
    let d1 = &docs[&id(1)];
    assert_eq!(msg(id(1)), "Alert");
    assert_eq!(one(d1, "event"), "レベル３大雨警報");
    assert_eq!(one(d1, "category"), "Met");
    assert_eq!(
        (
            one(d1, "urgency"),
            one(d1, "severity"),
            one(d1, "certainty")
        ),
        ("Expected", "Moderate", "Likely")
    );
    assert_eq!(one(d1, "areaDesc"), "札幌市");
    assert_eq!(msg(id(3)), "Update");
    assert_eq!(refs(id(3)), triple(id(1)));
    assert_eq!(one(&docs[&id(3)], "severity"), "Extreme");
    assert_eq!(msg(id(4)), "Update");
    assert_eq!(one(&docs[&id(4)], "responseType"), "AllClear");
    assert_eq!(refs(id(4)), format!("{} {}", triple(id(1)), triple(id(3))));
    // The 土砂 thread: its lift references only its own issue.
    assert_eq!(refs(id(5)), triple(id(2)));
    assert_eq!(one(&docs[&id(2)], "category"), "Geo");
    assert_eq!(one(&docs[&id(2)], "responseType"), "Evacuate");
    // A new episode of a thread starts afresh; a 訂正 updates it.
    assert_eq!(msg(id(6)), "Alert");
    assert!(refs(id(6)).is_empty());
    assert_eq!(msg(id(7)), "Update");
    assert_eq!(one(&docs[&id(7)], "note"), "訂正");
    assert_eq!(refs(id(7)), triple(id(6)));
    // A withdrawal that leaves nothing cancels exactly its episode, not the earlier 土砂 episode.
    assert_eq!(msg(id(9)), "Cancel");
    assert_eq!(refs(id(9)), triple(id(8)));
    // A withdrawal that leaves the earlier warning in force is an update of the thread.
    assert_eq!(msg(id(11)), "Update");
    assert_eq!(one(&docs[&id(11)], "note"), "取消");
    // It describes what is in force now: the 大雨警報.
    assert_eq!(one(&docs[&id(11)], "event"), "レベル３大雨警報");
    assert_eq!(one(&docs[&id(11)], "severity"), "Moderate");
    assert_eq!(refs(id(11)), [6, 7, 10].map(|n| triple(id(n))).join(" "));

    // The manual order and its lift.
    let o = &docs[&order];
    assert_eq!(msg(order), "Alert");
    assert_eq!(one(o, "event"), "避難指示（洪水）");
    assert_eq!(one(o, "responseType"), "Evacuate");
    assert_eq!(
        (one(o, "urgency"), one(o, "severity")),
        ("Immediate", "Severe")
    );
    assert!(one(o, "description").contains("豊平川"));
    assert!(
        !o.contains("tanaka") && !o.contains("suzuki"),
        "no staff names"
    );
    let areas = all(o, "areaDesc");
    // The test city has one district per ward, so each ward is whole.
    assert_eq!(areas, ["札幌市中央区", "札幌市北区"]);
    assert_eq!(msg(lift), "Update");
    assert_eq!(refs(lift), triple(order));
    assert_eq!(one(&docs[&lift], "responseType"), "AllClear");

    // The drill, plow-like ids and junk are not documents.
    for path in [
        format!("{}.xml", id(12)),
        "999.xml".into(),
        "abc".into(),
        "0.xml".into(),
    ] {
        let (status, _, body) = get(&format!("{base}/cap/{path}")).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("訓練"), "{body}");
    }
    app.stop().await;
}

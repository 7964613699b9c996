//! 避難情報 (the city's own evacuation information) in the console.
//!
//! * `GET /console/alerts`: the list, recent sent alerts with 訂正/取消 (approver), the drill switch.
//! * `GET /console/alerts/new` (起案者 and above): level, hazard, districts (by ward, with recipient counts),
//!   free text. `POST /console/alerts` stores a draft and opens it.
//! * `GET /console/alerts/{id}`: recipients per district and in total, the preview exactly as residents
//!   see it (`/console/alerts/{id}/preview`, the Flex message drawn in a phone-sized frame) and the JSON that
//!   will be sent, already validated against LINE's spec; then the action the state allows:
//!   承認を依頼 (draft), 承認して送信 (submitted; a *different* approver), the 10-second countdown with
//!   送信を取り消す (approved), live progress with 訂正/取消 (sent).
//! * `POST /console/alerts/{id}/submit|approve|cancel`, `POST /console/alerts/correct`, `POST /console/drill`.
//!
//! The rules (two persons, the window, who a correction reaches) live in `disaster::manual`; this module
//! only shows them and passes the operator's choice.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Serialize;

use crate::console::auth::{ApproverRole, Authorized, DrafterRole, Session};
use crate::console::error::ConsoleError;
use crate::console::{flex, page_ctx, render, ConsoleState, PageQuery, Role};
use crate::disaster::manual::{self, Draft, Hazard, Level, ManualAlert, ManualInput, Status};
use crate::place::PlaceData;

/// Seconds between live refreshes of an alert's page (progress, countdown state).
const REFRESH_SECS: u32 = 3;

fn place(st: &ConsoleState) -> Result<&std::sync::Arc<PlaceData>, ConsoleError> {
    st.ctx.place.as_ref().ok_or_else(|| {
        ConsoleError::not_found(
            "地区データ（place.districts）が読み込まれていないため、避難情報を作成できません。設定を確認してください。",
        )
    })
}

fn refused(r: manual::Refusal) -> ConsoleError {
    match r {
        manual::Refusal::NotFound => ConsoleError::not_found(r.to_string()),
        manual::Refusal::SamePerson | manual::Refusal::NotYours => {
            ConsoleError::Forbidden(r.to_string().into())
        }
        manual::Refusal::Invalid(m) => ConsoleError::bad_request(m),
        _ => ConsoleError::Conflict(r.to_string().into()),
    }
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
}

fn levels(st: &ConsoleState) -> Vec<Choice> {
    let t = &st.ctx.alerts.templates;
    Level::ALL
        .iter()
        .map(|l| Choice {
            value: l.number().to_string(),
            label: match l {
                Level::Lift => t.level_label(*l).to_string(),
                _ => format!("警戒レベル{}　{}", l.number(), t.level_label(*l)),
            },
        })
        .collect()
}

fn hazards(st: &ConsoleState) -> Vec<Choice> {
    Hazard::ALL
        .iter()
        .map(|h| Choice {
            value: h.slug().into(),
            label: st.ctx.alerts.templates.hazard_ja(*h).into(),
        })
        .collect()
}

#[derive(Serialize)]
struct DistrictChoice {
    id: String,
    name: String,
    residents: i64,
}

#[derive(Serialize)]
struct Ward {
    name: String,
    residents: i64,
    districts: Vec<DistrictChoice>,
}

/// Every district by ward with its active residents.
async fn wards(st: &ConsoleState, place: &PlaceData) -> Result<Vec<Ward>, ConsoleError> {
    let counts: HashMap<String, i64> = st
        .ctx
        .store
        .read(|c| {
            let mut s = c.prepare(
                "SELECT district_id, count(*) FROM residents WHERE active = 1 AND district_id IS NOT NULL
                 GROUP BY district_id",
            )?;
            let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await?;
    let mut by: BTreeMap<String, Ward> = BTreeMap::new();
    for d in place.districts.all() {
        let ward = d
            .group
            .clone()
            .unwrap_or_else(|| st.ctx.alerts.city.clone());
        let n = counts.get(&d.id).copied().unwrap_or(0);
        let w = by.entry(ward.clone()).or_insert_with(|| Ward {
            name: ward,
            residents: 0,
            districts: vec![],
        });
        w.residents += n;
        w.districts.push(DistrictChoice {
            id: d.id.clone(),
            name: d.name.clone(),
            residents: n,
        });
    }
    Ok(by.into_values().collect())
}

pub async fn list(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let (alerts, sent, drill) = st
        .ctx
        .store
        .read(|c| {
            Ok((
                manual::list(c, 50)?,
                crate::delivery::recent_alerts(c, 20)?,
                manual::drill_active(c)?,
            ))
        })
        .await?;
    let sent: Vec<_> = sent
        .into_iter()
        .filter(|x| matches!(x.source.as_str(), "disaster" | "manual" | "drill"))
        .collect();
    let rows: Vec<_> = alerts.iter().map(|x| view(&st, x)).collect();
    let ctx = page_ctx(&st, &a, "alerts", q.msg.as_deref());
    let ctx = minijinja::context! {
        alerts => rows,
        sent => minijinja::Value::from_serialize(&sent),
        drill => drill,
        can_draft => a.user.role >= Role::Drafter,
        can_approve => a.user.role >= Role::Approver,
        has_place => st.ctx.place.is_some(),
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "alerts.html", ctx))
}

fn view(st: &ConsoleState, x: &ManualAlert) -> minijinja::Value {
    let t = &st.ctx.alerts.templates;
    minijinja::context! {
        id => x.id,
        kind => x.kind,
        summary => t.summary(x, "", false),
        status => x.status,
        status_label => x.status.label_ja(),
        drafted_by => x.drafted_by.clone(),
        drafted_at => x.drafted_at.clone(),
        approved_by => x.approved_by.clone(),
        recipients => x.recipients,
        delivery_alert_id => x.delivery_alert_id,
    }
}

/// `GET /console/alerts/districts.geojson`: the city's districts for the composer's map (id, name, ward),
/// coordinates rounded to ~1 m; built once.
pub async fn districts_geojson(
    State(st): State<ConsoleState>,
    Session(_a): Session,
) -> Result<Response, ConsoleError> {
    let place = place(&st)?.clone();
    let body = st
        .district_map
        .get_or_init(|| {
            let features: Vec<serde_json::Value> = place
                .districts
                .all()
                .iter()
                .map(|d| {
                    let round = |x: f64| (x * 1e5).round() / 1e5;
                    let polys: Vec<Vec<Vec<[f64; 2]>>> = d
                        .geometry
                        .0
                        .iter()
                        .map(|p| {
                            std::iter::once(p.exterior())
                                .chain(p.interiors())
                                .map(|ring| {
                                    ring.0.iter().map(|c| [round(c.x), round(c.y)]).collect()
                                })
                                .collect()
                        })
                        .collect();
                    serde_json::json!({
                        "type": "Feature",
                        "properties": {"id": d.id, "name": d.name, "ward": d.group},
                        "geometry": {"type": "MultiPolygon", "coordinates": polys},
                    })
                })
                .collect();
            serde_json::json!({"type": "FeatureCollection", "features": features}).to_string()
        })
        .clone();
    Ok(([(header::CONTENT_TYPE, "application/geo+json")], body).into_response())
}

pub async fn new_form(
    State(st): State<ConsoleState>,
    Session(a): Session,
) -> Result<Response, ConsoleError> {
    if a.user.role < Role::Drafter {
        return Err(ConsoleError::Role(Role::Drafter));
    }
    let place = place(&st)?.clone();
    let wards = wards(&st, &place).await?;
    let ctx = page_ctx(&st, &a, "alerts", None);
    let ctx = minijinja::context! {
        levels => levels(&st),
        hazards => hazards(&st),
        wards => minijinja::Value::from_serialize(&wards),
        max_text => manual::MAX_FREE_TEXT_CHARS,
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "alert_new.html", ctx))
}

/// The form's fields, parsed; wards expand to their districts.
fn parse_draft(
    form: &HashMap<String, String>,
    raw: &[(String, String)],
    place: &PlaceData,
) -> Result<Draft, ConsoleError> {
    let level = form
        .get("level")
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(Level::from_number)
        .ok_or_else(|| ConsoleError::bad_request("発令する避難情報の種類を選んでください。"))?;
    let hazard = form
        .get("hazard")
        .and_then(|s| Hazard::parse(s))
        .ok_or_else(|| ConsoleError::bad_request("対象の災害を選んでください。"))?;
    let mut districts: Vec<String> = raw
        .iter()
        .filter(|(k, _)| k == "district")
        .map(|(_, v)| v.clone())
        .collect();
    for (_, ward) in raw.iter().filter(|(k, _)| k == "ward") {
        let before = districts.len();
        districts.extend(
            place
                .districts
                .all()
                .iter()
                .filter(|d| d.group.as_deref() == Some(ward.as_str()))
                .map(|d| d.id.clone()),
        );
        if districts.len() == before {
            return Err(ConsoleError::bad_request(format!(
                "「{ward}」はこの市の区にありません。画面を開き直して選び直してください。"
            )));
        }
    }
    Ok(Draft {
        level,
        hazard,
        districts,
        free_text: form
            .get("free_text")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    })
}

pub async fn create(
    State(st): State<ConsoleState>,
    req: axum::extract::Request,
) -> Result<Response, ConsoleError> {
    // The district list repeats one field name, so the raw pairs are read besides the extractor's map.
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .map_err(|_| ConsoleError::TooLarge)?;
    let raw: Vec<(String, String)> = url::form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    let Authorized {
        authed: a, form, ..
    } = <Authorized<DrafterRole> as axum::extract::FromRequest<_>>::from_request(req, &st).await?;
    let place = place(&st)?.clone();
    let draft = parse_draft(&form, &raw, &place)?;
    manual::check_draft(&draft, &place).map_err(refused)?;
    let actor = a.user.name.clone();
    let id = st
        .ctx
        .store
        .write(move |tx| manual::create_draft(tx, &draft, &actor, Utc::now()))
        .await?;
    Ok(Redirect::to(&format!("/console/alerts/{id}")).into_response())
}

async fn load(st: &ConsoleState, id: i64) -> Result<ManualAlert, ConsoleError> {
    st.ctx
        .store
        .read(move |c| manual::get(c, id))
        .await?
        .ok_or_else(|| refused(manual::Refusal::NotFound))
}

/// The messages of the alert's first district (or the correction), as they will be sent.
async fn preview_messages(
    st: &ConsoleState,
    x: &ManualAlert,
) -> Result<Vec<serde_json::Value>, ConsoleError> {
    let place = place(st)?.clone();
    let (drill, original, status) = {
        let refers = x.refers_to;
        st.ctx
            .store
            .read(move |c| {
                let original: String = match refers {
                    Some(o) => c.query_row(
                        "SELECT summary FROM delivery_alerts WHERE id = ?1",
                        [o],
                        |r| r.get(0),
                    )?,
                    None => String::new(),
                };
                Ok((
                    manual::drill_active(c)?,
                    original,
                    crate::place::status::load_statuses(c)?,
                ))
            })
            .await?
    };
    let district = x.districts.first().and_then(|d| place.districts.get(d));
    let shelters = district
        .map(|d| {
            manual::shelters_for(
                &place,
                &d.id,
                x.hazard,
                &status,
                st.ctx.alerts.shelter_reach,
            )
        })
        .unwrap_or_default();
    let hazard_map = district
        .map(|d| {
            st.ctx
                .alerts
                .links
                .links(x.hazard.place_hazard(), d.label_point, &d.jma_code)
                .hazard_map
        })
        .unwrap_or_default();
    let t = &st.ctx.alerts.templates;
    t.compose(&ManualInput {
        alert: x,
        city: &st.ctx.alerts.city,
        district: district.map(|d| (d.name.as_str(), d.id.as_str())),
        shelters: &shelters,
        hazard_map_url: &hazard_map,
        public_url: &st.ctx.public_url,
        original: &original,
        drill,
        at: Utc::now(),
    })
    .map_err(|e| ConsoleError::Internal(anyhow::anyhow!("composing the preview: {e}")))
}

pub async fn show(
    State(st): State<ConsoleState>,
    Session(a): Session,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ConsoleError> {
    let x = load(&st, id).await?;
    let messages = preview_messages(&st, &x).await?;
    let place = place(&st)?.clone();
    let ids = x.districts.clone();
    let (counts, progress) = {
        let delivery = x.delivery_alert_id;
        st.ctx
            .store
            .read(move |c| {
                Ok((
                    manual::recipients_by_district(c, &ids)?,
                    match delivery {
                        Some(d) => crate::delivery::progress(c, d)?,
                        None => None,
                    },
                ))
            })
            .await?
    };
    let per_district: Vec<_> = x
        .districts
        .iter()
        .map(|d| {
            let name = place
                .districts
                .get(d)
                .map(|d| format!("{}{}", d.group.clone().unwrap_or_default(), d.name))
                .unwrap_or_else(|| d.clone());
            minijinja::context! { name => name, residents => counts.get(d).copied().unwrap_or(0) }
        })
        .collect();
    let total: i64 = counts.values().sum();
    let me = a.user.name.clone();
    let ctx = page_ctx(&st, &a, "alerts", q.msg.as_deref());
    let ctx = minijinja::context! {
        alert => view(&st, &x),
        free_text => x.free_text.clone(),
        per_district => per_district,
        total => total,
        json => serde_json::to_string_pretty(&messages).unwrap_or_default(),
        progress => minijinja::Value::from_serialize(&progress),
        send_at_ms => x.send_at_ms,
        is_drafter => x.drafted_by == me,
        can_submit => a.user.role >= Role::Drafter,
        can_approve => a.user.role >= Role::Approver && x.drafted_by != me,
        is_approver => a.user.role >= Role::Approver,
        refresh => if matches!(x.status, Status::Approved | Status::Sent) { REFRESH_SECS } else { 0 },
        ..ctx
    };
    Ok(render(&st, StatusCode::OK, "alert.html", ctx))
}

/// The preview document shown in the phone frame: its own CSP (inline styles for the template's colours,
/// nothing else), framable only by the console itself.
pub async fn preview(
    State(st): State<ConsoleState>,
    Session(_a): Session,
    Path(id): Path<i64>,
) -> Result<Response, ConsoleError> {
    let x = load(&st, id).await?;
    let messages = preview_messages(&st, &x).await?;
    let html = flex::preview_document("プレビュー", &messages);
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(res)
}

fn back(id: i64, msg: &str) -> Response {
    Redirect::to(&format!("/console/alerts/{id}?msg={msg}")).into_response()
}

pub async fn submit(
    State(st): State<ConsoleState>,
    Path(id): Path<i64>,
    Authorized { authed: a, .. }: Authorized<DrafterRole>,
) -> Result<Response, ConsoleError> {
    let actor = a.user.name.clone();
    let approver = a.user.role >= Role::Approver;
    st.ctx
        .store
        .write(move |tx| manual::submit(tx, id, &actor, approver))
        .await?
        .map_err(refused)?;
    Ok(back(id, "alert_submitted"))
}

pub async fn approve(
    State(st): State<ConsoleState>,
    Path(id): Path<i64>,
    Authorized {
        authed: a, form, ..
    }: Authorized<ApproverRole>,
) -> Result<Response, ConsoleError> {
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return Err(ConsoleError::bad_request(
            "「内容と対象地区を確認しました」にチェックを入れてから承認してください。",
        ));
    }
    let actor = a.user.name.clone();
    st.ctx
        .store
        .write(move |tx| manual::approve(tx, id, &actor, Utc::now()))
        .await?
        .map_err(refused)?;
    tracing::warn!(user = %a.user.name, manual_alert = id, "evacuation information approved; sending after the cancel window");
    st.ctx.alerts.wake.notify_one();
    Ok(back(id, "alert_approved"))
}

pub async fn cancel(
    State(st): State<ConsoleState>,
    Path(id): Path<i64>,
    Authorized { authed: a, .. }: Authorized<DrafterRole>,
) -> Result<Response, ConsoleError> {
    let actor = a.user.name.clone();
    let approver = a.user.role >= Role::Approver;
    st.ctx
        .store
        .write(move |tx| manual::cancel(tx, id, &actor, approver, Utc::now()))
        .await?
        .map_err(refused)?;
    Ok(back(id, "alert_cancelled"))
}

pub async fn correct(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<ApproverRole>,
) -> Result<Response, ConsoleError> {
    let original = form
        .get("alert")
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| ConsoleError::bad_request("訂正・取消する通知を一覧から選んでください。"))?;
    let withdrawal = match form.get("kind").map(String::as_str) {
        Some("withdrawal") => true,
        Some("correction") => false,
        _ => {
            return Err(ConsoleError::bad_request(
                "「訂正」か「取消」を選んでください。",
            ))
        }
    };
    let text = form.get("text").cloned().unwrap_or_default();
    let actor = a.user.name.clone();
    let id = st
        .ctx
        .store
        .write(move |tx| manual::correct(tx, original, withdrawal, &text, &actor, Utc::now()))
        .await?
        .map_err(refused)?;
    st.ctx.alerts.wake.notify_one();
    tracing::warn!(user = %a.user.name, original, withdrawal, "correction of a sent alert");
    Ok(back(id, "alert_corrected"))
}

pub async fn drill(
    State(st): State<ConsoleState>,
    Authorized {
        authed: a, form, ..
    }: Authorized<ApproverRole>,
) -> Result<Response, ConsoleError> {
    let on = match form.get("action").map(String::as_str) {
        Some("start") => true,
        Some("end") => false,
        _ => return Err(ConsoleError::bad_request("操作の種類が正しくありません。")),
    };
    let actor = a.user.name.clone();
    st.ctx
        .store
        .write(move |tx| manual::set_drill(tx, on, &actor, Utc::now()))
        .await?;
    Ok(Redirect::to(if on {
        "/console/alerts?msg=drill_started"
    } else {
        "/console/alerts?msg=drill_ended"
    })
    .into_response())
}

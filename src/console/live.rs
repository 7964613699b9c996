//! The console's real sources: active warnings from the JMA state (`jma_state`), deliveries from the outbox
//! progress, shelters from the place data with their stored status. Each reads SQLite on demand, so the
//! console always shows what the engine and the sender see.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::providers::{
    DeliveryRow, DeliverySource, ShelterRow, ShelterSource, ShelterStatus, WarningRow,
    WarningSource,
};
use crate::place::PlaceData;
use crate::store::Store;

/// How many recent alerts the console lists.
pub const RECENT_ALERTS: i64 = 50;

pub struct LiveWarnings(pub Store);

impl WarningSource for LiveWarnings {
    fn active_warnings(&self) -> BoxFuture<'_, anyhow::Result<Vec<WarningRow>>> {
        Box::pin(async move {
            let states = self.0.read(crate::jma::pipeline::load_states).await?;
            let mut out = Vec::new();
            for (code, muni) in &states.real.munis {
                for w in muni.effective.values() {
                    out.push(WarningRow {
                        municipality_code: code.clone(),
                        municipality_name: muni.name.clone(),
                        kind_code: w.code.clone(),
                        kind_name: w.name.clone(),
                        severity: match w.severity {
                            crate::jma::state::Severity::Advisory => "注意報",
                            crate::jma::state::Severity::Warning => "警報",
                            crate::jma::state::Severity::Danger => "危険警報",
                            crate::jma::state::Severity::Emergency => "特別警報",
                        }
                        .into(),
                        level: w.level,
                        status: "発表中".into(),
                        issued_at: Some(w.kind_since.with_timezone(&chrono::Utc)),
                    });
                }
            }
            Ok(out)
        })
    }
}

pub struct LiveDeliveries(pub Store);

impl DeliverySource for LiveDeliveries {
    fn deliveries(&self) -> BoxFuture<'_, anyhow::Result<Vec<DeliveryRow>>> {
        Box::pin(async move {
            let alerts = self
                .0
                .read(|c| crate::delivery::recent_alerts(c, RECENT_ALERTS))
                .await?;
            Ok(alerts
                .into_iter()
                .map(|a| DeliveryRow {
                    alert_id: a.id.to_string(),
                    title: a.summary,
                    started_at: chrono::DateTime::parse_from_rfc3339(&a.created_at)
                        .ok()
                        .map(|t| t.with_timezone(&chrono::Utc)),
                    planned: a.progress.planned.max(0) as u64,
                    sent: a.progress.sent.max(0) as u64,
                    failed: a.progress.failed.max(0) as u64,
                    drill: a.source == "drill",
                })
                .collect())
        })
    }
}

pub struct LiveShelters {
    pub store: Store,
    pub place: Arc<PlaceData>,
}

fn to_console(s: crate::place::status::ShelterStatus) -> ShelterStatus {
    ShelterStatus::parse(s.as_str()).unwrap_or(ShelterStatus::Open)
}

impl ShelterSource for LiveShelters {
    fn shelters(&self) -> BoxFuture<'_, anyhow::Result<Vec<ShelterRow>>> {
        Box::pin(async move {
            let statuses = crate::place::status::statuses(&self.store).await?;
            Ok(self
                .place
                .shelters
                .all()
                .iter()
                .map(|s| ShelterRow {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    area: s.address.clone(),
                    status: statuses
                        .get(&s.id)
                        .copied()
                        .map_or(ShelterStatus::Open, to_console),
                    hazards: s.hazards.iter().map(|h| h.label_ja().to_string()).collect(),
                })
                .collect())
        })
    }

    fn set_status<'a>(
        &'a self,
        id: &'a str,
        status: ShelterStatus,
        actor: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            if self.place.shelters.get(id).is_none() {
                return Ok(false);
            }
            crate::place::status::set_status(&self.store, id, status, actor).await?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn live_sources_show_the_outbox_and_change_a_real_shelters_status() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .write(|tx| {
                let alert = crate::delivery::NewAlert {
                    step_key: "k1".into(),
                    source: "drill".into(),
                    kind: "issue".into(),
                    priority: 100,
                    summary: "【訓練】【大雨警報】札幌市 発表".into(),
                    detail: serde_json::json!({}),
                };
                let plan = crate::delivery::Planned {
                    messages: vec![serde_json::json!({"type": "text", "text": "t"})],
                    recipients: (1..=3).map(|i| format!("U{i:032x}")).collect(),
                };
                crate::delivery::enqueue(tx, &alert, &[plan], 0)?;
                Ok(())
            })
            .await
            .unwrap();
        let rows = LiveDeliveries(store.clone()).deliveries().await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].planned, rows[0].sent, rows[0].drill), (3, 0, true));
        assert!(LiveWarnings(store.clone())
            .active_warnings()
            .await
            .unwrap()
            .is_empty());

        let mut cfg = crate::place::PlaceConfig::default();
        let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/demo");
        cfg.districts = format!("{demo}/sapporo-districts.geojson").into();
        cfg.shelters = vec![format!("{demo}/sapporo-01100-shitei-kinkyu-hinanbasho.csv").into()];
        let place = Arc::new(PlaceData::load(&cfg).unwrap());
        let src = LiveShelters {
            store: store.clone(),
            place: place.clone(),
        };
        let id = place.shelters.all()[0].id.clone();
        assert!(src
            .set_status(&id, ShelterStatus::Closed, "tester")
            .await
            .unwrap());
        assert!(!src
            .set_status("E-none", ShelterStatus::Closed, "tester")
            .await
            .unwrap());
        let rows = src.shelters().await.unwrap();
        let row = rows.iter().find(|r| r.id == id).unwrap();
        assert_eq!(row.status, ShelterStatus::Closed);
        assert!(rows
            .iter()
            .filter(|r| r.id != id)
            .all(|r| r.status == ShelterStatus::Open));
        let audited: i64 = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM audit_log WHERE action = 'shelter.status'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(audited, 1, "one change, audited once");
    }
}

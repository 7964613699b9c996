//! The console's real sources: active warnings from the JMA state (`jma_state`), deliveries from the outbox
//! progress, shelters from the place data with their stored status. Each reads SQLite on demand, so the
//! console always shows what the engine and the sender see.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::providers::{
    select_for_bulk, AreaChoice, BulkChange, BulkOutcome, DeliveryRow, DeliverySource, ShelterRow,
    ShelterSource, ShelterStatus, WarningRow, WarningSource,
};
use crate::place::{Need, PlaceData, ShelterKind};
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

/// Shelters from the place data with their stored status; where each lies (ward, district) is worked out
/// once, at construction.
pub struct LiveShelters {
    store: Store,
    place: Arc<PlaceData>,
    /// Per shelter (same order as `place.shelters.all()`): its area keys and the district's label.
    placement: Vec<(Vec<String>, String)>,
    areas: Vec<AreaChoice>,
}

impl LiveShelters {
    pub fn new(store: Store, place: Arc<PlaceData>) -> LiveShelters {
        let mut groups: Vec<String> = Vec::new();
        let mut districts: Vec<(String, String)> = Vec::new();
        let placement = place
            .shelters
            .all()
            .iter()
            .map(|s| {
                let mut keys = vec!["all".to_string()];
                let Some(d) = place.districts.locate(s.at) else {
                    return (keys, String::new());
                };
                if let Some(g) = &d.group {
                    keys.push(format!("group:{g}"));
                    if !groups.contains(g) {
                        groups.push(g.clone());
                    }
                }
                keys.push(format!("district:{}", d.id));
                let label = match &d.group {
                    Some(g) => format!("{g} {}", d.name),
                    None => d.name.clone(),
                };
                if !districts.iter().any(|(id, _)| *id == d.id) {
                    districts.push((d.id.clone(), label.clone()));
                }
                (keys, label)
            })
            .collect();
        districts.sort_by(|a, b| a.1.cmp(&b.1));
        let mut areas = vec![AreaChoice {
            key: "all".into(),
            label: "市内全域".into(),
            kind: String::new(),
        }];
        areas.extend(groups.into_iter().map(|g| AreaChoice {
            key: format!("group:{g}"),
            label: g,
            kind: "区".into(),
        }));
        areas.extend(districts.into_iter().map(|(id, label)| AreaChoice {
            key: format!("district:{id}"),
            label,
            kind: "地区（避難所のある地区）".into(),
        }));
        LiveShelters {
            store,
            place,
            placement,
            areas,
        }
    }

    async fn rows(&self) -> anyhow::Result<Vec<ShelterRow>> {
        let statuses = crate::place::status::statuses(&self.store).await?;
        Ok(self
            .place
            .shelters
            .all()
            .iter()
            .zip(&self.placement)
            .map(|(s, (areas, district))| ShelterRow {
                id: s.id.clone(),
                name: s.name.clone(),
                area: if district.is_empty() {
                    s.address.clone()
                } else {
                    district.clone()
                },
                status: crate::place::status::status_of(&statuses, &s.id),
                hazards: match s.kind {
                    ShelterKind::Emergency => {
                        s.hazards.iter().map(|h| h.label_ja().to_string()).collect()
                    }
                    ShelterKind::Evacuation => vec![Need::Stay.label_ja().to_string()],
                },
                needs: Need::all()
                    .filter(|n| s.suits(*n))
                    .map(|n| n.slug().to_string())
                    .collect(),
                areas: areas.clone(),
            })
            .collect())
    }
}

impl ShelterSource for LiveShelters {
    fn shelters(&self) -> BoxFuture<'_, anyhow::Result<Vec<ShelterRow>>> {
        Box::pin(self.rows())
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

    fn areas(&self) -> BoxFuture<'_, anyhow::Result<Vec<AreaChoice>>> {
        Box::pin(async move { Ok(self.areas.clone()) })
    }

    fn set_status_bulk<'a>(
        &'a self,
        change: &'a BulkChange,
        actor: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<BulkOutcome>> {
        Box::pin(async move {
            let rows = self.rows().await?;
            let ids: Vec<String> = select_for_bulk(&rows, change)
                .map(|r| r.id.clone())
                .collect();
            if ids.is_empty() {
                return Ok(BulkOutcome {
                    selected: 0,
                    changed: 0,
                });
            }
            let selected = ids.len();
            let (actor, status) = (actor.to_string(), change.status);
            let what = serde_json::json!({"need": change.need, "area": change.area});
            let changed = self
                .store
                .write(move |tx| {
                    crate::place::status::set_status_bulk_tx(tx, &ids, status, &actor, &what)
                })
                .await?;
            Ok(BulkOutcome {
                selected,
                changed: changed.len(),
            })
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
        let src = LiveShelters::new(store.clone(), place.clone());
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
        // Unknown is not open: the city has said nothing about the others.
        assert!(rows
            .iter()
            .filter(|r| r.id != id)
            .all(|r| r.status == ShelterStatus::Unknown));
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

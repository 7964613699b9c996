//! Data the console shows but other parts own: active warnings (JMA state), deliveries in progress (the
//! outbox), shelters (place data). Each is a small trait: the live sources are in [`super::live`]; the
//! in-memory [`Board`]s here serve tests.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

/// One active warning for one municipality, as the console lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WarningRow {
    /// 7-digit JMA 市町村等 code, e.g. "0610000" (山形市).
    pub municipality_code: String,
    pub municipality_name: String,
    /// JMA warning kind code (e.g. "03" 大雨警報, "33" 大雨特別警報, "43" 大雨危険警報).
    pub kind_code: String,
    /// Name as JMA gives it, e.g. "大雨警報".
    pub kind_name: String,
    /// 注意報 / 警報 / 危険警報 / 特別警報.
    pub severity: String,
    /// 警戒レベル相当 (2–5) when the kind has one.
    pub level: Option<u8>,
    /// 発表 / 継続 / 特別警報から警報 … as in the telegram.
    pub status: String,
    pub issued_at: Option<DateTime<Utc>>,
}

/// Delivery progress of one alert (one outbox decision).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub alert_id: String,
    pub title: String,
    pub started_at: Option<DateTime<Utc>>,
    pub planned: u64,
    pub sent: u64,
    pub failed: u64,
    /// A 訓練 delivery (drill audience only).
    pub drill: bool,
}

impl DeliveryRow {
    /// Recipients neither sent nor failed yet.
    pub fn pending(&self) -> u64 {
        self.planned.saturating_sub(self.sent + self.failed)
    }

    /// Percentage done (sent + failed of planned), 100 for an empty plan.
    pub fn percent_done(&self) -> u64 {
        ((self.sent + self.failed).min(self.planned) * 100)
            .checked_div(self.planned)
            .unwrap_or(100)
    }
}

pub use crate::place::status::ShelterStatus;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShelterRow {
    pub id: String,
    pub name: String,
    /// District or municipality the shelter is in, for grouping.
    pub area: String,
    pub status: ShelterStatus,
    /// Hazards it is designated for, in operator language (e.g. "洪水", "土砂災害"); 「屋内の指定避難所」 for
    /// a 指定避難所.
    pub hazards: Vec<String>,
    /// The needs it suits (`place::Need::slug`: `flood`, …, `stay`), for bulk changes per hazard.
    pub needs: Vec<String>,
    /// The [`AreaChoice`] keys it lies in (`all`, `group:中央区`, `district:ID`).
    pub areas: Vec<String>,
}

/// One choice of where a bulk change applies: the whole city (`all`), a ward (`group:NAME`) or a district
/// with at least one shelter (`district:ID`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AreaChoice {
    pub key: String,
    pub label: String,
    /// Heading the choice is listed under (「区」, 「地区」; empty for the whole city).
    pub kind: String,
}

/// An operator's bulk change: every shelter suited to `need` in `area` gets `status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BulkChange {
    /// `place::Need::slug`.
    pub need: String,
    /// [`AreaChoice::key`].
    pub area: String,
    pub status: ShelterStatus,
}

/// What a bulk change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkOutcome {
    /// Shelters suited to the need in the area.
    pub selected: usize,
    /// Of those, how many changed (the others already had that status).
    pub changed: usize,
}

/// The shelters a bulk change selects, from the rows' `needs` and `areas` (the in-memory board and the
/// live source use the same rule).
pub fn select_for_bulk<'a>(
    rows: &'a [ShelterRow],
    change: &'a BulkChange,
) -> impl Iterator<Item = &'a ShelterRow> + 'a {
    rows.iter()
        .filter(move |r| r.needs.contains(&change.need) && r.areas.contains(&change.area))
}

pub trait WarningSource: Send + Sync {
    fn active_warnings(&self) -> BoxFuture<'_, anyhow::Result<Vec<WarningRow>>>;
}

pub trait DeliverySource: Send + Sync {
    fn deliveries(&self) -> BoxFuture<'_, anyhow::Result<Vec<DeliveryRow>>>;
}

pub trait ShelterSource: Send + Sync {
    fn shelters(&self) -> BoxFuture<'_, anyhow::Result<Vec<ShelterRow>>>;
    /// Changes one shelter's status; `Ok(false)` when no shelter has that id. The source audits the change in
    /// the same transaction as the change.
    fn set_status<'a>(
        &'a self,
        id: &'a str,
        status: ShelterStatus,
        actor: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<bool>>;
    /// Where a bulk change can apply, the whole city first.
    fn areas(&self) -> BoxFuture<'_, anyhow::Result<Vec<AreaChoice>>>;
    /// Sets the status of every shelter [`select_for_bulk`] selects, all in one transaction with one audit
    /// row (`shelter.status.bulk`) naming the operator. Nothing selected: nothing written.
    fn set_status_bulk<'a>(
        &'a self,
        change: &'a BulkChange,
        actor: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<BulkOutcome>>;
}

/// A list someone else keeps up to date (`replace`), read by the console. Serves warnings and deliveries.
#[derive(Debug, Default)]
pub struct Board<T>(RwLock<Vec<T>>);

impl<T: Clone> Board<T> {
    pub fn new(rows: Vec<T>) -> Arc<Self> {
        Arc::new(Board(RwLock::new(rows)))
    }

    pub fn replace(&self, rows: Vec<T>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = rows;
    }

    pub fn snapshot(&self) -> Vec<T> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl WarningSource for Board<WarningRow> {
    fn active_warnings(&self) -> BoxFuture<'_, anyhow::Result<Vec<WarningRow>>> {
        Box::pin(async move { Ok(self.snapshot()) })
    }
}

impl DeliverySource for Board<DeliveryRow> {
    fn deliveries(&self) -> BoxFuture<'_, anyhow::Result<Vec<DeliveryRow>>> {
        Box::pin(async move { Ok(self.snapshot()) })
    }
}

impl ShelterSource for Board<ShelterRow> {
    fn shelters(&self) -> BoxFuture<'_, anyhow::Result<Vec<ShelterRow>>> {
        Box::pin(async move { Ok(self.snapshot()) })
    }

    fn set_status<'a>(
        &'a self,
        id: &'a str,
        status: ShelterStatus,
        _actor: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<bool>> {
        Box::pin(async move {
            let mut rows = self.0.write().unwrap_or_else(|p| p.into_inner());
            match rows.iter_mut().find(|s| s.id == id) {
                Some(s) => {
                    s.status = status;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }

    fn areas(&self) -> BoxFuture<'_, anyhow::Result<Vec<AreaChoice>>> {
        Box::pin(async move {
            let mut keys: Vec<String> = Vec::new();
            for r in self.snapshot() {
                for a in r.areas {
                    if !keys.contains(&a) {
                        keys.push(a);
                    }
                }
            }
            Ok(keys
                .into_iter()
                .map(|key| AreaChoice {
                    label: if key == "all" {
                        "市内全域".into()
                    } else {
                        key.split_once(':')
                            .map_or(key.clone(), |(_, n)| n.to_string())
                    },
                    kind: String::new(),
                    key,
                })
                .collect())
        })
    }

    fn set_status_bulk<'a>(
        &'a self,
        change: &'a BulkChange,
        _actor: &'a str,
    ) -> BoxFuture<'a, anyhow::Result<BulkOutcome>> {
        Box::pin(async move {
            let mut rows = self.0.write().unwrap_or_else(|p| p.into_inner());
            let ids: Vec<String> = select_for_bulk(&rows, change)
                .map(|r| r.id.clone())
                .collect();
            let mut changed = 0;
            for r in rows.iter_mut().filter(|r| ids.contains(&r.id)) {
                if r.status != change.status {
                    r.status = change.status;
                    changed += 1;
                }
            }
            Ok(BulkOutcome {
                selected: ids.len(),
                changed,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_progress_counts_sent_and_failed_as_done() {
        let d = DeliveryRow {
            alert_id: "a".into(),
            title: "t".into(),
            started_at: None,
            planned: 1000,
            sent: 700,
            failed: 50,
            drill: false,
        };
        assert_eq!(d.pending(), 250);
        assert_eq!(d.percent_done(), 75);
        let empty = DeliveryRow {
            planned: 0,
            sent: 0,
            failed: 0,
            ..d
        };
        assert_eq!(empty.percent_done(), 100);
    }

    #[tokio::test]
    async fn a_shelter_board_changes_only_the_named_shelter() {
        let b = Board::new(vec![
            ShelterRow {
                id: "s1".into(),
                name: "第一小学校".into(),
                area: "中央".into(),
                status: ShelterStatus::Closed,
                hazards: vec!["洪水".into()],
                needs: vec!["flood".into()],
                areas: vec!["all".into()],
            },
            ShelterRow {
                id: "s2".into(),
                name: "市民会館".into(),
                area: "中央".into(),
                status: ShelterStatus::Closed,
                hazards: vec![],
                needs: vec!["stay".into()],
                areas: vec!["all".into()],
            },
        ]);
        assert!(b.set_status("s2", ShelterStatus::Open, "x").await.unwrap());
        assert!(!b.set_status("s9", ShelterStatus::Open, "x").await.unwrap());
        let rows = b.shelters().await.unwrap();
        assert_eq!(rows[0].status, ShelterStatus::Closed);
        assert_eq!(rows[1].status, ShelterStatus::Open);
        // Bulk: only the shelter suited to the need changes.
        let out = b
            .set_status_bulk(
                &BulkChange {
                    need: "flood".into(),
                    area: "all".into(),
                    status: ShelterStatus::Open,
                },
                "x",
            )
            .await
            .unwrap();
        assert_eq!(
            out,
            BulkOutcome {
                selected: 1,
                changed: 1
            }
        );
        assert_eq!(b.shelters().await.unwrap()[0].status, ShelterStatus::Open);
    }
}

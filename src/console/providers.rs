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
    /// Hazards it is designated for, in operator language (e.g. "洪水", "土砂災害").
    pub hazards: Vec<String>,
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
            },
            ShelterRow {
                id: "s2".into(),
                name: "市民会館".into(),
                area: "中央".into(),
                status: ShelterStatus::Closed,
                hazards: vec![],
            },
        ]);
        assert!(b.set_status("s2", ShelterStatus::Open, "x").await.unwrap());
        assert!(!b.set_status("s9", ShelterStatus::Open, "x").await.unwrap());
        let rows = b.shelters().await.unwrap();
        assert_eq!(rows[0].status, ShelterStatus::Closed);
        assert_eq!(rows[1].status, ShelterStatus::Open);
    }
}

//! SQL for plows (tables in migration 0400). Synchronous functions taking a transaction or a connection, so
//! callers batch them inside one [`crate::store::Store::write`].

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::payload::{Blade, Position};
use super::Millis;

/// One accepted position and whether it is the vehicle's newest.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub position: Position,
    pub newest: bool,
}

/// Everything one ingest batch writes, in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    pub positions: Vec<Accepted>,
    pub offline: Vec<(String, Millis)>,
    /// `(segment key, plowed at)`.
    pub passes: Vec<(String, Millis)>,
    /// `(district id, entered at, vehicle)` for the open storm.
    pub entries: Vec<(String, Millis, String)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
            && self.offline.is_empty()
            && self.passes.is_empty()
            && self.entries.is_empty()
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub stored: usize,
    /// Positions whose `(vehicle, ts)` was already stored (redelivery across a restart).
    pub duplicates: usize,
}

/// Writes a batch. Positions already stored are ignored (and counted); the latest row only moves forward in time.
pub fn write_batch(
    tx: &Transaction<'_>,
    batch: &Batch,
    storm_id: Option<i64>,
    received_ms: Millis,
) -> anyhow::Result<BatchOutcome> {
    let mut out = BatchOutcome::default();
    let mut ins = tx.prepare_cached(
        "INSERT OR IGNORE INTO plow_positions (vehicle, ts_ms, lat, lon, speed_kmh, heading, blade) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut latest = tx.prepare_cached(
        "INSERT INTO plow_vehicles (vehicle, format, ts_ms, lat, lon, speed_kmh, heading, blade, offline_ms, received_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9) \
         ON CONFLICT (vehicle) DO UPDATE SET format = excluded.format, ts_ms = excluded.ts_ms, lat = excluded.lat, \
           lon = excluded.lon, speed_kmh = excluded.speed_kmh, heading = excluded.heading, blade = excluded.blade, \
           received_ms = excluded.received_ms \
         WHERE excluded.ts_ms > plow_vehicles.ts_ms",
    )?;
    for a in &batch.positions {
        let p = &a.position;
        let n = ins.execute(params![
            p.vehicle,
            p.ts_ms,
            p.lat,
            p.lon,
            p.speed_kmh,
            p.heading,
            p.blade.as_str()
        ])?;
        if n == 0 {
            out.duplicates += 1;
            continue;
        }
        out.stored += 1;
        if a.newest {
            latest.execute(params![
                p.vehicle,
                p.format.label(),
                p.ts_ms,
                p.lat,
                p.lon,
                p.speed_kmh,
                p.heading,
                p.blade.as_str(),
                received_ms
            ])?;
        }
    }
    for (vehicle, at) in &batch.offline {
        tx.execute(
            "UPDATE plow_vehicles SET offline_ms = ?2 WHERE vehicle = ?1",
            params![vehicle, at],
        )?;
    }
    let mut pass = tx.prepare_cached(
        "INSERT INTO plow_segment_passes (segment, plowed_ms) VALUES (?1, ?2) \
         ON CONFLICT (segment) DO UPDATE SET plowed_ms = max(plowed_ms, excluded.plowed_ms)",
    )?;
    for (seg, at) in &batch.passes {
        pass.execute(params![seg, at])?;
    }
    if let Some(storm) = storm_id {
        for (district, at, vehicle) in &batch.entries {
            tx.execute(
                "INSERT OR IGNORE INTO plow_district_entries (storm_id, district, entered_ms, vehicle) VALUES (?1, ?2, ?3, ?4)",
                params![storm, district, at, vehicle],
            )?;
        }
    }
    Ok(out)
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct VehicleRow {
    pub vehicle: String,
    pub format: String,
    pub ts_ms: Millis,
    pub lat: f64,
    pub lon: f64,
    pub speed_kmh: Option<f64>,
    pub heading: Option<f64>,
    pub blade: Blade,
    pub offline_ms: Option<Millis>,
}

pub fn vehicles(conn: &Connection) -> anyhow::Result<Vec<VehicleRow>> {
    let mut st = conn.prepare_cached(
        "SELECT vehicle, format, ts_ms, lat, lon, speed_kmh, heading, blade, offline_ms FROM plow_vehicles ORDER BY vehicle",
    )?;
    let rows = st.query_map([], |r| {
        Ok(VehicleRow {
            vehicle: r.get(0)?,
            format: r.get(1)?,
            ts_ms: r.get(2)?,
            lat: r.get(3)?,
            lon: r.get(4)?,
            speed_kmh: r.get(5)?,
            heading: r.get(6)?,
            blade: Blade::from_db(&r.get::<_, String>(7)?),
            offline_ms: r.get(8)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
        .context("reading plow_vehicles")
}

/// Trail points `[lat, lon, unix seconds]` per vehicle since `since_ms`, oldest first, at most `limit` points.
pub fn trails(
    conn: &Connection,
    since_ms: Millis,
    limit: usize,
) -> anyhow::Result<Vec<(String, Vec<[f64; 3]>)>> {
    let mut st = conn.prepare_cached(
        "SELECT vehicle, ts_ms, lat, lon FROM plow_positions WHERE ts_ms >= ?1 ORDER BY vehicle, ts_ms LIMIT ?2",
    )?;
    let mut out: Vec<(String, Vec<[f64; 3]>)> = Vec::new();
    let mut rows = st.query(params![since_ms, limit as i64])?;
    while let Some(r) = rows.next()? {
        let v: String = r.get(0)?;
        let p = [r.get(2)?, r.get(3)?, (r.get::<_, i64>(1)? / 1000) as f64];
        match out.last_mut() {
            Some((last, pts)) if *last == v => pts.push(p),
            _ => out.push((v, vec![p])),
        }
    }
    Ok(out)
}

/// Deletes up to `limit` trail points older than `before_ms`; returns how many went.
pub fn prune(tx: &Transaction<'_>, before_ms: Millis, limit: usize) -> anyhow::Result<usize> {
    Ok(tx.execute(
        "DELETE FROM plow_positions WHERE (vehicle, ts_ms) IN \
         (SELECT vehicle, ts_ms FROM plow_positions WHERE ts_ms < ?1 LIMIT ?2)",
        params![before_ms, limit as i64],
    )?)
}

pub fn passes(conn: &Connection) -> anyhow::Result<Vec<(String, Millis)>> {
    let mut st = conn.prepare("SELECT segment, plowed_ms FROM plow_segment_passes")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect::<Result<_, _>>()
        .context("reading plow_segment_passes")
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Storm {
    pub id: i64,
    pub started_ms: Millis,
    pub ended_ms: Option<Millis>,
    pub note: String,
}

/// The open storm, if any.
pub fn current_storm(conn: &Connection) -> anyhow::Result<Option<Storm>> {
    Ok(conn
        .query_row(
            "SELECT id, started_ms, ended_ms, note FROM plow_storms WHERE ended_ms IS NULL ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(Storm {
                    id: r.get(0)?,
                    started_ms: r.get(1)?,
                    ended_ms: r.get(2)?,
                    note: r.get(3)?,
                })
            },
        )
        .optional()?)
}

/// The most recent storm, open or ended.
pub fn last_storm(conn: &Connection) -> anyhow::Result<Option<Storm>> {
    Ok(conn
        .query_row(
            "SELECT id, started_ms, ended_ms, note FROM plow_storms ORDER BY id DESC LIMIT 1",
            [],
            |r| {
                Ok(Storm {
                    id: r.get(0)?,
                    started_ms: r.get(1)?,
                    ended_ms: r.get(2)?,
                    note: r.get(3)?,
                })
            },
        )
        .optional()?)
}

#[derive(Clone, Debug, PartialEq)]
pub enum StormChange {
    Started(Storm),
    Ended(Storm),
    /// Start asked while a storm is open: nothing changed.
    AlreadyOpen(Storm),
    /// End asked while no storm is open: nothing changed.
    NoneOpen,
}

/// Starts a storm (audited). Starting while one is open changes nothing.
pub fn start_storm(
    tx: &Transaction<'_>,
    now_ms: Millis,
    actor: &str,
    note: &str,
) -> anyhow::Result<StormChange> {
    if let Some(s) = current_storm(tx)? {
        return Ok(StormChange::AlreadyOpen(s));
    }
    tx.execute(
        "INSERT INTO plow_storms (started_ms, started_by, note) VALUES (?1, ?2, ?3)",
        params![now_ms, actor, note],
    )?;
    let storm = Storm {
        id: tx.last_insert_rowid(),
        started_ms: now_ms,
        ended_ms: None,
        note: note.to_string(),
    };
    crate::store::Store::audit(
        tx,
        actor,
        "plow.storm.start",
        &serde_json::json!({"storm_id": storm.id, "started": super::rfc3339(now_ms), "note": note}),
    )?;
    Ok(StormChange::Started(storm))
}

/// Ends the open storm (audited).
pub fn end_storm(tx: &Transaction<'_>, now_ms: Millis, actor: &str) -> anyhow::Result<StormChange> {
    let Some(mut s) = current_storm(tx)? else {
        return Ok(StormChange::NoneOpen);
    };
    tx.execute(
        "UPDATE plow_storms SET ended_ms = ?2, ended_by = ?3 WHERE id = ?1",
        params![s.id, now_ms, actor],
    )?;
    s.ended_ms = Some(now_ms);
    crate::store::Store::audit(
        tx,
        actor,
        "plow.storm.end",
        &serde_json::json!({"storm_id": s.id, "ended": super::rfc3339(now_ms)}),
    )?;
    Ok(StormChange::Ended(s))
}

/// Districts entered (blade down) in a storm.
pub fn entered_districts(conn: &Connection, storm_id: i64) -> anyhow::Result<Vec<String>> {
    let mut st = conn.prepare("SELECT district FROM plow_district_entries WHERE storm_id = ?1")?;
    let rows = st.query_map([storm_id], |r| r.get(0))?;
    rows.collect::<Result<_, _>>()
        .context("reading plow_district_entries")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plow::payload::Format;

    fn accepted(vehicle: &str, ts_ms: Millis, lat: f64) -> Accepted {
        Accepted {
            position: Position {
                vehicle: vehicle.into(),
                ts_ms,
                lat,
                lon: 140.33,
                speed_kmh: Some(20.0),
                heading: None,
                blade: Blade::Down,
                format: Format::Sonae,
            },
            newest: true,
        }
    }

    #[test]
    fn trails_older_than_the_retention_are_pruned_in_chunks_and_the_latest_row_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db")).unwrap();
        const DAY: Millis = 86_400_000;
        let batch = Batch {
            positions: (0..10)
                .map(|d| accepted("P1", d * DAY, 38.0 + d as f64 / 100.0))
                .collect(),
            ..Batch::default()
        };
        let out = store
            .write_blocking(|tx| write_batch(tx, &batch, None, 0))
            .unwrap();
        assert_eq!(
            out,
            BatchOutcome {
                stored: 10,
                duplicates: 0
            }
        );
        // A late position (day 3 again, other place) does not move the latest row back.
        let late = Batch {
            positions: vec![accepted("P1", 3 * DAY + 1, 30.0)],
            ..Batch::default()
        };
        store
            .write_blocking(|tx| write_batch(tx, &late, None, 0))
            .unwrap();
        let v = store.read_blocking(vehicles).unwrap();
        assert_eq!((v[0].ts_ms, v[0].lat), (9 * DAY, 38.09));
        // Retention 7 days at day 9.5: days 0, 1 and 2 go, in chunks of 2.
        let before = 9 * DAY + DAY / 2 - 7 * DAY;
        let mut removed = vec![];
        loop {
            let k = store.write_blocking(|tx| prune(tx, before, 2)).unwrap();
            if k == 0 {
                break;
            }
            removed.push(k);
        }
        assert_eq!(removed, vec![2, 1]);
        let left = store.read_blocking(|c| trails(c, 0, 1000)).unwrap();
        assert_eq!(left[0].1.len(), 8);
        assert_eq!(left[0].1[0][2], (3 * DAY / 1000) as f64);
    }
}

//! Audience query at city scale: 1,000,000 residents over the 5,899 demo districts of 札幌市 in a real SQLite
//! file (WAL, synchronous=FULL), then the queries an alert makes. Prints figures; run with
//! `cargo bench --bench audience`.

use std::time::Instant;

use sonae::ids::LineUserId;
use sonae::place::demo_data::demo_city;
use sonae::resident::{for_each_audience_batch, import_tx, Audience, ImportRows};
use sonae::store::Store;

const RESIDENTS: u32 = 1_000_000;

fn main() -> anyhow::Result<()> {
    let (districts, _) = demo_city()?;
    let ids: Vec<String> = districts.all().iter().map(|d| d.id.clone()).collect();
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.db"))?;

    let rows = ImportRows {
        rows: (0..RESIDENTS)
            .map(|i| {
                (
                    LineUserId::new(format!("U{i:032x}")),
                    ids[(i as usize * 7919) % ids.len()].clone(),
                )
            })
            .collect(),
        encoding: sonae::text::CsvEncoding::Utf8,
    };
    let t = Instant::now();
    store.write_blocking(|tx| import_tx(tx, &rows, "bench", "generated", |_| {}))?;
    let import_s = t.elapsed().as_secs_f64();
    println!(
        "import {RESIDENTS} residents in one transaction: {import_s:.2} s ({:.0} rows/s)",
        RESIDENTS as f64 / import_s
    );

    let run = |label: &str, audience: Audience, reps: u32| -> anyhow::Result<()> {
        let mut n = 0;
        let t = Instant::now();
        for _ in 0..reps {
            n = store.read_blocking(|c| {
                for_each_audience_batch(c, &audience, 500, |b| {
                    std::hint::black_box(b);
                    Ok(())
                })
            })?;
        }
        let per = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "{label}: {n} recipients in {:.3} ms ({:.0} recipients/s), batches of 500",
            per * 1e3,
            n as f64 / per
        );
        Ok(())
    };
    run(
        "one district",
        Audience {
            districts: vec![ids[0].clone()],
            level3_opt_in_only: false,
            unregistered: false,
        },
        200,
    )?;
    run(
        "中央区 (990 districts)",
        Audience {
            districts: districts.ids_for_jma_code("0110100"),
            level3_opt_in_only: false,
            unregistered: false,
        },
        5,
    )?;
    run(
        "whole city 0110000 (5,899 districts)",
        Audience {
            districts: districts.ids_for_jma_code("0110000"),
            level3_opt_in_only: false,
            unregistered: false,
        },
        3,
    )?;
    run(
        "whole city, レベル3 opt-in only (none opted in)",
        Audience {
            districts: districts.ids_for_jma_code("0110000"),
            level3_opt_in_only: true,
            unregistered: false,
        },
        3,
    )?;
    Ok(())
}

//! Parse throughput of `jma_xml::report::parse` on one core, in the same run as
//! (a) crates.io `jmaxml` (MIERUNE's serde parser generated from JMA's XSD),
//! (b) Python's ElementTree doing the same extraction (`benches/jma_parse_et.py`, run via `python3`),
//! (c) the ceiling: quick-xml's `NsReader` reading every event and doing nothing else.
//!
//! Run: `cargo bench -p jma-xml --features bench-compare --bench jma_parse` (prints a table; figures go to
//! the repository's BENCHMARKS.md). Each measurement repeats one document for `SECONDS` (env `JMA_BENCH_SECONDS`, default 3)
//! after a warm-up, single-threaded; docs/s and MB/s (10^6 bytes) are reported.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use quick_xml::events::Event;
use quick_xml::NsReader;

fn samples() -> PathBuf {
    // `shared/` lies next to the repository; this crate is `crates/jma-xml` inside it.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/jma/samples/official")
}

const FILES: &[&str] = &[
    "15_17_01_250123_VPWW54.xml",
    "15_17_01_251222_VPWW55.xml",
    "17_01_01_190529_VXWW50.xml",
];

/// Runs `f` repeatedly for `secs`; returns documents per second.
fn measure(secs: f64, mut f: impl FnMut() -> bool) -> f64 {
    // Warm-up: caches, allocator, branch predictors.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        assert!(f());
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    loop {
        for _ in 0..8 {
            assert!(f());
        }
        n += 8;
        let el = start.elapsed().as_secs_f64();
        if el >= secs {
            return n as f64 / el;
        }
    }
}

fn ceiling(xml: &[u8]) -> bool {
    let mut r = NsReader::from_reader(xml);
    let mut events = 0u32;
    loop {
        match r.read_event() {
            Ok(Event::Eof) => return black_box(events) > 0,
            Ok(e) => {
                black_box(&e);
                events += 1;
            }
            Err(_) => return false,
        }
    }
}

fn sonae(xml: &[u8]) -> bool {
    match jma_xml::report::parse(xml) {
        Ok(r) => black_box(r).warnings.len() < usize::MAX,
        Err(_) => false,
    }
}

fn jmaxml(xml: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(xml) else {
        return false;
    };
    match s.parse::<jmaxml::Report>() {
        Ok(r) => {
            black_box(r);
            true
        }
        Err(_) => false,
    }
}

fn python(path: &Path, secs: f64) -> Result<f64, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/jma_parse_et.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(path)
        .arg(secs.to_string())
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("bad output from script: {e}"))?;
    let docs = v["docs"].as_f64().ok_or("no docs")?;
    let seconds = v["seconds"].as_f64().ok_or("no seconds")?;
    Ok(docs / seconds)
}

fn main() {
    let secs: f64 = std::env::var("JMA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    println!("jma_parse: one core, {secs} s per measurement; docs/s (MB/s)");
    println!(
        "{:<28} {:>9} {:>20} {:>20} {:>20} {:>20} {:>10} {:>10}",
        "file",
        "bytes",
        "sonae",
        "jmaxml",
        "python ET",
        "NsReader ceiling",
        "vs jmaxml",
        "of ceiling"
    );
    for name in FILES {
        let path = samples().join(name);
        let xml = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mb = xml.len() as f64 / 1e6;
        let fmt = |d: f64| format!("{d:>8.1} ({:>6.1})", d * mb);

        let ours = measure(secs, || sonae(&xml));
        let theirs = if jmaxml(&xml) {
            Some(measure(secs, || jmaxml(&xml)))
        } else {
            let err = std::str::from_utf8(&xml)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    s.parse::<jmaxml::Report>()
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                });
            eprintln!("jmaxml cannot parse {name}: {err:?}");
            None
        };
        let py = python(&path, secs);
        if let Err(e) = &py {
            eprintln!("python ElementTree failed on {name}: {e}");
        }
        let ceil = measure(secs, || ceiling(&xml));
        println!(
            "{:<28} {:>9} {:>20} {:>20} {:>20} {:>20} {:>10} {:>10}",
            name,
            xml.len(),
            fmt(ours),
            theirs.map(fmt).unwrap_or_else(|| "failed".into()),
            py.as_ref()
                .map(|d| fmt(*d))
                .unwrap_or_else(|_| "failed".into()),
            fmt(ceil),
            theirs
                .map(|t| format!("{:.2}x", ours / t))
                .unwrap_or_else(|| "-".into()),
            format!("{:.0} %", 100.0 * ours / ceil),
        );
    }
}

//! SQLite: one database file, embedded numbered migrations, and async access that never blocks the runtime.
//!
//! # Design constraints
//! * **WAL** so readers (console, metrics) never block the writer and vice versa.
//! * **`synchronous=FULL`**: in WAL mode `NORMAL` is crash-safe for the process but a power cut can roll back
//!   the last commits. Those commits are operator approvals, cancels, audit rows and outbox outcomes — an
//!   alerting system must not forget them, so each commit pays one fsync (≈ a few thousand per 1 M-resident
//!   fan-out, measured in BENCHMARKS.md).
//! * **One writer connection** behind a mutex; every write is a `BEGIN IMMEDIATE` transaction (a deferred
//!   transaction that upgrades to a write can fail with `SQLITE_BUSY` without waiting). Closures given to
//!   [`Store::write`] are synchronous, so a write transaction can never be held across a network call.
//! * **A small pool of read connections** ([`READERS`]), each used by one blocking task at a time.
//! * Async callers reach SQLite through `tokio::task::spawn_blocking`: the blocking pool runs the closure, the
//!   runtime's worker threads stay free.
//! * Migrations are embedded, numbered, applied in order at open inside one transaction each, and recorded in
//!   `schema_version`. A database whose schema is newer than this binary knows is refused.
//! * Only [`Store::open`] migrates (the daemon, `sonae db migrate`); commands open with
//!   [`Store::open_current`], which refuses a schema that is not exactly this binary's, so a newer binary's
//!   `user list` never changes the schema under a running older daemon.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

pub mod migrations;
pub use migrations::MIGRATIONS;

/// How many read connections the pool keeps.
pub const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    read_permits: tokio::sync::Semaphore,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Where a database stands against this binary's migrations (`sonae check`, [`Store::open_current`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// No database file yet: the daemon (or `sonae db migrate`) creates it.
    Missing,
    /// `applied` of this binary's migrations are recorded and `pending` are not.
    Older { version: i64, pending: usize },
    /// Exactly what this binary expects.
    Current { version: i64 },
    /// Written by a newer sonae: this binary refuses it.
    Newer { version: i64, known: i64 },
}

/// Looks at the database's schema without changing anything (a read-only connection; a missing file is
/// not created).
pub fn schema(path: &Path) -> anyhow::Result<Schema> {
    if !path.exists() {
        return Ok(Schema::Missing);
    }
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening database {}", path.display()))?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    let version = current_version(&c)
        .with_context(|| format!("reading the schema version of {}", path.display()))?;
    if version > known {
        return Ok(Schema::Newer { version, known });
    }
    let applied = applied_versions(&c)?;
    let pending = MIGRATIONS
        .iter()
        .filter(|m| !applied.contains(&m.0))
        .count();
    Ok(if pending == 0 {
        Schema::Current { version }
    } else {
        Schema::Older { version, pending }
    })
}

impl Store {
    /// Opens (creating if needed) the database and applies pending migrations. Only the daemon (`sonae
    /// run`) and `sonae db migrate` change the schema; other commands use [`Store::open_current`].
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating directory {}", dir.display()))?;
            }
        }
        let mut writer = Connection::open(path)
            .with_context(|| format!("opening database {}", path.display()))?;
        configure(&writer).context("configuring database")?;
        migrate(&mut writer)?;
        Store::with_writer(path, writer)
    }

    /// Opens an existing database whose schema is exactly this binary's, without changing the schema: a
    /// command (`user list`, `shelter status`, …) run by a newer binary never migrates the database under a
    /// running older daemon. A missing database or one with pending migrations is an error saying to start
    /// the daemon or run `sonae db migrate`.
    pub fn open_current(path: &Path) -> anyhow::Result<Store> {
        match schema(path)? {
            Schema::Current { .. } => {}
            Schema::Missing => bail!(
                "no database at {}; start the daemon once or run `sonae db migrate` to create it",
                path.display()
            ),
            Schema::Older { version, pending } => bail!(
                "database {} is at schema version {version} with {pending} migration(s) of this sonae not applied; \
                 stop the daemon, take a backup (`sonae db backup`), then run `sonae db migrate` (or start the new daemon)",
                path.display()
            ),
            Schema::Newer { version, known } => bail!(
                "database schema version {version} is newer than this sonae knows ({known}); \
                 run the newer sonae, or restore a backup taken before the upgrade"
            ),
        }
        let writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening database {}", path.display()))?;
        configure(&writer).context("configuring database")?;
        Store::with_writer(path, writer)
    }

    fn with_writer(path: &Path, writer: Connection) -> anyhow::Result<Store> {
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?;
            r.busy_timeout(BUSY_TIMEOUT)?;
            r.pragma_update(None, "foreign_keys", "ON")?;
            readers.push(r);
        }
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers: Mutex::new(readers),
                read_permits: tokio::sync::Semaphore::new(READERS),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` inside one `BEGIN IMMEDIATE` transaction on the writer connection, committing if it returns
    /// `Ok`. Blocking; use from synchronous code (CLI commands, tests) or inside `spawn_blocking`.
    pub fn write_blocking<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let mut conn = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` on a read-only connection. Blocking.
    pub fn read_blocking<R>(
        &self,
        f: impl FnOnce(&Connection) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        let conn = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => {
                // More synchronous readers than pooled connections: open a temporary one.
                let c = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY,
                )?;
                c.busy_timeout(BUSY_TIMEOUT)?;
                return f(&c);
            }
        };
        let out = f(&conn);
        self.inner
            .readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(conn);
        out
    }

    /// Async form of [`Store::write_blocking`], run on the blocking pool.
    pub async fn write<R, F>(&self, f: F) -> anyhow::Result<R>
    where
        F: FnOnce(&Transaction<'_>) -> anyhow::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write_blocking(f))
            .await
            .context("store writer task panicked")?
    }

    /// Async form of [`Store::read_blocking`]; at most [`READERS`] run at once.
    pub async fn read<R, F>(&self, f: F) -> anyhow::Result<R>
    where
        F: FnOnce(&Connection) -> anyhow::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let _permit = self
            .inner
            .read_permits
            .acquire()
            .await
            .context("store closed")?;
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .context("store reader task panicked")?
    }

    /// The schema version recorded in the database.
    pub fn schema_version(&self) -> anyhow::Result<i64> {
        self.read_blocking(|c| Ok(current_version(c)?))
    }

    /// `PRAGMA integrity_check`; `Ok(())` when the answer is "ok".
    pub fn integrity_check(&self) -> anyhow::Result<()> {
        self.read_blocking(integrity_check)
    }

    /// Writes a problem an operator should see (bad input, failing feed, rejected request) to the
    /// `problems` table and the log. Never fails the caller: a problem that cannot be stored is logged.
    pub async fn record_problem(
        &self,
        source: &'static str,
        message: String,
        detail: Option<String>,
    ) {
        tracing::warn!(source, %message, "problem recorded");
        let res = self
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO problems (at, source, message, detail) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![chrono::Utc::now().to_rfc3339(), source, message, detail],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = res {
            tracing::error!(error = %format!("{e:#}"), "could not store problem");
        }
    }

    /// Appends to the audit log inside the caller's transaction, so the action and its record commit together.
    pub fn audit(
        tx: &Transaction<'_>,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> anyhow::Result<()> {
        tx.execute(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                chrono::Utc::now().to_rfc3339(),
                actor,
                action,
                detail.to_string()
            ],
        )?;
        Ok(())
    }
}

pub fn integrity_check(c: &Connection) -> anyhow::Result<()> {
    let result: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if result != "ok" {
        bail!("integrity_check: {result}");
    }
    Ok(())
}

fn current_version(c: &Connection) -> rusqlite::Result<i64> {
    let exists: bool = c.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(0);
    }
    c.query_row(
        "SELECT coalesce(max(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )
}

fn applied_versions(c: &Connection) -> rusqlite::Result<std::collections::HashSet<i64>> {
    if current_version(c)? == 0 {
        return Ok(Default::default());
    }
    let mut stmt = c.prepare("SELECT version FROM schema_version")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Applies every embedded migration the database has not recorded yet, in version order, each in its own
/// immediate transaction. Working from the set of recorded versions (not only the maximum) means a migration
/// numbered inside an area's range still applies after a later-numbered one from another area.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    let current = current_version(conn)?;
    if current > known {
        bail!(
            "database schema version {current} is newer than this sonae knows ({known}); \
             run the newer sonae, or restore a backup taken before the upgrade"
        );
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )?;
    let applied = applied_versions(conn)?;
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| !applied.contains(&m.0)) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)
            .with_context(|| format!("applying migration {version:04} {name}"))?;
        tx.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?1, ?2, ?3)",
            rusqlite::params![version, name, chrono::Utc::now().to_rfc3339()],
        )?;
        tx.commit()?;
        tracing::info!(version, name, "applied database migration");
    }
    Ok(())
}

/// Copies the database to `dest` with SQLite's online backup API. Safe while the daemon runs: WAL lets the
/// copy read a consistent snapshot while the daemon keeps writing. The copy is checked with
/// `integrity_check` before this returns.
///
/// The copy holds LINE user ids and password hashes, so it is created readable by its owner only (0600,
/// whatever the umask), and removed again if the copy or its check fails.
pub fn backup(src: &Path, dest: &Path, progress: impl FnMut(i32, i32)) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let source = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", src.display()))?;
    source.busy_timeout(BUSY_TIMEOUT)?;
    // Created here, empty, before SQLite opens it: SQLite keeps the mode of an existing file (and gives
    // its journal the same), and `create_new` refuses to overwrite atomically.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} already exists; choose a new file name", dest.display())
        }
        Err(e) => return Err(e).with_context(|| format!("creating {}", dest.display())),
    }
    let copied = copy_into(&source, dest, progress);
    if copied.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    copied
}

fn copy_into(
    source: &Connection,
    dest: &Path,
    mut progress: impl FnMut(i32, i32),
) -> anyhow::Result<()> {
    let mut target =
        Connection::open(dest).with_context(|| format!("creating {}", dest.display()))?;
    {
        let backup = rusqlite::backup::Backup::new(source, &mut target)?;
        // One step of all pages: the copy is taken under one read snapshot, so a concurrent writer
        // cannot force endless restarts, and readers never block the WAL writer.
        let mut attempts = 0;
        loop {
            match backup.step(-1)? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => continue,
                // Busy/Locked: the writer holds a lock for a moment; wait briefly and retry.
                _ if attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => bail!("the database stayed locked for 5 s; try again"),
            }
        }
        let p = backup.progress();
        progress(p.pagecount - p.remaining, p.pagecount);
    }
    target.pragma_update(None, "journal_mode", "DELETE")?;
    integrity_check(&target).context("checking the backup")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_to_an_empty_database_and_rerun_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        let v = store.schema_version().unwrap();
        assert_eq!(v, MIGRATIONS.last().unwrap().0);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), v);
        let rows: i64 = store
            .read_blocking(|c| {
                Ok(c.query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(rows as usize, MIGRATIONS.len());
    }

    #[test]
    fn migration_numbers_are_strictly_increasing() {
        for w in MIGRATIONS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} then {}", w[0].0, w[1].0);
        }
    }

    #[test]
    fn a_migration_missing_below_the_maximum_is_still_applied() {
        // Remove the record of a middle migration: the next open must try to apply exactly that one again
        // (here it fails because its tables exist), proving pending migrations are found by set difference.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let middle = MIGRATIONS[MIGRATIONS.len() / 2];
        Store::open(&path)
            .unwrap()
            .write_blocking(|tx| {
                tx.execute("DELETE FROM schema_version WHERE version = ?1", [middle.0])?;
                Ok(())
            })
            .unwrap();
        let err = format!("{:#}", Store::open(&path).unwrap_err());
        assert!(
            err.contains(&format!("applying migration {:04} {}", middle.0, middle.1)),
            "{err}"
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        store
            .write_blocking(|tx| {
                tx.execute(
                    "INSERT INTO schema_version VALUES (9999, 'future', 'x')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        drop(store);
        let err = Store::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("schema version 9999 is newer than this sonae knows"),
            "{err}"
        );
    }

    #[test]
    fn pragmas_are_set_for_durability() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let (mode, sync, fk) = {
            let c = store.inner.writer.lock().unwrap();
            let mode: String = c
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
            let fk: i64 = c
                .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                .unwrap();
            (mode, sync, fk)
        };
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous=FULL");
        assert_eq!(fk, 1);
    }

    #[test]
    fn a_failed_write_closure_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let r: anyhow::Result<()> = store.write_blocking(|tx| {
            tx.execute(
                "INSERT INTO problems (at, source, message) VALUES ('t', 's', 'm')",
                [],
            )?;
            bail!("boom")
        });
        assert!(r.is_err());
        let n: i64 = store
            .read_blocking(|c| Ok(c.query_row("SELECT count(*) FROM problems", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn backup_while_another_thread_writes_is_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = Store::open(&path).unwrap();
        for i in 0..200 {
            store
                .write_blocking(|tx| {
                    tx.execute(
                        "INSERT INTO problems (at, source, message) VALUES ('t', 'seed', ?1)",
                        [i.to_string()],
                    )?;
                    Ok(())
                })
                .unwrap();
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let store = store.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store
                        .write_blocking(|tx| {
                            tx.execute("INSERT INTO problems (at, source, message) VALUES ('t', 'live', 'x')", [])?;
                            Ok(())
                        })
                        .unwrap();
                    n += 1;
                }
                n
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let dest = dir.path().join("backup.db");
        backup(&path, &dest, |_, _| {}).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(written > 0, "the writer made progress during the backup");
        let copy = Connection::open(&dest).unwrap();
        integrity_check(&copy).unwrap();
        let seeded: i64 = copy
            .query_row(
                "SELECT count(*) FROM problems WHERE source = 'seed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(seeded, 200);
        let v: i64 = copy
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.last().unwrap().0);
    }

    #[test]
    fn opening_for_a_command_never_migrates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let e = Store::open_current(&path).unwrap_err().to_string();
        assert!(e.contains("sonae db migrate"), "{e}");
        assert!(!path.exists(), "a missing database is not created");
        assert_eq!(schema(&path).unwrap(), Schema::Missing);

        Store::open(&path).unwrap();
        let last = MIGRATIONS.last().unwrap();
        assert_eq!(schema(&path).unwrap(), Schema::Current { version: last.0 });
        Store::open_current(&path).unwrap();
        // An older database (the newest migration not applied): refused, and left as it was.
        Connection::open(&path)
            .unwrap()
            .execute("DELETE FROM schema_version WHERE version = ?1", [last.0])
            .unwrap();
        let before = schema(&path).unwrap();
        assert!(
            matches!(before, Schema::Older { pending: 1, .. }),
            "{before:?}"
        );
        let e = Store::open_current(&path).unwrap_err().to_string();
        assert!(
            e.contains("1 migration(s) of this sonae not applied"),
            "{e}"
        );
        assert_eq!(schema(&path).unwrap(), before);
    }

    #[test]
    fn a_backup_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        Store::open(&path).unwrap();
        let dest = dir.path().join("copy.db");
        backup(&path, &dest, |_, _| {}).unwrap();
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }

    #[test]
    fn backup_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        Store::open(&path).unwrap();
        let dest = dir.path().join("exists.db");
        std::fs::write(&dest, b"x").unwrap();
        assert!(backup(&path, &dest, |_, _| {})
            .unwrap_err()
            .to_string()
            .contains("already exists"));
    }
}

//! Console staff accounts: Argon2id password hashes in `console_users`, and the `sonae user` commands.
//!
//! Hash parameters follow OWASP's Password Storage Cheat Sheet minimum for Argon2id: 19 MiB of memory,
//! 2 iterations, 1 lane (about 30–60 ms per hash on the city's server; it runs on the blocking pool).
//! Unknown user names are verified against a dummy hash, so the answer time does not tell an attacker
//! which names exist.

use std::sync::OnceLock;

use anyhow::Context as _;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use crate::store::Store;

/// What a console user may do. Deny by default: every handler checks the role it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees every page; changes nothing.
    Viewer,
    /// Also opens/closes shelters, resolves problems, starts and ends storms.
    Operator,
    /// Also drafts the city's evacuation information and submits it for approval.
    Drafter,
    /// Also approves another person's draft, corrects or withdraws a sent alert, holds disaster mode.
    Approver,
    /// Also manages accounts.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Drafter,
        Role::Approver,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Drafter => "drafter",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn label_ja(self) -> &'static str {
        match self {
            Role::Viewer => "閲覧者",
            Role::Operator => "担当者",
            Role::Drafter => "起案者",
            Role::Approver => "承認者",
            Role::Admin => "管理者",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A user name as typed at `sonae user add`: 1–64 characters, letters, digits, `.`, `_`, `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<UserName, String> {
        let ok = !s.is_empty()
            && s.chars().count() <= 64
            && s.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if ok {
            Ok(UserName(s.to_string()))
        } else {
            Err(format!(
                "user name {s:?} is not allowed; use 1-64 letters, digits, '.', '_' or '-'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Minimum password length (OWASP ASVS 2.1.1 asks for 12 characters).
pub const MIN_PASSWORD_CHARS: usize = 12;

fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("static Argon2 parameters are valid"),
    )
}

/// Hashes a password with Argon2id and a random 128-bit salt. CPU-heavy: call from blocking code.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let hash = argon2()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?;
    Ok(hash.to_string())
}

/// Verifies `password` against a stored PHC string; the comparison inside `argon2` is constant-time.
/// A malformed stored hash counts as a mismatch.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified when the user name is unknown so that both paths cost the same.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut pw = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut pw);
        hash_password(&hex::encode(pw)).unwrap_or_default()
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: String,
    pub last_login_at: Option<String>,
    /// Logged in with a one-time password (new or reset account): must choose a password before anything else.
    pub must_change_password: bool,
}

fn row_to_user(r: &rusqlite::Row<'_>) -> rusqlite::Result<(User, String)> {
    let role: String = r.get(2)?;
    Ok((
        User {
            id: r.get(0)?,
            name: r.get(1)?,
            // The CHECK constraint keeps the column to the known roles; anything else sees only.
            role: Role::parse(&role).unwrap_or(Role::Viewer),
            disabled: r.get(3)?,
            created_at: r.get(4)?,
            last_login_at: r.get(5)?,
            must_change_password: r.get(7)?,
        },
        r.get(6)?,
    ))
}

const USER_COLUMNS: &str =
    "id, name, role, disabled, created_at, last_login_at, password_hash, must_change_password";

pub fn list_users(conn: &Connection) -> anyhow::Result<Vec<User>> {
    let mut st = conn.prepare(&format!(
        "SELECT {USER_COLUMNS} FROM console_users ORDER BY name"
    ))?;
    let users = st
        .query_map([], row_to_user)?
        .map(|r| r.map(|(u, _)| u))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(users)
}

pub fn find_user(conn: &Connection, name: &str) -> anyhow::Result<Option<(User, String)>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM console_users WHERE name = ?1"),
            [name],
            row_to_user,
        )
        .optional()?)
}

pub fn user_by_id(conn: &Connection, id: i64) -> anyhow::Result<Option<User>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM console_users WHERE id = ?1"),
            [id],
            row_to_user,
        )
        .optional()?
        .map(|(u, _)| u))
}

#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error("user {0:?} already exists; choose another name or disable the old account")]
    Exists(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Creates an account (audited as `user.add`). `hash` comes from [`hash_password`].
pub fn add_user(
    tx: &Transaction<'_>,
    name: &UserName,
    role: Role,
    hash: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64, AddUserError> {
    if find_user(tx, name.as_str())?.is_some() {
        return Err(AddUserError::Exists(name.as_str().to_string()));
    }
    tx.execute(
        "INSERT INTO console_users (name, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![name.as_str(), role.as_str(), hash, now.to_rfc3339()],
    )
    .context("inserting user")?;
    let id = tx.last_insert_rowid();
    Store::audit(
        tx,
        actor,
        "user.add",
        &serde_json::json!({ "user": name.as_str(), "role": role.as_str() }),
    )?;
    Ok(id)
}

/// Disables an account and ends its sessions (audited as `user.disable`). `Ok(false)` when no such user.
pub fn disable_user(tx: &Transaction<'_>, name: &str, actor: &str) -> anyhow::Result<bool> {
    let Some((user, _)) = find_user(tx, name)? else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE console_users SET disabled = 1 WHERE id = ?1",
        [user.id],
    )?;
    tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user.id])?;
    Store::audit(
        tx,
        actor,
        "user.disable",
        &serde_json::json!({ "user": name }),
    )?;
    Ok(true)
}

/// Gives an account a one-time password: it must choose its own at the next login. Ends its sessions and
/// re-enables a disabled account (audited as `user.password_reset`). `Ok(false)` when no such user.
pub fn reset_password(
    tx: &Transaction<'_>,
    name: &str,
    one_time_hash: &str,
    actor: &str,
) -> anyhow::Result<bool> {
    let Some((user, _)) = find_user(tx, name)? else {
        return Ok(false);
    };
    tx.execute(
        "UPDATE console_users SET password_hash = ?1, must_change_password = 1, disabled = 0 WHERE id = ?2",
        rusqlite::params![one_time_hash, user.id],
    )?;
    tx.execute("DELETE FROM console_sessions WHERE user_id = ?1", [user.id])?;
    Store::audit(
        tx,
        actor,
        "user.password_reset",
        &serde_json::json!({ "user": name }),
    )?;
    Ok(true)
}

/// Marks a new account's password as one-time (created from the console).
pub fn require_password_change(tx: &Transaction<'_>, id: i64) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE console_users SET must_change_password = 1 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// The user's own new password (audited as `user.password_change`); clears the one-time flag.
pub fn change_password(tx: &Transaction<'_>, user: &User, hash: &str) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE console_users SET password_hash = ?1, must_change_password = 0 WHERE id = ?2",
        rusqlite::params![hash, user.id],
    )?;
    Store::audit(
        tx,
        &user.name,
        "user.password_change",
        &serde_json::json!({}),
    )?;
    Ok(())
}

/// A random one-time password for a new or reset account: 16 characters from an alphabet without look-alikes
/// (no 0/O, 1/l/I), easy to read out over the phone.
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    use rand::seq::SliceRandom;
    let mut rng = rand::thread_rng();
    (0..16)
        .filter_map(|_| ALPHABET.choose(&mut rng).map(|&b| b as char))
        .collect()
}

/// Whether a new password is acceptable; the Japanese reason otherwise.
pub fn check_new_password(new: &str, confirm: &str, old: &str) -> Result<(), &'static str> {
    if new != confirm {
        return Err("新しいパスワードが確認用と一致しません。");
    }
    if new.chars().count() < MIN_PASSWORD_CHARS {
        return Err("パスワードは12文字以上にしてください。");
    }
    if new == old {
        return Err("新しいパスワードは、今のパスワードと別のものにしてください。");
    }
    Ok(())
}

/// The `sonae demo` account: user `demo` (admin) with a fresh random password, created or reset. Returns
/// (name, password) for the demo to print. Never used by `sonae run`.
pub fn demo_account(store: &Store) -> anyhow::Result<(String, String)> {
    let mut raw = [0u8; 9];
    rand::thread_rng().fill_bytes(&mut raw);
    let password = format!("demo-{}", hex::encode(raw));
    let hash = hash_password(&password)?;
    let name = UserName::parse("demo").map_err(anyhow::Error::msg)?;
    store.write_blocking(|tx| {
        let now = Utc::now();
        match find_user(tx, name.as_str())? {
            Some((u, _)) => {
                tx.execute(
                    "UPDATE console_users SET password_hash = ?1, disabled = 0, role = 'admin' WHERE id = ?2",
                    rusqlite::params![hash, u.id],
                )?;
                Store::audit(tx, "demo", "user.password_reset", &serde_json::json!({ "user": "demo" }))?;
            }
            None => {
                add_user(tx, &name, Role::Admin, &hash, "demo", now).map_err(|e| match e {
                    AddUserError::Exists(n) => anyhow::anyhow!("user {n} appeared concurrently"),
                    AddUserError::Other(e) => e,
                })?;
            }
        }
        Ok(())
    })?;
    Ok((name.as_str().to_string(), password))
}

/// Why a login failed. Shown to the operator as one message that does not say which part was wrong.
#[derive(Debug, PartialEq, Eq)]
pub enum LoginRefusal {
    BadCredentials,
    Disabled,
}

/// Checks a name and password. Blocking (Argon2). Always runs one Argon2 verification.
pub fn check_credentials(
    conn: &Connection,
    name: &str,
    password: &str,
) -> anyhow::Result<Result<User, LoginRefusal>> {
    let found = find_user(conn, name)?;
    let (hash, user) = match &found {
        Some((u, h)) => (h.as_str(), Some(u)),
        None => (dummy_hash(), None),
    };
    let ok = verify_password(password, hash);
    Ok(match user {
        Some(u) if ok && !u.disabled => Ok(u.clone()),
        Some(u) if ok && u.disabled => Err(LoginRefusal::Disabled),
        _ => Err(LoginRefusal::BadCredentials),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password(
            "correct horse battery",
            "not a phc string"
        ));
    }

    #[test]
    fn the_demo_account_logs_in_with_the_printed_password_and_is_reset_on_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let (name, first) = demo_account(&store).unwrap();
        let (_, second) = demo_account(&store).unwrap();
        assert_ne!(first, second);
        let ok = store
            .read_blocking(|c| check_credentials(c, &name, &second))
            .unwrap();
        assert_eq!(ok.unwrap().role, Role::Admin);
        let old = store
            .read_blocking(|c| check_credentials(c, &name, &first))
            .unwrap();
        assert!(old.is_err());
    }

    #[test]
    fn user_names_with_spaces_or_quotes_are_refused() {
        assert!(UserName::parse("tanaka.k").is_ok());
        assert!(UserName::parse("田中").is_ok());
        assert!(UserName::parse("").is_err());
        assert!(UserName::parse("a b").is_err());
        assert!(UserName::parse("x\"y").is_err());
        assert!(UserName::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn credentials_are_checked_and_disabled_accounts_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let hash = hash_password("a long password 1").unwrap();
        let name = UserName::parse("sato").unwrap();
        store
            .write_blocking(|tx| {
                Ok(add_user(
                    tx,
                    &name,
                    Role::Approver,
                    &hash,
                    "test",
                    Utc::now(),
                )?)
            })
            .unwrap();
        let dup = store
            .write_blocking(|tx| Ok(add_user(tx, &name, Role::Admin, &hash, "test", Utc::now())))
            .unwrap();
        assert!(matches!(dup, Err(AddUserError::Exists(_))));

        let ok = store
            .read_blocking(|c| check_credentials(c, "sato", "a long password 1"))
            .unwrap();
        assert_eq!(ok.unwrap().role, Role::Approver);
        let bad = store
            .read_blocking(|c| check_credentials(c, "sato", "wrong password 1"))
            .unwrap();
        assert_eq!(bad.unwrap_err(), LoginRefusal::BadCredentials);
        let unknown = store
            .read_blocking(|c| check_credentials(c, "nobody", "a long password 1"))
            .unwrap();
        assert_eq!(unknown.unwrap_err(), LoginRefusal::BadCredentials);

        assert!(store
            .write_blocking(|tx| disable_user(tx, "sato", "test"))
            .unwrap());
        let disabled = store
            .read_blocking(|c| check_credentials(c, "sato", "a long password 1"))
            .unwrap();
        assert_eq!(disabled.unwrap_err(), LoginRefusal::Disabled);
    }
}

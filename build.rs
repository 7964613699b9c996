//! Build script: records the git commit the binary is built from, for `sonae --version`.
//!
//! `SONAE_GIT_COMMIT` is the abbreviated commit of `HEAD`; without git or outside a checkout (a source
//! tarball) it is the `SONAE_GIT_COMMIT` of the build environment if set, else `unknown`. The script reruns
//! when `HEAD` or the branch it points at moves.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// Watches a file of the git directory, if it exists (a missing file would make cargo rerun every build).
fn watch(git_path: &str) {
    if let Some(p) = git(&["rev-parse", "--git-path", git_path]) {
        if Path::new(&p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SONAE_GIT_COMMIT");
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) => {
            watch("HEAD");
            watch("packed-refs");
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                watch(&branch);
            }
            c
        }
        None => std::env::var("SONAE_GIT_COMMIT").unwrap_or_else(|_| "unknown".into()),
    };
    println!("cargo:rustc-env=SONAE_GIT_COMMIT={commit}");
}

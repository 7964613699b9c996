//! Progress on long work (imports, `db backup`, `richmenu switch` waits): `indicatif` bars and spinners on
//! standard error, drawn only when standard error is a terminal, so logs, pipes and systemd journals never
//! see control characters.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A bar of `len` steps with `message` (hidden when standard error is not a terminal).
pub fn bar(len: u64, message: impl Into<String>) -> ProgressBar {
    if !on_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(message.into());
    pb
}

/// A spinner with `message` and the elapsed time, for work of unknown length (hidden when standard error
/// is not a terminal).
pub fn spinner(message: impl Into<String>) -> ProgressBar {
    if !on_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("valid template"),
    );
    pb.set_message(message.into());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

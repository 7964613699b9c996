//! `sd_notify` for `Type=notify` units: READY, STOPPING, STATUS and watchdog pings. No-ops outside systemd.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let path = path.to_string_lossy().to_string();
    let res = if let Some(abstract_name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(abstract_name.as_bytes())
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = res {
        tracing::warn!(error = %crate::telemetry::chain(&e), "sd_notify failed");
    }
}

pub fn notify_ready() {
    notify("READY=1");
}

pub fn notify_stopping() {
    notify("STOPPING=1");
}

/// `STATUS=`: one line `systemctl status` shows (newlines would end it, so they become spaces).
pub fn notify_status(text: &str) {
    notify(&format!("STATUS={}", text.replace('\n', " ")));
}

/// Pings the watchdog at half the interval systemd asked for (`WATCHDOG_USEC`), while the runtime and the
/// store answer. A wedged runtime stops the pings and systemd restarts the service.
pub fn spawn_watchdog(store: &crate::store::Store) -> Option<tokio::task::JoinHandle<()>> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let every = Duration::from_micros(usec / 2);
    let store = store.clone();
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if store
                .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
                .await
                .is_ok()
            {
                notify("WATCHDOG=1");
            }
        }
    }))
}

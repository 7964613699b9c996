//! Component states for `/healthz` and the console.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Working, but an operator should look (a feed silent too long, LINE answering 429).
    Degraded,
    /// Not working.
    Down,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ComponentState {
    pub status: Status,
    /// One line for operators (Japanese where it is shown in the console).
    pub detail: String,
    pub since: String,
}

#[derive(Debug, Default)]
pub struct Health {
    components: Mutex<BTreeMap<String, ComponentState>>,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a component's state; `since` changes only when the status changes.
    pub fn set(&self, component: impl Into<String>, status: Status, detail: impl Into<String>) {
        let mut map = self.components.lock().unwrap_or_else(|p| p.into_inner());
        let component = component.into();
        let detail = detail.into();
        let now = chrono::Utc::now().to_rfc3339();
        match map.get_mut(&component) {
            Some(s) if s.status == status => s.detail = detail,
            _ => {
                map.insert(
                    component,
                    ComponentState {
                        status,
                        detail,
                        since: now,
                    },
                );
            }
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        self.components
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The worst status of all components (`Ok` when there are none).
    pub fn overall(&self) -> Status {
        self.snapshot()
            .values()
            .map(|s| s.status)
            .max()
            .unwrap_or(Status::Ok)
    }
}

//! The daemon's infrastructure handles, shared by every feature: the store, metrics, health, the shutdown
//! token, the task tracker and the scheduler. Features receive this plus their own config section and the
//! narrow handles they need (LINE client, outbox, place data) — never the whole wiring ([`crate::app`]).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// Cheap to clone.
#[derive(Clone)]
pub struct Infra {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Cancelled when the daemon begins to stop.
    pub shutdown: CancellationToken,
    /// Every long-running task is spawned here so shutdown can wait for it.
    pub tasks: TaskTracker,
    /// Timed work (reminders, pruning, sealing, the disaster cycle's tick).
    pub scheduler: Scheduler,
}

impl Infra {
    pub fn new(store: Store, metrics: Arc<Metrics>, health: Arc<Health>) -> Infra {
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        Infra {
            scheduler: Scheduler::new(tasks.clone(), shutdown.clone()),
            store,
            metrics,
            health,
            shutdown,
            tasks,
        }
    }
}

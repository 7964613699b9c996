//! One scheduler for timed work: every periodic job of every feature (the disaster cycle's tick, plow
//! trail pruning, audit sealing, and later reminders) is declared here with a name, a period and an
//! optional wake-up, instead of each feature writing its own loop.
//!
//! * A job runs once at start, then every `period`, and early whenever its `wake` is notified (the disaster
//!   cycle is woken by each JMA pipeline bump).
//! * Each job has its own task, so a slow job never delays another; runs of one job never overlap.
//! * Jobs are cancel-safe by construction: the scheduler only waits between runs, so a shutdown never
//!   interrupts a run (and therefore never a transaction); the job's run returns and the loop ends.
//! * A failing run is logged with its cause chain; the job keeps its schedule. Jobs that must tell
//!   operators record a problem themselves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What wakes a job besides its period.
pub type Wake = Arc<Notify>;

/// A named periodic job.
pub struct Job {
    pub name: &'static str,
    pub period: Duration,
    pub wake: Option<Wake>,
    run: Box<dyn FnMut() -> BoxFuture<'static, anyhow::Result<()>> + Send>,
}

impl Job {
    /// A job that calls `f` every `period`.
    pub fn every<F, Fut>(name: &'static str, period: Duration, mut f: F) -> Job
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Job {
            name,
            period,
            wake: None,
            run: Box::new(move || Box::pin(f())),
        }
    }

    /// Also run whenever `wake` is notified.
    pub fn woken_by(mut self, wake: Wake) -> Job {
        self.wake = Some(wake);
        self
    }
}

/// Spawns jobs on the daemon's task tracker; they end when the shutdown token is cancelled.
#[derive(Clone)]
pub struct Scheduler {
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Scheduler {
    pub fn new(tasks: TaskTracker, shutdown: CancellationToken) -> Scheduler {
        Scheduler { tasks, shutdown }
    }

    /// Starts `job` now.
    pub fn add(&self, mut job: Job) {
        let token = self.shutdown.clone();
        self.tasks.spawn(async move {
            tracing::debug!(job = job.name, period_ms = job.period.as_millis() as u64, "job scheduled");
            loop {
                if let Err(e) = (job.run)().await {
                    tracing::error!(job = job.name, error = %format!("{e:#}"), "scheduled job failed");
                }
                // Cancel-safety: every branch only waits.
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(job.period) => {}
                    _ = async {
                        match &job.wake {
                            Some(w) => w.notified().await,
                            None => std::future::pending::<()>().await,
                        }
                    } => {}
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_job_runs_at_start_every_period_and_when_woken_and_stops_on_shutdown() {
        let tasks = TaskTracker::new();
        let token = CancellationToken::new();
        let s = Scheduler::new(tasks.clone(), token.clone());
        let runs = Arc::new(AtomicUsize::new(0));
        let wake = Arc::new(Notify::new());
        let r = runs.clone();
        s.add(
            Job::every("count", Duration::from_secs(60), move || {
                let r = r.clone();
                async move {
                    r.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .woken_by(wake.clone()),
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "runs once at start");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 2, "then every period");
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "and when woken");
        token.cancel();
        tasks.close();
        tasks.wait().await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_run_keeps_its_schedule() {
        let tasks = TaskTracker::new();
        let token = CancellationToken::new();
        let s = Scheduler::new(tasks.clone(), token.clone());
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        s.add(Job::every("fails", Duration::from_secs(5), move || {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                anyhow::bail!("always")
            }
        }));
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        token.cancel();
    }
}

//! The resident-services seam: one registry where each service declares what it answers and runs.
//!
//! A resident service (registration, plow notices, and the services that follow: news, garbage, reports,
//! reservations) is one module with an `install(&mut Registry, deps)` function that declares:
//! * its **postback actions** (`action=NAME&…`, the one postback grammar), **text intents**, location and
//!   image handlers, and follow/unfollow observers — through [`ServiceBuilder`], into the LINE
//!   [`EventRouter`](crate::line::events::EventRouter) where the first handler that claims an event wins;
//! * its **HTTP routes** (resident pages, APIs), merged into the daemon's router by `app`;
//! * its **scheduled jobs**, run by the one [`Scheduler`](crate::scheduler::Scheduler);
//! * its **migration range** in `store/migrations.rs` (a test holds every migration to a declared range);
//! * and it sends only through the outbox ([`crate::delivery::Outbox`]) or, for answers, the reply API
//!   ([`crate::line::events::reply`]).
//!
//! `app::install_services` is the one list of installed services, in the order their handlers are asked.

use std::ops::RangeInclusive;
use std::sync::Arc;

use axum::Router;

use crate::line::events::{EventHandler, EventRouter, Route};
use crate::scheduler::{Job, Scheduler};

/// What one service declared (for the architecture test, `/healthz` and operators).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub name: &'static str,
    pub migrations: Option<RangeInclusive<i64>>,
    pub postback_actions: Vec<String>,
    pub text_intents: Vec<&'static str>,
    pub observes_follow: bool,
    pub handles_location: bool,
    pub jobs: Vec<&'static str>,
    pub has_routes: bool,
}

/// Every installed service's declarations, and the parts they go into.
pub struct Registry {
    events: Arc<EventRouter>,
    scheduler: Scheduler,
    routes: Router,
    manifests: Vec<Manifest>,
}

impl Registry {
    pub fn new(events: Arc<EventRouter>, scheduler: Scheduler) -> Registry {
        Registry {
            events,
            scheduler,
            routes: Router::new(),
            manifests: Vec::new(),
        }
    }

    /// Starts declaring the service `name`. Names are unique.
    pub fn service(&mut self, name: &'static str) -> ServiceBuilder<'_> {
        assert!(
            self.manifests.iter().all(|m| m.name != name),
            "service {name} installed twice"
        );
        self.manifests.push(Manifest {
            name,
            ..Manifest::default()
        });
        ServiceBuilder { registry: self }
    }

    pub fn manifests(&self) -> &[Manifest] {
        &self.manifests
    }

    /// Checks the declared migration ranges against the embedded migrations' numbers: ranges must not
    /// overlap, and each must hold at least one migration (a range with none is a wrong declaration).
    pub fn check_migrations(&self, numbers: &[i64]) -> Result<(), String> {
        let ranges: Vec<(&str, &RangeInclusive<i64>)> = self
            .manifests
            .iter()
            .filter_map(|m| m.migrations.as_ref().map(|r| (m.name, r)))
            .collect();
        for (i, (a, ra)) in ranges.iter().enumerate() {
            for (b, rb) in &ranges[i + 1..] {
                if ra.start() <= rb.end() && rb.start() <= ra.end() {
                    return Err(format!(
                        "services {a} ({ra:?}) and {b} ({rb:?}) declare overlapping migration ranges"
                    ));
                }
            }
            if !numbers.iter().any(|n| ra.contains(n)) {
                return Err(format!(
                    "service {a} declares migrations {ra:?}, but no embedded migration is numbered there"
                ));
            }
        }
        Ok(())
    }

    /// The routes every service declared, for the daemon's router.
    pub fn take_routes(&mut self) -> Router {
        std::mem::take(&mut self.routes)
    }
}

/// Declares one service's parts (see the module docs).
pub struct ServiceBuilder<'a> {
    registry: &'a mut Registry,
}

impl ServiceBuilder<'_> {
    fn manifest(&mut self) -> &mut Manifest {
        self.registry
            .manifests
            .last_mut()
            .expect("a builder exists only after service()")
    }

    /// The service's migration numbers in `store/migrations.rs`.
    pub fn migrations(mut self, range: RangeInclusive<i64>) -> Self {
        self.manifest().migrations = Some(range);
        self
    }

    /// Handles postbacks `action=NAME&…`.
    pub fn postback(mut self, action: &str, handler: Arc<dyn EventHandler>) -> Self {
        self.manifest().postback_actions.push(action.to_string());
        self.registry
            .events
            .register(Route::PostbackAction(action.to_string()), handler);
        self
    }

    /// Asked for every text message (in installation order) until one claims it; `intent` names what it
    /// understands, for the manifest.
    pub fn text(mut self, intent: &'static str, handler: Arc<dyn EventHandler>) -> Self {
        self.manifest().text_intents.push(intent);
        self.registry.events.register(Route::Text, handler);
        self
    }

    pub fn location(mut self, handler: Arc<dyn EventHandler>) -> Self {
        self.manifest().handles_location = true;
        self.registry.events.register(Route::Location, handler);
        self
    }

    pub fn on_follow(mut self, handler: Arc<dyn EventHandler>) -> Self {
        self.manifest().observes_follow = true;
        self.registry.events.register(Route::Follow, handler);
        self
    }

    pub fn on_unfollow(self, handler: Arc<dyn EventHandler>) -> Self {
        self.registry.events.register(Route::Unfollow, handler);
        self
    }

    /// Answers messages and postbacks no service claimed (one service sets it).
    pub fn fallback(self, handler: Arc<dyn EventHandler>) -> Self {
        self.registry.events.set_fallback(handler);
        self
    }

    pub fn routes(mut self, routes: Router) -> Self {
        self.manifest().has_routes = true;
        let all = std::mem::take(&mut self.registry.routes);
        self.registry.routes = all.merge(routes);
        self
    }

    pub fn job(mut self, job: Job) -> Self {
        self.manifest().jobs.push(job.name);
        self.registry.scheduler.add(job);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    fn registry() -> Registry {
        Registry::new(
            Arc::new(EventRouter::new()),
            Scheduler::new(TaskTracker::new(), CancellationToken::new()),
        )
    }

    #[test]
    fn migration_ranges_must_not_overlap_and_must_hold_a_migration() {
        let mut r = registry();
        r.service("a").migrations(300..=329);
        r.service("b").migrations(400..=499);
        assert_eq!(r.check_migrations(&[1, 300, 401]), Ok(()));
        let e = r.check_migrations(&[1, 300]).unwrap_err();
        assert!(e.contains("service b"), "{e}");
        r.service("c").migrations(320..=339);
        let e = r.check_migrations(&[300, 401, 330]).unwrap_err();
        assert!(e.contains("overlapping"), "{e}");
    }

    #[test]
    fn a_service_declares_what_it_answers_in_its_manifest() {
        let mut r = registry();
        let h = crate::line::events::handler_fn(|_| async { Ok(crate::line::events::Claim::Pass) });
        r.service("news")
            .postback("news", h.clone())
            .text("お知らせ", h);
        let m = &r.manifests()[0];
        assert_eq!(m.name, "news");
        assert_eq!(m.postback_actions, vec!["news".to_string()]);
        assert_eq!(m.text_intents, vec!["お知らせ"]);
    }

    #[test]
    #[should_panic(expected = "installed twice")]
    fn a_service_name_is_installed_once() {
        let mut r = registry();
        r.service("x");
        r.service("x");
    }
}

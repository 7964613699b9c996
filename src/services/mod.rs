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

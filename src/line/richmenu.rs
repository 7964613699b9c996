//! Rich menus as desired state (in progress).
pub fn register_handlers(_events: &crate::line::events::EventRouter) {}

//! The console's pages and actions, one module per page. Each handler takes [`super::auth::Session`]
//! (pages) or [`super::auth::Authorized`] (POSTs) and returns `Result<Response, ConsoleError>`.

pub mod alerts;
pub mod audit;
pub mod dashboard;
pub mod login;
pub mod mode;
pub mod plows;
pub mod problems;
pub mod safety;
pub mod shelters;
pub mod users;

//! Integration tests: the real binary and the app on random ports, with real SQLite files and local peers.

mod foundation;
mod helpers;
mod line;
mod line_sandbox;

//! Integration tests: the real binary and the app on random ports, with real SQLite files and local peers.

mod console;
mod disaster_engine;
mod crash;
mod disaster_e2e;
mod feed_replay;
mod foundation;
mod helpers;
mod jma_feed;
mod jma_inspect;
mod place;
mod plow;
mod line;
mod line_sandbox;
mod shelters;

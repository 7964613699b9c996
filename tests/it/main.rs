//! Integration tests: the real binary and the app on random ports, with real SQLite files and local peers.

mod audit;
mod browser;
mod console;
mod crash;
mod demo;
mod disaster_e2e;
mod disaster_engine;
mod feed_replay;
mod flows;
mod foundation;
mod helpers;
mod jma_feed;
mod jma_inspect;
mod layers;
mod line;
mod line_sandbox;
mod menus;
mod network;
mod ops;
mod place;
mod plow;
mod reach;
mod shelters;

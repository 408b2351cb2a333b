//! smartcharged: a smart-charging scheduling daemon for electric vehicles.
//!
//! See ARCHITECTURE.md for the codemap and the invariants each module keeps.

pub mod admin;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod enode;
pub mod limits;
pub mod link;
pub mod localtime;
pub mod logging;
pub mod malloc;
pub mod metrics;
pub mod model;
pub mod outage;
pub mod prices;
pub mod report;
pub mod retry;
pub mod secret;
pub mod store;
pub mod unlink;
pub mod users;
pub mod web;
pub mod webhooks;

//! The daemon's long-running tasks. Each loop `select!`s on one shared
//! `CancellationToken` so shutdown drains them together.

pub mod control;
pub mod fleet;
pub mod heartbeat;
pub mod http;
pub mod listener;
pub mod notify;
pub mod policy;
pub mod readmodel;
pub mod run;
pub mod sessions;
pub mod signals;
pub mod tokens;
pub mod unlink;
pub mod vendors;
pub mod webhook_http;

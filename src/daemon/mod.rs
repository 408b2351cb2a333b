//! The daemon's long-running tasks. Each loop `select!`s on one shared
//! `CancellationToken` so shutdown drains them together.

pub mod tokens;

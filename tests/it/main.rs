//! The integration tests that can share one process, in one test binary:
//! one link of the daemon library instead of one per file keeps the build
//! small. Tests that signal their own process or change its environment
//! (signals, sd_notify, daemon_signals), and those that reopen a store many
//! times in a row (kill_binary, kill_safety), stay binaries of their own: a
//! child that another test spawns holds a copy of every open file until its
//! exec, so a store closed just then is still locked for a moment.

#[path = "../common/mod.rs"]
mod common;

mod admin_socket;
mod admin_steer;
mod config_cli;
mod daemon_day;
mod daemon_scenarios;
mod enode_client;
mod fault_matrix;
mod fuzz_regressions;
mod herd;
mod hostile;
mod link_cli;
mod link_flow;
mod log_redaction;
mod package;
mod plan_cli;
mod prices_config;
mod prices_file;
mod prices_http;
mod prices_parsers;
mod prices_schedule;
mod prices_tariff;
mod token_keeper;
mod web_metrics;
mod webhook_cli;
mod webhooks;
mod year_short;

//! smartcharged: a smart-charging scheduling daemon for electric vehicles.
//!
//! See ARCHITECTURE.md for the codemap and the invariants each module keeps.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod enode;
pub mod model;
pub mod prices;
pub mod secret;

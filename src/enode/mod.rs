//! The Enode API client: the only code that knows Enode's wire format
//! (invariant 2).
//!
//! - [`dto`]: the lenient JSON reading and the request bodies.
//! - [`client`]: [`Client`], one typed method per endpoint the daemon uses.
//! - [`auth`]: [`Auth`], OAuth2 through the `oauth2` crate (client token,
//!   authorization URL with PKCE, code exchange, refresh).
//! - [`error`]: [`Error`] and [`AuthError`], whose variants say what to do
//!   next, and the RFC 7807 [`Problem`].
//!
//! Everything else in the daemon speaks [`crate::model`] types.

pub mod auth;
pub mod client;
pub mod dto;
pub mod error;

pub use auth::{Auth, AuthError};
pub use client::{build_http, Client};
pub use error::{Error, Problem, RetryAfter, Transient};

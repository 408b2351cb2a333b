//! Linked users and their link sessions, as the daemon sees them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The id a user has at Enode (chosen by us when linking, any unique string).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for UserId {
    fn from(s: &str) -> Self {
        UserId(s.to_owned())
    }
}

/// Whether the daemon can act for a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UserStatus {
    /// Tokens are valid (or refreshable): the daemon polls and controls.
    Active,
    /// The grant is gone (`invalid_grant`, revoked): the user must link again.
    NeedsRelink,
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UserStatus::Active => "active",
            UserStatus::NeedsRelink => "needs-relink",
        })
    }
}

/// A linked user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The user's id at Enode.
    pub id: UserId,
    /// Whether the daemon can act for the user.
    pub status: UserStatus,
    /// When the link flow completed.
    pub linked_at: DateTime<Utc>,
    /// The vendor chosen when linking, when one was given.
    pub vendor: Option<String>,
}

/// An OAuth link flow in progress, keyed by its `linkState` (the OAuth
/// `state`), so the callback can be matched to the user who started it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkSession {
    /// The user being linked.
    pub user_id: UserId,
    /// The vendor asked for, if any.
    pub vendor: Option<String>,
    /// PKCE code verifier, sent with the code exchange.
    pub pkce_verifier: Option<Secret>,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// After this instant the callback is refused.
    pub expires_at: DateTime<Utc>,
}

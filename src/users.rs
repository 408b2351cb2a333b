//! Linked users and their link sessions, as the daemon sees them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// The id a user has at Enode (chosen by us when linking).
///
/// One grammar everywhere (CLI, HTTP, store): 1 to [`UserId::MAX_LEN`]
/// characters of `A-Z a-z 0-9 . _ @ -`, and not `.` or `..`. The id becomes
/// a URL path segment at Enode (where `..` would remove a segment), a store
/// key and a log field, so nothing else is accepted. The only way to make a
/// `UserId` is [`UserId::new`], so every id in the program is valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

/// Why a user id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid user id `{shown}`: {why}; use 1-128 of A-Z a-z 0-9 . _ @ - (not . or ..)")]
pub struct InvalidUserId {
    /// The id as given, clipped and with control characters replaced.
    shown: String,
    /// What is wrong with it.
    why: &'static str,
}

/// Lets maps keyed by user id be searched with a `&str` (a webhook's
/// user field) without building a `UserId`; the derived `Hash` and `Eq`
/// are the inner string's, as `Borrow` requires.
impl std::borrow::Borrow<str> for UserId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl UserId {
    /// The longest id accepted.
    pub const MAX_LEN: usize = 128;

    /// Checks `s` against the user-id grammar.
    pub fn new(s: impl Into<String>) -> Result<UserId, InvalidUserId> {
        let s = s.into();
        let why = if s.is_empty() {
            Some("it is empty")
        } else if s.len() > Self::MAX_LEN {
            Some("it is longer than 128 characters")
        } else if s == "." || s == ".." {
            Some("it is a path step")
        } else if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
        {
            Some("it has a character outside the allowed set")
        } else {
            None
        };
        match why {
            Some(why) => Err(InvalidUserId {
                shown: crate::limits::clip_to(&s, 64),
                why,
            }),
            None => Ok(UserId(s)),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InvalidUserId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        UserId::new(s)
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> String {
        id.0
    }
}

impl std::str::FromStr for UserId {
    type Err = InvalidUserId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UserId::new(s)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: a width (`{:<24}`) must apply.
        f.pad(&self.0)
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
    /// An unlink has begun and not finished (its tokens are kept until
    /// Enode has deleted the user): the daemon does not act for the user
    /// and finishes the unlink at its next start.
    Unlinking,
}

impl fmt::Display for UserStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            UserStatus::Active => "active",
            UserStatus::NeedsRelink => "needs-relink",
            UserStatus::Unlinking => "unlinking",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_grammar() {
        for ok in ["alice", "a.b_c@d-e", "0", &"x".repeat(128), "..."] {
            assert!(UserId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "%2E%2E",
            "a b",
            "   ",
            "a\0b",
            "a\r\nb",
            "ü",
            &"x".repeat(129),
            "a?b",
            "a#b",
        ] {
            let e = UserId::new(bad).unwrap_err();
            assert!(e.to_string().contains("invalid user id"), "{bad}: {e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        assert!(serde_json::from_str::<UserId>("\"..\"").is_err());
        assert_eq!(
            serde_json::to_string(&UserId::new("u1").unwrap()).unwrap(),
            "\"u1\""
        );
    }
}

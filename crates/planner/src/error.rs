//! Why a request cannot be planned.

use thiserror::Error;

/// A request the planner refuses. Every variant names the offending field so
/// the CLI (exit code 65) and the daemon's log can point at the bad input.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    /// A field is out of range, not finite, or inconsistent with another one.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field, as spelled in the JSON request (`prices[3].end`).
        field: String,
        /// What is wrong with it, lowercase.
        reason: String,
    },
    /// The request is valid but too large to plan exactly with
    /// `min_block_minutes` (horizon × charging minutes × blocks).
    #[error("request too large to plan exactly: {0}")]
    TooLarge(String),
}

impl PlanError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        PlanError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

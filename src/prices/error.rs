//! The error every price source returns. Its variants decide what the
//! schedule does next: retry soon, wait for the next tick, or tell the
//! operator to fix the configuration.

/// Why a fetch produced no prices.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The request did not finish within the configured timeout; retry with
    /// backoff.
    #[error("request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Connection failure or a 5xx answer; retry with backoff.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The provider has nothing for the requested period yet (day-ahead
    /// prices are published once a day); retry later.
    #[error("no prices published yet for the requested period")]
    NotPublished,
    /// The token was refused (401/403): retrying will not help until the
    /// operator fixes the configuration.
    #[error("the provider refused the credentials (http {0}); check the token")]
    Unauthorized(u16),
    /// Any other 4xx: the request is wrong for this provider.
    #[error("the provider rejected the request (http {status}): {detail}")]
    Rejected {
        /// HTTP status code.
        status: u16,
        /// Start of the response body or the provider's error text.
        detail: String,
    },
    /// The answer could not be understood; the provider may have changed its
    /// format. Retry at the next tick, not in a loop.
    #[error("malformed response: {0}")]
    Malformed(String),
    /// A local file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    /// Whether retrying soon (with backoff) may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SourceError::Timeout(_) | SourceError::Unavailable(_) | SourceError::NotPublished
        )
    }
}

//! The stored encoding: JSON records, one per key. Record types here are
//! the on-disk format; they change only together with a schema migration.

use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::StoreError;
use crate::model::TokenSet;
use crate::secret::Secret;

/// A user's tokens as stored in the `tokens` tree.
#[derive(Serialize, Deserialize)]
pub(super) struct TokenRecord {
    /// Bearer token for API calls.
    access_token: Secret,
    /// Refresh token; absent when the grant had no `offline_access`.
    refresh_token: Option<Secret>,
    /// When the access token expires.
    expires_at: DateTime<Utc>,
    /// Scopes granted.
    scopes: Vec<String>,
}

impl TokenRecord {
    /// The record for a token set.
    pub(super) fn from_set(t: &TokenSet) -> Self {
        TokenRecord {
            access_token: t.access_token.clone(),
            refresh_token: t.refresh_token.clone(),
            expires_at: t.expires_at,
            scopes: t.scopes.clone(),
        }
    }

    /// The token set of a record.
    pub(super) fn into_set(self) -> TokenSet {
        TokenSet {
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_at: self.expires_at,
            scopes: self.scopes,
        }
    }
}

/// Encodes a record.
pub(super) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records always serialize")
}

/// Decodes a record, naming it in the error.
pub(super) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

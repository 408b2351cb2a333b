//! Where the last good quote of each source is kept, so a restart does not
//! refetch and an outage falls back to what is known. The daemon uses the
//! sled-backed store; tests use [`MemoryCache`].
//!
//! The cache holds [`Quote`]s (the provider's numbers), not curves, so a
//! changed tariff applies to cached prices at once.

use std::collections::HashMap;
use std::sync::Mutex;

use super::Quote;

/// Why the cache could not be read or written. Either way the feed goes on
/// with what it has in memory and logs the error.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The storage failed.
    #[error("price cache storage failed: {0}")]
    Storage(String),
    /// A stored quote could not be decoded (written by an incompatible
    /// version); it is treated as absent.
    #[error("stored prices for {source_id} cannot be decoded: {detail}")]
    Corrupt {
        /// The source whose entry is bad.
        source_id: String,
        /// The decoder's message.
        detail: String,
    },
}

/// Saves and loads the latest quote per source id.
pub trait PriceCache: Send + Sync {
    /// The stored quote of `source_id`, if any.
    fn load(&self, source_id: &str) -> Result<Option<Quote>, CacheError>;
    /// Replaces the stored quote of `source_id`; durable when it returns.
    fn save(&self, source_id: &str, quote: &Quote) -> Result<(), CacheError>;
}

/// An in-memory cache for tests and for `smartcharged prices`.
#[derive(Debug, Default)]
pub struct MemoryCache {
    /// Quotes by source id.
    quotes: Mutex<HashMap<String, Quote>>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

impl PriceCache for MemoryCache {
    fn load(&self, source_id: &str) -> Result<Option<Quote>, CacheError> {
        let map = self.quotes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(source_id).cloned())
    }

    fn save(&self, source_id: &str, quote: &Quote) -> Result<(), CacheError> {
        let mut map = self.quotes.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(source_id.to_string(), quote.clone());
        Ok(())
    }
}

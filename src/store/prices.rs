//! The latest price quote per source, in tree `prices` (source id -> JSON
//! [`Quote`]), so a restart does not refetch and an outage falls back to
//! what is known. Each save is flushed before it returns.

use crate::prices::cache::{CacheError, PriceCache};
use crate::prices::Quote;

use super::{records, Store, StoreError};

/// Name of the tree.
const TREE: &str = "prices";

fn storage(e: StoreError) -> CacheError {
    CacheError::Storage(e.to_string())
}

impl PriceCache for Store {
    fn load(&self, source_id: &str) -> Result<Option<Quote>, CacheError> {
        let tree = self.tree(TREE).map_err(storage)?;
        let Some(bytes) = tree
            .get(source_id.as_bytes())
            .map_err(|e| storage(e.into()))?
        else {
            return Ok(None);
        };
        match records::decode::<Quote>(TREE, source_id, &bytes) {
            Ok(q) => Ok(Some(q)),
            Err(e) => Err(CacheError::Corrupt {
                source_id: source_id.to_string(),
                detail: e.to_string(),
            }),
        }
    }

    fn save(&self, source_id: &str, quote: &Quote) -> Result<(), CacheError> {
        let tree = self.tree(TREE).map_err(storage)?;
        tree.insert(source_id.as_bytes(), records::encode(quote))
            .map_err(|e| storage(e.into()))?;
        self.flush().map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prices::{Basis, Slot};

    #[test]
    fn a_saved_quote_survives_reopening_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = "2024-10-05T22:00:00Z".parse().unwrap();
        let quote = Quote::new(
            Basis::SpotPerMwh,
            "EUR",
            vec![Slot {
                start: t0,
                end: t0 + chrono::TimeDelta::hours(1),
                price: -0.01,
            }],
        )
        .unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.load("entsoe:x").unwrap(), None);
            store.save("entsoe:x", &quote).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load("entsoe:x").unwrap(), Some(quote));
        assert_eq!(store.load("entsoe:y").unwrap(), None);
        store.tree(TREE).unwrap().insert("bad", &b"{"[..]).unwrap();
        assert!(matches!(store.load("bad"), Err(CacheError::Corrupt { .. })));
    }
}

//! Schema versions and the migrations between them.
//!
//! The `meta` tree holds `schema_version` (u32, big endian). Opening a store
//! runs every migration from its version up to [`CURRENT`] in order, each
//! step writing its new version in the same flush, so a crash mid-upgrade
//! resumes at the step that did not finish. A store newer than this build is
//! refused rather than misread.

use super::{Result, StoreError};

/// One upgrade step: from `from` to `from + 1`.
pub struct Migration {
    /// The version this step upgrades from.
    pub from: u32,
    /// What the step does, for the log.
    pub what: &'static str,
    /// The step itself; must be idempotent (it may run again after a crash).
    pub apply: fn(&sled::Db) -> Result<()>,
}

/// The migrations of this build, in order.
///
/// Version 0 is a directory without a version: a new store, which needs no
/// data change, only the version stamp.
pub const MIGRATIONS: &[Migration] = &[Migration {
    from: 0,
    what: "stamp a new store with schema version 1",
    apply: |_| Ok(()),
}];

const KEY: &[u8] = b"schema_version";

/// The schema version of `db` (0 when unset).
pub fn version(db: &sled::Db) -> Result<u32> {
    let meta = db.open_tree("meta")?;
    Ok(match meta.get(KEY)? {
        Some(v) if v.len() == 4 => u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
        Some(v) => {
            return Err(StoreError::Corrupt {
                tree: "meta",
                key: "schema_version".into(),
                reason: format!("{} bytes instead of 4", v.len()),
            })
        }
        None => 0,
    })
}

/// Brings `db` to the newest version `steps` reach.
pub fn run(db: &sled::Db, steps: &[Migration]) -> Result<()> {
    let newest = steps.last().map_or(0, |s| s.from + 1);
    let mut v = version(db)?;
    if v > newest {
        return Err(StoreError::TooNew {
            found: v,
            supported: newest,
        });
    }
    let meta = db.open_tree("meta")?;
    let start = v;
    for step in steps.iter().filter(|s| s.from >= start) {
        debug_assert_eq!(step.from, v, "migrations must be contiguous");
        (step.apply)(db)?;
        v = step.from + 1;
        meta.insert(KEY, &v.to_be_bytes())?;
        db.flush()?;
        tracing::info!(schema.version = v, step = step.what, "store migrated");
    }
    Ok(())
}

//! What the webhook receiver keeps: the ids of recent deliveries (so a
//! delivery Enode repeats after a restart is still recognised) and the
//! shared secret's file.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Result, Store, StoreError};
use crate::secret::Secret;

/// The tree of delivery ids: id -> arrival (RFC 3339).
const DELIVERIES: &str = "webhook_deliveries";

impl Store {
    /// Every remembered delivery id with its arrival, oldest first.
    pub fn webhook_deliveries(&self) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut all: Vec<(String, DateTime<Utc>)> = self
            .tree(DELIVERIES)?
            .iter()
            .filter_map(|kv| {
                let (k, v) = kv.ok()?;
                let at = DateTime::parse_from_rfc3339(std::str::from_utf8(&v).ok()?).ok()?;
                Some((String::from_utf8_lossy(&k).into_owned(), at.to_utc()))
            })
            .collect();
        all.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(all)
    }

    /// Remembers delivery `id`, forgets the ids in `evict`, and flushes
    /// (group commit).
    pub async fn put_webhook_delivery(
        &self,
        id: &str,
        at: DateTime<Utc>,
        evict: &[String],
    ) -> Result<()> {
        let tree = self.tree(DELIVERIES)?;
        tree.insert(id.as_bytes(), at.to_rfc3339().as_bytes())?;
        for old in evict {
            tree.remove(old.as_bytes())?;
        }
        self.commit().await
    }
}

/// Where the webhook secret lives when the config names no file: next to
/// the database in the store directory (0700).
pub fn default_webhook_secret_file(store_dir: &Path) -> PathBuf {
    store_dir.join("webhook-secret")
}

/// Writes a webhook secret to `path` durably: a temporary file (0600) is
/// written and synced, renamed over `path`, and the directory synced, so a
/// crash leaves the old secret or the new one, never half of one.
pub fn write_webhook_secret(path: &Path, secret: &Secret) -> Result<()> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io)?;
    f.write_all(secret.expose().as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

//! The daemon's own records: per-vehicle control state (plan, pending
//! command, suspension) and the command journal. Both are flushed on every
//! write, so a crash loses no plan and no journal line.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{records, Result, Store};
use crate::daemon::control::ControlState;
use crate::daemon::sessions::SessionRecord;

/// One line of the command journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// When the command was sent.
    pub at: DateTime<Utc>,
    /// The vehicle's user.
    pub user: String,
    /// The vehicle.
    pub vehicle: String,
    /// START, STOP, or DISABLE_ENODE_SMART_CHARGING.
    pub action: String,
    /// Why.
    pub reason: String,
    /// Price per kWh at the time, when known.
    pub price: Option<f64>,
    /// "ok", or the error.
    pub result: String,
}

impl Store {
    /// The stored control state of a vehicle.
    pub fn control(&self, vehicle: &str) -> Result<Option<ControlState>> {
        self.tree("control")?
            .get(vehicle.as_bytes())?
            .map(|v| records::decode("control", vehicle, &v))
            .transpose()
    }

    /// Every vehicle's control state, by vehicle id.
    pub fn controls(&self) -> Result<Vec<(String, ControlState)>> {
        self.tree("control")?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                let id = String::from_utf8_lossy(&k).into_owned();
                let state = records::decode("control", &id, &v)?;
                Ok((id, state))
            })
            .collect()
    }

    /// Replaces a vehicle's control state and flushes.
    pub async fn put_control(&self, vehicle: &str, state: &ControlState) -> Result<()> {
        self.tree("control")?
            .insert(vehicle.as_bytes(), records::encode(state))?;
        self.commit().await
    }

    /// Deletes a vehicle's control state (its user was unlinked) and
    /// flushes.
    pub fn remove_control(&self, vehicle: &str) -> Result<()> {
        self.tree("control")?.remove(vehicle.as_bytes())?;
        self.flush()
    }

    /// Stores a finished plug-in session and flushes; keyed by its unplug
    /// time, like the journal.
    pub async fn put_session(&self, r: &SessionRecord) -> Result<()> {
        let tree = self.tree("sessions")?;
        let mut key = r
            .unplugged_at
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .max(0)
            .to_be_bytes()
            .to_vec();
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        tree.insert(key, records::encode(r))?;
        self.commit().await
    }

    /// Sessions that ended in `[from, to)`, oldest first.
    pub fn sessions_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        let key = |t: DateTime<Utc>| {
            t.timestamp_nanos_opt()
                .unwrap_or(i64::MAX)
                .max(0)
                .to_be_bytes()
                .to_vec()
        };
        self.tree("sessions")?
            .range(key(from)..key(to))
            .map(|kv| {
                let (_, v) = kv?;
                records::decode("sessions", "session", &v)
            })
            .collect()
    }

    /// Removes sessions that ended before `before` and flushes; returns how many.
    pub fn prune_sessions(&self, before: DateTime<Utc>) -> Result<usize> {
        self.prune_before("sessions", before)
    }

    /// Appends to the command journal and flushes.
    pub async fn journal(&self, entry: &JournalEntry) -> Result<()> {
        let tree = self.tree("journal")?;
        tree.insert(self.journal_key(entry)?, records::encode(entry))?;
        self.commit().await
    }

    /// The journal key of `entry`: its time (so ranges are time ranges),
    /// then a unique id (two entries of one instant both stay).
    pub(super) fn journal_key(&self, entry: &JournalEntry) -> Result<Vec<u8>> {
        let mut key = entry
            .at
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .to_be_bytes()
            .to_vec();
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        Ok(key)
    }

    /// Removes journal entries from before `before` (the retention horizon)
    /// and flushes; returns how many. Keys start with the entry's time, so
    /// this is one range scan from the oldest.
    pub fn prune_journal(&self, before: DateTime<Utc>) -> Result<usize> {
        self.prune_before("journal", before)
    }

    /// Removes the records of `tree` keyed before `before` and flushes;
    /// returns how many. Both time-keyed trees start their keys with the
    /// time in big-endian nanoseconds, so this is one range scan.
    fn prune_before(&self, tree: &str, before: DateTime<Utc>) -> Result<usize> {
        let tree = self.tree(tree)?;
        let end = before.timestamp_nanos_opt().unwrap_or(i64::MAX).max(0);
        let mut n = 0;
        for kv in tree.range(..end.to_be_bytes().to_vec()) {
            let (k, _) = kv?;
            tree.remove(k)?;
            n += 1;
        }
        if n > 0 {
            self.flush()?;
        }
        Ok(n)
    }

    /// The whole journal, oldest first.
    pub fn journal_entries(&self) -> Result<Vec<JournalEntry>> {
        self.tree("journal")?
            .iter()
            .map(|kv| {
                let (_, v) = kv?;
                records::decode("journal", "entry", &v)
            })
            .collect()
    }

    /// The newest `limit` journal entries, newest first.
    pub fn journal_recent(&self, limit: usize) -> Result<Vec<JournalEntry>> {
        self.tree("journal")?
            .iter()
            .rev()
            .take(limit)
            .map(|kv| {
                let (_, v) = kv?;
                records::decode("journal", "entry", &v)
            })
            .collect()
    }

    /// Journal entries in `[since, until)` that `keep` accepts, newest
    /// first, at most `limit`: one range scan from the newest, so a
    /// filtered query on a long journal stops once it has enough.
    pub fn journal_between(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        keep: impl Fn(&JournalEntry) -> bool,
        limit: usize,
    ) -> Result<Vec<JournalEntry>> {
        let key = |t: DateTime<Utc>| {
            t.timestamp_nanos_opt()
                .unwrap_or(if t.timestamp() < 0 { 0 } else { i64::MAX })
                .max(0)
                .to_be_bytes()
                .to_vec()
        };
        let tree = self.tree("journal")?;
        let lo = since.map_or_else(Vec::new, key);
        let range = match until {
            Some(u) => tree.range(lo..key(u)),
            None => tree.range(lo..),
        };
        let mut out = Vec::new();
        for kv in range.rev() {
            let (_, v) = kv?;
            let e: JournalEntry = records::decode("journal", "entry", &v)?;
            if keep(&e) {
                out.push(e);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

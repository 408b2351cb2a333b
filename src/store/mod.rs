//! The store: the only code that knows sled and the on-disk encoding
//! (invariant 2), so the engine can be swapped in one place.
//!
//! Trees: `users` (user id -> [`User`]), `tokens` (user id -> token record),
//! `links` (linkState -> [`LinkSession`]), `meta` (schema version). Values
//! are JSON, readable with any sled dump and easy to migrate.
//!
//! Durability: sled makes writes durable only on flush. Every write that must
//! survive a crash (a token rotation above all, invariant 5) is followed by a
//! synchronous [`sled::Db::flush`] before the method returns. The flush is
//! synchronous on purpose: it keeps a refresh's write-then-use ordering
//! obvious, and under paused test time no virtual time passes while it runs.

mod daemon;
mod lock;
mod migrate;
mod prices;
mod records;
mod webhooks;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use crate::model::TokenSet;
use crate::users::{LinkSession, User, UserId, UserStatus};

pub use daemon::JournalEntry;
pub use lock::StoreLock;
use records::TokenRecord;
pub use webhooks::{default_webhook_secret_file, write_webhook_secret};

/// Errors of the store; each says which store and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the store.
    #[error("store {path} is in use by {holder}; stop it first, or talk to the running daemon")]
    InUse {
        /// The store directory.
        path: PathBuf,
        /// "pid N" when the holder wrote its pid, else "another process".
        holder: String,
    },
    /// The directory or a file could not be created or accessed.
    #[error("store {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// sled reported an error.
    #[error("store engine: {0}")]
    Engine(#[from] sled::Error),
    /// A stored value could not be decoded.
    #[error("store record {tree}/{key} is unreadable: {reason}")]
    Corrupt {
        /// Tree of the record.
        tree: &'static str,
        /// Key of the record.
        key: String,
        /// Why decoding failed.
        reason: String,
    },
    /// The store was written by a newer version of smartcharged.
    #[error("store schema version {found} is newer than this build supports ({supported}); upgrade smartcharged")]
    TooNew {
        /// Version found on disk.
        found: u32,
        /// Newest version this build knows.
        supported: u32,
    },
    /// An operation referred to a user the store does not have.
    #[error("no user {0} in the store")]
    UnknownUser(UserId),
}

/// Result type of the store.
pub type Result<T> = std::result::Result<T, StoreError>;

/// An open store. Cloning is cheap and shares the same database.
#[derive(Clone)]
pub struct Store {
    /// The sled database.
    db: sled::Db,
    /// user id -> User (JSON).
    users: sled::Tree,
    /// user id -> TokenRecord (JSON).
    tokens: sled::Tree,
    /// linkState -> LinkSession (JSON).
    links: sled::Tree,
    /// Held for as long as any clone is alive: one process per store.
    _lock: Arc<StoreLock>,
    /// The store directory.
    path: PathBuf,
    /// Durable writes so far (group commit: see [`Store::rotate_tokens_grouped`]).
    written: Arc<AtomicU64>,
    /// The highest write sequence a completed flush covers.
    flushed: Arc<AtomicU64>,
    /// How many flushes ran (for the log and tests of group commit).
    flushes: Arc<AtomicU64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// sled's page cache. Its default (1 GiB) let a store of 100,000 users
/// grow the daemon to over a gigabyte; the records the daemon reads often
/// (tokens at refresh, control states at changes) fit in far less, and a
/// miss costs one read of the local disk.
pub const CACHE_BYTES: u64 = 32 << 20;

/// How long [`Store::open`] waits for sled's own file lock once the
/// store's lock is held.
const ENGINE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Opens sled. With the store's own lock held no other daemon has the
/// store, so sled's file lock can only be held for a moment: by the sled
/// of a store just dropped in this process (its flusher thread lets go of
/// the file a little later) or by a child forked meanwhile that has not
/// yet exec'ed. Such a lock is waited for, up to [`ENGINE_LOCK_WAIT`].
fn open_engine(config: &sled::Config) -> std::result::Result<sled::Db, sled::Error> {
    let step = std::time::Duration::from_millis(50);
    let mut waited = std::time::Duration::ZERO;
    loop {
        match config.open() {
            // sled reports a held lock as an `Other` error whose text
            // says so (sled 0.34, config.rs).
            Err(sled::Error::Io(e))
                if waited < ENGINE_LOCK_WAIT
                    && (e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().starts_with("could not acquire lock")) =>
            {
                std::thread::sleep(step);
                waited += step;
            }
            r => return r,
        }
    }
}

impl Store {
    /// Opens (or creates) the store in directory `path`: the directory is
    /// created 0700, files are made 0600, the process lock is taken, and the
    /// schema is migrated to the current version.
    pub fn open(path: &Path) -> Result<Store> {
        let io = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(io)?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(io)?;
        let lock = StoreLock::acquire(path)?;
        let config = sled::Config::new()
            .path(path.join("db"))
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(500));
        let db = open_engine(&config)?;
        restrict_files(path).map_err(io)?;
        migrate::run(&db, migrate::MIGRATIONS)?;
        Ok(Store {
            users: db.open_tree("users")?,
            tokens: db.open_tree("tokens")?,
            links: db.open_tree("links")?,
            db,
            _lock: Arc::new(lock),
            path: path.to_owned(),
            written: Arc::new(AtomicU64::new(0)),
            flushed: Arc::new(AtomicU64::new(0)),
            flushes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<()> {
        let upto = self.written.load(Ordering::Acquire);
        self.db.flush()?;
        self.flushed.fetch_max(upto, Ordering::AcqRel);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// How many flushes this store has run since it was opened.
    pub fn flush_count(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// A named tree for modules of the store that keep their own records.
    pub(crate) fn tree(&self, name: &str) -> Result<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// Stores a newly linked user with its first tokens in one transaction,
    /// then flushes: a user is never on disk without its tokens.
    pub fn save_linked_user(&self, user: &User, tokens: &TokenSet) -> Result<()> {
        self.save_linked_users([(user, tokens)])
    }

    /// [`Store::save_linked_user`] for many users with one flush at the end,
    /// for tools that seed a store (the fleet benchmark's 100,000 users): a
    /// flush per user would take minutes. Each user is still written with
    /// its tokens in one transaction.
    pub fn save_linked_users<'a>(
        &self,
        users: impl IntoIterator<Item = (&'a User, &'a TokenSet)>,
    ) -> Result<()> {
        for (user, tokens) in users {
            let key = user.id.as_str().as_bytes();
            let u = records::encode(user);
            let t = records::encode(&TokenRecord::from_set(tokens));
            (&self.users, &self.tokens)
                .transaction(|(users, toks)| {
                    users.insert(key, u.as_slice())?;
                    toks.insert(key, t.as_slice())?;
                    Ok::<_, ConflictableTransactionError<()>>(())
                })
                .map_err(tx_error)?;
        }
        self.flush()
    }

    /// Replaces a user's tokens after a refresh and flushes before returning
    /// (invariant 5): only then may the new tokens be used or the old ones
    /// forgotten.
    pub fn rotate_tokens(&self, user: &UserId, tokens: &TokenSet) -> Result<()> {
        self.write_tokens(user, tokens)?;
        self.written.fetch_add(1, Ordering::AcqRel);
        self.flush()
    }

    /// Like [`Store::rotate_tokens`], with group commit: after the write it
    /// lets the other tasks that are ready run once, so that refreshes
    /// answered together share one flush. It returns only once a flush that
    /// started after its write has completed, so the guarantee is the same;
    /// the crash window grows by one scheduler pass, not by a timer.
    pub async fn rotate_tokens_grouped(&self, user: &UserId, tokens: &TokenSet) -> Result<()> {
        self.write_tokens(user, tokens)?;
        self.commit().await
    }

    /// Makes the writes so far durable with group commit: lets the other
    /// tasks that are ready run once, so writes made together share one
    /// flush, and returns once a flush that started after this call's
    /// writes has completed.
    pub(crate) async fn commit(&self) -> Result<()> {
        let seq = self.written.fetch_add(1, Ordering::AcqRel) + 1;
        tokio::task::yield_now().await;
        if self.flushed.load(Ordering::Acquire) < seq {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes a user's tokens (not yet durable).
    fn write_tokens(&self, user: &UserId, tokens: &TokenSet) -> Result<()> {
        if !self.users.contains_key(user.as_str().as_bytes())? {
            return Err(StoreError::UnknownUser(user.clone()));
        }
        let t = records::encode(&TokenRecord::from_set(tokens));
        self.tokens.insert(user.as_str().as_bytes(), t)?;
        Ok(())
    }

    /// A user's current tokens.
    pub fn tokens(&self, user: &UserId) -> Result<Option<TokenSet>> {
        self.tokens
            .get(user.as_str().as_bytes())?
            .map(|v| {
                records::decode::<TokenRecord>("tokens", user.as_str(), &v)
                    .map(TokenRecord::into_set)
            })
            .transpose()
    }

    /// One user.
    pub fn user(&self, id: &UserId) -> Result<Option<User>> {
        self.users
            .get(id.as_str().as_bytes())?
            .map(|v| records::decode("users", id.as_str(), &v))
            .transpose()
    }

    /// Every user, in id order. A record that cannot be read (an id outside
    /// the user-id grammar, written by an older version) is skipped with a
    /// warning rather than keeping every other user from loading.
    pub fn users(&self) -> Result<Vec<User>> {
        let mut out = Vec::new();
        for kv in self.users.iter() {
            let (k, v) = kv?;
            let key = crate::limits::clip_to(&String::from_utf8_lossy(&k), 64);
            match records::decode("users", &key, &v) {
                Ok(u) => out.push(u),
                Err(e) => tracing::warn!(error = %e, "skipping an unreadable user record"),
            }
        }
        Ok(out)
    }

    /// Every active user with its tokens, in id order: one pass over the
    /// users and tokens trees side by side (both are in key order) rather
    /// than a lookup per user, for start-up with many users. Unreadable
    /// user records are skipped with a warning as in [`Store::users`]; an
    /// unreadable token record is an error (its user would be lost
    /// silently otherwise).
    pub fn active_users_with_tokens(&self) -> Result<Vec<(User, TokenSet)>> {
        let mut out = Vec::new();
        let mut tokens = self.tokens.iter();
        let mut next_token = tokens.next().transpose()?;
        for kv in self.users.iter() {
            let (k, v) = kv?;
            let key = crate::limits::clip_to(&String::from_utf8_lossy(&k), 64);
            let user: User = match records::decode("users", &key, &v) {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable user record");
                    continue;
                }
            };
            while next_token.as_ref().is_some_and(|(tk, _)| *tk < k) {
                next_token = tokens.next().transpose()?;
            }
            if user.status != UserStatus::Active {
                continue;
            }
            let Some((_, tv)) = next_token.as_ref().filter(|(tk, _)| *tk == k) else {
                continue;
            };
            let t = records::decode::<TokenRecord>("tokens", &key, tv)?.into_set();
            out.push((user, t));
        }
        Ok(out)
    }

    /// Changes a user's status and flushes.
    pub fn set_status(&self, id: &UserId, status: UserStatus) -> Result<()> {
        let mut user = self
            .user(id)?
            .ok_or_else(|| StoreError::UnknownUser(id.clone()))?;
        user.status = status;
        self.users
            .insert(id.as_str().as_bytes(), records::encode(&user))?;
        self.flush()
    }

    /// Removes a user and its tokens in one transaction and flushes.
    /// Returns whether the user existed.
    pub fn remove_user(&self, id: &UserId) -> Result<bool> {
        let key = id.as_str().as_bytes();
        let existed = (&self.users, &self.tokens)
            .transaction(|(users, toks)| {
                let existed = users.remove(key)?.is_some();
                toks.remove(key)?;
                Ok::<_, ConflictableTransactionError<()>>(existed)
            })
            .map_err(tx_error)?;
        self.flush()?;
        Ok(existed)
    }

    /// The first step of an unlink: marks the user `unlinking` (its tokens
    /// stay, they are not needed to delete it at Enode) and drops its
    /// pending link sessions, so a consent given later cannot bring the
    /// user back; flushed, so a crash after it leaves the mark for the
    /// next start to finish. Returns the user as it was (none: the store
    /// does not know it).
    pub fn mark_unlinking(&self, id: &UserId) -> Result<Option<User>> {
        let Some(mut user) = self.user(id)? else {
            return Ok(None);
        };
        let before = user.clone();
        user.status = UserStatus::Unlinking;
        self.users
            .insert(id.as_str().as_bytes(), records::encode(&user))?;
        for kv in self.links.iter() {
            let (k, v) = kv?;
            let s: LinkSession = records::decode("links", &String::from_utf8_lossy(&k), &v)?;
            if s.user_id == *id {
                self.links.remove(k)?;
            }
        }
        self.flush()?;
        Ok(Some(before))
    }

    /// The last step of an unlink: removes the user and its tokens and
    /// appends `entry` to the journal in one transaction, then flushes: the
    /// journal says "unlinked" exactly when the user is gone. Returns
    /// whether the user was stored.
    pub fn finish_unlink(&self, id: &UserId, entry: &JournalEntry) -> Result<bool> {
        let key = id.as_str().as_bytes();
        let journal = self.tree("journal")?;
        let jkey = self.journal_key(entry)?;
        let jval = records::encode(entry);
        let existed = (&self.users, &self.tokens, &journal)
            .transaction(|(users, toks, journal)| {
                let existed = users.remove(key)?.is_some();
                toks.remove(key)?;
                journal.insert(jkey.as_slice(), jval.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(existed)
            })
            .map_err(tx_error)?;
        self.flush()?;
        Ok(existed)
    }

    /// Records a link session under its linkState and flushes, so a
    /// callback that arrives after a restart still matches.
    pub fn put_link_session(&self, link_state: &str, session: &LinkSession) -> Result<()> {
        self.links
            .insert(link_state.as_bytes(), records::encode(session))?;
        self.flush()
    }

    /// The link session for `link_state`, left in place.
    pub fn link_session(&self, link_state: &str) -> Result<Option<LinkSession>> {
        self.links
            .get(link_state.as_bytes())?
            .map(|v| records::decode("links", link_state, &v))
            .transpose()
    }

    /// The last step of a link flow: takes the session of `link_state` and
    /// stores `user` with its tokens in one transaction, then flushes. The
    /// session must still be there: an unlink that began while the code
    /// was being exchanged has dropped it ([`Store::mark_unlinking`]), and
    /// the user must not come back after that unlink. Refused too while
    /// the user is marked `unlinking`.
    pub fn finish_link(
        &self,
        link_state: &str,
        user: &User,
        tokens: &TokenSet,
    ) -> Result<LinkFinish> {
        let key = user.id.as_str().as_bytes();
        let u = records::encode(user);
        let t = records::encode(&TokenRecord::from_set(tokens));
        let done = (&self.links, &self.users, &self.tokens)
            .transaction(|(links, users, toks)| {
                if links.remove(link_state.as_bytes())?.is_none() {
                    return Ok(LinkFinish::SessionGone);
                }
                if let Some(old) = users.get(key)? {
                    let old: Option<User> = records::decode("users", user.id.as_str(), &old).ok();
                    if old.is_some_and(|o| o.status == UserStatus::Unlinking) {
                        return Ok(LinkFinish::Unlinking);
                    }
                }
                users.insert(key, u.as_slice())?;
                toks.insert(key, t.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(LinkFinish::Linked)
            })
            .map_err(tx_error)?;
        self.flush()?;
        Ok(done)
    }

    /// Removes and returns the link session for `link_state` (a state can be
    /// used once). Expired sessions are returned too; the caller decides.
    pub fn take_link_session(&self, link_state: &str) -> Result<Option<LinkSession>> {
        let s = self
            .links
            .remove(link_state.as_bytes())?
            .map(|v| records::decode("links", link_state, &v))
            .transpose()?;
        self.flush()?;
        Ok(s)
    }

    /// Drops link sessions that expired before `now`; returns how many.
    pub fn purge_link_sessions(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut n = 0;
        for kv in self.links.iter() {
            let (k, v) = kv?;
            let s: LinkSession = records::decode("links", &String::from_utf8_lossy(&k), &v)?;
            if s.expires_at < now {
                self.links.remove(k)?;
                n += 1;
            }
        }
        if n > 0 {
            self.flush()?;
        }
        Ok(n)
    }
}

/// What [`Store::finish_link`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFinish {
    /// The user and its tokens are stored.
    Linked,
    /// The session was no longer there (used by another callback, or
    /// dropped by an unlink): nothing stored.
    SessionGone,
    /// The user is being unlinked: nothing stored.
    Unlinking,
}

/// Maps a transaction failure (the closures above never abort) to an error.
fn tx_error(e: TransactionError<()>) -> StoreError {
    match e {
        TransactionError::Storage(e) => StoreError::Engine(e),
        TransactionError::Abort(()) => {
            StoreError::Engine(sled::Error::Unsupported("transaction aborted".into()))
        }
    }
}

/// Makes every file under the store 0600 and every directory 0700: sled
/// creates its files with the process umask.
fn restrict_files(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o700))?;
            restrict_files(&entry.path())?;
        } else {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

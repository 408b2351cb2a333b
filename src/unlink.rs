//! Unlinking a user, in steps that survive a crash at any point:
//!
//! 1. [`begin`]: the store marks the user `unlinking` (tokens kept) and
//!    drops its pending link flows, flushed;
//! 2. [`at_enode`]: `DELETE /users/{id}` at Enode (client credentials:
//!    the user's own tokens are not needed);
//! 3. [`finish`]: the user and its tokens leave the store and the journal
//!    gets its `UNLINK` line, in one transaction.
//!
//! A crash after step 1 leaves the mark, shown by `users`, and the daemon
//! finishes the unlink at its next start; DELETE is idempotent at Enode (a
//! second one answers 404), so redoing step 2 is harmless. If Enode
//! refuses step 2, [`restore`] puts the user's status back. The daemon
//! (`daemon::unlink`) runs these steps around stopping the user's loop;
//! the CLI without a daemon runs them alone (the store's lock keeps a
//! second process out).

use chrono::{DateTime, Utc};

use crate::enode::Client;
use crate::store::{JournalEntry, Store, StoreError};
use crate::users::{User, UserId, UserStatus};

/// Why an unlink did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UnlinkError {
    /// The store does not know the user (a typo?), and no force was given.
    #[error("user {0} is not linked here (use --force to delete it at Enode anyway)")]
    NotLinked(UserId),
    /// Another unlink of the same user is under way in this daemon.
    #[error("an unlink of user {0} is already in progress")]
    InProgress(UserId),
    /// Enode did not delete the user; it stays linked.
    #[error("Enode did not delete user {user}: {source}; the user stays linked")]
    Refused {
        /// The user.
        user: UserId,
        /// Enode's answer.
        source: Box<crate::enode::Error>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Step 1: checks that the store knows `user` (or `force`, for an orphan
/// at Enode), marks it `unlinking` and drops its pending link flows.
/// Returns the user as it was before the mark (none: not stored).
pub fn begin(store: &Store, user: &UserId, force: bool) -> Result<Option<User>, UnlinkError> {
    if store.user(user)?.is_none() {
        return if force {
            Ok(None)
        } else {
            Err(UnlinkError::NotLinked(user.clone()))
        };
    }
    Ok(store.mark_unlinking(user)?)
}

/// Step 2: deletes the user at Enode. True: Enode knew it; false: it was
/// already gone there (404).
pub async fn at_enode(client: &Client, user: &UserId) -> Result<bool, UnlinkError> {
    match client.delete_user(user.as_str()).await {
        Ok(()) => Ok(true),
        Err(crate::enode::Error::NotFound(_)) => Ok(false),
        Err(source) => Err(UnlinkError::Refused {
            user: user.clone(),
            source: Box::new(source),
        }),
    }
}

/// After a refused step 2: the user's status as it was before [`begin`]
/// (an unlink resumed at start keeps its mark, to be tried again).
pub fn restore(store: &Store, before: Option<&User>) -> Result<(), StoreError> {
    match before {
        Some(u) if u.status != UserStatus::Unlinking => store.set_status(&u.id, u.status),
        _ => Ok(()),
    }
}

/// Step 3: removes the user and its tokens and journals the unlink, at
/// once. Returns whether the user was stored.
pub fn finish(
    store: &Store,
    user: &UserId,
    at: DateTime<Utc>,
    by: &str,
    at_enode: bool,
) -> Result<bool, StoreError> {
    let entry = JournalEntry {
        at,
        user: user.to_string(),
        vehicle: String::new(),
        action: "UNLINK".into(),
        reason: format!("user unlinked (by {by})"),
        price: None,
        result: if at_enode {
            "ok".into()
        } else {
            "ok (already unknown at Enode)".into()
        },
    };
    store.finish_unlink(user, &entry)
}

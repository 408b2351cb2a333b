//! Unlinking a user in the running daemon: the steps of
//! [`crate::unlink`] around stopping the user's loop and its token
//! refreshes, one unlink per user at a time, and at start the unlinks a
//! crash interrupted.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use super::http::Api;
use crate::admin::routes::UnlinkAnswer;
use crate::unlink::UnlinkError;
use crate::users::{UserId, UserStatus};

/// The users with an unlink under way in this process.
#[derive(Debug, Default)]
pub struct InProgress(Mutex<HashSet<UserId>>);

/// Holds a user's place in [`InProgress`] until dropped.
struct Claim<'a>(&'a InProgress, UserId);

impl InProgress {
    /// Claims `user`, or says another unlink of it is under way.
    fn claim(&self, user: &UserId) -> Result<Claim<'_>, UnlinkError> {
        if self.0.lock().expect("unlinking lock").insert(user.clone()) {
            Ok(Claim(self, user.clone()))
        } else {
            Err(UnlinkError::InProgress(user.clone()))
        }
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.0 .0.lock().expect("unlinking lock").remove(&self.1);
    }
}

/// Unlinks `user` (see [`crate::unlink`]): stops its loop (no request for
/// it is in flight afterwards) and its token refreshes, marks it, deletes
/// it at Enode, forgets its vehicles, removes it and journals it. A second
/// unlink of the same user while one runs gets [`UnlinkError::InProgress`];
/// a user the store does not know, [`UnlinkError::NotLinked`] unless
/// `force`. If Enode refuses, the user is put back as it was and keeps
/// running. `by` says who asked, for the journal.
pub async fn unlink(
    api: &Api,
    user: &UserId,
    force: bool,
    by: &str,
) -> Result<UnlinkAnswer, UnlinkError> {
    let _claim = api.unlinking.claim(user)?;
    let fleet = &api.fleet;
    // Users are loaded behind READY: wait for them, so the loop stopped
    // below is not started afterwards.
    fleet.users_loaded().await;
    let store = &fleet.store;
    if store.user(user)?.is_none() && !force {
        return Err(UnlinkError::NotLinked(user.clone()));
    }
    let was_running = fleet.stop_user(user).await;
    api.keeper.drop_user(user).await;
    let before = crate::unlink::begin(store, user, force)?;
    let at_enode = match crate::unlink::at_enode(&fleet.client, user).await {
        Ok(known) => known,
        Err(e) => {
            if let Err(se) = crate::unlink::restore(store, before.as_ref()) {
                warn!(user.id = %user, error = %se, "cannot restore the user after a refused unlink");
            }
            let active = before
                .as_ref()
                .is_some_and(|u| u.status == UserStatus::Active);
            if active {
                match store.tokens(user) {
                    Ok(Some(t)) => {
                        if let Err(ke) = api.keeper.add_user(user.clone(), t).await {
                            warn!(user.id = %user, error = %ke, "cannot restore the user's tokens");
                        }
                    }
                    Ok(None) => {}
                    Err(se) => warn!(user.id = %user, error = %se, "cannot read the user's tokens"),
                }
            }
            if was_running {
                api.tracker.spawn(fleet.clone().run_user(
                    user.clone(),
                    before.as_ref().and_then(|u| u.vendor.clone()),
                    api.cancel.clone(),
                ));
            }
            warn!(user.id = %user, error = %e, "unlink refused by Enode; the user stays linked");
            return Err(e);
        }
    };
    let vehicles = fleet.forget_user(user);
    let in_store = crate::unlink::finish(store, user, api.clock.now(), by, at_enode)?;
    info!(user.id = %user, by, at_enode, vehicles = vehicles.len(), "user unlinked");
    Ok(UnlinkAnswer {
        user: user.to_string(),
        at_enode,
        in_store,
        vehicles,
    })
}

/// At start: finishes every unlink a crash (or a refused DELETE at start)
/// left marked in the store. One that Enode refuses again keeps its mark
/// and is logged; `smartcharged unlink USER` retries it.
pub async fn resume(api: Arc<Api>) {
    let users = match api.fleet.store.users() {
        Ok(u) => u,
        Err(e) => {
            warn!(error = %e, "cannot read the users to finish interrupted unlinks");
            return;
        }
    };
    for u in users
        .into_iter()
        .filter(|u| u.status == UserStatus::Unlinking)
    {
        info!(user.id = %u.id, "finishing an unlink that was interrupted");
        let done = tokio::select! {
            r = unlink(&api, &u.id, false, "the daemon, finishing an interrupted unlink") => r,
            _ = api.cancel.cancelled() => return,
        };
        if let Err(e) = done {
            warn!(user.id = %u.id, error = %e, "the interrupted unlink is not finished; the user stays marked unlinking; retry with `smartcharged unlink`");
        }
    }
}

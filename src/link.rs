//! The OAuth link flow, without its I/O: start a session for a user, then
//! complete it from the URL the browser was redirected to.
//!
//! Security: the callback's `state` must equal the linkState this flow
//! stored (CSRF, RFC 6819 4.4.1.8); a state is used once and expires; the
//! code is exchanged with the PKCE verifier kept in the store; nothing is
//! stored for a callback that fails any check.

use chrono::TimeDelta;
use clock::Clock;
use url::Url;

use crate::enode::{AuthError, Client};
use crate::store::{LinkFinish, Store, StoreError};
use crate::users::{LinkSession, User, UserId, UserStatus};

/// Why a link flow failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Enode refused to start the link session.
    #[error("cannot start linking: {0}")]
    Start(#[from] crate::enode::Error),
    /// The authorization server redirected back with an error.
    #[error("authorization failed: {error}{}", description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        /// RFC 6749 4.1.2.1 error code, e.g. `access_denied`.
        error: String,
        /// The server's `error_description`.
        description: Option<String>,
    },
    /// The callback's state is not the one this flow started with.
    #[error("state mismatch: the callback does not belong to this link flow (possible CSRF); nothing was stored")]
    StateMismatch,
    /// No stored session for the state (already used, or never started).
    #[error("no link session for this state (already used or unknown); start again with `smartcharged link`")]
    UnknownState,
    /// The session is older than its timeout.
    #[error("the link session expired; start again with `smartcharged link`")]
    Expired,
    /// The callback URL lacks the authorization code.
    #[error("the callback has no authorization code")]
    NoCode,
    /// The code could not be exchanged for tokens.
    #[error("code exchange failed: {0}")]
    Exchange(#[from] AuthError),
    /// The request itself is wrong (unknown vendor, bad language tag).
    #[error("{0}")]
    BadRequest(String),
    /// The user is being unlinked: no link flow may start or complete
    /// until the unlink has finished.
    #[error("user {0} is being unlinked; link it again once the unlink has finished")]
    Unlinking(UserId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A started link flow.
#[derive(Debug, Clone)]
pub struct Started {
    /// The user being linked.
    pub user: UserId,
    /// The OAuth state (Enode's linkState).
    pub link_state: String,
    /// Where to send the user's browser.
    pub authorize_url: Url,
}

/// Who is being linked, and how.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The user's id at Enode.
    pub user: &'a UserId,
    /// Vendor to preselect in Enode Link.
    pub vendor: Option<&'a str>,
    /// Language to force in Enode Link.
    pub language: Option<&'a str>,
    /// Send a PKCE challenge.
    pub pkce: bool,
    /// How long the session stays valid.
    pub timeout: std::time::Duration,
}

/// Starts linking a user: asks Enode for a linkState, stores the session
/// (with the PKCE verifier) and builds the authorization URL.
pub async fn start(
    client: &Client,
    store: &Store,
    clock: &Clock,
    req: Request<'_>,
) -> Result<Started, LinkError> {
    let vendor = req
        .vendor
        .map(crate::enode::vendor)
        .transpose()
        .map_err(LinkError::BadRequest)?;
    let language = req
        .language
        .map(crate::enode::language)
        .transpose()
        .map_err(LinkError::BadRequest)?;
    refuse_if_unlinking(store, req.user)?;
    let link_state = client
        .link_user(req.user.as_str(), vendor, language)
        .await?;
    let (authorize_url, verifier) = client.auth().authorize_url(&link_state, req.pkce);
    let now = clock.now();
    // An unlink may have begun while Enode answered: it has dropped the
    // user's sessions, and this one must not outlive it.
    refuse_if_unlinking(store, req.user)?;
    store.put_link_session(
        &link_state,
        &LinkSession {
            user_id: req.user.clone(),
            vendor: vendor.map(str::to_owned),
            pkce_verifier: verifier,
            created_at: now,
            expires_at: now + TimeDelta::from_std(req.timeout).unwrap_or(TimeDelta::minutes(30)),
        },
    )?;
    Ok(Started {
        user: req.user.clone(),
        link_state,
        authorize_url,
    })
}

/// Completes a flow from the callback URL: checks error and state, takes
/// the stored session, exchanges the code and stores the user with its
/// tokens. Returns the stored user and its tokens.
pub async fn complete(
    client: &Client,
    store: &Store,
    clock: &Clock,
    expected_state: &str,
    callback: &Url,
) -> Result<(User, crate::model::TokenSet), LinkError> {
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        // The session is spent either way.
        let _ = store.take_link_session(expected_state)?;
        return Err(LinkError::Denied {
            error,
            description: param("error_description"),
        });
    }
    let state = param("state").ok_or(LinkError::StateMismatch)?;
    if !constant_time_eq(state.as_bytes(), expected_state.as_bytes()) {
        return Err(LinkError::StateMismatch);
    }
    let code = param("code").ok_or(LinkError::NoCode)?;
    // The session stays stored until the user is (see
    // `Store::finish_link`): an unlink that begins while the code is being
    // exchanged drops it, and the user must then not be stored.
    let session = store.link_session(&state)?.ok_or(LinkError::UnknownState)?;
    let now = clock.now();
    if session.expires_at < now {
        let _ = store.take_link_session(&state)?;
        return Err(LinkError::Expired);
    }
    let tokens = client
        .auth()
        .exchange_code(&code, session.pkce_verifier.as_ref())
        .await?;
    let user = User {
        id: session.user_id,
        status: UserStatus::Active,
        linked_at: clock.now(),
        vendor: session.vendor,
    };
    match store.finish_link(&state, &user, &tokens)? {
        LinkFinish::Linked => {}
        LinkFinish::SessionGone => return Err(LinkError::UnknownState),
        LinkFinish::Unlinking => return Err(LinkError::Unlinking(user.id)),
    }
    store
        .journal(&crate::store::JournalEntry {
            at: user.linked_at,
            user: user.id.to_string(),
            vehicle: String::new(),
            action: "LINK".into(),
            reason: "link completed (the user consented at Enode)".into(),
            price: None,
            result: "ok".into(),
        })
        .await?;
    Ok((user, tokens))
}

/// Refuses a link flow for a user that is being unlinked.
fn refuse_if_unlinking(store: &Store, user: &UserId) -> Result<(), LinkError> {
    match store.user(user)? {
        Some(u) if u.status == UserStatus::Unlinking => Err(LinkError::Unlinking(user.clone())),
        _ => Ok(()),
    }
}

/// Compares secrets without an early exit that would leak the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

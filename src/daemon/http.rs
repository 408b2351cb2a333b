//! The daemon's HTTP listener (on `[http].listen`, loopback by default):
//!
//! - `GET /health`: `ok` while the daemon runs.
//! - `GET /` (`/?page=N`): the status page, one self-contained HTML
//!   document (see [`crate::web::page`]).
//! - `GET /status`: the read model's snapshot as JSON (users, vehicles with
//!   their explanation and plan, prices, backoffs).
//! - `GET /metrics`: Prometheus metrics (OpenMetrics text), see
//!   [`crate::metrics`].
//!
//! Starting a link flow is on the admin socket (`POST /v1/link/{userId}`):
//! nobody who can merely reach this TCP port may start one.
//! - `POST <[webhooks] path>` (default `/webhooks/enode`) and `GET
//!   /status/webhooks`: the Firehose receiver and its counters (see
//!   `webhook_http.rs`).
//! - `GET <redirect path>` (default `/callback`): the OAuth redirect. The
//!   state must be a stored, unexpired link session (single use); the code
//!   is exchanged with its PKCE verifier, the user stored, and its token
//!   refreshes and polling start at once.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clock::Clock;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use url::Url;

use super::fleet::Fleet;
use super::readmodel::ReadModel;
use super::tokens::TokenKeeper;
use crate::link::{self, LinkError};

/// What the handlers need.
pub struct Api {
    /// The read model (status, and the views built on it).
    pub read: Arc<ReadModel>,
    /// The fleet, to start polling a newly linked user.
    pub fleet: Arc<Fleet>,
    /// The token keeper, to keep a new user's tokens fresh.
    pub keeper: Arc<TokenKeeper>,
    /// The daemon's clock.
    pub clock: Clock,
    /// The daemon's tasks, for the new user's loop.
    pub tracker: TaskTracker,
    /// The daemon's shutdown.
    pub cancel: CancellationToken,
    /// Send a PKCE challenge.
    pub pkce: bool,
    /// How long a link session stays valid.
    pub link_timeout: Duration,
    /// The configured redirect URI (its path is served; its base rebuilds
    /// the callback URL).
    pub redirect_uri: Url,
    /// The webhook receiver and its path, when `[webhooks]` is configured.
    pub webhooks: Option<(String, Arc<crate::webhooks::Receiver>)>,
    /// The daemon's counters, for `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The users with an unlink under way (one at a time per user).
    pub unlinking: super::unlink::InProgress,
}

/// Serves until `cancel` fires, within `limits` (see [`super::listener`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    api: Arc<Api>,
    limits: crate::config::ConnLimits,
) {
    let cancel = api.cancel.clone();
    let app = axum::Router::new()
        .route("/", get(page))
        .route("/health", get(|| async { "ok\n" }))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route(api.redirect_uri.path(), get(callback));
    let app = match &api.webhooks {
        Some((path, _)) => app
            .route(path, post(super::webhook_http::receive))
            .route("/status/webhooks", get(super::webhook_http::status)),
        None => app,
    };
    let app = app
        .layer(axum::middleware::map_response(security_headers))
        .with_state(api);
    super::listener::serve("http", listener, limits, cancel, move |_| app.clone()).await;
}

/// `GET /metrics`: the counters and the state gauges, OpenMetrics text.
async fn metrics(State(api): State<Arc<Api>>) -> axum::response::Response {
    let snap = crate::web::metrics_snapshot(&api.read.snapshot());
    match api.metrics.encode(&snap) {
        Ok(body) => (
            [(
                axum::http::header::CONTENT_TYPE,
                crate::metrics::CONTENT_TYPE,
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// The page number of `GET /?page=N`, read leniently: the first `page`
/// that is a number from 1 on (larger than the last page shows the last);
/// anything else (missing, negative, not a number, too large) is page 1.
/// A link someone mistyped still shows the page, not an error.
pub fn page_number(query: Option<&str>) -> usize {
    query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "page")
                .and_then(|(_, v)| v.parse::<u32>().ok())
        })
        .map_or(1, |n| n.max(1) as usize)
}

/// `GET /`: the status page.
async fn page(State(api): State<Arc<Api>>, RawQuery(q): RawQuery) -> axum::response::Response {
    let body = crate::web::page::render(&api.read.snapshot(), page_number(q.as_deref()));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Every answer of the listener, errors (404, 405, 400) included, carries
/// the status page's security headers: no sniffing of a content type, and
/// a CSP under which nothing can be loaded or run.
async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(crate::web::page::CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    resp
}

/// `GET /status?page=N`: the snapshot with page N (from 1, read like the
/// status page's) of its vehicles, see [`super::readmodel::StatusPage`].
async fn status(State(api): State<Arc<Api>>, RawQuery(q): RawQuery) -> axum::response::Response {
    let page = super::readmodel::StatusPage::new(api.read.snapshot(), page_number(q.as_deref()));
    // Serialized straight from the snapshot: no JSON tree of every vehicle.
    match serde_json::to_vec(&page) {
        Ok(b) => ([(axum::http::header::CONTENT_TYPE, "application/json")], b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

async fn callback(State(api): State<Arc<Api>>, uri: Uri) -> impl IntoResponse {
    let mut url = api.redirect_uri.clone();
    url.set_query(uri.query());
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match link::complete(
        &api.fleet.client,
        &api.fleet.store,
        &api.clock,
        &state,
        &url,
    )
    .await
    {
        Ok((user, tokens)) => {
            info!(user.id = %user.id, "user linked");
            api.fleet.users_loaded().await;
            if let Err(e) = api.keeper.add_user(user.id.clone(), tokens).await {
                warn!(user.id = %user.id, error = %e, "cannot store the new tokens");
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"));
            }
            api.tracker.spawn(api.fleet.clone().run_user(
                user.id.clone(),
                user.vendor,
                api.cancel.clone(),
            ));
            (
                StatusCode::OK,
                format!("linked user {}; you can close this window\n", user.id),
            )
        }
        Err(e) => {
            warn!(error = %e, "link callback refused");
            let status = match e {
                LinkError::Exchange(_) | LinkError::Start(_) | LinkError::Store(_) => {
                    StatusCode::BAD_GATEWAY
                }
                _ => StatusCode::BAD_REQUEST,
            };
            (status, format!("{e}\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn page_numbers_are_read_leniently() {
        use super::page_number;
        assert_eq!(page_number(None), 1);
        assert_eq!(page_number(Some("page=3")), 3);
        assert_eq!(page_number(Some("x=1&page=2&page=5")), 2);
        assert_eq!(page_number(Some("page=0")), 1);
        assert_eq!(page_number(Some("page=4294967295")), 4_294_967_295);
        for bad in [
            "page=-1",
            "page=abc",
            "page=99999999999999",
            "page=",
            "page=%00",
            "&&",
        ] {
            assert_eq!(page_number(Some(bad)), 1, "{bad}");
        }
    }
}

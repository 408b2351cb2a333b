//! The webhook routes of the HTTP listener: `POST <[webhooks] path>` (the
//! receiver; see `crate::webhooks`) and `GET /status/webhooks` (its
//! counters, for `smartcharged webhook status`). Kept apart from
//! `http.rs` so the listener's other routes change independently.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::http::Api;
use crate::limits::WEBHOOK_BODY_MAX;

/// `POST /webhooks/enode`: reads at most 1 MiB (413 beyond), then lets the
/// receiver verify and apply it.
pub async fn receive(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
    let Some((_, receiver)) = &api.webhooks else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > WEBHOOK_BODY_MAX as u64) {
        let o = receiver.too_large();
        return answer(o);
    }
    let bytes = match axum::body::to_bytes(body, WEBHOOK_BODY_MAX).await {
        Ok(b) => b,
        Err(_) => return answer(receiver.too_large()),
    };
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    let o = receiver
        .deliver(
            &bytes,
            header("x-enode-signature"),
            header("x-enode-delivery"),
        )
        .await;
    answer(o)
}

fn answer(o: crate::webhooks::Outcome) -> Response {
    let status = StatusCode::from_u16(o.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, format!("{o:?}\n").to_lowercase()).into_response()
}

/// `GET /status/webhooks`: the receiver's counters and whether webhooks
/// are live, as JSON (also on the admin socket, `GET /v1/webhooks`, which
/// `smartcharged webhook status` reads).
pub async fn status(State(api): State<Arc<Api>>) -> Response {
    match status_json(&api) {
        Some(v) => Json(v).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The receiver's counters and liveness; `None` without `[webhooks]`.
pub fn status_json(api: &Api) -> Option<serde_json::Value> {
    let (path, receiver) = api.webhooks.as_ref()?;
    let now = api.clock.now();
    let live = api.fleet.webhooks.as_ref().is_some_and(|l| l.live(now));
    Some(serde_json::json!({
        "path": path,
        "live": live,
        "now": now,
        "stats": receiver.stats(),
    }))
}

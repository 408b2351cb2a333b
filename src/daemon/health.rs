//! The HTTP listener: `GET /health` answers 200 while the daemon runs, for
//! load balancers, monitors and `curl` during operation.

use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// Serves until `cancel` fires.
pub async fn serve(listener: tokio::net::TcpListener, cancel: CancellationToken) {
    let app = axum::Router::new().route("/health", get(|| async { "ok\n" }));
    let r = axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %e, "health listener failed");
    }
}

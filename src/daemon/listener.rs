//! Serving HTTP/1.1 on a listener with bounds: the one accept loop of both
//! the TCP listener ([`super::http`]) and the admin socket
//! ([`crate::admin`]).
//!
//! `axum::serve` alone has no connection cap and no header timeout: a
//! client that opens thousands of connections and sends half a request
//! head on each (slowloris) keeps them all open and takes the daemon's
//! file descriptors, and with them its connections to Enode, the store and
//! the price source. Here:
//!
//! - a semaphore caps the connections served at once
//!   ([`ConnLimits::max_connections`]); while it is full the loop does not
//!   accept, so further clients wait in the kernel's backlog;
//! - hyper's header read timeout ([`ConnLimits::header_timeout`], on the
//!   tokio timer, so paused test time drives it) closes a connection that
//!   has not sent a whole request head in time; hyper starts the same
//!   timer again while a kept-alive connection waits for its next request,
//!   so it bounds idle connections too;
//! - a connection lives at most [`MAX_CONNECTION_LIFETIME`] (a request
//!   body sent a byte at a time cannot hold its slot for ever), then it is
//!   shut down gracefully, and closed after one more header timeout;
//! - "connection limit reached" and accept errors (EMFILE...) are logged
//!   once when the state begins and once when it ends, with how long it
//!   lasted, never per connection. The limit's episode ends only once a
//!   free slot has waited a whole header timeout for a client: a listener
//!   kept full (each slot a timeout frees is taken at once from the
//!   backlog) is one episode, not two lines per connection.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use crate::config::ConnLimits;

/// The longest a connection is served; then it is asked to close after
/// the request in hand. Requests to the daemon take milliseconds; a
/// webhook body of 1 MiB needs well under this even on a slow link.
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// Pause after a failed accept, doubled while failures go on (EMFILE
/// would otherwise spin the loop), up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
/// The longest pause between accept attempts.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A listener the accept loop can take connections from.
pub trait Listener: Send + 'static {
    /// A connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// The next connection, or the error accepting it.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Self::Io>> + Send;
}

impl Listener for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn accept(&mut self) -> std::io::Result<Self::Io> {
        let (s, _) = tokio::net::TcpListener::accept(self).await?;
        // Answers are small: do not hold them back for Nagle.
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

impl Listener for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn accept(&mut self) -> std::io::Result<Self::Io> {
        tokio::net::UnixListener::accept(self).await.map(|(s, _)| s)
    }
}

/// Serves `listener` until `cancel` fires, at most `limits.max_connections`
/// connections at once, each through the router `app` makes for it (the
/// admin socket puts the peer's credentials into it). `name` says which
/// listener in the logs. At cancellation it stops accepting, lets each
/// connection finish the request in hand and waits for them (at most one
/// header timeout each).
pub async fn serve<L, F>(
    name: &'static str,
    mut listener: L,
    limits: ConnLimits,
    cancel: CancellationToken,
    app: F,
) where
    L: Listener,
    F: Fn(&L::Io) -> Router + Send + 'static,
{
    let permits = std::sync::Arc::new(Semaphore::new(limits.max_connections as usize));
    let conns = TaskTracker::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut failing_since: Option<tokio::time::Instant> = None;
    let mut full: Option<Full> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let now = tokio::time::Instant::now();
                match &mut full {
                    Some(f) => f.last = now,
                    None => {
                        warn!(
                            listener = name,
                            max_connections = limits.max_connections,
                            "connection limit reached: new connections wait until one closes"
                        );
                        full = Some(Full {
                            since: now,
                            last: now,
                        });
                    }
                }
                let p = tokio::select! {
                    p = permits.clone().acquire_owned() => p,
                    _ = cancel.cancelled() => break,
                };
                if let Some(f) = &mut full {
                    f.last = tokio::time::Instant::now();
                }
                match p {
                    Ok(p) => p,
                    Err(_) => break,
                }
            }
        };
        // The episode ends once a free slot has waited a whole header
        // timeout for a client: slots freed by timeouts and taken again at
        // once by waiting clients (a slowloris that keeps reconnecting)
        // are the same episode, not one per connection.
        let accepted = loop {
            let calm_at = full.as_ref().map(|f| f.last + limits.header_timeout);
            let calm = async move {
                match calm_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = listener.accept() => break Some(r),
                _ = calm => {
                    if let Some(f) = full.take() {
                        info!(
                            listener = name,
                            waited_ms = (f.last - f.since).as_millis() as u64,
                            "below the connection limit again"
                        );
                    }
                }
                _ = cancel.cancelled() => break None,
            }
        };
        let Some(accepted) = accepted else { break };
        let io = match accepted {
            Ok(io) => {
                if let Some(since) = failing_since.take() {
                    info!(
                        listener = name,
                        failed_ms = since.elapsed().as_millis() as u64,
                        "accepting connections again"
                    );
                }
                backoff = ACCEPT_BACKOFF_MIN;
                io
            }
            Err(e) => {
                if failing_since.is_none() {
                    failing_since = Some(tokio::time::Instant::now());
                    warn!(listener = name, error = %e, "cannot accept connections; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = cancel.cancelled() => break,
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let router = app(&io);
        let cancel = cancel.clone();
        conns.spawn(async move {
            connection(name, io, router, limits.header_timeout, cancel).await;
            drop(permit);
        });
    }
    conns.close();
    conns.wait().await;
}

/// A stretch of time in which the connection cap was reached.
struct Full {
    /// When the cap was first reached.
    since: tokio::time::Instant,
    /// The last time a client had to wait for a slot.
    last: tokio::time::Instant,
}

/// Serves one connection: HTTP/1.1 with keep-alive, the header timeout,
/// and a graceful end at shutdown or at [`MAX_CONNECTION_LIFETIME`].
async fn connection<I>(
    name: &'static str,
    io: I,
    router: Router,
    header_timeout: Duration,
    cancel: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(router));
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(listener = name, error = %e, "connection ended with an error");
            }
            return;
        }
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(MAX_CONNECTION_LIFETIME) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(header_timeout, conn).await;
}

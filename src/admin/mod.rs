//! The admin API: HTTP/1.1 + JSON on a Unix socket, the only place that
//! changes anything in a running daemon (overrides, trips, replans, link).
//! The socket is mode 0660 with the configured group; every request's peer
//! is checked ([`peer`]) and anyone but root, the daemon's own user or a
//! member of the group gets 403 and one log line.
//!
//! Paths are versioned (`/v1/...`) so a newer CLI can tell an older
//! daemon. Every read is a view of the read model
//! ([`crate::daemon::readmodel`]); every change goes through the fleet's
//! user loops ([`crate::daemon::fleet::Fleet::steer`]), never around them.
//! The CLI's client for the socket is [`client`].

pub mod client;
pub mod peer;
pub mod routes;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::ConnectInfo;
use tokio::net::UnixListener;

use crate::config::{AdminConfig, ConnLimits};
use crate::daemon::http::Api;
use peer::{Allowed, Peer};

/// The largest request body (an override or a trip is a few dozen bytes).
pub const MAX_BODY: usize = 16 * 1024;
/// The most journal entries one request returns.
pub const MAX_JOURNAL: usize = 10_000;

/// What the admin handlers share.
pub struct Admin {
    /// The daemon's HTTP state: read model, fleet, link flow settings.
    pub api: Arc<Api>,
    /// Who may use the socket.
    pub allowed: Allowed,
}

/// Makes the socket: removes a stale one (nothing answers on it), refuses
/// to take over one a running daemon answers on, binds, sets mode 0660 and
/// the configured group. Returns the listener and who may use it.
pub async fn bind(config: &AdminConfig) -> anyhow::Result<(UnixListener, Allowed)> {
    let path = &config.socket;
    let gid = match &config.group {
        None => None,
        Some(name) => Some(
            peer::group_id(name, Path::new("/etc/group"))
                .with_context(|| format!("[admin] group {name:?} does not exist"))?,
        ),
    };
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            anyhow::bail!(
                "admin socket {} is in use: is another smartcharged running?",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale admin socket {}", path.display()))?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {} for the admin socket", dir.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot make the admin socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("cannot give {} its group", path.display()))?;
    }
    // The socket is ours: its owner is the daemon's uid.
    let own_uid = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .uid();
    Ok((listener, Allowed { own_uid, gid }))
}

/// Serves the admin API until the daemon shuts down, within `limits` (see
/// [`crate::daemon::listener`]); removes the socket file at the end. Each
/// connection's peer credentials are taken when it is accepted.
pub async fn serve(listener: UnixListener, admin: Arc<Admin>, limits: ConnLimits) {
    let cancel = admin.api.cancel.clone();
    let path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf));
    let app = routes::router(admin);
    crate::daemon::listener::serve("admin", listener, limits, cancel, move |stream| {
        app.clone()
            .layer(axum::Extension(ConnectInfo(Peer::of(stream))))
    })
    .await;
    if let Some(p) = path {
        let _ = std::fs::remove_file(p);
    }
}

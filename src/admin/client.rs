//! The CLI's client for the admin socket: HTTP/1.1 over the Unix socket
//! (reqwest's `unix_socket`), JSON in and out. "No daemon answers" is its
//! own error, so commands can fall back to the store or exit 69.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest answer read (a status of a large fleet).
pub const MAX_ANSWER: usize = 64 << 20;
/// How long one request may take (a charge-now waits for its START).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("no daemon answers on {}: {reason} (is smartcharged running? see --socket)", path.display())]
    NoDaemon {
        /// The socket.
        path: PathBuf,
        /// What connecting said.
        reason: String,
    },
    /// The daemon answered with an error.
    #[error("{message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The daemon's message.
        message: String,
    },
    /// Anything else (a broken answer, a timeout).
    #[error("admin socket {}: {reason}", path.display())]
    Broken {
        /// The socket.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A client for one socket.
pub struct Client {
    /// The HTTP client bound to the socket.
    http: reqwest::Client,
    /// The socket.
    path: PathBuf,
}

impl Client {
    /// A client for the socket at `path`.
    pub fn new(path: &Path) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .unix_socket(path)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Broken {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Client {
            http,
            path: path.to_owned(),
        })
    }

    /// `GET path` (with its query), decoded.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.http.get(self.url(path))).await
    }

    /// `POST path` with a JSON body, decoded.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    fn url(&self, path: &str) -> String {
        format!("http://localhost{path}")
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let broken = |reason: String| ClientError::Broken {
            path: self.path.clone(),
            reason,
        };
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                let reason = std::error::Error::source(&e)
                    .and_then(|s| s.source())
                    .map_or_else(|| e.to_string(), |s| s.to_string());
                ClientError::NoDaemon {
                    path: self.path.clone(),
                    reason,
                }
            } else {
                broken(e.to_string())
            }
        })?;
        let status = resp.status();
        let body = crate::limits::read_capped(resp, MAX_ANSWER)
            .await
            .map_err(|e| broken(e.to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| crate::limits::clip(&String::from_utf8_lossy(&body)));
            return Err(ClientError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| broken(format!("unreadable answer: {e}")))
    }
}

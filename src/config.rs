//! Configuration: TOML -> [`RawConfig`] (serde, unknown keys rejected) ->
//! validated [`Config`]. Everything is checked before the daemon binds or
//! connects anything; every error names the file, line and column, what is
//! wrong and how to fix it, and maps to exit code 78 (EX_CONFIG).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::limits;
use crate::secret::Secret;

/// The Enode test environment, the default so a first run cannot touch
/// production by accident.
pub const DEFAULT_API_URL: &str = "https://api.test.enode.io/";
/// Default OAuth2 authorization endpoint (test environment).
pub const DEFAULT_AUTH_URL: &str = "https://link.test.enode.io/oauth2/auth";
/// Default OAuth2 token endpoint (test environment).
pub const DEFAULT_TOKEN_URL: &str = "https://link.test.enode.io/oauth2/token";
/// Default listen address of the OAuth callback and health endpoint.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Default store directory (systemd's StateDirectory).
pub const DEFAULT_STORE: &str = "/var/lib/smartcharged";
/// The admin socket (systemd's RuntimeDirectory).
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/smartcharged/admin.sock";
/// The longest socket path: `sun_path` holds 108 bytes with its NUL.
pub const MAX_SOCKET_PATH: usize = 107;
/// Environment variable that may carry the client secret.
pub const SECRET_ENV: &str = "SMARTCHARGED_CLIENT_SECRET";

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (relative paths inside resolve against its directory).
    pub source: PathBuf,
    /// Enode endpoints and client credentials.
    pub enode: EnodeConfig,
    /// Where the store lives.
    pub store: StoreConfig,
    /// The HTTP listener (OAuth callback, health).
    pub http: HttpConfig,
    /// The admin socket.
    pub admin: AdminConfig,
    /// Token refresh timing.
    pub tokens: TokenConfig,
    /// The price source and tariff, when `[prices]` is present.
    pub prices: Option<crate::prices::config::PricesConfig>,
    /// Per-vehicle charging policy (`[policy]`), defaults when absent.
    pub policy: crate::daemon::policy::PolicyConfig,
    /// The Firehose webhook receiver, when `[webhooks]` is present.
    pub webhooks: Option<WebhooksConfig>,
    /// Things that are accepted but deserve a warning in the log (no secrets).
    pub warnings: Vec<String>,
}

/// Everything the daemon needs to talk to Enode, validated.
#[derive(Debug, Clone)]
pub struct EnodeConfig {
    /// Base URL of the Enode API (e.g. `https://api.test.enode.io/`).
    pub api_url: Url,
    /// OAuth2 authorization endpoint (where users give consent).
    pub auth_url: Url,
    /// OAuth2 token endpoint.
    pub token_url: Url,
    /// OAuth2 client id.
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: Secret,
    /// Where the authorization server sends the user back after consent.
    pub redirect_uri: Url,
    /// Scopes requested for user tokens (`offline_access` brings a refresh token).
    pub scopes: Vec<String>,
    /// Whether the link flow sends a PKCE S256 challenge.
    pub pkce: bool,
    /// Upper bound on every HTTP request to Enode, connect to last byte
    /// (and on connecting for token calls).
    pub request_timeout: Duration,
    /// Upper bound on one token call. Much longer than `request_timeout`:
    /// a refresh abandoned after the server rotated the token loses the user.
    pub token_timeout: Duration,
}

/// The store section, validated.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The store directory (absolute, or resolved against the config file).
    pub path: PathBuf,
    /// Command journal entries older than this are pruned hourly.
    pub journal_retention: Duration,
}

/// The HTTP section, validated.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Address the callback/health listener binds.
    pub listen: SocketAddr,
    /// Connection cap and header timeout of the listener.
    pub conns: ConnLimits,
}

/// What one listener allows its clients (the TCP listener and the admin
/// socket each have their own): a connection that holds a slot without
/// sending a request is closed after `header_timeout`, and no more than
/// `max_connections` are served at once, so a slowloris client cannot take
/// the daemon's file descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once; further ones wait in the kernel's
    /// backlog until one closes.
    pub max_connections: u32,
    /// Time to send a whole request head, and the longest idle time
    /// between two requests of one connection.
    pub header_timeout: Duration,
}

/// Default connection cap of the TCP listener.
pub const DEFAULT_HTTP_MAX_CONNECTIONS: u32 = 256;
/// Default connection cap of the admin socket.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: u32 = 64;
/// Default header (and idle) timeout of both listeners, seconds.
pub const DEFAULT_HEADER_TIMEOUT_S: u64 = 10;

/// The `[webhooks]` section, validated.
#[derive(Debug, Clone)]
pub struct WebhooksConfig {
    /// The path of the receiver on the HTTP listener.
    pub path: String,
    /// The file holding the shared secret.
    pub secret_file: PathBuf,
    /// The operator provisions the secret (`secret_file` was set): `webhook
    /// register` sends it instead of generating one.
    pub provisioned: bool,
    /// Poll interval of every user while webhooks deliver: a safety net.
    pub safety_poll: Duration,
    /// No delivery for this long (the daemon asks Enode for a test event
    /// after half of it) and polling returns to normal.
    pub silence: Duration,
}

/// The default receiver path.
pub const DEFAULT_WEBHOOK_PATH: &str = "/webhooks/enode";

/// The admin socket, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Where the Unix socket is made.
    pub socket: PathBuf,
    /// The group whose members may use it (besides root and the daemon's
    /// own user); the socket gets this group and mode 0660.
    pub group: Option<String>,
    /// Connection cap and header timeout of the socket.
    pub conns: ConnLimits,
}

/// Token refresh timing, validated.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Refresh this long before an access token expires (capped at half
    /// the token's lifetime for very short-lived tokens).
    pub refresh_lead: Duration,
    /// Each refresh happens up to this much earlier, at random, so users
    /// linked together do not refresh in one burst.
    pub refresh_jitter: Duration,
    /// How long a started link flow stays valid.
    pub link_timeout: Duration,
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {}: {source}", file.display())]
    Read {
        /// The config file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not valid.
    #[error("{}:{line}:{column}: {message}{}", file.display(), help.as_deref().map(|h| format!("; {h}")).unwrap_or_default())]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// 1-based line of the offending text.
        line: usize,
        /// 1-based column of the offending text.
        column: usize,
        /// What is wrong.
        message: String,
        /// How to fix it.
        help: Option<String>,
    },
}

/// The TOML document as written, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[enode]`
    pub enode: RawEnode,
    /// `[store]`
    #[serde(default)]
    pub store: RawStore,
    /// `[http]`
    #[serde(default)]
    pub http: RawHttp,
    /// `[tokens]`
    #[serde(default)]
    pub tokens: RawTokens,
    /// `[admin]`
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[prices]` (see `prices::config`)
    #[serde(default)]
    pub prices: Option<crate::prices::config::RawPricesConfig>,
    /// `[policy]` (see `daemon::policy`)
    #[serde(default)]
    pub policy: crate::daemon::policy::RawPolicyConfig,
    /// `[webhooks]`
    #[serde(default)]
    pub webhooks: Option<RawWebhooks>,
}

/// `[webhooks]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhooks {
    /// Receiver path, e.g. "/webhooks/enode".
    pub path: Option<Spanned<String>>,
    /// File with the shared secret (provisioned by the operator).
    pub secret_file: Option<Spanned<String>>,
    /// Poll interval while webhooks deliver, e.g. "1h".
    pub safety_poll: Option<Spanned<String>>,
    /// Silence after which polling returns to normal, e.g. "15m".
    pub silence: Option<Spanned<String>>,
}

/// `[enode]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnode {
    /// API base URL.
    pub api_url: Option<Spanned<String>>,
    /// Authorization endpoint.
    pub auth_url: Option<Spanned<String>>,
    /// Token endpoint.
    pub token_url: Option<Spanned<String>>,
    /// OAuth2 client id.
    pub client_id: Spanned<String>,
    /// Inline client secret (accepted with a warning).
    pub client_secret: Option<Spanned<Secret>>,
    /// File holding the client secret.
    pub client_secret_file: Option<Spanned<String>>,
    /// OAuth redirect URI.
    pub redirect_uri: Option<Spanned<String>>,
    /// Space-separated scopes.
    pub scopes: Option<Spanned<String>>,
    /// Send a PKCE challenge (default true).
    pub pkce: Option<bool>,
    /// Per-request timeout, e.g. "20s".
    pub request_timeout: Option<Spanned<String>>,
    /// Token call deadline, e.g. "2m".
    pub token_timeout: Option<Spanned<String>>,
}

/// `[store]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// Store directory.
    pub path: Option<Spanned<String>>,
    /// How long journal entries are kept, e.g. "90d".
    pub journal_retention: Option<Spanned<String>>,
}

/// `[http]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Listen address.
    pub listen: Option<Spanned<String>>,
    /// Connections served at once.
    pub max_connections: Option<Spanned<i64>>,
    /// Request head (and idle) timeout, e.g. "10s".
    pub header_timeout: Option<Spanned<String>>,
}

/// `[admin]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Socket path.
    pub socket: Option<Spanned<String>>,
    /// Group allowed to use the socket.
    pub group: Option<Spanned<String>>,
    /// Connections served at once.
    pub max_connections: Option<Spanned<i64>>,
    /// Request head (and idle) timeout, e.g. "10s".
    pub header_timeout: Option<Spanned<String>>,
}

/// `[tokens]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    /// Refresh lead time, e.g. "5m".
    pub refresh_lead: Option<Spanned<String>>,
    /// Refresh jitter, e.g. "1m".
    pub refresh_jitter: Option<Spanned<String>>,
    /// Link flow lifetime, e.g. "30m".
    pub link_timeout: Option<Spanned<String>>,
}

/// Where the loader looks up environment variables; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for production use.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path, env: Env<'_>) -> Result<Config, ConfigError> {
        let text = read_text(path)?;
        Self::parse(&text, path, env)
    }

    /// Validates config `text` as if read from `path`.
    pub fn parse(text: &str, path: &Path, env: Env<'_>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, path, &e))?;
        let invalid = |e: FieldError| locate(text, path, e);
        let base = path.parent().unwrap_or(Path::new("."));
        let mut warnings = Vec::new();
        let e = raw.enode;

        let url =
            |v: &Option<Spanned<String>>, default: &str, key: &str| -> Result<Url, ConfigError> {
                match v {
                    None => Ok(Url::parse(default).expect("default URLs parse")),
                    Some(s) => parse_url(s, key).map_err(invalid),
                }
            };
        let api_url = url(&e.api_url, DEFAULT_API_URL, "api_url")?;
        let auth_url = url(&e.auth_url, DEFAULT_AUTH_URL, "auth_url")?;
        let token_url = url(&e.token_url, DEFAULT_TOKEN_URL, "token_url")?;
        let listen = match &raw.http.listen {
            None => DEFAULT_LISTEN.parse().expect("default listen parses"),
            Some(s) => s.get_ref().parse::<SocketAddr>().map_err(|_| {
                invalid(FieldError::at(
                    s.span(),
                    format!("`{}` is not a socket address", s.get_ref()),
                    "write an address with a port, e.g. \"127.0.0.1:8787\"",
                ))
            })?,
        };
        let default_redirect = format!("http://{listen}/callback");
        let redirect_uri = url(&e.redirect_uri, &default_redirect, "redirect_uri")?;

        let client_id = e.client_id.get_ref().trim().to_owned();
        if client_id.is_empty() {
            return Err(invalid(FieldError::at(
                e.client_id.span(),
                "client_id is empty",
                "set the client id Enode gave you",
            )));
        }

        let client_secret = if let Some(f) = &e.client_secret_file {
            let file = base.join(f.get_ref());
            read_secret(&file).map_err(|why| {
                invalid(FieldError::at(
                    f.span(),
                    format!("cannot read client_secret_file {}: {why}", file.display()),
                    "make the file readable by the daemon, or use a systemd credential",
                ))
            })?
        } else if let Some(dir) = env("CREDENTIALS_DIRECTORY") {
            let file = Path::new(&dir).join("client_secret");
            match read_secret(&file) {
                Ok(s) => s,
                Err(_) => secret_from_env_or_inline(&e, env, &mut warnings)
                    .ok_or_else(|| missing_secret(text, path))?,
            }
        } else {
            secret_from_env_or_inline(&e, env, &mut warnings)
                .ok_or_else(|| missing_secret(text, path))?
        };

        let scopes: Vec<String> = match &e.scopes {
            None => vec!["offline_access".into(), "all".into()],
            Some(s) => s.get_ref().split_whitespace().map(str::to_owned).collect(),
        };
        if let Some(s) = &e.scopes {
            if scopes.is_empty() {
                return Err(invalid(FieldError::at(
                    s.span(),
                    "scopes is empty",
                    "use \"offline_access all\" unless you need less",
                )));
            }
            if !scopes.iter().any(|x| x == "offline_access") {
                return Err(invalid(FieldError::at(
                    s.span(),
                    "scopes lack offline_access: without a refresh token every user would need relinking within the hour",
                    "add offline_access, e.g. \"offline_access all\"",
                )));
            }
        }

        let dur = |v: &Option<Spanned<String>>,
                   bounds: &limits::Bounds,
                   default: u64|
         -> Result<Duration, ConfigError> {
            match v {
                None => Ok(Duration::from_secs(default)),
                Some(s) => bounded_duration(s, bounds).map_err(invalid),
            }
        };
        let request_timeout = dur(&e.request_timeout, &limits::REQUEST_TIMEOUT, 20)?;
        let token_timeout = dur(&e.token_timeout, &limits::TOKEN_TIMEOUT, 120)?;
        let tokens = TokenConfig {
            refresh_lead: dur(&raw.tokens.refresh_lead, &limits::REFRESH_LEAD, 300)?,
            refresh_jitter: dur(&raw.tokens.refresh_jitter, &limits::REFRESH_JITTER, 60)?,
            link_timeout: dur(&raw.tokens.link_timeout, &limits::LINK_TIMEOUT, 1800)?,
        };
        let journal_retention = dur(
            &raw.store.journal_retention,
            &limits::JOURNAL_RETENTION,
            90 * 86_400,
        )?;
        let store_path = match &raw.store.path {
            None => PathBuf::from(DEFAULT_STORE),
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(invalid(FieldError::at(
                    p.span(),
                    "store path is empty",
                    format!("set a directory, e.g. \"{DEFAULT_STORE}\""),
                )))
            }
            Some(p) => base.join(p.get_ref()),
        };

        let socket = match &raw.admin.socket {
            None => PathBuf::from(DEFAULT_ADMIN_SOCKET),
            Some(p) => {
                let path = base.join(p.get_ref());
                if p.get_ref().trim().is_empty() || path.as_os_str().len() > MAX_SOCKET_PATH {
                    return Err(invalid(FieldError::at(
                        p.span(),
                        "admin socket path is empty or longer than 107 bytes",
                        format!("set a short path, e.g. \"{DEFAULT_ADMIN_SOCKET}\""),
                    )));
                }
                path
            }
        };
        let group = match &raw.admin.group {
            None => None,
            Some(g) => {
                let name = g.get_ref();
                let ok = (1..=32).contains(&name.len())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                    && !name.starts_with('-');
                if !ok {
                    return Err(invalid(FieldError::at(
                        g.span(),
                        format!("`{}` is not a group name", crate::limits::clip(name)),
                        "write a group name of 1-32 letters, digits, . _ -, e.g. \"smartcharged\"",
                    )));
                }
                Some(name.clone())
            }
        };
        let conn_limits = |max: &Option<Spanned<i64>>,
                           timeout: &Option<Spanned<String>>,
                           default_max: u32|
         -> Result<ConnLimits, ConfigError> {
            let max_connections = match max {
                None => default_max,
                Some(m) => u32::try_from(*m.get_ref())
                    .ok()
                    .filter(|n| limits::MAX_CONNECTIONS.contains(n))
                    .ok_or_else(|| {
                        invalid(FieldError::at(
                            m.span(),
                            format!(
                                "max_connections {} is out of range ({} to {})",
                                m.get_ref(),
                                limits::MAX_CONNECTIONS.start(),
                                limits::MAX_CONNECTIONS.end()
                            ),
                            format!("write a number, e.g. {default_max}"),
                        ))
                    })?,
            };
            Ok(ConnLimits {
                max_connections,
                header_timeout: dur(timeout, &limits::HEADER_TIMEOUT, DEFAULT_HEADER_TIMEOUT_S)?,
            })
        };
        let http = HttpConfig {
            listen,
            conns: conn_limits(
                &raw.http.max_connections,
                &raw.http.header_timeout,
                DEFAULT_HTTP_MAX_CONNECTIONS,
            )?,
        };
        let admin = AdminConfig {
            socket,
            group,
            conns: conn_limits(
                &raw.admin.max_connections,
                &raw.admin.header_timeout,
                DEFAULT_ADMIN_MAX_CONNECTIONS,
            )?,
        };

        let prices = match raw.prices {
            None => None,
            Some(p) => Some(p.validate_with(base, env).map_err(invalid)?),
        };
        let policy = raw
            .policy
            .validate(prices.as_ref().map(|p| p.tz))
            .map_err(invalid)?;

        let webhooks = match &raw.webhooks {
            None => None,
            Some(w) => {
                let path = match &w.path {
                    None => DEFAULT_WEBHOOK_PATH.to_owned(),
                    Some(p) => {
                        let v = p.get_ref();
                        let reserved = ["/health", "/status", "/link", redirect_uri.path()];
                        if !v.starts_with('/')
                            || v.len() > 256
                            || !v.chars().all(|c| c.is_ascii_graphic())
                            || v.contains("{")
                            || reserved
                                .iter()
                                .any(|r| v == r || v.starts_with(&format!("{r}/")))
                        {
                            return Err(invalid(FieldError::at(
                                p.span(),
                                format!("webhook path `{}` is not usable", limits::clip(v)),
                                format!("write an absolute path of its own, e.g. \"{DEFAULT_WEBHOOK_PATH}\""),
                            )));
                        }
                        v.clone()
                    }
                };
                let (secret_file, provisioned) = match &w.secret_file {
                    Some(f) => (base.join(f.get_ref()), true),
                    None => (
                        crate::store::default_webhook_secret_file(&store_path),
                        false,
                    ),
                };
                Some(WebhooksConfig {
                    path,
                    secret_file,
                    provisioned,
                    safety_poll: dur(&w.safety_poll, &limits::SAFETY_POLL, 7200)?,
                    silence: dur(&w.silence, &limits::WEBHOOK_SILENCE, 900)?,
                })
            }
        };

        Ok(Config {
            source: path.to_owned(),
            enode: EnodeConfig {
                api_url,
                auth_url,
                token_url,
                client_id,
                client_secret,
                redirect_uri,
                scopes,
                pkce: e.pkce.unwrap_or(true),
                request_timeout,
                token_timeout,
            },
            store: StoreConfig {
                path: store_path,
                journal_retention,
            },
            http,
            admin,
            tokens,
            prices,
            policy,
            webhooks,
            warnings,
        })
    }

    /// One line describing what this config does, for `check-config`.
    pub fn summary(&self) -> String {
        let prices = match &self.prices {
            Some(p) => format!("{} ({}, {})", p.source().id(), p.tz, p.currency),
            None => "none".to_owned(),
        };
        let sites = match self.policy.site_count() {
            0 => String::new(),
            n => format!(", shared connections {n}"),
        };
        format!(
            "{}: ok: api {}, client {}, store {}, listen {}, scopes \"{}\", pkce {}, prices {prices}{sites}",
            self.source.display(),
            self.enode.api_url,
            self.enode.client_id,
            self.store.path.display(),
            self.http.listen,
            self.enode.scopes.join(" "),
            if self.enode.pkce { "on" } else { "off" },
        )
    }
}

/// Reads a config file as UTF-8 text; invalid UTF-8 is reported at the line
/// and column of its first bad byte.
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(&e.as_bytes()[..good]);
        let (line, column) = line_col(&text, good);
        ConfigError::Invalid {
            file: path.to_owned(),
            line,
            column,
            message: "the file is not valid UTF-8".into(),
            help: Some("save the file as UTF-8".into()),
        }
    })
}

/// The secret from the environment, else the inline one (with a warning).
fn secret_from_env_or_inline(
    e: &RawEnode,
    env: Env<'_>,
    warnings: &mut Vec<String>,
) -> Option<Secret> {
    if let Some(s) = env(SECRET_ENV).filter(|s| !s.trim().is_empty()) {
        return Some(Secret::new(s.trim()));
    }
    e.client_secret.as_ref().map(|s| {
        warnings.push(
            "client_secret is written in the config file; prefer client_secret_file or a systemd credential"
                .into(),
        );
        s.get_ref().clone()
    })
}

/// Reads a secret file, trimming surrounding whitespace (editors add a newline).
fn read_secret(file: &Path) -> Result<Secret, String> {
    let text = crate::limits::read_secret_file(file).map_err(|e| e.to_string())?;
    let t = text.trim();
    if t.is_empty() {
        return Err("the file is empty".into());
    }
    Ok(Secret::new(t))
}

/// The error for a config with no client secret anywhere, at `[enode]`.
fn missing_secret(text: &str, path: &Path) -> ConfigError {
    let at = text.find("[enode]").unwrap_or(0);
    locate(
        text,
        path,
        FieldError::at(
            at..at + 7,
            "no client secret",
            format!(
                "set client_secret_file, pass a systemd credential named client_secret, or set {SECRET_ENV}"
            ),
        ),
    )
}

fn parse_url(s: &Spanned<String>, key: &str) -> Result<Url, FieldError> {
    let u = Url::parse(s.get_ref()).map_err(|e| {
        FieldError::at(
            s.span(),
            format!("{key} `{}` is not a URL: {e}", s.get_ref()),
            "write an absolute URL such as \"https://api.test.enode.io/\"",
        )
    })?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(FieldError::at(
            s.span(),
            format!("{key} `{}` is not an http(s) URL", s.get_ref()),
            "use an http:// or https:// URL with a host",
        ));
    }
    Ok(u)
}

/// Parses a spanned duration string into a [`FieldError`] on failure.
pub fn spanned_duration(s: &Spanned<String>) -> Result<Duration, FieldError> {
    parse_duration(s.get_ref()).map_err(|why| {
        FieldError::at(
            s.span(),
            format!("bad duration: {why}"),
            "write a number with a unit, e.g. \"90s\", \"5m\", \"1h30m\"",
        )
    })
}

/// Parses a spanned duration and checks it against its documented range.
pub fn bounded_duration(
    s: &Spanned<String>,
    bounds: &limits::Bounds,
) -> Result<Duration, FieldError> {
    let d = spanned_duration(s)?;
    bounds.check(d).map_err(|why| {
        FieldError::at(
            s.span(),
            why,
            format!(
                "write a duration from {} to {}",
                limits::show(bounds.min),
                limits::show(bounds.max)
            ),
        )
    })
}

/// Turns a field error into a located config error.
pub fn locate(text: &str, path: &Path, e: FieldError) -> ConfigError {
    let (line, column) = line_col(text, e.span.map_or(0, |s| s.start));
    ConfigError::Invalid {
        file: path.to_owned(),
        line,
        column,
        message: e.message,
        help: Some(e.help),
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |n| before.len() - n - 1)
        + 1;
    (line, column)
}

/// Maps a TOML/serde error to a located error, with a did-you-mean hint for
/// unknown keys.
fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
    let message = e.message().trim().to_owned();
    let help = unknown_key_hint(&message).or_else(|| {
        Some(if message.starts_with("missing field") {
            "add the key; config/smartcharged.toml shows every key with its meaning".to_owned()
        } else {
            "fix the TOML at this position; config/smartcharged.toml shows the format".to_owned()
        })
    });
    ConfigError::Invalid {
        file: path.to_owned(),
        line,
        column,
        message,
        help,
    }
}

/// "did you mean `x`?" for serde's "unknown field `y`, expected one of ...".
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let best = expected
        .iter()
        .map(|c| (levenshtein(field, c), *c))
        .min()
        .filter(|(d, c)| *d <= (c.len().max(field.len()) / 3).max(2));
    Some(match best {
        Some((_, c)) => format!("did you mean `{c}`?"),
        None if !expected.is_empty() => format!("remove it; known keys: {}", expected.join(", ")),
        None => "remove it".to_owned(),
    })
}

/// Edit distance, for did-you-mean hints.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A validation error in one field of a config file. `span` is the byte
/// range of the offending value in the file (from `toml::Spanned`), which the
/// loader turns into `file:line:column`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Byte range of the value in the TOML text, when known.
    pub span: Option<std::ops::Range<usize>>,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl FieldError {
    /// An error at a spanned value.
    pub fn at(
        span: std::ops::Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        FieldError {
            span: Some(span),
            message: message.into(),
            help: help.into(),
        }
    }
}

/// Parses a duration such as `90s`, `5m`, `2h`, `1h30m`, `250ms` or `1d`.
/// A bare number is rejected so that a unit is never guessed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{s}` is not a duration"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}` is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            "" => return Err(format!("`{s}` has no unit (use ms, s, m, h or d)")),
            other => {
                return Err(format!(
                    "unknown unit `{other}` in `{s}` (use ms, s, m, h or d)"
                ))
            }
        };
        total = total.saturating_add(d);
    }
    Ok(total)
}

#[cfg(test)]
mod tests;

//! `smartcharged link`, `unlink` and `users`: manage linked users.
//!
//! Without a daemon they open the store themselves; when a daemon holds
//! the store (its lock says so) they ask it over the admin socket, so the
//! user is linked, unlinked or listed by the process that runs it.

use std::io::{BufRead, Write};
use std::net::SocketAddr;

use anyhow::Context as _;
use clock::Clock;
use tokio::sync::oneshot;
use url::Url;

use super::admin::{request_held, Backend};
use super::common::{self, ConfigArg};
use super::{exit, CmdResult, Failure};
use crate::admin::routes::UnlinkAnswer;
use crate::daemon::readmodel::UserView;
use crate::link::{self, LinkError};
use crate::users::UserId;

/// Arguments of `link`.
#[derive(clap::Args, Debug)]
pub struct LinkArgs {
    /// The id the user gets at Enode: 1-128 of A-Z a-z 0-9 . _ @ - (e.g. your own user key).
    pub user_id: UserId,
    /// Preselect a vendor in Enode Link (TESLA, BMW, AUDI, VOLKSWAGEN,
    /// HYUNDAI, PEUGEOT or NISSAN, in any case).
    #[arg(long, value_parser = |s: &str| crate::enode::vendor(s).map(str::to_owned))]
    pub vendor: Option<String>,
    /// Force the language of Enode Link (a BCP 47 tag, e.g. nb-NO).
    #[arg(long, value_parser = |s: &str| crate::enode::language(s).map(str::to_owned))]
    pub language: Option<String>,
    /// Read the redirected URL from stdin instead of listening for the
    /// browser (for a headless host: open the URL elsewhere, paste the
    /// address the browser ends on).
    #[arg(long)]
    pub paste: bool,
    /// The running daemon's admin socket (default: `[admin] socket`).
    #[arg(long, value_name = "PATH")]
    pub socket: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Arguments of `unlink`.
#[derive(clap::Args, Debug)]
pub struct UnlinkArgs {
    /// The user to delete at Enode and locally.
    pub user_id: UserId,
    /// Delete the user at Enode even if it is not linked here (an orphan
    /// at Enode); without it, an unknown user is an error.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub socket: super::admin::SocketArgs,
}

/// Arguments of `users`.
#[derive(clap::Args, Debug)]
pub struct UsersArgs {
    #[command(flatten)]
    pub socket: super::admin::SocketArgs,
}

/// Runs the link flow: prints the authorization URL alone on the first line
/// of stdout, waits for the callback, stores the user and tokens.
pub fn run_link(args: LinkArgs) -> CmdResult {
    let config = common::load_config(&args.config.config)?;
    let store = match crate::store::Store::open(&config.store.path) {
        Ok(s) => s,
        Err(crate::store::StoreError::InUse { holder, .. }) => {
            return link_via_daemon(&config, &args, &holder);
        }
        Err(e) => return Err(Failure::new(exit::FAILURE, e)),
    };
    let clock = Clock::system();
    let client = common::client(&config, &clock)?;
    common::runtime()?.block_on(async {
        // Bind before printing the URL, so a fast browser cannot miss us.
        let listener = if args.paste {
            None
        } else {
            Some(
                tokio::net::TcpListener::bind(config.http.listen)
                    .await
                    .with_context(|| {
                        format!("cannot listen on {} for the callback", config.http.listen)
                    })?,
            )
        };
        let user = args.user_id.clone();
        let started = link::start(
            &client,
            &store,
            &clock,
            link::Request {
                user: &user,
                vendor: args.vendor.as_deref(),
                language: args.language.as_deref(),
                pkce: config.enode.pkce,
                timeout: config.tokens.link_timeout,
            },
        )
        .await
        .map_err(|e| match e {
            LinkError::BadRequest(_) => Failure::new(exit::DATAERR, e),
            e => Failure::new(exit::UNAVAILABLE, e),
        })?;
        println!("{}", started.authorize_url);
        std::io::stdout().flush()?;
        let callback = match listener {
            None => {
                eprintln!("open the URL above in a browser, then paste the address it ends on:");
                read_pasted_url()?
            }
            Some(l) => {
                eprintln!(
                    "open the URL above in a browser; waiting for the redirect to {}",
                    config.enode.redirect_uri
                );
                wait_for_callback(l, &config.enode.redirect_uri).await?
            }
        };
        let (user, tokens) =
            link::complete(&client, &store, &clock, &started.link_state, &callback)
                .await
                .map_err(|e| match e {
                    LinkError::Exchange(_) | LinkError::Start(_) => {
                        Failure::new(exit::UNAVAILABLE, e)
                    }
                    e => Failure::new(exit::FAILURE, e),
                })?;
        tracing::info!(user.id = %user.id, "user linked");
        println!(
            "linked user {} (access token valid until {})",
            user.id, tokens.expires_at
        );
        Ok(())
    })
}

/// The store is held by a running daemon: let it run the flow. The
/// daemon stores the session, serves the redirect on its listener and
/// starts controlling the user's vehicles as soon as the link completes.
fn link_via_daemon(config: &crate::config::Config, args: &LinkArgs, holder: &str) -> CmdResult {
    let base = format!("http://{}", config.http.listen);
    common::runtime()?.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(config.enode.request_timeout * 2)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let socket = args.socket.clone().unwrap_or_else(|| config.admin.socket.clone());
        let admin = crate::admin::client::Client::new(&socket)
            .map_err(|e| Failure::new(exit::UNAVAILABLE, e))?;
        let mut path = format!("/v1/link/{}", args.user_id.as_str());
        {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            if let Some(v) = &args.vendor {
                q.append_pair("vendor", v);
            }
            if let Some(l) = &args.language {
                q.append_pair("language", l);
            }
            let q = q.finish();
            if !q.is_empty() {
                path = format!("{path}?{q}");
            }
        }
        let v: serde_json::Value = admin
            .post(&path, &serde_json::json!({}))
            .await
            .map_err(|e| match e {
                crate::admin::client::ClientError::NoDaemon { .. } => Failure::new(
                    exit::UNAVAILABLE,
                    anyhow::anyhow!("the store is in use by {holder}, and {e}"),
                ),
                e => Failure::new(
                    exit::UNAVAILABLE,
                    anyhow::anyhow!("the daemon refused to start linking: {e}"),
                ),
            })?;
        let authorize = v["authorize_url"].as_str().context("the daemon's answer has no authorize_url")?;
        println!("{authorize}");
        std::io::stdout().flush()?;
        if !args.paste {
            eprintln!(
                "the running daemon ({holder}) receives the redirect to {} and stores the user; see its log",
                config.enode.redirect_uri
            );
            return Ok(());
        }
        eprintln!("open the URL above in a browser, then paste the address it ends on:");
        let pasted = read_pasted_url()?;
        let mut forward = Url::parse(&base)?.join(config.enode.redirect_uri.path())?;
        forward.set_query(pasted.query());
        let resp = http.get(forward).send().await?;
        let ok = resp.status().is_success();
        let text = resp.text().await?;
        if ok {
            println!("{}", text.trim());
            Ok(())
        } else {
            Err(Failure::new(exit::FAILURE, anyhow::anyhow!("{}", text.trim())))
        }
    })
}

/// Reads one URL from stdin.
fn read_pasted_url() -> Result<Url, Failure> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Url::parse(line.trim()).map_err(|e| {
        Failure::new(
            exit::DATAERR,
            anyhow::anyhow!("the pasted text is not a URL: {e}"),
        )
    })
}

/// Serves the redirect URI's path until the browser arrives; returns the
/// full callback URL.
async fn wait_for_callback(
    listener: tokio::net::TcpListener,
    redirect: &Url,
) -> Result<Url, Failure> {
    let (tx, rx) = oneshot::channel::<Url>();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let base = redirect.clone();
    let path = redirect.path().to_owned();
    let handler = move |uri: axum::http::Uri| {
        let mut url = base.clone();
        url.set_query(uri.query());
        if let Some(tx) = tx.lock().expect("callback lock").take() {
            let _ = tx.send(url);
        }
        async {
            "smartcharged received the answer; you can close this window and return to the terminal.\n"
        }
    };
    let app = axum::Router::new().route(&path, axum::routing::get(handler));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stop_rx.await;
        })
        .await
    });
    let url = rx.await.context("the callback listener stopped")?;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(url)
}

/// Deletes the user at Enode, then locally: through the running daemon
/// (which also stops controlling the user's vehicles), or, when none
/// holds the store, directly, in the same crash-safe steps
/// ([`crate::unlink`]). A user the store does not know is an error unless
/// `--force`.
pub fn run_unlink(args: UnlinkArgs) -> CmdResult {
    use crate::unlink::{self, UnlinkError};
    let user = args.user_id;
    let answer: UnlinkAnswer = match Backend::choose(&args.socket)? {
        Backend::Daemon(held) => request_held(
            &args.socket,
            held,
            Some(serde_json::json!({})),
            &format!(
                "/v1/unlink/{user}{}",
                if args.force { "?force=true" } else { "" }
            ),
        )?,
        Backend::Store(store, config) => {
            let clock = Clock::system();
            let client = common::client(&config, &clock)?;
            let failure = |e: UnlinkError| match e {
                UnlinkError::Refused { .. } => Failure::new(exit::UNAVAILABLE, e),
                UnlinkError::NotLinked(_) | UnlinkError::InProgress(_) => {
                    Failure::new(exit::DATAERR, e)
                }
                UnlinkError::Store(_) => Failure::new(exit::FAILURE, e),
            };
            let before = unlink::begin(&store, &user, args.force).map_err(failure)?;
            let at_enode = common::runtime()?
                .block_on(unlink::at_enode(&client, &user))
                .or_else(|e| {
                    unlink::restore(&store, before.as_ref())?;
                    Err(failure(e))
                })?;
            let by = "smartcharged unlink, without a daemon";
            UnlinkAnswer {
                user: user.to_string(),
                at_enode,
                in_store: unlink::finish(&store, &user, clock.now(), by, at_enode)?,
                vehicles: Vec::new(),
            }
        }
    };
    let mut out = std::io::stdout().lock();
    if args.socket.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
        return Ok(());
    }
    if !answer.at_enode {
        eprintln!("user {user} was already unknown at Enode");
    }
    if !answer.in_store {
        eprintln!("user {user} was not in the local store");
    }
    if !answer.vehicles.is_empty() {
        writeln!(out, "stopped controlling {}", answer.vehicles.join(", "))?;
    }
    writeln!(out, "unlinked user {user}")?;
    Ok(())
}

/// Lists users: id, status, vendor, access token expiry; from the running
/// daemon, or from the store when none holds it.
pub fn run_users(args: UsersArgs) -> CmdResult {
    let users: Vec<UserView> = match Backend::choose(&args.socket)? {
        Backend::Store(store, _) => crate::daemon::readmodel::user_views(&store)?,
        Backend::Daemon(held) => request_held(&args.socket, held, None, "/v1/users")?,
    };
    let mut out = std::io::stdout().lock();
    if args.socket.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&users)?)?;
    } else {
        write!(out, "{}", users_table(&users))?;
    }
    Ok(())
}

/// The `users` table: one row per user, each column as wide as its
/// widest cell (a user id may have up to 128 characters).
pub fn users_table(users: &[UserView]) -> String {
    let head = ["USER", "STATUS", "VENDOR", "TOKEN EXPIRES"];
    let rows: Vec<[String; 4]> = users
        .iter()
        .map(|u| {
            [
                u.id.to_string(),
                u.status.to_string(),
                u.vendor.clone().unwrap_or_else(|| "-".into()),
                u.token_expires_at
                    .map_or("-".to_owned(), |e| e.to_rfc3339()),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        )
    };
    let mut out = line(head);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::UserStatus;

    /// Every column starts at the same place on every line, whatever the
    /// lengths of the ids and statuses.
    #[test]
    fn users_columns_line_up() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z")
            .unwrap()
            .to_utc();
        let user = |id: &str, status, vendor: Option<&str>| UserView {
            id: UserId::new(id).unwrap(),
            status,
            vendor: vendor.map(str::to_owned),
            linked_at: at,
            token_expires_at: Some(at),
        };
        let table = users_table(&[
            user("eve", UserStatus::Active, None),
            user(
                "a-rather-long-user-id@example.com",
                UserStatus::NeedsRelink,
                Some("TESLA"),
            ),
            user("bob", UserStatus::Unlinking, Some("VOLKSWAGEN")),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        for col in ["STATUS", "VENDOR", "TOKEN EXPIRES"] {
            let at = lines[0].find(col).unwrap();
            for l in &lines[1..] {
                let before = &l[..at];
                assert!(
                    before.ends_with("  ") && !l[at..].starts_with(' '),
                    "{col} misaligned:\n{table}"
                );
            }
        }
    }
}

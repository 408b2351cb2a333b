use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const GOOD: &str = r#"
[enode]
client_id = "cid"
client_secret = "inline-secret"
api_url = "http://127.0.0.1:9000/"
token_url = "http://127.0.0.1:9000/oauth2/token"
auth_url = "http://127.0.0.1:9000/oauth2/auth"

[store]
path = "state"

[tokens]
refresh_lead = "2m"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/smartcharged/test.toml"), &no_env)
}

fn invalid(text: &str) -> (usize, usize, String) {
    match parse(text).unwrap_err() {
        ConfigError::Invalid {
            line,
            column,
            message,
            help,
            file,
        } => {
            assert_eq!(file, Path::new("/etc/smartcharged/test.toml"));
            (
                line,
                column,
                format!("{message}; {}", help.unwrap_or_default()),
            )
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn good_config_gets_defaults_and_resolves_paths() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.enode.client_id, "cid");
    assert_eq!(c.enode.client_secret.expose(), "inline-secret");
    assert_eq!(c.enode.scopes, ["offline_access", "all"]);
    assert!(c.enode.pkce);
    assert_eq!(c.enode.request_timeout, Duration::from_secs(20));
    assert_eq!(c.tokens.refresh_lead, Duration::from_secs(120));
    assert_eq!(c.store.path, Path::new("/etc/smartcharged/state"));
    assert_eq!(c.http.listen.to_string(), "127.0.0.1:8787");
    assert_eq!(
        c.enode.redirect_uri.as_str(),
        "http://127.0.0.1:8787/callback"
    );
    assert_eq!(c.warnings.len(), 1, "inline secret warns: {:?}", c.warnings);
    assert!(!format!("{c:?}").contains("inline-secret"));
}

#[test]
fn secret_sources_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client_secret"), "from-credential\n").unwrap();
    let creds = dir.path().to_str().unwrap().to_owned();
    let env = move |k: &str| match k {
        "CREDENTIALS_DIRECTORY" => Some(creds.clone()),
        SECRET_ENV => Some("from-env".into()),
        _ => None,
    };
    let c = Config::parse(GOOD, Path::new("x.toml"), &env).unwrap();
    assert_eq!(c.enode.client_secret.expose(), "from-credential");
    assert!(c.warnings.is_empty());

    let env = |k: &str| (k == SECRET_ENV).then(|| "from-env".to_owned());
    let c = Config::parse(GOOD, Path::new("x.toml"), &env).unwrap();
    assert_eq!(c.enode.client_secret.expose(), "from-env");

    let file = dir.path().join("secret.txt");
    std::fs::write(&file, "from-file\n").unwrap();
    let text = format!(
        "[enode]\nclient_id = \"c\"\nclient_secret_file = \"{}\"\n",
        file.display()
    );
    let c = Config::parse(&text, Path::new("x.toml"), &env).unwrap();
    assert_eq!(c.enode.client_secret.expose(), "from-file");
}

#[test]
fn syntax_error_is_located() {
    let (line, col, msg) = invalid("[enode]\nclient_id = \"cid\nclient_secret = \"s\"\n");
    assert_eq!(line, 2, "{msg}");
    assert!(col >= 1, "{msg}");
}

#[test]
fn unknown_key_gets_did_you_mean() {
    let (line, col, msg) =
        invalid("[enode]\nclient_id = \"cid\"\nclient_secret = \"s\"\nrequest_timout = \"5s\"\n");
    assert_eq!((line, col), (4, 1), "{msg}");
    assert!(msg.contains("unknown field `request_timout`"), "{msg}");
    assert!(msg.contains("did you mean `request_timeout`?"), "{msg}");
}

#[test]
fn unknown_section_is_rejected() {
    let (line, _, msg) =
        invalid("[enode]\nclient_id = \"c\"\nclient_secret = \"s\"\n[stor]\npath = \"x\"\n");
    assert_eq!(line, 4, "{msg}");
    assert!(msg.contains("did you mean `store`?"), "{msg}");
}

#[test]
fn bad_url_is_located() {
    let (line, col, msg) =
        invalid("[enode]\nclient_id = \"c\"\nclient_secret = \"s\"\napi_url = \"not a url\"\n");
    assert_eq!((line, col), (4, 11), "{msg}");
    assert!(msg.contains("api_url `not a url` is not a URL"), "{msg}");
}

#[test]
fn missing_secret_points_at_enode_section() {
    let (line, col, msg) = invalid("# comment\n\n[enode]\nclient_id = \"c\"\n");
    assert_eq!((line, col), (3, 1), "{msg}");
    assert!(msg.contains("no client secret"), "{msg}");
    assert!(msg.contains("client_secret_file"), "{msg}");
}

#[test]
fn bad_duration_is_located() {
    let (line, col, msg) = invalid(
        "[enode]\nclient_id = \"c\"\nclient_secret = \"s\"\n\n[tokens]\nrefresh_lead = \"5 minutes\"\n",
    );
    assert_eq!((line, col), (6, 16), "{msg}");
    assert!(msg.contains("bad duration"), "{msg}");
}

#[test]
fn missing_enode_section_is_reported() {
    let (_, _, msg) = invalid("[store]\npath = \"x\"\n");
    assert!(msg.contains("missing field `enode`"), "{msg}");
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
    assert!(parse_duration("15").is_err());
    assert!(parse_duration("5x").is_err());
    assert!(parse_duration("").is_err());
    assert!(parse_duration("m").is_err());
}

#[test]
fn levenshtein_distances() {
    assert_eq!(levenshtein("kitten", "sitting"), 3);
    assert_eq!(levenshtein("", "abc"), 3);
    assert_eq!(levenshtein("same", "same"), 0);
}

#[test]
fn prices_section_is_validated_with_the_rest() {
    let text = format!("{GOOD}\n[prices]\nprovider = \"awattar\"\ntime_zone = \"Europe/Berlin\"\n\n[prices.awattar]\ncountry = \"DE\"\n");
    let c = parse(&text);
    if let Err(e) = &c {
        panic!("{e}");
    }
    assert!(c.unwrap().prices.is_some());
    assert!(parse(GOOD).unwrap().prices.is_none());

    let bad = format!("{GOOD}\n[prices]\nprovider = \"awattar\"\ntime_zone = \"Mars/Olympus\"\n");
    let (line, _, msg) = invalid(&bad);
    assert_eq!(line, GOOD.lines().count() + 4, "{msg}");
}

const HEAD: &str = "[enode]\nclient_id = \"c\"\nclient_secret = \"s\"\n";

#[test]
fn every_duration_has_a_range() {
    let cases = [
        (
            "[enode]\nrequest_timeout = \"0s\"",
            "request_timeout 0s is out of range",
        ),
        (
            "[enode]\ntoken_timeout = \"1s\"",
            "token_timeout 1s is out of range",
        ),
        (
            "[tokens]\nlink_timeout = \"100000000d\"",
            "link_timeout 100000000d is out of range",
        ),
        (
            "[tokens]\nrefresh_lead = \"2d\"",
            "refresh_lead 2d is out of range",
        ),
        (
            "[tokens]\nrefresh_jitter = \"200000000000d\"",
            "refresh_jitter",
        ),
        (
            "[store]\njournal_retention = \"1h\"",
            "journal_retention 1h is out of range",
        ),
        (
            "[http]\nheader_timeout = \"0s\"",
            "header_timeout 0s is out of range",
        ),
        (
            "[admin]\nheader_timeout = \"1h\"",
            "header_timeout 1h is out of range",
        ),
    ];
    for (section, needle) in cases {
        // Keys of [enode] go into the head's section.
        let text = match section.strip_prefix("[enode]\n") {
            Some(key) => format!("{HEAD}{key}\n"),
            None => format!("{HEAD}\n{section}\n"),
        };
        let (line, col, msg) = invalid(&text);
        assert!(msg.contains(needle), "{text}: {msg}");
        assert!(msg.contains("write a duration from"), "{msg}");
        let want_line = text.lines().count();
        assert_eq!(line, want_line, "{text}: {msg}");
        assert!(col > 1, "{msg}");
    }
}

/// Both listeners get a connection cap and a header timeout by default;
/// a cap outside 1-4096 is refused where it is written.
#[test]
fn listener_limits_have_defaults_and_a_range() {
    let c = parse(GOOD).unwrap();
    assert_eq!(c.http.conns.max_connections, 256);
    assert_eq!(c.admin.conns.max_connections, 64);
    assert_eq!(c.http.conns.header_timeout, Duration::from_secs(10));
    assert_eq!(c.admin.conns.header_timeout, Duration::from_secs(10));
    let c = parse(&format!(
        "{GOOD}\n[admin]\nmax_connections = 8\nheader_timeout = \"3s\"\n"
    ))
    .unwrap();
    assert_eq!(c.admin.conns.max_connections, 8);
    assert_eq!(c.admin.conns.header_timeout, Duration::from_secs(3));
    for bad in ["0", "-1", "4097", "99999999999"] {
        let text = format!("{GOOD}\n[http]\nmax_connections = {bad}\n");
        let (line, _, msg) = invalid(&text);
        assert!(
            msg.contains(&format!(
                "max_connections {bad} is out of range (1 to 4096)"
            )),
            "{msg}"
        );
        assert_eq!(line, text.lines().count(), "{msg}");
    }
}

#[test]
fn scopes_without_offline_access_are_rejected() {
    let (line, col, msg) = invalid(&format!("{HEAD}scopes = \"all\"\n"));
    assert_eq!((line, col), (4, 10), "{msg}");
    assert!(msg.contains("offline_access"), "{msg}");
}

#[test]
fn invalid_utf8_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"# caf\xe9\n");
    std::fs::write(&file, bytes).unwrap();
    match Config::load(&file, &no_env).unwrap_err() {
        ConfigError::Invalid {
            line,
            column,
            message,
            ..
        } => {
            assert_eq!((line, column), (4, 6), "{message}");
            assert!(message.contains("UTF-8"), "{message}");
        }
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn price_base_url_must_be_http() {
    for url in ["ftp://example.com/", "not a url", "file:///etc/passwd"] {
        let text = format!(
            "{GOOD}\n[prices]\nprovider = \"awattar\"\ntime_zone = \"Europe/Berlin\"\n\n[prices.awattar]\nbase_url = \"{url}\"\n"
        );
        let (line, _, msg) = invalid(&text);
        assert_eq!(line, text.lines().count(), "{msg}");
        assert!(msg.contains("is not an http(s) URL"), "{url}: {msg}");
    }
}

#[test]
fn a_missing_price_file_does_not_stop_the_daemon_config() {
    // The daemon starts on its cached prices; check-config refuses it.
    let text = format!(
        "{GOOD}\n[prices]\nprovider = \"file\"\ntime_zone = \"Europe/Berlin\"\n\n[prices.file]\npath = \"no-such-prices.csv\"\n"
    );
    assert!(parse(&text).unwrap().prices.is_some());
}

#[test]
fn a_secret_file_without_end_is_refused_not_read() {
    // /dev/zero never ends: read whole, it would eat all memory.
    let (line, col, msg) =
        invalid("[enode]\nclient_id = \"c\"\nclient_secret_file = \"/dev/zero\"\n");
    assert_eq!((line, col), (3, 22), "{msg}");
    assert!(msg.contains("larger than 65536 bytes"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, "s".repeat(65_537)).unwrap();
    let text = format!(
        "[enode]\nclient_id = \"c\"\nclient_secret_file = \"{}\"\n",
        file.display()
    );
    let (_, _, msg) = invalid(&text);
    assert!(msg.contains("larger than 65536 bytes"), "{msg}");
    std::fs::write(&file, "s".repeat(65_536)).unwrap();
    assert_eq!(
        parse(&text).unwrap().enode.client_secret.expose().len(),
        65_536
    );
}

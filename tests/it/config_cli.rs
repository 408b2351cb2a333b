//! The config as a user meets it: `smartcharged check-config` on good and
//! malformed files, exit codes and located messages.

use std::process::Command;

fn check(file: &str) -> (i32, String, String) {
    let path = format!("{}/tests/data/config/{file}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_smartcharged"))
        .args(["check-config", &path])
        .env_remove("SMARTCHARGED_CLIENT_SECRET")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run smartcharged");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn good_config_prints_one_line_summary() {
    let (code, stdout, stderr) = check("good.toml");
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("good.toml: ok: api http://127.0.0.1:9/"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"));
}

/// Each malformed file: exit 78 and `file:line:column: message; help`.
#[test]
fn malformed_configs_exit_78_with_location() {
    let cases = [
        ("syntax-error.toml", 2, "invalid"),
        ("unknown-key.toml", 6, "did you mean `path`?"),
        (
            "bad-url.toml",
            4,
            "token_url `link.test.enode.io/oauth2/token` is not a URL",
        ),
        ("missing-secret.toml", 2, "no client secret"),
        ("bad-duration.toml", 6, "bad duration"),
    ];
    for (file, line, needle) in cases {
        let (code, _, stderr) = check(file);
        assert_eq!(code, 78, "{file}: {stderr}");
        let at = format!("{file}:{line}:");
        assert!(stderr.contains(&at), "{file}: expected {at} in {stderr}");
        assert!(
            stderr.contains(needle),
            "{file}: expected {needle:?} in {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{file}: one line: {stderr}"
        );
    }
}

#[test]
fn missing_file_is_a_config_error() {
    let (code, _, stderr) = check("does-not-exist.toml");
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("cannot read config"), "{stderr}");
}

/// The annotated example in config/ is a valid config (given a secret).
#[test]
fn shipped_example_config_is_valid() {
    let path = format!("{}/config/smartcharged.toml", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_smartcharged"))
        .args(["check-config", &path])
        .env("SMARTCHARGED_CLIENT_SECRET", "from-env")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run smartcharged");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// Writes a config in a temp dir (with a secret from the environment) and
/// runs check-config on it.
fn check_text(text: &str, files: &[(&str, &[u8])]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let path = dir.path().join("smartcharged.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smartcharged"))
        .arg("check-config")
        .arg(&path)
        .env("SMARTCHARGED_CLIENT_SECRET", "from-env")
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("run smartcharged");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FILE_PRICES: &str = "[enode]\nclient_id = \"c\"\n\n[prices]\nprovider = \"file\"\ntime_zone = \"Europe/Berlin\"\n\n[prices.file]\npath = \"prices.csv\"\n";

/// Durations that passed check-config and then panicked a poll task or
/// made 160,755 requests in 12 s are refused with their location.
#[test]
fn out_of_range_durations_are_refused_with_location() {
    for (key, value, line) in [
        ("poll_fast", "100000000d", 12),
        ("poll_slow", "200000000000d", 12),
    ] {
        let text = format!("{FILE_PRICES}\n[policy]\n{key} = \"{value}\"\n");
        let (code, _, stderr) = check_text(
            &text,
            &[(
                "prices.csv",
                b"start_utc,price_eur_per_mwh\n2099-01-01T00:00:00Z,50\n",
            )],
        );
        assert_eq!(code, 78, "{stderr}");
        assert!(
            stderr.contains(&format!("smartcharged.toml:{line}:")),
            "{stderr}"
        );
        assert!(stderr.contains("out of range"), "{stderr}");
    }
}

#[test]
fn a_missing_price_file_fails_and_a_stale_one_warns() {
    let (code, _, stderr) = check_text(FILE_PRICES, &[]);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("smartcharged.toml: [prices.file]: cannot read"),
        "{stderr}"
    );
    assert!(stderr.contains("prices.csv"), "{stderr}");

    let stale = b"start_utc,price_eur_per_mwh\n2020-01-01T00:00:00Z,50\n";
    let (code, stdout, stderr) = check_text(FILE_PRICES, &[("prices.csv", stale)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": ok:"), "{stdout}");
    assert!(stderr.contains("has no prices from now on"), "{stderr}");

    let (code, _, stderr) = check_text(FILE_PRICES, &[("prices.csv", b"when,what\n1,2\n")]);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("unknown header"), "{stderr}");
}

#[test]
fn invalid_utf8_is_located_on_the_cli() {
    let mut text = FILE_PRICES.as_bytes().to_vec();
    text.extend_from_slice(b"# \xff\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smartcharged.toml");
    std::fs::write(&path, &text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_smartcharged"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("smartcharged.toml:10:3: the file is not valid UTF-8"),
        "{stderr}"
    );
}

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

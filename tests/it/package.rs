//! The Debian package: `packaging/build-deb` on the binary under test, and
//! its file list, control fields, conffiles and unit checked with dpkg-deb.
//! (The documented command builds a release binary; this packages the test
//! build, uncompressed, so the check costs seconds.)

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use clap::CommandFactory as _;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_package_holds_binary_unit_users_config_completions_and_man_pages() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    let deb = run(Command::new(root.join("packaging/build-deb"))
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_smartcharged"),
            "--compress",
            "none",
        ])
        .arg("--out")
        .arg(out.path()));
    let deb = deb.trim();
    assert!(deb.ends_with(".deb"), "{deb}");

    // The file list: `dpkg-deb -c` lines end in the path (./usr/bin/...).
    let listing = run(Command::new("dpkg-deb").args(["-c", deb]));
    let files: BTreeSet<String> = listing
        .lines()
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().last())
        .map(|p| p.trim_start_matches('.').to_owned())
        .collect();
    let mut expected: BTreeSet<String> = [
        "/usr/bin/smartcharged",
        "/usr/lib/systemd/system/smartcharged.service",
        "/usr/lib/sysusers.d/smartcharged.conf",
        "/usr/lib/tmpfiles.d/smartcharged.conf",
        "/etc/smartcharged/smartcharged.toml",
        "/usr/share/bash-completion/completions/smartcharged",
        "/usr/share/zsh/vendor-completions/_smartcharged",
        "/usr/share/fish/vendor_completions.d/smartcharged.fish",
        "/usr/share/man/man1/smartcharged.1.gz",
        "/usr/share/doc/smartcharged/README.md",
        "/usr/share/doc/smartcharged/copyright",
        "/usr/share/doc/smartcharged/examples/prices-examples.toml",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    // One page per visible subcommand, from the CLI definition itself.
    let cli = smartcharged::cli::Cli::command();
    let visible: Vec<&str> = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name())
        .collect();
    assert!(visible.contains(&"run") && !visible.contains(&"generate"));
    for name in &visible {
        expected.insert(format!("/usr/share/man/man1/smartcharged-{name}.1.gz"));
    }
    // Nested subcommands (`plan show`) get their own page too.
    for c in cli.get_subcommands().filter(|c| !c.is_hide_set()) {
        for sub in c.get_subcommands().filter(|s| !s.is_hide_set()) {
            expected.insert(format!(
                "/usr/share/man/man1/smartcharged-{}-{}.1.gz",
                c.get_name(),
                sub.get_name()
            ));
        }
    }
    assert_eq!(files, expected, "file list of {deb}");
    // Everything is root's; the binary is executable, nothing else is.
    for l in listing.lines().filter(|l| l.starts_with('-')) {
        assert!(l.contains(" root/root "), "{l}");
        let exec = l.starts_with("-rwxr-xr-x");
        assert_eq!(exec, l.ends_with("/usr/bin/smartcharged"), "{l}");
    }

    let field = |f: &str| run(Command::new("dpkg-deb").args(["-f", deb, f]));
    assert_eq!(field("Package").trim(), "smartcharged");
    assert_eq!(field("Version").trim(), env!("CARGO_PKG_VERSION"));
    assert!(field("Depends").starts_with("libc6"));
    let conffiles = run(Command::new("dpkg-deb").args(["-I", deb, "conffiles"]));
    assert_eq!(conffiles.trim(), "/etc/smartcharged/smartcharged.toml");
    let postinst = run(Command::new("dpkg-deb").args(["-I", deb, "postinst"]));
    assert!(postinst.contains("systemd-sysusers /usr/lib/sysusers.d/smartcharged.conf"));

    // The unit starts the packaged binary; the man page and completions
    // are the real ones.
    let x = out.path().join("x");
    run(Command::new("dpkg-deb").args(["-x", deb]).arg(&x));
    let unit =
        std::fs::read_to_string(x.join("usr/lib/systemd/system/smartcharged.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/bin/smartcharged run "),
        "{unit}"
    );
    assert!(
        unit.lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| !l.contains("/usr/local/bin")),
        "{unit}"
    );
    let bash =
        std::fs::read_to_string(x.join("usr/share/bash-completion/completions/smartcharged"))
            .unwrap();
    assert!(
        bash.contains("check-config"),
        "bash completions lack subcommands"
    );
    let man = run(Command::new("gzip")
        .arg("-dc")
        .arg(x.join("usr/share/man/man1/smartcharged.1.gz")));
    assert!(
        man.starts_with(".ie") || man.contains(".TH smartcharged 1"),
        "{}",
        &man[..man.len().min(200)]
    );
    let config = std::fs::read_to_string(x.join("etc/smartcharged/smartcharged.toml")).unwrap();
    assert_eq!(
        config,
        std::fs::read_to_string(root.join("config/smartcharged.toml")).unwrap()
    );
}

//! Replays what fuzzing found, without the fuzzer: every input kept in
//! `fuzz/regressions/<target>/` runs through the same target function the
//! fuzz binary runs (`fuzz/src/targets.rs`, compiled into this test), so a
//! defect fuzzing once found stays fixed in every CI run. The seeds in
//! `fuzz/seeds/<target>/` are replayed too: they must pass the targets'
//! checks, or the fuzzer would start from a failure.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/targets.rs"]
mod targets;

/// One kept input and the target it is for.
struct Input {
    /// The target's name (its directory).
    target: String,
    /// The file.
    path: PathBuf,
    /// The target's function.
    run: targets::Target,
}

/// `fuzz/<kind>/<target>/<file>` for every file kept there, with the
/// target's function. A directory that names no target is an error: its
/// inputs would silently never run.
fn inputs(kind: &str) -> Vec<Input> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind);
    let mut out = Vec::new();
    for t in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let t = t.unwrap().path();
        if !t.is_dir() {
            continue;
        }
        let name = t.file_name().unwrap().to_string_lossy().into_owned();
        let f = targets::target(&name)
            .unwrap_or_else(|| panic!("{} names no fuzz target", t.display()));
        let mut files: Vec<PathBuf> = fs::read_dir(&t)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|path| Input {
            target: name.clone(),
            path,
            run: f,
        }));
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Runs each input through its target; returns the ones that panicked,
/// with the panic message.
fn failures(inputs: &[Input]) -> Vec<String> {
    let mut failed = Vec::new();
    for Input { target, path, run } in inputs {
        let data = fs::read(path).unwrap();
        if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| run(&data))) {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{target}: {}: {msg}", path.display()));
        }
    }
    failed
}

#[test]
fn every_input_fuzzing_found_passes_its_target() {
    let kept = inputs("regressions");
    assert!(!kept.is_empty(), "fuzz/regressions holds no input");
    let failed = failures(&kept);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn every_seed_passes_its_target() {
    let seeds = inputs("seeds");
    assert!(!seeds.is_empty(), "fuzz/seeds holds no input");
    let failed = failures(&seeds);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn every_target_is_listed_once_and_has_a_fuzz_binary() {
    let manifest =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    for (i, (name, _)) in targets::TARGETS.iter().enumerate() {
        assert!(
            targets::TARGETS[..i].iter().all(|(n, _)| n != name),
            "{name} listed twice"
        );
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml has no binary for {name}"
        );
    }
}

//! `smartcharged generate completions|man DIR` (hidden): shell completions
//! and manual pages generated from the command-line definition itself, so
//! they can never describe options the binary does not have. The package
//! build (`packaging/build-deb`) runs it; users get the files from the
//! package.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory as _;
use clap_complete::Shell;

/// Arguments of `generate`.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// What to generate.
    #[command(subcommand)]
    pub what: What,
}

/// The kinds of generated files.
#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Completions for bash (`smartcharged.bash`), zsh (`_smartcharged`) and
    /// fish (`smartcharged.fish`).
    Completions {
        /// The directory to write to (created if missing).
        dir: PathBuf,
    },
    /// Manual pages: `smartcharged.1` and one `smartcharged-SUBCOMMAND.1`
    /// per visible subcommand.
    Man {
        /// The directory to write to (created if missing).
        dir: PathBuf,
    },
}

/// The shells completions are made for: those Debian packages a
/// completion directory for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// Writes the files; prints each path written.
pub fn run(args: GenerateArgs) -> super::CmdResult {
    let failed = |e: anyhow::Error| super::Failure::new(super::exit::FAILURE, e);
    match args.what {
        What::Completions { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))
                .map_err(failed)?;
            for shell in SHELLS {
                let mut cmd = crate::cli::Cli::command();
                let path = clap_complete::generate_to(shell, &mut cmd, "smartcharged", &dir)
                    .with_context(|| format!("cannot write {shell} completions"))
                    .map_err(failed)?;
                println!("{}", path.display());
            }
        }
        What::Man { dir } => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))
                .map_err(failed)?;
            clap_mangen::generate_to(crate::cli::Cli::command(), &dir)
                .with_context(|| format!("cannot write manual pages to {}", dir.display()))
                .map_err(failed)?;
            let mut pages: Vec<_> = std::fs::read_dir(&dir)
                .and_then(|d| d.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>())
                .with_context(|| format!("cannot list {}", dir.display()))
                .map_err(failed)?;
            pages.retain(|p| p.extension().is_some_and(|e| e == "1"));
            pages.sort();
            for p in pages {
                println!("{}", p.display());
            }
        }
    }
    Ok(())
}

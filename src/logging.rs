//! Log setup: JSON lines with fields when the output is not a terminal
//! (journald keeps them), readable text on a terminal. The filter comes from
//! `SMARTCHARGED_LOG` (tracing's env-filter syntax), default `info`.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Where log lines go. Commands whose stdout is their result (`plan`,
/// `link`'s URL, `users --json`) log to stderr; the daemon logs to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Installs the global subscriber with the default level `info`. Safe to
/// call once per process.
pub fn init(target: Target) {
    init_with_default(target, "info")
}

/// Installs the global subscriber; `default` is the filter when
/// `SMARTCHARGED_LOG` is unset (the demo shows only warnings by default,
/// its output being the report).
pub fn init_with_default(target: Target, default: &str) {
    let filter =
        || EnvFilter::try_from_env("SMARTCHARGED_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let terminal = match target {
        Target::Stdout => std::io::stdout().is_terminal(),
        Target::Stderr => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter());
    // A second init (tests) keeps the first subscriber.
    let _installed = match (terminal, target) {
        (true, Target::Stdout) => builder.with_writer(std::io::stdout).try_init().is_ok(),
        (true, Target::Stderr) => builder.with_writer(std::io::stderr).try_init().is_ok(),
        (false, Target::Stdout) => json(filter(), std::io::stdout).try_init().is_ok(),
        (false, Target::Stderr) => json(filter(), std::io::stderr).try_init().is_ok(),
    };
}

/// One JSON object per line: `timestamp`, `level`, `target`, the event's
/// `fields` (with `message`), and `spans`, the fields of every enclosing span
/// from the outermost in. The whole list rather than only the current span:
/// a task's ids sit in nested spans (a user's span around a vehicle's), and a
/// line must carry all of them to be found by `user.id` as well as by
/// `vehicle.id`.
fn json<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .with_current_span(false)
        .with_span_list(true)
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing::{info, info_span};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Buffer {
        /// The bytes written so far, shared with every writer handed out.
        bytes: Arc<Mutex<Vec<u8>>>,
    }

    impl io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes
                .lock()
                .expect("buffer lock")
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;

        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    #[test]
    fn json_lines_carry_the_fields_of_every_enclosing_span() {
        let buffer = Buffer::default();
        let subscriber = json(EnvFilter::new("info"), buffer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let user = info_span!("user", user.id = "alice");
            let _user = user.enter();
            let vehicle = info_span!("vehicle", vehicle.id = "v1");
            let _vehicle = vehicle.enter();
            info!(action = "START", price = 0.21, "command sent");
        });
        let text = String::from_utf8(buffer.bytes.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "one line per event: {text}");
        let line: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "command sent");
        assert_eq!(line["fields"]["action"], "START");
        assert_eq!(line["fields"]["price"], 0.21);
        assert_eq!(
            line["spans"],
            serde_json::json!([
                { "name": "user", "user.id": "alice" },
                { "name": "vehicle", "vehicle.id": "v1" },
            ])
        );
        assert!(
            line.get("span").is_none(),
            "no repeat of the innermost span"
        );
    }
}

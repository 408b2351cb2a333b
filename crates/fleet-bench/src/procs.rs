//! The two processes under test and what Linux says about them: CPU time
//! from `/proc/<pid>/stat`, memory from `/proc/<pid>/status`, per-thread CPU
//! from `/proc/<pid>/task/*`, and the daemon's `READY=1` on a notify socket.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

/// Where `fleet-bench` finds `smartcharged` and `enode-sim`: `dir`, or the
/// directory of its own executable, which is where cargo puts every binary
/// of the workspace (`target/release/` after `cargo build --release --workspace --bins`).
pub fn binary(dir: Option<&Path>, name: &str) -> anyhow::Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_owned(),
        None => std::env::current_exe()
            .context("cannot find the fleet-bench executable")?
            .parent()
            .context("the fleet-bench executable has no directory")?
            .to_owned(),
    };
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build the binaries first (cargo build --release --workspace --bins), or pass --bin-dir",
            path.display()
        );
    }
    Ok(path)
}

/// A child process that is sent SIGTERM and waited for when dropped, so a
/// failed benchmark leaves nothing running.
pub struct Proc {
    /// The child.
    pub child: Child,
    /// What it is, for messages.
    pub name: &'static str,
}

impl Proc {
    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        // SAFETY: kill(2) on our own child's pid, which cannot have been
        // reused while the child is unreaped.
        let pid = libc::pid_t::try_from(self.child.id()).context("pid out of range")?;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        Ok(self.child.wait()?)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// Starts `enode-sim` and returns it with its address (its first stdout
/// line). Its stderr goes to `log`.
pub fn spawn_sim(bin: &Path, args: &[String], log: &Path) -> anyhow::Result<(Proc, String)> {
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let mut sim = Proc {
        child,
        name: "enode-sim",
    };
    let mut out = BufReader::new(sim.child.stdout.take().context("no stdout")?);
    let mut addr = String::new();
    out.read_line(&mut addr)?;
    if addr.trim().is_empty() {
        let status = sim.terminate()?;
        bail!(
            "enode-sim exited ({status}) before printing its address; see {}",
            log.display()
        );
    }
    // Nothing more is printed, but keep the pipe drained.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Ok((sim, addr.trim().to_owned()))
}

/// Starts the daemon with `NOTIFY_SOCKET` pointing at `notify`; its stdout
/// (the JSON log) is returned for a reader thread, its stderr goes to `log`.
pub fn spawn_daemon(
    bin: &Path,
    args: &[String],
    envs: &[(&str, &str)],
    notify: &Path,
    log: &Path,
) -> anyhow::Result<(Proc, ChildStdout)> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("NOTIFY_SOCKET", notify)
        .env_remove("WATCHDOG_USEC")
        .env_remove("SMARTCHARGED_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let out = child.stdout.take().context("no stdout")?;
    Ok((
        Proc {
            child,
            name: "smartcharged",
        },
        out,
    ))
}

/// A notify socket the daemon reports to (`sd_notify(3)` datagrams).
pub struct NotifySocket {
    /// The bound socket.
    sock: UnixDatagram,
}

impl NotifySocket {
    /// Binds a datagram socket at `path`.
    pub fn bind(path: &Path) -> anyhow::Result<NotifySocket> {
        let sock = UnixDatagram::bind(path)
            .with_context(|| format!("cannot bind the notify socket {}", path.display()))?;
        // A bounded wait per datagram, so a daemon that dies before READY
        // is noticed.
        sock.set_read_timeout(Some(Duration::from_millis(250)))?;
        Ok(NotifySocket { sock })
    }

    /// Waits for `READY=1` from `daemon`; fails if it exits first.
    pub fn wait_ready(&self, daemon: &mut Proc) -> anyhow::Result<()> {
        self.wait_for(daemon, "READY", |l| l == "READY=1")
    }

    /// Waits for the status line that says every user is loaded
    /// (`STATUS=running; N users`, sent after READY); fails if the daemon
    /// exits first.
    pub fn wait_loaded(&self, daemon: &mut Proc) -> anyhow::Result<()> {
        self.wait_for(daemon, "the users' load", |l| {
            l.starts_with("STATUS=running")
        })
    }

    /// Waits for a datagram with a line `wanted` accepts.
    fn wait_for(
        &self,
        daemon: &mut Proc,
        what: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> anyhow::Result<()> {
        let mut buf = [0u8; 4096];
        loop {
            match self.sock.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]);
                    if msg.lines().any(&wanted) {
                        return Ok(());
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e.into()),
            }
            if let Some(status) = daemon.child.try_wait()? {
                bail!("{} exited ({status}) before {what}", daemon.name);
            }
        }
    }
}

/// User plus system CPU time of a process so far, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    stat_cpu(&stat)
}

/// utime + stime of a `/proc/.../stat` line, in seconds. The command name
/// in parentheses may hold spaces, so fields count from the last ')'.
fn stat_cpu(stat: &str) -> anyhow::Result<f64> {
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of stat(5), utime 14, stime 15.
    let field = |i: usize| -> anyhow::Result<u64> {
        Ok(f.get(i).context("short /proc stat line")?.parse()?)
    };
    let ticks = field(11)? + field(12)?;
    Ok(ticks as f64 / clock_ticks())
}

/// Clock ticks per second of `/proc` CPU times (`_SC_CLK_TCK`).
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in MiB.
pub fn status_mib(pid: u32, key: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status_value(&status, key)
}

fn status_value(status: &str, key: &str) -> anyhow::Result<f64> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .with_context(|| format!("no {key} in /proc status"))?;
    let kb: f64 = line
        .split_whitespace()
        .next()
        .context("empty status value")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// CPU seconds of one group of threads of the same name.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadCpu {
    /// The thread name (`/proc/<pid>/task/<tid>/comm`).
    pub name: String,
    /// How many threads have it.
    pub threads: usize,
    /// Their CPU seconds together.
    pub cpu_s: f64,
}

/// CPU time of a process's live threads, grouped by name, busiest first.
pub fn threads(pid: u32) -> Vec<ThreadCpu> {
    let mut by: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    for t in dir.flatten() {
        let p = t.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(p.join("comm")),
            std::fs::read_to_string(p.join("stat")),
        ) else {
            continue;
        };
        let cpu = stat_cpu(&stat).unwrap_or(0.0);
        let e = by.entry(comm.trim().to_owned()).or_default();
        e.0 += 1;
        e.1 += cpu;
    }
    let mut v: Vec<ThreadCpu> = by
        .into_iter()
        .map(|(name, (threads, cpu_s))| ThreadCpu {
            name,
            threads,
            cpu_s,
        })
        .collect();
    v.sort_by(|a, b| b.cpu_s.total_cmp(&a.cpu_s));
    v
}

/// Writes `text` to `path` (the generated scenario and config).
pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_spaces_in_the_name_parse() {
        let line = "4242 (tokio runtime) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 200";
        let s = stat_cpu(line).unwrap();
        assert!((s - 300.0 / clock_ticks()).abs() < 1e-9, "{s}");
        assert!(stat_cpu("garbage").is_err());
    }

    #[test]
    fn status_values_are_read_in_mib() {
        let status = "Name:\tsmartcharged\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_value(status, "VmHWM").unwrap(), 200.0);
        assert_eq!(status_value(status, "VmRSS").unwrap(), 100.0);
        assert!(status_value(status, "VmSwap").is_err());
    }

    #[test]
    fn this_process_has_cpu_time_memory_and_threads() {
        let me = std::process::id();
        assert!(cpu_seconds(me).unwrap() >= 0.0);
        assert!(status_mib(me, "VmHWM").unwrap() > 0.0);
        assert!(!threads(me).is_empty());
    }
}

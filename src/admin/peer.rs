//! Who is on the other end of the admin socket, and whether they may use
//! it. The socket's mode (0660, the configured group) already keeps others
//! from connecting; this check holds even if the file's mode or group is
//! changed, and says who did what in the journal.
//!
//! The kernel's SO_PEERCRED (tokio's `UnixStream::peer_cred`) gives the
//! peer's uid, primary gid and pid at connect time. Supplementary groups
//! are read from `/proc/<pid>/status` (the peer process's real set) once,
//! when the connection is accepted, and kept with the connection: read
//! at request time, a pid whose process has exited meanwhile (the socket
//! handed on, or kept by a forked child) could belong to another process.

use std::path::Path;

use tokio::net::UnixStream;

/// The peer's credentials, taken when its connection was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// User id (none: the kernel did not say; refused).
    pub uid: Option<u32>,
    /// Primary group id.
    pub gid: Option<u32>,
    /// Process id (for the logs).
    pub pid: Option<i32>,
    /// Supplementary group ids, read once at accept.
    pub groups: Vec<u32>,
}

impl Peer {
    /// The credentials of the process at the other end of `stream`, its
    /// supplementary groups included, read now (at accept) and never again.
    pub fn of(stream: &UnixStream) -> Peer {
        Peer::from_cred(stream, proc_groups)
    }

    /// [`Peer::of`] with the group lookup given (tests).
    pub fn from_cred(stream: &UnixStream, groups_of: impl Fn(i32) -> Vec<u32>) -> Peer {
        match stream.peer_cred() {
            Ok(c) => Peer {
                uid: Some(c.uid()),
                gid: Some(c.gid()),
                pid: c.pid(),
                groups: c.pid().map(groups_of).unwrap_or_default(),
            },
            Err(_) => Peer {
                uid: None,
                gid: None,
                pid: None,
                groups: Vec::new(),
            },
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.uid {
            Some(uid) => write!(f, "uid {uid}"),
            None => f.write_str("unknown peer"),
        }
    }
}

/// Who may use the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowed {
    /// The daemon's own uid.
    pub own_uid: u32,
    /// The configured group's gid, if a group is configured.
    pub gid: Option<u32>,
}

impl Allowed {
    /// Whether `peer` may use the socket: root, the daemon's own user, or
    /// a member of the configured group (primary, or supplementary as
    /// read when the peer connected).
    pub fn admits(&self, peer: &Peer) -> bool {
        let Some(uid) = peer.uid else {
            return false;
        };
        if uid == 0 || uid == self.own_uid {
            return true;
        }
        let Some(gid) = self.gid else {
            return false;
        };
        peer.gid == Some(gid) || peer.groups.contains(&gid)
    }
}

/// The supplementary groups of process `pid` (`Groups:` of
/// `/proc/<pid>/status`); none when it cannot be read.
pub fn proc_groups(pid: i32) -> Vec<u32> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    text.lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The gid of group `name` from `/etc/group` (`name:x:gid:members`).
pub fn group_id(name: &str, etc_group: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(etc_group).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.next()?;
        f.next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Peer {
        Peer {
            uid: Some(uid),
            gid: Some(gid),
            pid: Some(4242),
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_own_user_and_group_members_only() {
        let a = Allowed {
            own_uid: 990,
            gid: Some(991),
        };
        assert!(a.admits(&peer(0, 0, &[])));
        assert!(a.admits(&peer(990, 990, &[])));
        assert!(a.admits(&peer(1000, 991, &[])), "primary group");
        assert!(
            a.admits(&peer(1000, 1000, &[27, 991])),
            "supplementary group"
        );
        assert!(!a.admits(&peer(1000, 1000, &[27, 100])));
        let unknown = Peer {
            uid: None,
            gid: None,
            pid: None,
            groups: vec![991],
        };
        assert!(!a.admits(&unknown));
        // Without a group: root and the daemon's user only.
        let a = Allowed {
            own_uid: 990,
            gid: None,
        };
        assert!(!a.admits(&peer(1000, 991, &[991])));
    }

    /// The supplementary groups are looked up once, when the connection is
    /// accepted: later requests on it are judged by that set, whatever the
    /// pid's process (exited, or the pid reused by another) has by then.
    #[tokio::test]
    async fn groups_are_taken_once_at_accept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let _client = tokio::net::UnixStream::connect(&path).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let lookups = std::cell::Cell::new(0);
        // The first lookup sees the group; any later one a reused pid.
        let peer = Peer::from_cred(&stream, |pid| {
            assert_eq!(pid, std::process::id() as i32);
            lookups.set(lookups.get() + 1);
            if lookups.get() == 1 {
                vec![991]
            } else {
                vec![]
            }
        });
        assert_eq!(peer.groups, [991]);
        let a = Allowed {
            own_uid: peer.uid.unwrap().wrapping_add(1),
            gid: Some(991),
        };
        let stranger = Peer {
            uid: Some(peer.uid.unwrap().wrapping_add(2)),
            gid: Some(12345),
            ..peer
        };
        for _ in 0..3 {
            assert!(a.admits(&stranger), "a request on the same connection");
        }
        assert_eq!(lookups.get(), 1);
    }

    #[test]
    fn groups_are_read_from_etc_group() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("group");
        std::fs::write(&f, "root:x:0:\nsmartcharged:x:991:alice,bob\nsmart:x:5:\n").unwrap();
        assert_eq!(group_id("smartcharged", &f), Some(991));
        assert_eq!(group_id("smart", &f), Some(5));
        assert_eq!(group_id("nobody-here", &f), None);
        // This process's own supplementary groups are readable.
        let _ = proc_groups(std::process::id() as i32);
    }
}

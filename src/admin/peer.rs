//! Who is on the other end of the admin socket, and whether they may use
//! it. The socket's mode (0660, the configured group) already keeps others
//! from connecting; this check holds even if the file's mode or group is
//! changed, and says who did what in the journal.
//!
//! The kernel's SO_PEERCRED (tokio's `UnixStream::peer_cred`) gives the
//! peer's uid, primary gid and pid at connect time. Supplementary groups
//! are read from `/proc/<pid>/status` (the peer process's real set).

use std::path::Path;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

/// The peer's credentials, taken when it connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// User id (none: the kernel did not say; refused).
    pub uid: Option<u32>,
    /// Primary group id.
    pub gid: Option<u32>,
    /// Process id, for supplementary groups.
    pub pid: Option<i32>,
}

impl Connected<IncomingStream<'_, UnixListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(c) => Peer {
                uid: Some(c.uid()),
                gid: Some(c.gid()),
                pid: c.pid(),
            },
            Err(_) => Peer {
                uid: None,
                gid: None,
                pid: None,
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
    /// a member of the configured group (primary or supplementary, as
    /// `groups_of` reports for the peer's pid).
    pub fn admits(&self, peer: &Peer, groups_of: impl Fn(i32) -> Vec<u32>) -> bool {
        let Some(uid) = peer.uid else {
            return false;
        };
        if uid == 0 || uid == self.own_uid {
            return true;
        }
        let Some(gid) = self.gid else {
            return false;
        };
        peer.gid == Some(gid) || peer.pid.is_some_and(|pid| groups_of(pid).contains(&gid))
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

    fn peer(uid: u32, gid: u32) -> Peer {
        Peer {
            uid: Some(uid),
            gid: Some(gid),
            pid: Some(4242),
        }
    }

    #[test]
    fn root_own_user_and_group_members_only() {
        let a = Allowed {
            own_uid: 990,
            gid: Some(991),
        };
        let none = |_| Vec::new();
        assert!(a.admits(&peer(0, 0), none));
        assert!(a.admits(&peer(990, 990), none));
        assert!(a.admits(&peer(1000, 991), none), "primary group");
        assert!(
            a.admits(&peer(1000, 1000), |pid| if pid == 4242 {
                vec![27, 991]
            } else {
                vec![]
            }),
            "supplementary group"
        );
        assert!(!a.admits(&peer(1000, 1000), |_| vec![27, 100]));
        let unknown = Peer {
            uid: None,
            gid: None,
            pid: None,
        };
        assert!(!a.admits(&unknown, none));
        // Without a group: root and the daemon's user only.
        let a = Allowed {
            own_uid: 990,
            gid: None,
        };
        assert!(!a.admits(&peer(1000, 991), |_| vec![991]));
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

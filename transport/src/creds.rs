//! Peer credentials: who is on the other end of a connection.
//!
//! Filled from `SO_PEERCRED` on Unix sockets, given by the caller for
//! in-memory transports, absent on TCP.

use std::os::fd::AsFd;

/// The identity of a connection's peer, as far as the transport knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The peer's user id.
    pub uid: Option<u32>,
    /// The peer's primary group id.
    pub gid: Option<u32>,
    /// The peer's process id.
    pub pid: Option<u32>,
}

impl Credentials {
    /// Credentials naming only a user id (handy for in-memory transports).
    pub fn from_uid(uid: u32) -> Self {
        Credentials {
            uid: Some(uid),
            gid: None,
            pid: None,
        }
    }

    /// The credentials of this process (effective uid and gid, pid).
    pub fn current_process() -> Self {
        Credentials {
            uid: Some(rustix::process::geteuid().as_raw()),
            gid: Some(rustix::process::getegid().as_raw()),
            pid: Some(std::process::id()),
        }
    }

    /// Reads `SO_PEERCRED` from a connected Unix socket.
    pub(crate) fn from_socket(fd: impl AsFd) -> Option<Self> {
        let cred = rustix::net::sockopt::socket_peercred(fd).ok()?;
        let pid = rustix::process::Pid::as_raw(Some(cred.pid));
        Some(Credentials {
            uid: Some(cred.uid.as_raw()),
            gid: Some(cred.gid.as_raw()),
            pid: u32::try_from(pid).ok().filter(|p| *p != 0),
        })
    }
}

/// True when the process runs setuid or setgid (real and effective ids differ).
/// Such a process must not trust its environment (CVE-2012-3524).
pub fn is_setuid() -> bool {
    rustix::process::getuid() != rustix::process::geteuid()
        || rustix::process::getgid() != rustix::process::getegid()
}

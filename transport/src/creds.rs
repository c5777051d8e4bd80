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

/// True when the process runs setuid or setgid (real and effective ids
/// differ), or the kernel says it started in secure-execution mode
/// (`AT_SECURE` in the auxiliary vector: setuid/setgid binaries, file
/// capabilities, LSM transitions; what glibc's `secure_getenv` and libdbus's
/// `_dbus_check_setuid` look at). Such a process must not trust its
/// environment (CVE-2012-3524).
pub fn is_setuid() -> bool {
    rustix::process::getuid() != rustix::process::geteuid()
        || rustix::process::getgid() != rustix::process::getegid()
        || *AT_SECURE.get_or_init(|| std::fs::read("/proc/self/auxv").is_ok_and(|a| at_secure(&a)))
}

static AT_SECURE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Whether an auxiliary vector (native-endian word pairs) has `AT_SECURE` set.
fn at_secure(auxv: &[u8]) -> bool {
    const AT_NULL: usize = 0;
    const AT_SECURE: usize = 23;
    const W: usize = std::mem::size_of::<usize>();
    let word = |b: &[u8]| b.try_into().map_or(AT_NULL, usize::from_ne_bytes);
    for pair in auxv.chunks_exact(2 * W) {
        match word(&pair[..W]) {
            AT_NULL => break,
            AT_SECURE => return word(&pair[W..]) != 0,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auxv(pairs: &[(usize, usize)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|(k, v)| k.to_ne_bytes().into_iter().chain(v.to_ne_bytes()))
            .collect()
    }

    #[test]
    fn secure_execution_flag_is_read_from_the_auxiliary_vector() {
        assert!(at_secure(&auxv(&[(6, 4096), (23, 1), (0, 0)])));
        assert!(!at_secure(&auxv(&[(6, 4096), (23, 0), (0, 0)])));
        assert!(!at_secure(&auxv(&[(0, 0), (23, 1)])), "stops at AT_NULL");
        assert!(!at_secure(&[1, 2, 3]), "short input is not secure mode");
    }

    #[test]
    fn this_test_process_is_not_setuid() {
        // The test runner is started normally: the environment may be read.
        assert!(!is_setuid());
        let me = Credentials::current_process();
        assert_eq!(me.pid, Some(std::process::id()));
    }
}

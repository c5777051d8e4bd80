//! The resource limits a bus enforces, with dbus-daemon's session-bus values
//! as defaults (`bus/session.conf.in`, `bus/config-parser.c`).
//!
//! Only numbers live here; the code that enforces each limit is in the bus
//! state and the connection tasks.

use std::time::Duration;

/// Resource limits, named after dbus-daemon's `<limit name="...">` elements.
///
/// Defaults are dbus-daemon's session bus values. Tests should set small
/// values to exercise `LimitsExceeded` paths.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// `max_message_size`: the largest message a client may send, in bytes,
    /// header included as dbus-daemon counts it (session: 1e9, capped here by
    /// the protocol's 128 MiB). Checked from a message's first 16 bytes, before
    /// the rest is read: a client that declares a longer message is
    /// disconnected without the bus buffering its body.
    pub max_message_size: usize,
    /// `max_message_unix_fds`: file descriptors per message (built-in: 16).
    pub max_message_unix_fds: usize,
    /// `max_incoming_unix_fds`: file descriptors the bus holds for one
    /// connection and has not routed yet: those of the message it is reading
    /// (session: 250,000,000). Past it the connection is closed
    /// (CVE-2014-3636). Each one is an open fd of the bus process, so the bus
    /// never holds more than [`fastbus_transport::MAX_PENDING_FDS`] (1024) per
    /// connection however high this is set; the bus relays no message with
    /// more than 253 anyway (what one `sendmsg` carries). dbus-daemon also
    /// counts the fds of the sender's messages still queued for their
    /// receivers, and stops reading from the sender instead of closing it;
    /// here those count against [`Limits::max_outgoing_unix_fds`] of each
    /// receiver.
    pub max_incoming_unix_fds: usize,
    /// `max_outgoing_bytes`: bytes queued for a connection that does not read;
    /// past this the connection is closed (session: 1e9).
    pub max_outgoing_bytes: usize,
    /// `max_outgoing_unix_fds`: file descriptors queued for a connection that
    /// does not read (session: 250,000,000; CVE-2014-3636). As in dbus-daemon,
    /// once more than this many wait, a message with fds for it is refused
    /// (checked before adding, so the queue may go over by one message): the
    /// sender of a method call gets `org.freedesktop.DBus.Error.LimitsExceeded`,
    /// and a broadcast skips this receiver. dbus-daemon then refuses messages
    /// without fds too; here they still go, since they add no fds (their bytes
    /// count against [`Limits::max_outgoing_bytes`]).
    pub max_outgoing_unix_fds: usize,
    /// `max_completed_connections`: connections that finished `Hello` (session: 100000).
    pub max_completed_connections: usize,
    /// `max_incomplete_connections`: connections still authenticating (session: 10000).
    pub max_incomplete_connections: usize,
    /// `max_connections_per_user` (session: 100000).
    pub max_connections_per_user: usize,
    /// `max_names_per_connection`: owned or queued well-known names (session: 50000).
    pub max_names_per_connection: usize,
    /// `max_match_rules_per_connection` (session: 50000).
    pub max_match_rules_per_connection: usize,
    /// `max_replies_per_connection`: calls a connection may have awaiting replies (session: 50000).
    pub max_replies_per_connection: usize,
    /// `auth_timeout`: how long a client may take to authenticate (session: 240 s).
    pub auth_timeout: Duration,
    /// `pending_fd_timeout`: how long a connection may hold fds for a message
    /// it has not finished sending; then it is closed (CVE-2014-3637;
    /// session and built-in: 150 s). In busconfig, in milliseconds.
    pub pending_fd_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::session()
    }
}

impl Limits {
    /// dbus-daemon's session bus limits.
    pub fn session() -> Self {
        Limits {
            max_message_size: fastbus_wire::MAX_MESSAGE_LEN,
            max_message_unix_fds: 16,
            max_incoming_unix_fds: 250_000_000,
            max_outgoing_bytes: 1_000_000_000,
            max_outgoing_unix_fds: 250_000_000,
            max_completed_connections: 100_000,
            max_incomplete_connections: 10_000,
            max_connections_per_user: 100_000,
            max_names_per_connection: 50_000,
            max_match_rules_per_connection: 50_000,
            max_replies_per_connection: 50_000,
            auth_timeout: Duration::from_secs(240),
            pending_fd_timeout: Duration::from_secs(150),
        }
    }

    /// Sets one limit by its dbus-daemon name (as in `<limit name="...">`);
    /// returns false for a name this bus does not know (ignored, like
    /// dbus-daemon does with limits it cannot apply).
    pub fn set_by_name(&mut self, name: &str, value: u64) -> bool {
        let as_usize = usize::try_from(value).unwrap_or(usize::MAX);
        match name {
            "max_message_size" => {
                self.max_message_size = as_usize.min(fastbus_wire::MAX_MESSAGE_LEN);
            }
            "max_message_unix_fds" => self.max_message_unix_fds = as_usize,
            "max_incoming_unix_fds" => self.max_incoming_unix_fds = as_usize,
            "max_outgoing_bytes" => self.max_outgoing_bytes = as_usize,
            "max_outgoing_unix_fds" => self.max_outgoing_unix_fds = as_usize,
            "max_completed_connections" => self.max_completed_connections = as_usize,
            "max_incomplete_connections" => self.max_incomplete_connections = as_usize,
            "max_connections_per_user" => self.max_connections_per_user = as_usize,
            "max_names_per_connection" => self.max_names_per_connection = as_usize,
            "max_match_rules_per_connection" => self.max_match_rules_per_connection = as_usize,
            "max_replies_per_connection" => self.max_replies_per_connection = as_usize,
            "auth_timeout" => self.auth_timeout = Duration::from_millis(value),
            "pending_fd_timeout" => self.pending_fd_timeout = Duration::from_millis(value),
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_defaults_match_dbus_daemon_session_conf() {
        let l = Limits::default();
        assert_eq!(
            l.max_message_size,
            128 * 1024 * 1024,
            "1e9, capped by the protocol"
        );
        assert_eq!(l.max_outgoing_bytes, 1_000_000_000);
        assert_eq!(l.max_completed_connections, 100_000);
        assert_eq!(l.max_incomplete_connections, 10_000);
        assert_eq!(l.max_connections_per_user, 100_000);
        assert_eq!(l.max_names_per_connection, 50_000);
        assert_eq!(l.max_match_rules_per_connection, 50_000);
        assert_eq!(l.max_replies_per_connection, 50_000);
        assert_eq!(l.auth_timeout, Duration::from_secs(240));
        assert_eq!(l.max_message_unix_fds, 16);
        assert_eq!(l.max_incoming_unix_fds, 250_000_000);
        assert_eq!(l.max_outgoing_unix_fds, 250_000_000);
        assert_eq!(l.pending_fd_timeout, Duration::from_secs(150));
    }

    #[test]
    fn limits_set_by_dbus_daemon_name() {
        let mut l = Limits::default();
        assert!(l.set_by_name("max_names_per_connection", 3));
        assert_eq!(l.max_names_per_connection, 3);
        assert!(l.set_by_name("auth_timeout", 1500));
        assert_eq!(l.auth_timeout, Duration::from_millis(1500));
        assert!(l.set_by_name("pending_fd_timeout", 250));
        assert_eq!(l.pending_fd_timeout, Duration::from_millis(250));
        assert!(l.set_by_name("max_outgoing_unix_fds", 4));
        assert_eq!(l.max_outgoing_unix_fds, 4);
        assert!(l.set_by_name("max_incoming_unix_fds", 8));
        assert_eq!(l.max_incoming_unix_fds, 8);
        assert!(l.set_by_name("max_message_size", u64::MAX));
        assert_eq!(l.max_message_size, fastbus_wire::MAX_MESSAGE_LEN);
        assert!(!l.set_by_name("reply_timeout", 5));
    }
}

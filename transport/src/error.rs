//! The one error type of this crate.
//!
//! Each variant says what went wrong and, through its name, whose fault it
//! was: the caller (bad address, unsupported option), the peer (protocol
//! violation, bad bytes, fd misuse) or the operating system (I/O).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout `fastbus-transport`.
pub type Result<T> = std::result::Result<T, Error>;

/// Everything that can go wrong between an address string and a stream of messages.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Caller: an address string does not follow the "Server Addresses" grammar.
    Address {
        /// The (part of the) address that was being parsed.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Caller: the address names a transport or form this crate cannot use here
    /// (for example `launchd:`, or `unix:dir=` on the connecting side).
    Unsupported(String),
    /// No entry of an address list could be connected; every attempt's error, in order.
    ConnectFailed(Vec<(String, Error)>),
    /// The environment could not tell where the bus is (unset variables, or a
    /// setuid process, which never reads the environment: CVE-2012-3524).
    Environment(String),
    /// Operating system: an I/O call failed while doing `context`.
    Io {
        /// What we were doing.
        context: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Peer or local policy: authentication failed or the peer broke the SASL protocol.
    Auth(AuthError),
    /// Peer: the connection closed in the middle of something (`context`).
    UnexpectedEof {
        /// What we were reading when the peer went away.
        context: &'static str,
    },
    /// Peer: bytes that can never be a D-Bus message, or a message that does not decode.
    Wire(fastbus_wire::Error),
    /// Peer: a message declared `declared` Unix fds but only `received` arrived with it.
    MissingFds {
        /// The message's UNIX_FDS header field.
        declared: u32,
        /// How many fds were actually received for it.
        received: usize,
    },
    /// Peer: `count` fds arrived that no message declared; they were closed.
    SurplusFds {
        /// How many fds were closed.
        count: usize,
    },
    /// Peer: the kernel truncated the fd control data (MSG_CTRUNC); the fds that did
    /// arrive were closed and the message they belonged to is failed.
    FdsTruncated,
    /// Caller: a message carries fds but this connection cannot pass them
    /// (not a Unix socket, or `NEGOTIATE_UNIX_FD` was not agreed).
    FdsNotSupported,
    /// Caller or peer: more fds than allowed, in one message to send (one `sendmsg`
    /// carries at most 253) or waiting on the receiving side for a message to complete
    /// (the connection should be dropped).
    TooManyFds {
        /// How many fds the message has.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Peer: a message's header announces `len` bytes, more than the reader
    /// accepts (`limit`, [`crate::FramedReader::set_max_message_size`]). Caught
    /// from the first 16 bytes, before the message is buffered; the stream
    /// cannot be resynchronised: drop the connection.
    MessageTooLarge {
        /// The length the header announces.
        len: usize,
        /// The reader's cap.
        limit: usize,
    },
    /// Peer: `count` fds were held for a message that did not complete within
    /// `timeout` ([`crate::FramedReader::set_pending_fd_timeout`],
    /// CVE-2014-3637). They were closed: drop the connection.
    PendingFdsTimeout {
        /// How many fds were waiting (and are now closed).
        count: usize,
        /// The configured timeout.
        timeout: Duration,
    },
    /// Caller: queueing a message with `count` fds would put more than `limit`
    /// fds in a writer's queue, which already holds `queued`
    /// ([`crate::FramedWriter::set_max_queued_fds`]). Nothing was queued.
    QueuedFdsLimit {
        /// Fds already queued and not sent yet.
        queued: usize,
        /// Fds of the message that was refused.
        count: usize,
        /// The writer's cap.
        limit: usize,
    },
    /// Caller: fds were handed to [`crate::FramedWriter::queue_bytes`] with no
    /// message bytes to carry them (an fd travels with a message's first byte).
    /// Nothing was queued; the fds were closed.
    FdsWithoutBytes {
        /// How many fds were refused.
        count: usize,
    },
    /// Local: a DBUS_COOKIE_SHA1 keyring could not be used.
    Keyring {
        /// The keyring directory or file.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// Peer: on a `nonce-tcp:` connection the client did not send the right nonce.
    BadNonce,
}

/// Why a SASL authentication conversation ended without success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Server: the client's first byte was not NUL.
    FirstByteNotNul,
    /// A line exceeded the configured cap (default 16 KiB) without a line end.
    LineTooLong {
        /// The cap in bytes.
        limit: usize,
    },
    /// Server: the client was rejected `limit` times.
    TooManyRejections {
        /// The configured maximum.
        limit: u32,
    },
    /// Server: the client sent `BEGIN` before being authenticated.
    BeginBeforeOk,
    /// Unix fds arrived while authenticating (they were closed).
    FdsDuringAuth,
    /// The conversation did not finish within the configured time.
    Timeout(Duration),
    /// Client: every mechanism we can use was rejected; the server offered these.
    Rejected {
        /// The mechanisms of the server's last `REJECTED` line.
        offered: Vec<String>,
    },
    /// Client: the server's `OK` did not carry exactly 32 hex characters.
    BadGuid(String),
    /// Client: the server's guid differs from the one in the address.
    GuidMismatch {
        /// The guid from the address.
        expected: String,
        /// The guid the server sent.
        got: String,
    },
    /// The peer sent something the protocol does not allow in this state.
    Protocol(String),
    /// `feed` was called after the conversation had ended.
    Finished,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::FirstByteNotNul => f.write_str("first byte from the client was not NUL"),
            AuthError::LineTooLong { limit } => {
                write!(f, "auth line longer than {limit} bytes")
            }
            AuthError::TooManyRejections { limit } => {
                write!(f, "client rejected {limit} times")
            }
            AuthError::BeginBeforeOk => f.write_str("BEGIN before the client was authenticated"),
            AuthError::FdsDuringAuth => f.write_str("file descriptors sent during authentication"),
            AuthError::Timeout(d) => write!(f, "authentication not finished within {d:?}"),
            AuthError::Rejected { offered } => {
                write!(
                    f,
                    "all mechanisms rejected; server offers [{}]",
                    offered.join(" ")
                )
            }
            AuthError::BadGuid(g) => write!(f, "server guid {g:?} is not 32 hex characters"),
            AuthError::GuidMismatch { expected, got } => {
                write!(f, "server guid {got} differs from the address's {expected}")
            }
            AuthError::Protocol(s) => write!(f, "auth protocol violation: {s}"),
            AuthError::Finished => f.write_str("authentication conversation already finished"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Address { address, reason } => write!(f, "bad address {address:?}: {reason}"),
            Error::Unsupported(s) => write!(f, "unsupported: {s}"),
            Error::ConnectFailed(list) => {
                f.write_str("could not connect to any address")?;
                for (addr, e) in list {
                    write!(f, "; {addr}: {e}")?;
                }
                Ok(())
            }
            Error::Environment(s) => write!(f, "bus address from the environment: {s}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::Auth(e) => write!(f, "authentication: {e}"),
            Error::UnexpectedEof { context } => write!(f, "connection closed while {context}"),
            Error::Wire(e) => write!(f, "bad message from peer: {e}"),
            Error::MissingFds { declared, received } => write!(
                f,
                "message declares {declared} unix fds but {received} arrived with it"
            ),
            Error::SurplusFds { count } => {
                write!(
                    f,
                    "{count} unix fds arrived that no message declared (closed)"
                )
            }
            Error::FdsTruncated => f.write_str(
                "unix fd control data truncated (MSG_CTRUNC); received fds closed, message failed",
            ),
            Error::FdsNotSupported => {
                f.write_str("this connection cannot pass unix fds (or they were not negotiated)")
            }
            Error::TooManyFds { count, limit } => {
                write!(f, "message carries {count} unix fds, limit is {limit}")
            }
            Error::MessageTooLarge { len, limit } => {
                write!(
                    f,
                    "message of {len} bytes exceeds the limit of {limit} bytes"
                )
            }
            Error::PendingFdsTimeout { count, timeout } => write!(
                f,
                "{count} unix fds held for an incomplete message longer than {timeout:?} (closed)"
            ),
            Error::QueuedFdsLimit {
                queued,
                count,
                limit,
            } => write!(
                f,
                "queueing {count} more unix fds to the {queued} not sent yet would exceed the limit of {limit}"
            ),
            Error::FdsWithoutBytes { count } => write!(
                f,
                "{count} unix fds queued without message bytes to carry them (closed)"
            ),
            Error::Keyring { path, reason } => {
                write!(f, "keyring {}: {reason}", path.display())
            }
            Error::BadNonce => f.write_str("nonce-tcp client sent a wrong nonce"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Wire(e) => Some(e),
            _ => None,
        }
    }
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        Error::Auth(e)
    }
}

impl From<fastbus_wire::Error> for Error {
    fn from(e: fastbus_wire::Error) -> Self {
        Error::Wire(e)
    }
}

impl Error {
    /// Wraps an I/O error with what we were doing.
    pub(crate) fn io(context: &'static str, source: std::io::Error) -> Self {
        Error::Io { context, source }
    }

    /// Builds an [`Error::Address`].
    pub(crate) fn address(address: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Address {
            address: address.into(),
            reason: reason.into(),
        }
    }
}

//! The one error type of this crate, and [`DBusError`], a D-Bus error reply as data.
//!
//! Every [`Error`] says whose fault it was ([`Error::fault`]): the caller (a bad name, a
//! message that cannot be encoded, an operation the connection cannot do), the peer (an error
//! reply, a reply that makes no sense, a closed connection) or this library and the machine it
//! runs on (I/O errors, a timeout).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fastbus_wire::{Message, MessageType};

/// Result alias used throughout `fastbus`.
pub type Result<T> = std::result::Result<T, Error>;

/// Whose fault an [`Error`] was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// The code calling this library: a bad argument or an impossible request.
    Caller,
    /// The other end: an error reply, bad data, a closed connection.
    Peer,
    /// This library or the machine: I/O errors, timeouts, an internal limit.
    Library,
}

/// How a connection ended (see [`crate::MessageBus::wait_for_disconnect`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// We closed it: [`crate::MessageBus::disconnect`] or the last handle was dropped.
    ByUs,
    /// The peer closed it (end of stream).
    ByPeer,
    /// An error ended it (I/O error, bytes that can never be a message).
    Error(Arc<Error>),
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectReason::ByUs => f.write_str("closed by us"),
            DisconnectReason::ByPeer => f.write_str("closed by the peer"),
            DisconnectReason::Error(e) => write!(f, "closed after an error: {e}"),
        }
    }
}

/// A D-Bus error: an error name such as `org.freedesktop.DBus.Error.UnknownMethod` and a
/// human-readable text. As data, not one Rust type per name.
///
/// It is what a call returns inside [`Error::MethodError`] when the reply is an ERROR message
/// (then [`DBusError::reply`] holds that message), and what an exported
/// [`crate::Interface`] returns to make the bus send an error reply.
#[derive(Debug, Clone)]
pub struct DBusError {
    name: String,
    text: String,
    reply: Option<Box<Message>>,
}

impl DBusError {
    /// An error with this name and text (to return from an exported interface).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        DBusError {
            name: name.into(),
            text: text.into(),
            reply: None,
        }
    }

    /// `org.freedesktop.DBus.Error.Failed` with `text`.
    pub fn failed(text: impl Into<String>) -> Self {
        Self::new(names::FAILED, text)
    }

    /// `org.freedesktop.DBus.Error.InvalidArgs` with `text`.
    pub fn invalid_args(text: impl Into<String>) -> Self {
        Self::new(names::INVALID_ARGS, text)
    }

    /// Reads an ERROR message: its ERROR_NAME and its first string argument.
    pub fn from_reply(reply: Message) -> Self {
        DBusError {
            name: reply
                .error_name()
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            text: reply.error_text().unwrap_or_default().to_owned(),
            reply: Some(Box::new(reply)),
        }
    }

    /// The error name, e.g. `org.freedesktop.DBus.Error.ServiceUnknown`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The human-readable text (the first body argument of the error reply).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The ERROR message this came from, when it came from the wire.
    pub fn reply(&self) -> Option<&Message> {
        self.reply.as_deref()
    }
}

impl fmt::Display for DBusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.text.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}: {}", self.name, self.text)
        }
    }
}

impl std::error::Error for DBusError {}

/// Names of the standard errors this crate sends or recognises.
pub mod names {
    /// Generic failure.
    pub const FAILED: &str = "org.freedesktop.DBus.Error.Failed";
    /// Arguments of the wrong type or value.
    pub const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
    /// No object at the path.
    pub const UNKNOWN_OBJECT: &str = "org.freedesktop.DBus.Error.UnknownObject";
    /// The object has no such interface.
    pub const UNKNOWN_INTERFACE: &str = "org.freedesktop.DBus.Error.UnknownInterface";
    /// The interface (or object) has no such method.
    pub const UNKNOWN_METHOD: &str = "org.freedesktop.DBus.Error.UnknownMethod";
    /// No reply within the timeout (what the bus sends when a service does not answer).
    pub const NO_REPLY: &str = "org.freedesktop.DBus.Error.NoReply";
    /// The name has no owner and cannot be activated.
    pub const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
}

/// Everything that can go wrong on a `MessageBus`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Peer: the call was answered with an ERROR message (name, text and the message).
    MethodError(DBusError),
    /// The call got no reply within `timeout`. The pending call was forgotten; a late reply
    /// is dropped.
    Timeout {
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection is closed, or closed while the operation waited.
    Disconnected(DisconnectReason),
    /// Connecting, authenticating or moving bytes failed (see [`Error::fault`] for whose fault).
    Transport(fastbus_transport::Error),
    /// Caller: a message or argument could not be encoded, or a name is invalid.
    Wire(fastbus_wire::Error),
    /// Peer: a reply's body does not have the type the caller asked for.
    ReplyBody {
        /// Why it did not decode.
        source: fastbus_wire::Error,
        /// The reply.
        reply: Box<Message>,
    },
    /// Peer: an answer that makes no sense (a `Hello` reply without a name, an unknown
    /// `RequestName` code, a reply of the wrong message type).
    Protocol(String),
    /// Caller: the operation needs a message bus, and this is a peer-to-peer connection.
    NotABus(&'static str),
    /// Caller: an interface of this name is already exported at this path.
    AlreadyExported {
        /// The object path.
        path: String,
        /// The interface name.
        interface: String,
    },
}

impl Error {
    /// Whose fault this error was.
    pub fn fault(&self) -> Fault {
        use fastbus_transport::Error as T;
        match self {
            Error::MethodError(_) | Error::ReplyBody { .. } | Error::Protocol(_) => Fault::Peer,
            Error::Disconnected(r) => match r {
                DisconnectReason::ByUs => Fault::Caller,
                DisconnectReason::ByPeer => Fault::Peer,
                // Too many fds waiting for their message: the reader's limit, the peer's doing.
                DisconnectReason::Error(e) => match &**e {
                    Error::Transport(T::TooManyFds { .. }) => Fault::Peer,
                    e => e.fault(),
                },
            },
            Error::Timeout { .. } => Fault::Library,
            Error::Wire(_) | Error::NotABus(_) | Error::AlreadyExported { .. } => Fault::Caller,
            Error::Transport(t) => match t {
                T::Address { .. }
                | T::Unsupported(_)
                | T::Environment(_)
                | T::FdsNotSupported
                | T::TooManyFds { .. }
                | T::QueuedFdsLimit { .. }
                | T::FdsWithoutBytes { .. } => Fault::Caller,
                T::Io { .. } | T::Keyring { .. } => Fault::Library,
                T::ConnectFailed(list) => list.last().map_or(Fault::Library, |(_, e)| {
                    Error::Transport(clone_kind(e)).fault()
                }),
                _ => Fault::Peer,
            },
        }
    }

    /// The D-Bus error, when this is an error reply.
    pub fn dbus_error(&self) -> Option<&DBusError> {
        match self {
            Error::MethodError(e) => Some(e),
            _ => None,
        }
    }

    /// The D-Bus error name, when this is an error reply.
    pub fn error_name(&self) -> Option<&str> {
        self.dbus_error().map(DBusError::name)
    }
}

/// A stand-in with the same fault class as `e` (transport errors are not `Clone`).
fn clone_kind(e: &fastbus_transport::Error) -> fastbus_transport::Error {
    use fastbus_transport::Error as T;
    match e {
        T::Address { address, reason } => T::Address {
            address: address.clone(),
            reason: reason.clone(),
        },
        T::Unsupported(s) => T::Unsupported(s.clone()),
        T::Environment(s) => T::Environment(s.clone()),
        T::Io { context, source } => T::Io {
            context,
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        T::FdsNotSupported => T::FdsNotSupported,
        _ => T::UnexpectedEof { context: "" },
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MethodError(e) => write!(f, "error reply: {e}"),
            Error::Timeout { timeout } => write!(f, "no reply within {timeout:?}"),
            Error::Disconnected(r) => write!(f, "connection {r}"),
            Error::Transport(e) => write!(f, "transport: {e}"),
            Error::Wire(e) => write!(f, "message: {e}"),
            Error::ReplyBody { source, reply } => write!(
                f,
                "reply body {:?} is not the expected type: {source}",
                reply.signature().as_str()
            ),
            Error::Protocol(s) => write!(f, "protocol: {s}"),
            Error::NotABus(what) => {
                write!(
                    f,
                    "{what} needs a message bus; this is a peer-to-peer connection"
                )
            }
            Error::AlreadyExported { path, interface } => {
                write!(f, "{interface} is already exported at {path}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::MethodError(e) => Some(e),
            Error::Transport(e) => Some(e),
            Error::Wire(e) => Some(e),
            Error::ReplyBody { source, .. } => Some(source),
            Error::Disconnected(DisconnectReason::Error(e)) => Some(&**e),
            _ => None,
        }
    }
}

impl From<fastbus_wire::Error> for Error {
    fn from(e: fastbus_wire::Error) -> Self {
        Error::Wire(e)
    }
}

impl From<fastbus_transport::Error> for Error {
    fn from(e: fastbus_transport::Error) -> Self {
        Error::Transport(e)
    }
}

impl From<DBusError> for Error {
    fn from(e: DBusError) -> Self {
        Error::MethodError(e)
    }
}

/// Turns a reply into `Ok(reply)` or, for an ERROR message, [`Error::MethodError`].
pub(crate) fn check_reply(reply: Message) -> Result<Message> {
    if reply.message_type() == MessageType::ERROR {
        Err(Error::MethodError(DBusError::from_reply(reply)))
    } else {
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_keeps_name_text_and_message() {
        let call = Message::method_call("/a", "M")
            .serial(3)
            .sender(":1.5")
            .build()
            .unwrap();
        let reply = Message::error(&call, names::UNKNOWN_METHOD, "no such method M")
            .serial(9)
            .build()
            .unwrap();
        let e = check_reply(reply).unwrap_err();
        assert_eq!(e.fault(), Fault::Peer);
        let d = e.dbus_error().unwrap();
        assert_eq!(d.name(), names::UNKNOWN_METHOD);
        assert_eq!(d.text(), "no such method M");
        assert_eq!(d.reply().unwrap().reply_serial(), Some(3));
        assert_eq!(
            e.to_string(),
            "error reply: org.freedesktop.DBus.Error.UnknownMethod: no such method M"
        );
    }

    #[test]
    fn faults_say_who_is_to_blame() {
        let bad_name = fastbus_wire::names::WellKnownName::new("no dots").unwrap_err();
        assert_eq!(Error::from(bad_name).fault(), Fault::Caller);
        assert_eq!(
            Error::Timeout {
                timeout: Duration::from_secs(1)
            }
            .fault(),
            Fault::Library
        );
        assert_eq!(
            Error::Disconnected(DisconnectReason::ByPeer).fault(),
            Fault::Peer
        );
        assert_eq!(
            Error::from(fastbus_transport::Error::FdsNotSupported).fault(),
            Fault::Caller
        );
    }

    #[test]
    fn fd_limits_blame_whoever_exceeded_them() {
        use fastbus_transport::Error as T;
        // Queueing past the writer's cap, or fds with no bytes: the caller queued them.
        let queued = T::QueuedFdsLimit {
            queued: 3,
            count: 2,
            limit: 4,
        };
        assert_eq!(Error::from(queued).fault(), Fault::Caller);
        let bare = T::FdsWithoutBytes { count: 1 };
        assert_eq!(Error::from(bare).fault(), Fault::Caller);
        let send = T::TooManyFds {
            count: 300,
            limit: 253,
        };
        assert_eq!(Error::from(send).fault(), Fault::Caller);
        // The reader's cap on fds waiting for their message ends the connection: the peer.
        let piled = T::TooManyFds {
            count: 1025,
            limit: 1024,
        };
        let ended = Error::Disconnected(DisconnectReason::Error(Arc::new(Error::from(piled))));
        assert_eq!(ended.fault(), Fault::Peer);
    }
}

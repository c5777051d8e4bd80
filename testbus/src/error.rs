//! The one error type of `fastbus-testbus`.

use std::fmt;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What can go wrong starting, configuring or talking to a test bus.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A listening address could not be parsed or bound, or a client
    /// connection could not be made (the transport's error says which).
    Transport(fastbus_transport::Error),
    /// Caller: the command line was wrong (the text says how).
    Usage(String),
    /// Caller: a busconfig file could not be read or parsed.
    Config {
        /// The file.
        file: String,
        /// What was wrong.
        reason: String,
    },
    /// Operating system: an I/O call failed while doing `context`.
    Io {
        /// What we were doing.
        context: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Caller: the bus was shut down.
    ShutDown,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => write!(f, "transport: {e}"),
            Error::Usage(s) => write!(f, "usage: {s}"),
            Error::Config { file, reason } => write!(f, "config file {file}: {reason}"),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::ShutDown => f.write_str("the test bus was shut down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<fastbus_transport::Error> for Error {
    fn from(e: fastbus_transport::Error) -> Self {
        Error::Transport(e)
    }
}

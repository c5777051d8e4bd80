//! Everything between a D-Bus address string and a stream of `Message`s:
//! addresses, the Unix / TCP / in-memory transports with fd passing and peer
//! credentials, SASL authentication (client and server side), listeners, and
//! the framed message reader and writer.
//!
//! It does not know what messages mean: no serials, no reply matching, no
//! routing (that is the `bus` crate and `testbus`), and no message codec (that
//! is `fastbus-wire`). Authentication is a pure state machine in [`auth`];
//! the async code only moves its lines.
//!
//! ```text
//! address ──connect──> Transport ──handshake──> (FramedReader, FramedWriter)
//!                         │ split                  Message in / Message out
//!                         ▼
//!            TransportRead + TransportWrite (two tasks)
//! ```
//!
//! # Limits that protect a server (see `conformance/security.md`)
//!
//! - A setuid or setgid process (or one in secure-execution mode) never reads
//!   the bus address, `XDG_RUNTIME_DIR` or `HOME` from its environment
//!   ([`BusType::address`], [`is_setuid`]; CVE-2012-3524).
//! - Authentication: a 16 KiB line cap, a rejection limit, a timeout
//!   ([`ServerConfig`]), and [`Listener::set_max_incomplete`] for connections
//!   still authenticating (CVE-2014-3639, CVE-2026-15588). DBUS_COOKIE_SHA1
//!   serves only the server's own user and refuses keyrings that are
//!   symlinks, not ours, or open to others (CVE-2019-12749).
//! - Fds: each message keeps the fds that came with it; fds that no message
//!   declares, reads the kernel truncated (MSG_CTRUNC) and reads with more
//!   fds than allowed are closed and fail their message (CVE-2014-3635,
//!   CVE-2020-12049); caps per message and per connection
//!   ([`FramedReader::set_max_message_fds`],
//!   [`FramedReader::set_max_pending_fds`]; CVE-2014-3636), a timeout on fds
//!   held for a message that never completes
//!   ([`FramedReader::set_pending_fd_timeout`], dbus-daemon's
//!   `pending_fd_timeout`; CVE-2014-3637), and on the sending side a count and
//!   an optional cap of fds queued and not sent yet
//!   ([`FramedWriter::queued_fds`], [`FramedWriter::set_max_queued_fds`];
//!   dbus-daemon's `max_outgoing_unix_fds`).
//! - Message size: [`FramedReader::set_max_message_size`] (default
//!   [`MAX_MESSAGE_SIZE`], the specification's 128 MiB; dbus-daemon's
//!   `max_message_size`) is checked from a message's first 16 bytes, before
//!   the rest is buffered.
//! - The DBUS_COOKIE_SHA1 server's keyring work (file I/O, waiting for another
//!   process's lock) runs on tokio's blocking pool, not on the runtime.
//!
//! # Daemon helpers
//!
//! [`take_inherited_fd`] takes ownership of an fd inherited by number (a
//! daemon's `--print-address=FD`), so it can be written and closed without
//! `unsafe` in the caller. It holds this crate's only `unsafe` code: the
//! crate's lints are the workspace's with `unsafe_code` lowered from
//! `forbid` to `deny`, and only the private `sys` module allows it.

pub mod address;
pub mod auth;
mod connect;
mod creds;
mod error;
pub mod framed;
pub mod handshake;
// The one exception to the workspace's no-`unsafe` rule (`unsafe_code` is
// `deny` for this crate only, see Cargo.toml): two `// SAFETY:`-commented
// blocks that take ownership of an inherited fd by number.
#[allow(
    unsafe_code,
    reason = "OwnedFd::from_raw_fd for an inherited fd (no safe way)"
)]
mod sys;
pub mod transport;

pub use address::{Address, AddressKind, BusType, TcpAddress, TcpFamily};
pub use auth::{ClientOptions, Guid, ServerConfig};
pub use connect::{Incoming, Listener, connect, connect_bus, connect_transport};
pub use creds::{Credentials, is_setuid};
pub use error::{AuthError, Error, Result};
pub use framed::{FramedReader, FramedWriter, MAX_MESSAGE_FDS, MAX_MESSAGE_SIZE, MAX_PENDING_FDS};
pub use handshake::{
    ClientConnection, ServerConnection, client_handshake, raw_framed, server_handshake,
};
pub use sys::take_inherited_fd;
pub use transport::{
    BoxTransport, MemoryTransport, Received, TcpTransport, Transport, TransportRead,
    TransportWrite, UnixTransport, memory_pair, socketpair,
};

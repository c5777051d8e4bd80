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

pub mod address;
pub mod auth;
mod connect;
mod creds;
mod error;
pub mod framed;
pub mod handshake;
pub mod transport;

pub use address::{Address, AddressKind, BusType, TcpAddress, TcpFamily};
pub use auth::{ClientOptions, Guid, ServerConfig};
pub use connect::{Incoming, Listener, connect, connect_bus, connect_transport};
pub use creds::{Credentials, is_setuid};
pub use error::{AuthError, Error, Result};
pub use framed::{FramedReader, FramedWriter, MAX_PENDING_FDS};
pub use handshake::{
    ClientConnection, ServerConnection, client_handshake, raw_framed, server_handshake,
};
pub use transport::{
    BoxTransport, MemoryTransport, Received, TcpTransport, Transport, TransportRead,
    TransportWrite, UnixTransport, memory_pair, socketpair,
};

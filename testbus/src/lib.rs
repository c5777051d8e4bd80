//! `fastbus-testbus`: a real D-Bus message bus daemon for hermetic tests and
//! benchmarks, held to dbus-daemon's behaviour (the driver's methods, error
//! names, signal order, routing and limits).
//!
//! Start one in your test with [`TestBus::start`] and connect over its
//! private Unix socket ([`TestBus::address`]) or in memory
//! ([`TestBus::connect_memory`], [`TestBus::connect_framed`]); or run a
//! program under the `fastbus-testbus` binary, which also accepts
//! dbus-daemon's command line so it drops in wherever a harness starts a
//! dbus-daemon.
//!
//! Limits ([`Limits`]) default to dbus-daemon's session bus values and are
//! answered with `LimitsExceeded`; a client that breaks the protocol, or
//! does not read what it is sent, is disconnected and nobody else notices.
//! The limits dbus-daemon added for its fd-passing CVEs are here too: fds per
//! message and per connection, fds queued for a receiver that does not read
//! (`max_outgoing_unix_fds`), fds held for a message never finished
//! (`pending_fd_timeout`); and a message longer than `max_message_size` is
//! refused from its header, before the bus buffers its body.
//! [`TestBus::shutdown`] (or dropping the handle) closes every connection.
//!
//! It does not do service activation (`.service` files: `StartServiceByName`
//! answers `ServiceUnknown`), does not enforce `<policy>` rules (they are
//! parsed and ignored), and never touches the machine's system or session bus.
//!
//! ```no_run
//! # async fn f() -> fastbus_testbus::Result<()> {
//! let bus = fastbus_testbus::TestBus::start().await?;
//! // Hand this to the code under test, e.g. as DBUS_SESSION_BUS_ADDRESS.
//! let address = bus.address();
//! # let _ = address;
//! bus.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ```text
//! client ─┐ reader task: decode ─> BusState::handle (one lock, no I/O) ─> deliveries
//! client ─┤                                                              │
//! client ─┘ <─ outbox: written directly to the socket; a writer task only when it is full
//! ```

pub mod config;
mod driver;
mod error;
mod limits;
mod outbox;
mod server;
mod state;

pub use error::{Error, Result};
pub use limits::Limits;
pub use server::{TestBus, TestBusBuilder};

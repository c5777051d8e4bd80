//! The async D-Bus connection: [`MessageBus`], modelled on Python dbus-fast's
//! `aio.MessageBus`, on tokio.
//!
//! It connects and authenticates (through `fastbus-transport`), says `Hello`, and then does
//! everything a client or a service needs on one connection: method calls with replies
//! matched by serial and timeouts ([`MessageBus::call`], [`MessageBus::call_method`]),
//! message handlers, signal subscriptions as streams ([`MessageBus::subscribe`]), bus name
//! requests, introspection of remote objects, and an object registry that routes incoming
//! calls to exported [`Interface`]s. It does not build interfaces from Rust methods (that is
//! `fastbus-service`), make proxies (`fastbus-proxy`), or encode messages (`fastbus-wire`).
//!
//! ```text
//! MessageBus (Clone) ──> Core ──> writer: write now under a lock; a task only when the socket is full
//!                          ├────> reader task: replies ─> callers' slots, signals ─> bounded
//!                          │                   streams, calls ─> exported interfaces (in order
//!                          │                   per object)
//!                          └────> timer task: expires calls at the earliest deadline
//! ```
//!
//! See `bus/README.md` for a walk-through.

mod bus;
mod connection;
mod error;
mod export;
mod handlers;
mod names;
pub mod signals;

pub use bus::{
    DBUS_INTERFACE, DBUS_NAME, DBUS_PATH, DEFAULT_CALL_TIMEOUT, DEFAULT_SIGNAL_QUEUE, MessageBus,
    MessageBusBuilder, WeakMessageBus,
};
pub use connection::WriteMode;
pub use error::{DBusError, DisconnectReason, Error, Fault, Result, names as error_names};
pub use export::{INTROSPECTABLE, Interface, MethodResult, PEER};
pub use handlers::{HandlerId, HandlerResult};
pub use names::{ReleaseNameReply, RequestNameFlags, RequestNameReply};
pub use signals::{Lagged, SignalStream};

/// Re-exported so that users need not name the lower crates for common types.
pub use async_trait::async_trait;
pub use fastbus_transport::BusType;
pub use fastbus_wire::{MatchRule, Message, MessageType};

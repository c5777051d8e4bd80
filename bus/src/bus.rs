//! [`MessageBus`], the connection handle users hold, and [`MessageBusBuilder`].

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use fastbus_transport::auth::{Authenticator, ClientMechanism, ClientOptions};
use fastbus_transport::{BoxTransport, BusType, FramedReader, FramedWriter};
use fastbus_wire::introspection::Node;
use fastbus_wire::names::{BusName, WellKnownName};
use fastbus_wire::{Decode, Encode, MatchRule, Message};

use crate::connection::{Core, Options, WriteMode};
use crate::error::{DisconnectReason, Error, Result, check_reply};
use crate::export::Interface;
use crate::handlers::{HandlerId, HandlerResult};
use crate::names::{ReleaseNameReply, RequestNameFlags, RequestNameReply};
use crate::signals::{self, SignalStream};

/// The bus's own name.
pub const DBUS_NAME: &str = "org.freedesktop.DBus";
/// The bus's object path.
pub const DBUS_PATH: &str = "/org/freedesktop/DBus";
/// The bus's interface.
pub const DBUS_INTERFACE: &str = "org.freedesktop.DBus";

/// The default time a call waits for its reply (as libdbus and dbus-fast: 25 s).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(25);
/// The default bound of each signal subscription's queue.
pub const DEFAULT_SIGNAL_QUEUE: usize = 1024;

/// Closes the connection when the last [`MessageBus`] handle goes.
#[derive(Debug)]
pub(crate) struct Guard {
    core: Arc<Core>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.core.close(DisconnectReason::ByUs);
    }
}

/// A connection to a message bus (or, in peer-to-peer mode, to one peer).
///
/// Cheap to clone: every clone is a handle to the same connection. Dropping the last handle
/// closes the connection cleanly (what is queued is sent, then the socket is shut down).
/// Signal streams, and exported objects while they run, do not keep the connection open.
///
/// ```no_run
/// # async fn demo() -> fastbus::Result<()> {
/// use fastbus::{BusType, MessageBus};
/// let bus = MessageBus::connect(BusType::Session).await?;
/// let names: Vec<String> = bus
///     .call_method("org.freedesktop.DBus", "/org/freedesktop/DBus",
///                  "org.freedesktop.DBus", "ListNames", &())
///     .await?;
/// println!("{} is one of {names:?}", bus.unique_name().unwrap_or("?"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MessageBus {
    guard: Arc<Guard>,
}

/// A handle that does not keep the connection open (for handlers and interfaces that need
/// to reach their own connection without a reference cycle).
#[derive(Clone, Debug)]
pub struct WeakMessageBus {
    guard: Weak<Guard>,
}

impl WeakMessageBus {
    /// The connection, if some [`MessageBus`] handle still holds it open.
    pub fn upgrade(&self) -> Option<MessageBus> {
        self.guard.upgrade().map(MessageBus::from_guard)
    }
}

impl fmt::Debug for MessageBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageBus")
            .field("unique_name", &self.unique_name())
            .field("connected", &self.is_connected())
            .finish()
    }
}

enum Target {
    Bus(BusType),
    Address(String),
    Transport(BoxTransport),
    Framed(FramedReader, FramedWriter),
}

/// Options for a connection; finish with [`MessageBusBuilder::connect`].
pub struct MessageBusBuilder {
    target: Target,
    client: ClientOptions,
    peer_to_peer: bool,
    default_timeout: Duration,
    signal_queue: usize,
    write_mode: WriteMode,
}

impl fmt::Debug for MessageBusBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let target = match &self.target {
            Target::Bus(b) => format!("{b:?}"),
            Target::Address(a) => a.clone(),
            Target::Transport(t) => format!("{t:?}"),
            Target::Framed(..) => "framed".into(),
        };
        f.debug_struct("MessageBusBuilder")
            .field("target", &target)
            .field("client", &self.client)
            .field("peer_to_peer", &self.peer_to_peer)
            .field("default_timeout", &self.default_timeout)
            .field("signal_queue", &self.signal_queue)
            .field("write_mode", &self.write_mode)
            .finish()
    }
}

impl MessageBusBuilder {
    fn new(target: Target) -> Self {
        MessageBusBuilder {
            target,
            client: ClientOptions::default(),
            peer_to_peer: false,
            default_timeout: DEFAULT_CALL_TIMEOUT,
            signal_queue: DEFAULT_SIGNAL_QUEUE,
            write_mode: WriteMode::default(),
        }
    }

    /// Connect to the session or system bus (the default: the session bus).
    pub fn bus(mut self, bus: BusType) -> Self {
        self.target = Target::Bus(bus);
        self
    }

    /// Connect to a D-Bus address (list), e.g. `unix:path=/run/user/1000/bus`.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.target = Target::Address(address.into());
        self
    }

    /// Authenticate over a transport that is already connected (for example one end of
    /// `fastbus_transport::memory_pair`, which is how an in-process bus hands out connections).
    pub fn transport(mut self, transport: BoxTransport) -> Self {
        self.target = Target::Transport(transport);
        self
    }

    /// Use a connection that is already authenticated (after `server_handshake` on the
    /// accepting side of a peer-to-peer connection, or `raw_framed` in tests). Unix fds can
    /// be sent when `writer` says so.
    pub fn framed(mut self, reader: FramedReader, writer: FramedWriter) -> Self {
        self.target = Target::Framed(reader, writer);
        self
    }

    /// Peer-to-peer mode: the other end is not a message bus, so no `Hello` is sent, there is
    /// no unique name, and signal subscriptions filter locally without `AddMatch`.
    pub fn peer_to_peer(mut self, yes: bool) -> Self {
        self.peer_to_peer = yes;
        self
    }

    /// Authenticate with this mechanism only, built afresh for each connection attempt (like
    /// dbus-fast's `auth=`).
    pub fn authenticator(
        mut self,
        make: impl Fn() -> Box<dyn Authenticator> + Send + Sync + 'static,
    ) -> Self {
        self.client.mechanisms = vec![ClientMechanism::Custom(Arc::new(make))];
        self
    }

    /// The SASL mechanisms to try, in order (default: EXTERNAL, DBUS_COOKIE_SHA1, ANONYMOUS).
    pub fn mechanisms(mut self, mechanisms: Vec<ClientMechanism>) -> Self {
        self.client.mechanisms = mechanisms;
        self
    }

    /// Ask to pass Unix fds (default: yes, where the transport can).
    pub fn negotiate_unix_fd(mut self, yes: bool) -> Self {
        self.client.negotiate_unix_fd = yes;
        self
    }

    /// All authentication options at once.
    pub fn client_options(mut self, options: ClientOptions) -> Self {
        self.client = options;
        self
    }

    /// How long a call waits for its reply unless told otherwise (default 25 s).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = timeout;
        self
    }

    /// How many signals each subscription queues before it drops new ones (default 1024;
    /// see [`crate::signals`] for the overflow policy).
    pub fn signal_queue_capacity(mut self, capacity: usize) -> Self {
        self.signal_queue = capacity.max(1);
        self
    }

    /// How outgoing messages reach the socket (default [`WriteMode::Direct`]).
    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.write_mode = mode;
        self
    }

    /// Connects, authenticates and (unless peer-to-peer) says `Hello`.
    ///
    /// # Errors
    /// [`Error::Transport`] when connecting or authenticating fails; [`Error::MethodError`] or
    /// [`Error::Protocol`] when the bus refuses `Hello` or answers it oddly; [`Error::Timeout`].
    pub async fn connect(self) -> Result<MessageBus> {
        let hello = if self.peer_to_peer {
            None
        } else {
            Some(
                Message::method_call(DBUS_PATH, "Hello")
                    .interface(DBUS_INTERFACE)
                    .destination(DBUS_NAME)
                    .serial(1)
                    .build()?
                    .encode()?,
            )
        };
        let first = hello.as_deref();
        let (reader, writer) = match self.target {
            Target::Bus(b) => {
                let c = fastbus_transport::connect_bus(b, &self.client, first).await?;
                (c.reader, c.writer)
            }
            Target::Address(a) => {
                let addrs = fastbus_transport::address::parse_list(&a)?;
                let c = fastbus_transport::connect(&addrs, &self.client, first).await?;
                (c.reader, c.writer)
            }
            Target::Transport(t) => {
                let c = fastbus_transport::client_handshake(t, &self.client, None, first).await?;
                (c.reader, c.writer)
            }
            Target::Framed(r, mut w) => {
                if let Some(h) = first {
                    w.queue_bytes(h, Vec::new())?;
                }
                (r, w)
            }
        };
        let opts = Options {
            default_timeout: self.default_timeout,
            signal_queue: self.signal_queue,
            peer_to_peer: self.peer_to_peer,
            write_mode: self.write_mode,
        };
        let core = Core::new(writer, opts, if hello.is_some() { 2 } else { 1 });
        if hello.is_some() {
            // Registered before the reader starts: the reply cannot come first.
            core.register(1, self.default_timeout)?;
        }
        let guard = Arc::new(Guard {
            core: Arc::clone(&core),
        });
        core.start(reader, &guard);
        let bus = MessageBus { guard };
        if hello.is_some() {
            // The Hello went out with (or right after) BEGIN; flush if it is still queued.
            core.flush_queued();
            let reply = core.wait_reply(1, self.default_timeout).await?;
            let reply = check_reply(reply)?;
            let name = reply
                .body::<&str>()
                .map_err(|e| Error::Protocol(format!("Hello reply: {e}")))?;
            fastbus_wire::names::UniqueName::new(name)
                .map_err(|e| Error::Protocol(format!("Hello reply: {e}")))?;
            let _ = core.unique_name.set(name.to_owned());
        }
        Ok(bus)
    }
}

impl MessageBus {
    pub(crate) fn from_guard(guard: Arc<Guard>) -> Self {
        MessageBus { guard }
    }

    pub(crate) fn core(&self) -> &Arc<Core> {
        &self.guard.core
    }

    /// A builder, set to connect to the session bus.
    pub fn builder() -> MessageBusBuilder {
        MessageBusBuilder::new(Target::Bus(BusType::Session))
    }

    /// Connects to the session or system bus with the default options.
    ///
    /// # Errors
    /// As [`MessageBusBuilder::connect`].
    pub async fn connect(bus: BusType) -> Result<Self> {
        Self::builder().bus(bus).connect().await
    }

    /// Connects to the bus at a D-Bus address (list) with the default options.
    ///
    /// # Errors
    /// As [`MessageBusBuilder::connect`]; [`Error::Transport`] for a malformed address.
    pub async fn connect_address(address: &str) -> Result<Self> {
        Self::builder().address(address).connect().await
    }

    /// A handle that does not keep the connection open.
    pub fn downgrade(&self) -> WeakMessageBus {
        WeakMessageBus {
            guard: Arc::downgrade(&self.guard),
        }
    }

    /// The unique name the bus gave us (`None` in peer-to-peer mode).
    pub fn unique_name(&self) -> Option<&str> {
        self.core().unique_name.get().map(String::as_str)
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        self.core().is_connected()
    }

    /// Whether Unix fds can be sent and received on this connection.
    pub fn can_pass_unix_fds(&self) -> bool {
        self.core().unix_fd
    }

    /// A fresh serial for a message (never 0).
    pub fn next_serial(&self) -> u32 {
        self.core().next_serial()
    }

    /// Sends a message without waiting for any reply; it gets a serial if it has none.
    /// Returns the serial it was sent with.
    ///
    /// # Errors
    /// [`Error::Wire`] when it cannot be encoded; [`Error::Disconnected`];
    /// [`Error::Transport`] for fds this connection cannot pass.
    pub fn send(&self, mut msg: Message) -> Result<u32> {
        self.core().send(&mut msg)
    }

    /// Sends a message and, if it expects a reply, waits for it (default timeout). Returns
    /// `None` for messages that expect no reply (not a method call, or NO_REPLY_EXPECTED).
    ///
    /// # Errors
    /// [`Error::MethodError`] when the reply is an error; [`Error::Timeout`];
    /// [`Error::Disconnected`] when the connection ends first; as [`MessageBus::send`].
    ///
    /// # Cancel safety
    /// Dropping the future forgets the call; a late reply is dropped.
    pub async fn call(&self, msg: Message) -> Result<Option<Message>> {
        self.call_with_timeout(msg, self.core().opts.default_timeout)
            .await
    }

    /// As [`MessageBus::call`], waiting at most `timeout` for the reply.
    ///
    /// # Errors
    /// As [`MessageBus::call`].
    pub async fn call_with_timeout(
        &self,
        mut msg: Message,
        timeout: Duration,
    ) -> Result<Option<Message>> {
        if !msg.expects_reply() {
            self.core().send(&mut msg)?;
            return Ok(None);
        }
        let reply = self.core().call_raw(msg, timeout).await?;
        check_reply(reply).map(Some)
    }

    /// Calls `interface.member` on `path` at `destination` with `args` (a tuple for several
    /// arguments, `&()` for none) and decodes the reply body as `R`.
    ///
    /// # Errors
    /// [`Error::Wire`] for invalid names or arguments; [`Error::ReplyBody`] when the reply
    /// is not an `R`; as [`MessageBus::call`].
    pub async fn call_method<A, R>(
        &self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &A,
    ) -> Result<R>
    where
        A: Encode + ?Sized,
        R: for<'a> Decode<'a>,
    {
        let msg = Message::method_call(path, member)
            .interface(interface)
            .destination(destination)
            .body(args)
            .build()?;
        let reply = self
            .core()
            .call_raw(msg, self.core().opts.default_timeout)
            .await?;
        let reply = check_reply(reply)?;
        reply.body::<R>().map_err(|source| Error::ReplyBody {
            source,
            reply: Box::new(reply.clone()),
        })
    }

    /// Adds a handler that sees every incoming message before routing (see
    /// [`HandlerResult`]). Handlers run in the reader, in the order they were added: they
    /// must return quickly and never block. A handler that needs this connection should
    /// capture a [`WeakMessageBus`], or the connection can never close by being dropped.
    pub fn add_message_handler(
        &self,
        handler: impl Fn(&Message) -> HandlerResult + Send + Sync + 'static,
    ) -> HandlerId {
        self.core().handlers.add(Arc::new(handler))
    }

    /// Removes a handler; says whether it was there.
    pub fn remove_message_handler(&self, id: HandlerId) -> bool {
        self.core().handlers.remove(id)
    }

    /// Subscribes to the signals that match `rule`, as a stream. The bus is sent `AddMatch`
    /// for the first subscriber of each distinct rule (after the subscription is registered,
    /// so nothing slips through), and `RemoveMatch` when the last one is dropped. Returns once
    /// the bus has answered the rule's `AddMatch`. See [`crate::signals`] for the overflow
    /// policy and for rules whose `sender` is a well-known name.
    ///
    /// # Errors
    /// The bus refusing `AddMatch` (for example `org.freedesktop.DBus.Error.MatchRuleInvalid`
    /// or `LimitsExceeded`), for every subscriber of that rule that was waiting;
    /// [`Error::Disconnected`]; [`Error::Timeout`] when the bus does not answer within the
    /// default call timeout.
    pub async fn subscribe(&self, rule: MatchRule) -> Result<SignalStream> {
        signals::subscribe(self.core(), rule).await
    }

    /// Asks the bus for a well-known name.
    ///
    /// # Errors
    /// [`Error::Wire`] for an invalid name (nothing is sent); [`Error::NotABus`];
    /// [`Error::MethodError`] when the bus refuses (e.g. `AccessDenied`);
    /// [`Error::Protocol`] for a reply code the specification does not define.
    pub async fn request_name(
        &self,
        name: &str,
        flags: RequestNameFlags,
    ) -> Result<RequestNameReply> {
        WellKnownName::new(name)?;
        self.bus_only("request_name")?;
        let code: u32 = self
            .call_method(
                DBUS_NAME,
                DBUS_PATH,
                DBUS_INTERFACE,
                "RequestName",
                &(name, flags.bits()),
            )
            .await?;
        RequestNameReply::from_code(code)
            .ok_or_else(|| Error::Protocol(format!("RequestName answered {code}")))
    }

    /// Gives a well-known name back (or leaves its queue).
    ///
    /// # Errors
    /// As [`MessageBus::request_name`].
    pub async fn release_name(&self, name: &str) -> Result<ReleaseNameReply> {
        WellKnownName::new(name)?;
        self.bus_only("release_name")?;
        let code: u32 = self
            .call_method(
                DBUS_NAME,
                DBUS_PATH,
                DBUS_INTERFACE,
                "ReleaseName",
                &(name,),
            )
            .await?;
        ReleaseNameReply::from_code(code)
            .ok_or_else(|| Error::Protocol(format!("ReleaseName answered {code}")))
    }

    fn bus_only(&self, what: &'static str) -> Result<()> {
        if self.core().opts.peer_to_peer {
            Err(Error::NotABus(what))
        } else {
            Ok(())
        }
    }

    /// Asks the object at `path` of `bus_name` to describe itself
    /// (`org.freedesktop.DBus.Introspectable.Introspect`) and parses the answer.
    ///
    /// # Errors
    /// [`Error::Wire`] for invalid names or an answer that is not introspection XML
    /// (that one is the peer's fault, but reported as the wire error it is); as
    /// [`MessageBus::call`].
    pub async fn introspect(&self, bus_name: &str, path: &str) -> Result<Node<'static>> {
        BusName::new(bus_name)?;
        let xml: String = self
            .call_method(
                bus_name,
                path,
                crate::export::INTROSPECTABLE,
                "Introspect",
                &(),
            )
            .await?;
        Ok(Node::from_xml(&xml)?.into_owned())
    }

    /// Exports `interface` at `path`: incoming calls for it are routed to it, and the path
    /// (with its parents) becomes introspectable.
    ///
    /// # Errors
    /// [`Error::Wire`] for an invalid path or interface name; [`Error::AlreadyExported`]
    /// when the object already has an interface of that name.
    pub fn export(&self, path: &str, interface: Arc<dyn Interface>) -> Result<()> {
        self.core().objects.export(path, interface)
    }

    /// Removes the interface `interface` (or, with `None`, every interface) from `path`.
    /// Says whether anything was removed. Calls already running finish.
    pub fn unexport(&self, path: &str, interface: Option<&str>) -> bool {
        self.core().objects.unexport(path, interface)
    }

    /// The interfaces exported at `path`, in the order they were exported.
    pub fn exported(&self, path: &str) -> Vec<Arc<dyn Interface>> {
        self.core().objects.interfaces(path)
    }

    /// Closes the connection: pending calls fail with [`Error::Disconnected`] at once, signal
    /// streams end, and then what is still queued is sent and the socket is shut down (given
    /// up after 5 s if the peer does not read); this returns when that is done. Other handles
    /// see the connection closed. Calling it again does nothing.
    pub async fn disconnect(&self) {
        self.core().close(DisconnectReason::ByUs);
        self.core().wait_flushed().await;
    }

    /// Waits until the connection ends and says how.
    pub async fn wait_for_disconnect(&self) -> DisconnectReason {
        self.core().wait_end().await
    }
}

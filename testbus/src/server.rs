//! The in-process bus: [`TestBus`] and its builder, the listeners' accept
//! loops and one task per connection.
//!
//! Each connection has a reader task that decodes messages, asks the bus
//! state (under one lock, no I/O inside) where they go, and then writes them
//! into the receivers' outboxes itself, usually straight to their sockets.
//! Nothing here decides routing; that is [`crate::state`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use fastbus_transport::auth::{Identity, Mechanism};
use fastbus_transport::{
    Address, AddressKind, BoxTransport, Credentials, FramedReader, FramedWriter, Guid, Listener,
    ServerConfig, memory_pair, raw_framed,
};
use fastbus_wire::MessageType;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::outbox::{Outbox, Push};
use crate::state::{BusState, Delivery, Distinct};

#[derive(Debug)]
struct Shared {
    state: Mutex<BusState>,
    limits: Limits,
    auth: Arc<ServerConfig>,
    refuse: AtomicBool,
    /// Set (under the state lock) once the bus shuts down: no connection is added after it.
    closed: AtomicBool,
    /// Turns true when the bus shuts down: connections still authenticating stop.
    shutdown: watch::Sender<bool>,
    /// One permit per connection that is still authenticating
    /// (`max_incomplete_connections`). When none is left, the listeners stop
    /// accepting and new clients wait in the kernel's backlog (dbus-daemon's
    /// answer to CVE-2014-3639) instead of being dropped. One count for the
    /// whole bus, as in dbus-daemon: every listener and the in-memory
    /// connections share it, so `Listener::set_max_incomplete` (one count
    /// per listener) is not used.
    incomplete: Arc<Semaphore>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, BusState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn track(&self, h: JoinHandle<()>) {
        let mut t = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if t.len() >= 64 {
            t.retain(|h| !h.is_finished());
        }
        t.push(h);
    }
}

/// Configures and starts a [`TestBus`].
///
/// ```no_run
/// # async fn f() -> fastbus_testbus::Result<()> {
/// use fastbus_testbus::{Limits, TestBus};
/// let mut limits = Limits::default();
/// limits.max_names_per_connection = 2;
/// let bus = TestBus::builder()
///     .limits(limits)
///     .listen("tcp:host=127.0.0.1,port=0")?
///     .start()
///     .await?;
/// println!("{:?}", bus.addresses());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TestBusBuilder {
    limits: Limits,
    listen: Vec<Address>,
    default_unix: bool,
    first_minor: u64,
    anonymous: bool,
    mechanisms: Option<Vec<Mechanism>>,
    reload_config: Option<std::path::PathBuf>,
}

impl Default for TestBusBuilder {
    fn default() -> Self {
        TestBusBuilder {
            limits: Limits::default(),
            listen: Vec::new(),
            default_unix: true,
            first_minor: 0,
            anonymous: false,
            mechanisms: None,
            reload_config: None,
        }
    }
}

impl TestBusBuilder {
    /// The limits to enforce (default: dbus-daemon's session bus values).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Also listen on `address` (`unix:tmpdir=`, `unix:dir=`, `unix:path=`,
    /// `unix:abstract=`, `tcp:`, `nonce-tcp:`). When any address is given, the
    /// default private Unix socket is not created.
    ///
    /// # Errors
    /// [`Error::Transport`] when the address does not parse.
    pub fn listen(mut self, address: &str) -> Result<Self> {
        for a in fastbus_transport::address::parse_list(address)? {
            self.listen.push(a);
        }
        Ok(self)
    }

    /// Only in-memory connections: no socket at all.
    pub fn memory_only(mut self) -> Self {
        self.default_unix = false;
        self.listen.clear();
        self
    }

    /// Start unique names at `:1.<minor>` instead of `:1.0`, to catch clients
    /// that rely on particular numbers.
    pub fn first_unique_minor(mut self, minor: u64) -> Self {
        self.first_minor = minor;
        self
    }

    /// Accept the ANONYMOUS mechanism (dbus-daemon's `<allow_anonymous/>`).
    pub fn allow_anonymous(mut self, yes: bool) -> Self {
        self.anonymous = yes;
        self
    }

    /// Offer exactly these mechanisms (dbus-daemon's `<auth>` elements), in order.
    pub fn mechanisms(mut self, mechanisms: Vec<Mechanism>) -> Self {
        self.mechanisms = Some(mechanisms);
        self
    }

    /// The busconfig file that `ReloadConfig` re-reads: the bus's limits
    /// become dbus-daemon's session defaults plus the file's `<limit>`s (the
    /// ones the bus state enforces: names, match rules, pending replies, fds
    /// per message, connections; message size, incoming and outgoing queues
    /// and fds, `pending_fd_timeout`, auth timeout and incomplete connections
    /// keep the values the bus started with). A file that cannot be read or
    /// parsed fails the call with `org.freedesktop.DBus.Error.Failed` and the
    /// limits stay as they were.
    /// Without it, `ReloadConfig` succeeds and changes nothing.
    pub fn reload_config_from(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.reload_config = Some(path.into());
        self
    }

    /// Starts the bus on the current tokio runtime.
    ///
    /// # Errors
    /// [`Error::Transport`] when a listener cannot be bound; [`Error::Io`] when
    /// the private socket directory cannot be made.
    pub async fn start(self) -> Result<TestBus> {
        let guid = Guid::generate().map_err(|e| Error::Io {
            context: "generating the server guid",
            source: e,
        })?;
        let bus_id = Guid::generate()
            .map_err(|e| Error::Io {
                context: "generating the bus id",
                source: e,
            })?
            .as_str()
            .to_owned();
        let mut cfg = ServerConfig::new(guid.clone());
        cfg.mechanisms = match self.mechanisms {
            Some(m) => m,
            None => vec![Mechanism::External, Mechanism::CookieSha1],
        };
        if self.anonymous && !cfg.mechanisms.contains(&Mechanism::Anonymous) {
            cfg.mechanisms.push(Mechanism::Anonymous);
        }
        if !self.anonymous {
            cfg.mechanisms.retain(|m| *m != Mechanism::Anonymous);
        }
        cfg.timeout = self.limits.auth_timeout;
        let permits = self
            .limits
            .max_incomplete_connections
            .min(Semaphore::MAX_PERMITS);
        let shared = Arc::new(Shared {
            state: Mutex::new({
                let mut st = BusState::new(self.limits.clone(), bus_id, self.first_minor);
                st.config_file = self.reload_config;
                st
            }),
            limits: self.limits,
            auth: Arc::new(cfg),
            refuse: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            incomplete: Arc::new(Semaphore::new(permits)),
            tasks: Mutex::new(Vec::new()),
        });
        let mut listen = self.listen;
        let mut tmpdir = None;
        if listen.is_empty() && self.default_unix {
            let dir = tempfile::Builder::new()
                .prefix("fastbus-testbus-")
                .tempdir()
                .map_err(|e| Error::Io {
                    context: "making the socket directory",
                    source: e,
                })?;
            listen.push(Address::unix_path(dir.path().join("bus")));
            tmpdir = Some(dir);
        }
        let mut addresses = Vec::new();
        let mut listeners = Vec::new();
        for a in &listen {
            let l = Listener::bind(a).await?;
            let mut bound = l.address().clone();
            bound.guid = Some(guid.clone());
            addresses.push(bound);
            let sh = Arc::clone(&shared);
            listeners.push(tokio::spawn(accept_loop(sh, l)));
        }
        Ok(TestBus {
            shared,
            addresses,
            listeners,
            _tmpdir: tmpdir,
        })
    }
}

/// A running bus daemon inside this process.
///
/// Clients connect over its socket addresses ([`TestBus::address`]) or
/// in memory ([`TestBus::connect_memory`], [`TestBus::connect_framed`]).
/// [`TestBus::shutdown`] closes every connection (clients read the end of the
/// stream) and waits until the bus has let go of them; dropping the handle
/// does the same without waiting.
#[derive(Debug)]
pub struct TestBus {
    shared: Arc<Shared>,
    addresses: Vec<Address>,
    listeners: Vec<JoinHandle<()>>,
    _tmpdir: Option<tempfile::TempDir>,
}

impl Drop for TestBus {
    fn drop(&mut self) {
        for l in &self.listeners {
            l.abort();
        }
        self.shared.close_all();
    }
}

impl Shared {
    /// Stops everything: no new connection, connections still authenticating
    /// give up, every served connection is closed at once.
    fn close_all(&self) {
        let boxes = {
            let st = self.state();
            self.closed.store(true, Ordering::SeqCst);
            st.outboxes()
        };
        self.shutdown.send_replace(true);
        for (_, _, o) in boxes {
            o.abort("the bus is shutting down");
        }
    }
}

/// Closes both directions of a transport nobody will serve, so that its peer
/// reads the end of the stream at once.
fn refuse(t: BoxTransport) {
    drop(t.split());
}

impl TestBus {
    /// Starts a bus with dbus-daemon's session limits and a private Unix socket.
    ///
    /// # Errors
    /// As [`TestBusBuilder::start`].
    pub async fn start() -> Result<TestBus> {
        TestBusBuilder::default().start().await
    }

    /// A builder for limits, listeners and fault knobs.
    pub fn builder() -> TestBusBuilder {
        TestBusBuilder::default()
    }

    /// Every address the bus listens on, with the server guid.
    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// The address list to give clients (as `DBUS_SESSION_BUS_ADDRESS`), or
    /// `None` for an in-memory-only bus.
    pub fn address(&self) -> Option<String> {
        if self.addresses.is_empty() {
            None
        } else {
            Some(fastbus_transport::address::format_list(&self.addresses))
        }
    }

    /// The bus id that `GetId` returns.
    pub fn id(&self) -> String {
        self.shared.state().bus_id.clone()
    }

    /// The server guid that authentication reports (`OK <guid>`); differs from [`TestBus::id`].
    pub fn guid(&self) -> &Guid {
        &self.shared.auth.guid
    }

    /// An in-memory transport to the bus: no socket, but the client still
    /// authenticates (EXTERNAL as this process's uid) and sends Hello, exactly
    /// as over a socket. This is what a full client library connects over.
    ///
    /// # Errors
    /// [`Error::ShutDown`] after [`TestBus::shutdown`].
    pub fn connect_memory(&self) -> Result<BoxTransport> {
        self.connect_memory_as(Some(Credentials::current_process()))
    }

    /// As [`TestBus::connect_memory`], with the credentials the bus should see.
    ///
    /// # Errors
    /// [`Error::ShutDown`] after [`TestBus::shutdown`].
    pub fn connect_memory_as(&self, creds: Option<Credentials>) -> Result<BoxTransport> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(Error::ShutDown);
        }
        let server_creds = Some(Credentials::current_process());
        let (client, server) = memory_pair(creds, server_creds);
        if self.shared.refuse.load(Ordering::Relaxed) {
            // Refused: the client sees the connection close at once.
            refuse(Box::new(server));
            return Ok(Box::new(client));
        }
        // Taken now, so that the connection counts as incomplete from this
        // moment; when no permit is left it waits for one, as a socket
        // client waits in the backlog.
        let permit = Arc::clone(&self.shared.incomplete).try_acquire_owned().ok();
        let sh = Arc::clone(&self.shared);
        let h = tokio::spawn(async move {
            let permit = match permit {
                Some(p) => p,
                None => match wait_for_permit(&sh).await {
                    Some(p) => p,
                    None => return,
                },
            };
            authenticate_and_serve(sh, Box::new(server), None, permit).await;
        });
        self.shared.track(h);
        Ok(Box::new(client))
    }

    /// An in-memory connection that skips authentication too: the returned
    /// reader and writer speak D-Bus messages at once (send `Hello` first).
    /// The bus sees this process's credentials.
    ///
    /// # Errors
    /// [`Error::ShutDown`] after [`TestBus::shutdown`].
    pub fn connect_framed(&self) -> Result<(FramedReader, FramedWriter)> {
        self.connect_framed_as(Some(Credentials::current_process()))
    }

    /// As [`TestBus::connect_framed`], with the credentials the bus should see
    /// (`None`: unknown, as for a TCP client).
    ///
    /// # Errors
    /// [`Error::ShutDown`] after [`TestBus::shutdown`].
    pub fn connect_framed_as(
        &self,
        creds: Option<Credentials>,
    ) -> Result<(FramedReader, FramedWriter)> {
        if self.shared.closed.load(Ordering::Relaxed) {
            return Err(Error::ShutDown);
        }
        let (client, server) = memory_pair(creds, Some(Credentials::current_process()));
        if self.shared.refuse.load(Ordering::Relaxed) {
            refuse(Box::new(server));
        } else {
            let sh = Arc::clone(&self.shared);
            let (r, w) = raw_framed(Box::new(server));
            let h = tokio::spawn(serve(sh, r, w, creds, true));
            self.shared.track(h);
        }
        Ok(raw_framed(Box::new(client)))
    }

    /// Fault knob: refuse (`true`) or accept again (`false`) new connections.
    /// Refused clients see the connection close before authentication.
    pub fn refuse_new_connections(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::Relaxed);
    }

    /// Fault knob: drop the connection that owns `name` (unique or well-known)
    /// now, as if it had crashed. Returns whether such a connection existed.
    pub fn disconnect(&self, name: &str) -> bool {
        let outbox = {
            let st = self.shared.state();
            st.owner_of(name)
                .and_then(|c| st.conns.get(&c).map(|c| Arc::clone(&c.outbox)))
        };
        match outbox {
            Some(o) => {
                o.abort("dropped by the test (TestBus::disconnect)");
                true
            }
            None => false,
        }
    }

    /// Unique names of the connections that completed Hello.
    pub fn unique_names(&self) -> Vec<String> {
        let st = self.shared.state();
        let mut v: Vec<String> = st.uniques.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// How many connections the bus holds (authenticated, with or without Hello).
    pub fn connection_count(&self) -> usize {
        self.shared.state().conns.len()
    }

    /// Stops listening, closes every connection (clients read end of stream)
    /// and waits until every connection task has finished.
    pub async fn shutdown(mut self) {
        for l in self.listeners.drain(..) {
            l.abort();
            let _ = l.await;
        }
        self.shared.close_all();
        loop {
            let tasks: Vec<JoinHandle<()>> = std::mem::take(
                &mut *self
                    .shared
                    .tasks
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if tasks.is_empty() {
                break;
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    }
}

async fn wait_for_permit(shared: &Shared) -> Option<OwnedSemaphorePermit> {
    let mut down = shared.shutdown.subscribe();
    tokio::select! {
        p = Arc::clone(&shared.incomplete).acquire_owned() => p.ok(),
        _ = down.wait_for(|d| *d) => None,
    }
}

async fn accept_loop(shared: Arc<Shared>, mut listener: Listener) {
    loop {
        // No free slot for one more authenticating client: stop accepting, so
        // that new clients wait in the backlog until one finishes (or times out).
        if shared.incomplete.available_permits() == 0 {
            tracing::warn!(
                "{} connections are still authenticating (max_incomplete_connections): new ones wait",
                shared.limits.max_incomplete_connections
            );
        }
        let Some(permit) = wait_for_permit(&shared).await else {
            return;
        };
        let incoming = match listener.accept().await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!("accepting on {}: {e}", listener.address());
                if matches!(listener.address().kind, AddressKind::Other { .. }) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if shared.refuse.load(Ordering::Relaxed) || shared.closed.load(Ordering::Relaxed) {
            tracing::info!("refusing a new connection (fault knob)");
            continue;
        }
        let (t, nonce) = incoming.into_transport();
        let sh = Arc::clone(&shared);
        // Boxed: the connection's future is large, and tokio moves an unboxed
        // future several times while spawning it (a measurable part of a connect).
        let h = tokio::spawn(Box::pin(authenticate_and_serve(sh, t, nonce, permit)));
        shared.track(h);
    }
}

/// Authenticates one client (bounded by `auth_timeout` and by the bus
/// shutting down), then serves it. `permit` is its incomplete-connection slot,
/// given back when authentication ends.
async fn authenticate_and_serve(
    shared: Arc<Shared>,
    t: BoxTransport,
    nonce: Option<[u8; 16]>,
    permit: OwnedSemaphorePermit,
) {
    let mut down = shared.shutdown.subscribe();
    let r = tokio::select! {
        // Boxed, so the handshake's buffers do not make the serving future larger.
        r = Box::pin(fastbus_transport::server_handshake(t, Arc::clone(&shared.auth), nonce)) => r,
        _ = down.wait_for(|d| *d) => return,
    };
    drop(permit);
    after_auth(shared, r).await;
}

async fn after_auth(
    shared: Arc<Shared>,
    r: fastbus_transport::Result<fastbus_transport::ServerConnection>,
) {
    match r {
        Ok(sc) => {
            let mut creds = sc.peer_credentials;
            match sc.identity {
                Identity::Uid(uid) => {
                    let c = creds.get_or_insert_with(Credentials::default);
                    c.uid = Some(uid);
                }
                Identity::Anonymous => {
                    if let Some(c) = creds.as_mut() {
                        c.uid = None;
                        c.gid = None;
                    }
                }
            }
            serve(shared, sc.reader, sc.writer, creds, sc.unix_fd).await;
        }
        Err(e) => tracing::info!("a client failed to authenticate: {e}"),
    }
}

fn deliver(deliveries: Vec<Delivery>) {
    for d in deliveries {
        if d.to.push(&d.bytes, d.fds) == Push::Overflow {
            tracing::warn!(
                "disconnecting a slow reader: {}",
                d.to.reason().unwrap_or_default()
            );
        }
    }
}

/// The most messages one reader routes before it writes what they produced.
const MAX_BATCH: usize = 64;

/// The outboxes that got messages during one batch, each once, to flush at its end.
#[derive(Debug, Default)]
struct Touched {
    list: Vec<Arc<Outbox>>,
    /// Addresses of `list`'s outboxes. The list holds every outbox it names, so
    /// no address is reused meanwhile.
    seen: Distinct<usize>,
}

impl Touched {
    fn add(&mut self, o: &Arc<Outbox>) {
        if self.seen.insert(Arc::as_ptr(o) as usize) {
            self.list.push(Arc::clone(o));
        }
    }

    fn flush(&mut self) {
        for o in self.list.drain(..) {
            if o.flush() == Push::Overflow {
                tracing::warn!(
                    "disconnecting a slow reader: {}",
                    o.reason().unwrap_or_default()
                );
            }
        }
        self.seen.clear();
    }
}

/// Routes `first`, then every further message `reader` already holds (at most
/// [`MAX_BATCH`], never waiting for more), queueing what they produce; then
/// writes each receiver's share in one go, so a burst costs one write per
/// receiver instead of one per message and receiver. Returns why the
/// connection must close, if it must (empty: the peer closed it).
fn route_batch(
    shared: &Shared,
    id: crate::state::ConnId,
    reader: &mut FramedReader,
    first: fastbus_transport::Result<Option<fastbus_wire::Message>>,
    touched: &mut Touched,
) -> Option<String> {
    // Polling with a no-op waker only looks at what is buffered or readable now;
    // the next `next_message().await` registers the task's waker again.
    let mut cx = Context::from_waker(Waker::noop());
    let mut next = first;
    let mut routed = 0;
    let end = loop {
        let msg = match next {
            Ok(Some(m)) => m,
            Ok(None) => break Some(String::new()),
            Err(e) => break Some(read_error(&e)),
        };
        if tracing::enabled!(tracing::Level::DEBUG) {
            log_message(shared, id, &msg);
        }
        let out = shared.state().handle(id, msg);
        for d in out.deliveries {
            match d.to.queue(&d.bytes, d.fds) {
                Push::Queued => touched.add(&d.to),
                Push::Overflow => tracing::warn!(
                    "disconnecting a slow reader: {}",
                    d.to.reason().unwrap_or_default()
                ),
                Push::Dead => {}
            }
        }
        if let Some(r) = out.disconnect {
            break Some(r);
        }
        routed += 1;
        if routed == MAX_BATCH {
            break None;
        }
        match reader.poll_next_message(&mut cx) {
            Poll::Ready(r) => next = r,
            Poll::Pending => break None,
        }
    };
    touched.flush();
    end
}

/// Serves one authenticated connection until it closes or breaks the protocol.
async fn serve(
    shared: Arc<Shared>,
    mut reader: FramedReader,
    writer: FramedWriter,
    creds: Option<Credentials>,
    unix_fd: bool,
) {
    // The reader refuses a message with more fds before it holds them
    // (`max_message_unix_fds`, CVE-2014-3636); the bus state checks again.
    let l = &shared.limits;
    reader.set_max_message_fds(l.max_message_unix_fds);
    let pending_fds = l
        .max_incoming_unix_fds
        .min(fastbus_transport::MAX_PENDING_FDS);
    reader.set_max_pending_fds(pending_fds);
    // Refused from the header, before the body is buffered.
    reader.set_max_message_size(l.max_message_size);
    reader.set_pending_fd_timeout(Some(l.pending_fd_timeout));
    let outbox = Outbox::new(writer, l.max_outgoing_bytes);
    outbox.set_max_fds(l.max_outgoing_unix_fds);
    let id = {
        let mut st = shared.state();
        // Checked under the lock that shutdown takes to collect the connections.
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        st.add_conn(Arc::clone(&outbox), creds, unix_fd)
    };
    let writer_task = tokio::spawn(Arc::clone(&outbox).run_writer());
    let mut touched = Touched::default();
    let reason: String = loop {
        let first = tokio::select! {
            biased;
            () = outbox.kill.notified() => {
                break outbox.reason().unwrap_or_else(|| "closed by the bus".into());
            }
            r = reader.next_message() => r,
        };
        if let Some(r) = route_batch(&shared, id, &mut reader, first, &mut touched) {
            break r;
        }
    };
    let (name, out) = {
        let mut st = shared.state();
        let name = st.unique_of(id).map(|u| u.to_string());
        (name, st.remove_conn(id))
    };
    if reason.is_empty() {
        tracing::debug!(
            "connection {} closed",
            name.as_deref().unwrap_or("(before Hello)")
        );
    } else if shared.closed.load(Ordering::Relaxed) {
        // Shutting down: expected, not worth a warning.
        tracing::debug!(
            "disconnecting {}: {reason}",
            name.as_deref().unwrap_or("(before Hello)")
        );
    } else {
        tracing::warn!(
            "disconnecting {}: {reason}",
            name.as_deref().unwrap_or("(before Hello)")
        );
    }
    deliver(out.deliveries);
    outbox.close();
    drop(reader);
    let _ = writer_task.await;
}

/// Why a connection whose reader failed with `e` is closed, naming the limit
/// it broke when it broke one.
fn read_error(e: &fastbus_transport::Error) -> String {
    use fastbus_transport::Error as E;
    match e {
        E::MessageTooLarge { len, limit } => {
            format!("declared a message of {len} bytes, more than {limit} (max_message_size)")
        }
        E::PendingFdsTimeout { count, timeout } => format!(
            "held {count} fds for a message it did not finish sending within {timeout:?} (pending_fd_timeout)"
        ),
        e => format!("protocol error: {e}"),
    }
}

fn log_message(shared: &Shared, id: crate::state::ConnId, msg: &fastbus_wire::Message) {
    let from = shared
        .state()
        .unique_of(id)
        .map_or_else(|| "(before Hello)".to_owned(), |u| u.to_string());
    let kind = match msg.message_type() {
        MessageType::METHOD_CALL => "call",
        MessageType::METHOD_RETURN => "return",
        MessageType::ERROR => "error",
        MessageType::SIGNAL => "signal",
        _ => "unknown",
    };
    tracing::debug!(
        "{kind} serial={} {from} -> {} path={} {}.{}{}",
        msg.serial(),
        msg.destination()
            .map_or_else(|| "(broadcast)".to_owned(), |d| d.to_string()),
        msg.path().map(|p| p.to_string()).unwrap_or_default(),
        msg.interface().map(|i| i.to_string()).unwrap_or_default(),
        msg.member().map(|m| m.to_string()).unwrap_or_default(),
        msg.error_name()
            .map(|e| format!(" {e}"))
            .unwrap_or_default(),
    );
}

//! The connection core: serials, the write path, the reader task, reply matching and the
//! dispatch of every incoming message. No public API here; [`crate::MessageBus`] wraps it.
//!
//! ```text
//! caller ── call(msg) ──> pending.insert(serial) ──> writer lock: queue + write now
//!                                                      │ socket full? ──> writer task flushes
//!                                                      ▼                  (one vectored write
//! reader task ── next_message ──> handlers ──> reply?  pending.remove(serial) ─> oneshot ─> caller
//!                                          ──> signal? subscription queues (bounded, never wait)
//!                                          ──> call?   export registry (first poll inline,
//!                                                      then a per-object task keeps the order)
//! ```
//!
//! The reader never awaits user code: message handlers are plain functions, exported methods
//! are polled once in place and moved to a task when they are not finished at once.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fastbus_transport::{FramedReader, FramedWriter};
use fastbus_wire::{Message, MessageType};
use tokio::sync::{Notify, oneshot, watch};

use crate::bus::{Guard, MessageBus};
use crate::error::{DisconnectReason, Error, Result};
use crate::export::Registry;
use crate::handlers::{HandlerResult, Handlers};
use crate::signals::Subscriptions;

/// How outgoing messages reach the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WriteMode {
    /// The sending task writes at once, under the writer lock, when nothing is queued; only
    /// when the socket is full does a writer task take over, and it then sends everything
    /// queued meanwhile in one vectored write. The default: no task hop on the common path.
    #[default]
    Direct,
    /// Every message is queued and a writer task sends the queue (the textbook design). Kept
    /// for measurements; it costs a task wake-up per burst of messages.
    WriterTask,
}

/// How long a closing connection tries to send what is still queued.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data consistent
/// at each step, and a panic elsewhere must not turn into a panic in the reader.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A hasher for serials: they are sequential, so one multiplication spreads them well.
#[derive(Default)]
pub(crate) struct SerialHasher(u64);

impl Hasher for SerialHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type PendingMap = HashMap<u32, oneshot::Sender<Message>, BuildHasherDefault<SerialHasher>>;

#[derive(Debug)]
struct WriteState {
    /// `None` once the writer task has taken it to shut the socket down.
    writer: Option<FramedWriter>,
    /// The writer task owns the flushing: senders only queue.
    backlog: bool,
    /// The connection is closing: the writer task flushes, shuts down and exits.
    closing: bool,
    /// The reader is dispatching a burst of messages that were already buffered: writes only
    /// queue, and the reader flushes them all in one write when the burst ends.
    corked: bool,
}

#[derive(Debug, Default)]
struct Calls {
    pending: PendingMap,
    closed: Option<DisconnectReason>,
}

/// Options fixed at connect time.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) default_timeout: Duration,
    pub(crate) signal_queue: usize,
    pub(crate) peer_to_peer: bool,
    pub(crate) write_mode: WriteMode,
}

/// Everything a connection shares between its handles, its reader and its writer task.
#[derive(Debug)]
pub(crate) struct Core {
    serial: AtomicU32,
    write: Mutex<WriteState>,
    write_wake: Notify,
    calls: Mutex<Calls>,
    pub(crate) handlers: Handlers,
    pub(crate) subs: Subscriptions,
    pub(crate) objects: Registry,
    pub(crate) unique_name: OnceLock<String>,
    pub(crate) unix_fd: bool,
    pub(crate) opts: Options,
    end: watch::Sender<Option<DisconnectReason>>,
    handle: OnceLock<Weak<Guard>>,
    closing: AtomicBool,
}

impl Core {
    /// A core over an authenticated connection; `first_serial` is the next serial to hand out.
    pub(crate) fn new(writer: FramedWriter, opts: Options, first_serial: u32) -> Arc<Core> {
        let unix_fd = writer.can_send_fds();
        Arc::new(Core {
            serial: AtomicU32::new(first_serial),
            write: Mutex::new(WriteState {
                writer: Some(writer),
                backlog: false,
                closing: false,
                corked: false,
            }),
            write_wake: Notify::new(),
            calls: Mutex::default(),
            handlers: Handlers::default(),
            subs: Subscriptions::default(),
            objects: Registry::default(),
            unique_name: OnceLock::new(),
            unix_fd,
            opts,
            end: watch::Sender::new(None),
            handle: OnceLock::new(),
            closing: AtomicBool::new(false),
        })
    }

    /// Starts the reader and writer tasks.
    pub(crate) fn start(self: &Arc<Self>, reader: FramedReader, guard: &Arc<Guard>) {
        let _ = self.handle.set(Arc::downgrade(guard));
        tokio::spawn(read_loop(Arc::clone(self), reader));
        tokio::spawn(write_loop(Arc::clone(self)));
    }

    /// A strong handle, while any user handle is alive.
    pub(crate) fn bus(&self) -> Option<MessageBus> {
        self.handle.get()?.upgrade().map(MessageBus::from_guard)
    }

    /// The next serial (never 0).
    pub(crate) fn next_serial(&self) -> u32 {
        loop {
            let s = self.serial.fetch_add(1, Ordering::Relaxed);
            if s != 0 {
                return s;
            }
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        !self.closing.load(Ordering::Acquire)
    }

    /// Why the connection ended, once it has.
    pub(crate) fn end_reason(&self) -> Option<DisconnectReason> {
        self.end.borrow().clone()
    }

    fn disconnected(&self) -> Error {
        Error::Disconnected(self.end_reason().unwrap_or(DisconnectReason::ByUs))
    }

    /// Gives `msg` a serial if it has none, then sends it.
    pub(crate) fn send(&self, msg: &mut Message) -> Result<u32> {
        if msg.serial() == 0 {
            msg.set_serial(self.next_serial());
        }
        self.write(msg)?;
        Ok(msg.serial())
    }

    /// Queues `msg` and writes it now if nothing else is queued (see [`WriteMode`]).
    pub(crate) fn write(&self, msg: &Message) -> Result<()> {
        let mut ws = lock(&self.write);
        if ws.closing {
            drop(ws);
            return Err(self.disconnected());
        }
        let hold = ws.backlog || ws.corked;
        let Some(w) = ws.writer.as_mut() else {
            drop(ws);
            return Err(self.disconnected());
        };
        w.queue(msg)?;
        if hold {
            return Ok(());
        }
        if self.opts.write_mode == WriteMode::Direct {
            match w.try_flush_now() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    drop(ws);
                    let e = Arc::new(Error::Transport(e));
                    self.close(DisconnectReason::Error(Arc::clone(&e)));
                    return Err(Error::Disconnected(DisconnectReason::Error(e)));
                }
            }
        }
        ws.backlog = true;
        drop(ws);
        self.write_wake.notify_one();
        Ok(())
    }

    /// Makes the writer task send whatever was queued before the core existed.
    pub(crate) fn flush_queued(&self) -> Result<()> {
        let mut ws = lock(&self.write);
        if ws.writer.as_ref().is_some_and(|w| w.queued_bytes() > 0) && !ws.backlog {
            ws.backlog = true;
            drop(ws);
            self.write_wake.notify_one();
        }
        Ok(())
    }

    /// Holds writes back while the reader dispatches a burst (see `WriteState::corked`).
    fn cork(&self) {
        lock(&self.write).corked = true;
    }

    /// Ends a burst: writes what it queued, at once if the socket takes it.
    fn uncork(&self) {
        let mut ws = lock(&self.write);
        ws.corked = false;
        if ws.backlog || ws.closing {
            return;
        }
        let Some(w) = ws.writer.as_mut() else { return };
        if w.queued_bytes() == 0 {
            return;
        }
        let flushed = if self.opts.write_mode == WriteMode::Direct {
            w.try_flush_now()
        } else {
            Ok(false)
        };
        match flushed {
            Ok(true) => {}
            Ok(false) => {
                ws.backlog = true;
                drop(ws);
                self.write_wake.notify_one();
            }
            Err(e) => {
                drop(ws);
                self.close(DisconnectReason::Error(Arc::new(Error::Transport(e))));
            }
        }
    }

    /// Registers a pending call for `serial`; the receiver gets the reply.
    pub(crate) fn expect_reply(&self, serial: u32) -> Result<oneshot::Receiver<Message>> {
        let (tx, rx) = oneshot::channel();
        let mut calls = lock(&self.calls);
        if let Some(r) = &calls.closed {
            return Err(Error::Disconnected(r.clone()));
        }
        calls.pending.insert(serial, tx);
        Ok(rx)
    }

    /// Forgets a pending call (timed out or cancelled).
    pub(crate) fn forget_reply(&self, serial: u32) {
        lock(&self.calls).pending.remove(&serial);
    }

    /// Sends `msg` (a method call expecting a reply) and waits for the reply message (which
    /// may be an ERROR message) for at most `timeout`.
    pub(crate) async fn call_raw(&self, mut msg: Message, timeout: Duration) -> Result<Message> {
        if msg.serial() == 0 {
            msg.set_serial(self.next_serial());
        }
        let serial = msg.serial();
        let rx = self.expect_reply(serial)?;
        let mut guard = PendingGuard {
            core: self,
            serial,
            armed: true,
        };
        self.write(&msg)?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => {
                guard.armed = false;
                Ok(reply)
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(self.disconnected())
            }
            Err(_) => Err(Error::Timeout { timeout }),
        }
    }

    /// Sends a reply built by a handler or an exported interface; failures only mean the
    /// connection is closing, which the reader finds out by itself.
    pub(crate) fn send_reply(&self, mut reply: Message) {
        let _ = self.send(&mut reply);
    }

    /// Ends the connection (idempotent): pending calls fail at once, signal streams end,
    /// the writer flushes what is queued and shuts the socket down.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        let pending = {
            let mut calls = lock(&self.calls);
            if calls.closed.is_some() {
                return;
            }
            calls.closed = Some(reason.clone());
            std::mem::take(&mut calls.pending)
        };
        self.closing.store(true, Ordering::Release);
        self.end.send_replace(Some(reason));
        // Dropping the senders fails every pending call with `Disconnected`.
        drop(pending);
        self.subs.close_all();
        lock(&self.write).closing = true;
        self.write_wake.notify_one();
    }

    /// Waits until the connection has ended and says how.
    pub(crate) async fn wait_end(&self) -> DisconnectReason {
        let mut rx = self.end.subscribe();
        loop {
            if let Some(r) = rx.borrow_and_update().clone() {
                return r;
            }
            if rx.changed().await.is_err() {
                return DisconnectReason::ByUs;
            }
        }
    }

    /// Routes one incoming message.
    fn dispatch(self: &Arc<Self>, msg: Message) {
        let handled = match self.handlers.run(&msg) {
            HandlerResult::NotHandled => false,
            HandlerResult::Handled => true,
            HandlerResult::Reply(r) => {
                self.send_reply(r);
                true
            }
        };
        let t = msg.message_type();
        if t == MessageType::METHOD_RETURN || t == MessageType::ERROR {
            if let Some(rs) = msg.reply_serial() {
                let tx = lock(&self.calls).pending.remove(&rs);
                if let Some(tx) = tx {
                    let _ = tx.send(msg);
                }
            }
        } else if t == MessageType::SIGNAL {
            self.subs.dispatch(&msg);
        } else if t == MessageType::METHOD_CALL && !handled {
            crate::export::dispatch(self, msg);
        }
    }
}

/// Removes a pending call when its caller stops waiting (timeout or a dropped future).
struct PendingGuard<'a> {
    core: &'a Core,
    serial: u32,
    armed: bool,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.core.forget_reply(self.serial);
        }
    }
}

/// Whether a reader error fails only the one message (the stream stays in sync).
fn message_local(e: &fastbus_transport::Error) -> bool {
    use fastbus_transport::Error as T;
    matches!(
        e,
        T::MissingFds { .. } | T::SurplusFds { .. } | T::FdsTruncated
    )
}

async fn read_loop(core: Arc<Core>, mut reader: FramedReader) {
    let mut end = core.end.subscribe();
    if end.borrow_and_update().is_some() {
        return;
    }
    let reason = loop {
        let next = tokio::select! {
            biased;
            _ = end.changed() => return,
            r = reader.next_message() => r,
        };
        match next {
            Ok(Some(msg)) => {
                // Dispatch this message and every one already buffered behind it with writes
                // corked: the replies of a burst leave in one write, not one write each.
                core.cork();
                core.dispatch(msg);
                let mut cx = Context::from_waker(Waker::noop());
                let end = loop {
                    match reader.poll_next_message(&mut cx) {
                        Poll::Ready(Ok(Some(m))) => core.dispatch(m),
                        Poll::Pending => break None,
                        Poll::Ready(Ok(None)) => break Some(DisconnectReason::ByPeer),
                        Poll::Ready(Err(e)) if message_local(&e) => {}
                        Poll::Ready(Err(e)) => {
                            break Some(DisconnectReason::Error(Arc::new(Error::Transport(e))));
                        }
                    }
                };
                core.uncork();
                if let Some(reason) = end {
                    break reason;
                }
            }
            Ok(None) => break DisconnectReason::ByPeer,
            Err(e) if message_local(&e) => continue,
            Err(e) => break DisconnectReason::Error(Arc::new(Error::Transport(e))),
        }
    };
    core.close(reason);
}

async fn write_loop(core: Arc<Core>) {
    loop {
        core.write_wake.notified().await;
        let closing = {
            let mut ws = lock(&core.write);
            if ws.closing { ws.writer.take() } else { None }
        };
        if let Some(mut w) = closing {
            // Best effort, and bounded: the peer may be gone or not reading.
            let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, w.close()).await;
            return;
        }
        let flush = std::future::poll_fn(|cx| {
            let mut ws = lock(&core.write);
            let Some(w) = ws.writer.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let r = w.poll_flush(cx);
            if let Poll::Ready(Ok(())) = r {
                ws.backlog = false;
            }
            r
        });
        // Senders do not notify while the backlog is ours, so a notification during the
        // flush can only be `close`: stop waiting for a peer that does not read.
        let flushed = tokio::select! {
            r = flush => r,
            () = core.write_wake.notified() => {
                core.write_wake.notify_one();
                Ok(())
            }
        };
        if let Err(e) = flushed {
            core.close(DisconnectReason::Error(Arc::new(Error::Transport(e))));
        }
    }
}

//! The connection core: serials, the write path, the reader task, reply matching, timeouts
//! and the dispatch of every incoming message. No public API here; [`crate::MessageBus`]
//! wraps it.
//!
//! ```text
//! caller ── call(msg) ──> pending.insert(serial, slot) ──> writer lock: queue + write now
//!    │                                                      │ socket full? ──> writer task
//!    │ polls its slot                                       ▼                  flushes
//! reader task ── next_message ──> handlers ──> reply?  slot = reply, wake the caller
//!                                          ──> signal? subscription queues (bounded, never wait)
//!                                          ──> call?   export registry (first poll inline,
//!                                                      then a per-object task keeps the order)
//! timer task: sleeps until the earliest deadline of a pending call, then expires it
//! ```
//!
//! The reader never awaits user code: message handlers are plain functions, exported methods
//! are polled once in place and moved to a task when they are not finished at once.
//!
//! # The round trip, counted
//!
//! A call costs one lock of the pending map to insert its slot, one lock of the writer to
//! encode and `sendmsg` the message, and one more lock of the pending map when it takes the
//! reply; the reader wakes the caller once. There is no channel, no allocation per call
//! beyond the message itself, and no timer per call: the timer task sleeps until the
//! earliest deadline and is told only when a call with an earlier deadline arrives, which
//! calls with the same timeout never do.
//!
//! A call made while other calls are pending leaves its message to the writer task, which
//! yields once before writing, so the other callers that are ready to run queue theirs and one
//! `sendmsg` carries them all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use fastbus_transport::{FramedReader, FramedWriter};
use fastbus_wire::{Message, MessageType};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

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
    /// queued meanwhile in one vectored write. Calls made while other calls are pending are
    /// left to the writer task too, so that concurrent callers share one write. The default:
    /// no task hop for a lone message.
    #[default]
    Direct,
    /// Every message is queued and a writer task sends the queue (the textbook design). Kept
    /// for measurements; it costs a task wake-up per burst of messages.
    WriterTask,
}

/// How long a closing connection tries to send what is still queued.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How many messages the reader dispatches in one poll before it lets other tasks run.
const READ_BUDGET: usize = 128;

/// Locks a mutex, ignoring poisoning: every critical section here leaves its data consistent
/// at each step, and a panic elsewhere must not turn into a panic in the reader.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A hasher for serials: they are sequential, so one multiplication spreads them well.
#[derive(Default)]
pub(crate) struct SerialHasher(u64);

impl Hasher for SerialHasher {
    /// Eight bytes per multiplication (the object registry hashes paths with it: its keys
    /// are the paths this process exported, so a peer's lookups cannot flood it).
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl SerialHasher {
    #[inline]
    fn mix(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(29) ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What a reply callback is given: the reply, or why none will come.
pub(crate) type ReplyCallback = Box<dyn FnOnce(Result<Message>) + Send>;

/// One call awaiting its reply.
// The reply is kept inline: boxing it would cost an allocation per call.
#[allow(clippy::large_enum_variant)]
enum Slot {
    /// The caller waits (with this waker, once it has polled).
    Waiting {
        waker: Option<Waker>,
        deadline: Option<Instant>,
    },
    /// The reply came; the caller takes it.
    Done(Message),
    /// The deadline passed first.
    Expired,
    /// Nobody waits: the reader hands the reply to this function (bookkeeping calls such as
    /// `AddMatch`, whose outcome matters even if the subscriber went away).
    Callback(ReplyCallback),
}

type PendingMap = HashMap<u32, Slot, BuildHasherDefault<SerialHasher>>;

#[derive(Default)]
struct Calls {
    pending: PendingMap,
    closed: Option<DisconnectReason>,
    /// Deadlines of waiting calls, earliest first. Entries of calls that finished stay until
    /// they reach the top or the heap is pruned (see `Core::register`).
    deadlines: BinaryHeap<Reverse<(Instant, u32)>>,
    /// What the timer task sleeps until (`None`: it waits to be told).
    timer_target: Option<Instant>,
}

impl std::fmt::Debug for Calls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Calls")
            .field("pending", &self.pending.len())
            .field("closed", &self.closed)
            .finish()
    }
}

#[derive(Debug)]
struct WriteState {
    /// `None` once the writer task has taken it to shut the socket down.
    writer: Option<FramedWriter>,
    /// The writer task owns the flushing: senders only queue.
    backlog: bool,
    /// The connection is closing: the writer task flushes, shuts down and exits.
    closing: bool,
    /// The reader is dispatching a burst of messages that arrived together: writes only
    /// queue, and the reader flushes them all in one write when the burst ends.
    corked: bool,
    /// Calls are being made concurrently: the writer task lets the other callers that are
    /// ready to run queue theirs before it sends them all in one write.
    batching: bool,
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
    timer_wake: Notify,
    /// The reader task's waker, for `close` to stop it.
    reader_waker: Mutex<Option<Waker>>,
    pub(crate) handlers: Handlers,
    pub(crate) subs: Subscriptions,
    pub(crate) objects: Registry,
    pub(crate) unique_name: OnceLock<String>,
    pub(crate) unix_fd: bool,
    pub(crate) opts: Options,
    end: watch::Sender<Option<DisconnectReason>>,
    /// Set when the writer task has sent what was queued and shut the socket down.
    flushed: watch::Sender<bool>,
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
                batching: false,
            }),
            write_wake: Notify::new(),
            calls: Mutex::default(),
            timer_wake: Notify::new(),
            reader_waker: Mutex::new(None),
            handlers: Handlers::default(),
            subs: Subscriptions::default(),
            objects: Registry::default(),
            unique_name: OnceLock::new(),
            unix_fd,
            opts,
            end: watch::Sender::new(None),
            flushed: watch::Sender::new(false),
            handle: OnceLock::new(),
            closing: AtomicBool::new(false),
        })
    }

    /// Starts the reader, writer and timer tasks.
    pub(crate) fn start(self: &Arc<Self>, reader: FramedReader, guard: &Arc<Guard>) {
        let _ = self.handle.set(Arc::downgrade(guard));
        tokio::spawn(read_loop(Arc::clone(self), reader));
        tokio::spawn(write_loop(Arc::clone(self)));
        tokio::spawn(timer_loop(Arc::clone(self)));
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

    pub(crate) fn disconnected(&self) -> Error {
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
        self.write_as(msg, false)
    }

    /// As [`Core::write`]; with `batch`, other calls are in flight, so the message is left
    /// for the writer task, which sends it together with the ones the other callers queue.
    fn write_as(&self, msg: &Message, batch: bool) -> Result<()> {
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
        if batch {
            ws.batching = true;
        } else if self.opts.write_mode == WriteMode::Direct {
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
    pub(crate) fn flush_queued(&self) {
        let mut ws = lock(&self.write);
        if ws.writer.as_ref().is_some_and(|w| w.queued_bytes() > 0) && !ws.backlog {
            ws.backlog = true;
            drop(ws);
            self.write_wake.notify_one();
        }
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

    /// Registers a pending call for `serial`, to be awaited with [`Core::wait_reply`] (its
    /// timeout starts now). Register before sending, so that no reply can come first.
    pub(crate) fn register(&self, serial: u32, timeout: Duration) -> Result<()> {
        self.register_waiting(serial, timeout, None).map(drop)
    }

    /// As [`Core::register`], with the waker of the task that will wait (so that its first
    /// poll of the reply need not lock the map again). Returns how many calls are pending
    /// now, this one included.
    fn register_waiting(
        &self,
        serial: u32,
        timeout: Duration,
        waker: Option<Waker>,
    ) -> Result<usize> {
        let deadline = Instant::now().checked_add(timeout);
        let mut calls = lock(&self.calls);
        if let Some(r) = &calls.closed {
            return Err(Error::Disconnected(r.clone()));
        }
        let slot = Slot::Waiting { waker, deadline };
        calls.pending.insert(serial, slot);
        let pending = calls.pending.len();
        let Some(d) = deadline else {
            return Ok(pending);
        };
        // Stale entries (calls that finished) are dropped lazily; prune them when they
        // outnumber the live ones, so the heap stays as small as the pending map.
        if calls.deadlines.len() > 2 * calls.pending.len() + 32 {
            let Calls {
                pending, deadlines, ..
            } = &mut *calls;
            deadlines.retain(|Reverse((d, s))| {
                matches!(pending.get(s), Some(Slot::Waiting { deadline: Some(x), .. }) if x == d)
            });
        }
        calls.deadlines.push(Reverse((d, serial)));
        let tell = calls.timer_target.is_none_or(|t| d < t);
        if tell {
            calls.timer_target = Some(d);
        }
        drop(calls);
        if tell {
            self.timer_wake.notify_one();
        }
        Ok(pending)
    }

    /// Registers `callback` to receive the reply to `serial` (or the end of the connection).
    /// Bookkeeping calls only: the bus always answers them, so there is no timeout.
    pub(crate) fn register_callback(&self, serial: u32, callback: ReplyCallback) -> Result<()> {
        let mut calls = lock(&self.calls);
        if let Some(r) = &calls.closed {
            return Err(Error::Disconnected(r.clone()));
        }
        calls.pending.insert(serial, Slot::Callback(callback));
        Ok(())
    }

    /// Forgets a pending call (its caller went away).
    pub(crate) fn forget_reply(&self, serial: u32) {
        let slot = lock(&self.calls).pending.remove(&serial);
        drop(slot);
    }

    /// Takes the reply out of a finished slot (`None`: still waiting).
    fn take_reply(
        &self,
        calls: &mut Calls,
        serial: u32,
        timeout: Duration,
    ) -> Option<Result<Message>> {
        match calls.pending.get(&serial) {
            None => Some(Err(self.disconnected())),
            Some(Slot::Waiting { .. } | Slot::Callback(_)) => None,
            Some(Slot::Done(_) | Slot::Expired) => match calls.pending.remove(&serial) {
                Some(Slot::Done(m)) => Some(Ok(m)),
                _ => Some(Err(Error::Timeout { timeout })),
            },
        }
    }

    /// Polls for the reply to a registered call.
    fn poll_reply(
        &self,
        serial: u32,
        timeout: Duration,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Message>> {
        let mut calls = lock(&self.calls);
        if let Some(r) = self.take_reply(&mut calls, serial, timeout) {
            return Poll::Ready(r);
        }
        if let Some(Slot::Waiting { waker, .. }) = calls.pending.get_mut(&serial) {
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        Poll::Pending
    }

    /// Waits for the reply to a call registered with [`Core::register`]; forgets the call if
    /// the future is dropped.
    pub(crate) async fn wait_reply(&self, serial: u32, timeout: Duration) -> Result<Message> {
        let mut guard = PendingGuard {
            core: self,
            serial,
            armed: true,
        };
        let r = std::future::poll_fn(|cx| self.poll_reply(serial, timeout, cx)).await;
        guard.armed = false;
        r
    }

    /// Sends `msg` (a method call expecting a reply) and waits for the reply message (which
    /// may be an ERROR message) for at most `timeout`. The serial is given now; nothing is
    /// sent before the first poll.
    ///
    /// The call is registered and sent on the future's first poll, with the caller's waker
    /// already in its slot: the reply (which may come before the first poll returns, on
    /// another worker) finds whom to wake without a second look at the map. A plain
    /// `poll_fn` rather than an `async fn`: the future holds the message once, not twice, and
    /// is that much cheaper to move. Dropping it forgets the call.
    pub(crate) fn call_raw(
        &self,
        mut msg: Message,
        timeout: Duration,
    ) -> impl Future<Output = Result<Message>> + Send + '_ {
        if msg.serial() == 0 {
            msg.set_serial(self.next_serial());
        }
        let serial = msg.serial();
        let mut guard = PendingGuard {
            core: self,
            serial,
            armed: false,
        };
        let mut unsent = Some(msg);
        std::future::poll_fn(move |cx| {
            // The whole guard moves into the closure (not just the flag), so that dropping the
            // future forgets the call.
            let guard = &mut guard;
            let Some(msg) = unsent.take() else {
                let r = ready!(self.poll_reply(serial, timeout, cx));
                // Finished: the slot is gone (a failed call's slot too, unless it failed to
                // send: then the guard forgets it).
                guard.armed = false;
                return Poll::Ready(r);
            };
            let concurrent = match self.register_waiting(serial, timeout, Some(cx.waker().clone()))
            {
                Ok(n) => n > 1,
                Err(e) => return Poll::Ready(Err(e)),
            };
            guard.armed = true;
            if let Err(e) = self.write_as(&msg, concurrent) {
                return Poll::Ready(Err(e));
            }
            Poll::Pending
        })
    }

    /// Sends `msg` (a method call expecting a reply) and hands the reply to `callback`.
    pub(crate) fn call_with_callback(
        &self,
        mut msg: Message,
        callback: ReplyCallback,
    ) -> Result<()> {
        if msg.serial() == 0 {
            msg.set_serial(self.next_serial());
        }
        let serial = msg.serial();
        self.register_callback(serial, callback)?;
        if let Err(e) = self.write(&msg) {
            // The callback is dropped uncalled; the caller has the error.
            self.forget_reply(serial);
            return Err(e);
        }
        Ok(())
    }

    /// Hands a reply to whoever waits for it.
    fn complete(&self, reply_serial: u32, msg: Message) {
        let mut calls = lock(&self.calls);
        let Some(slot) = calls.pending.get_mut(&reply_serial) else {
            return; // nobody waits (any more): a late or unsolicited reply
        };
        match slot {
            Slot::Waiting { waker, .. } => {
                let waker = waker.take();
                *slot = Slot::Done(msg);
                drop(calls);
                if let Some(w) = waker {
                    w.wake();
                }
            }
            Slot::Callback(_) => {
                if let Some(Slot::Callback(f)) = calls.pending.remove(&reply_serial) {
                    drop(calls);
                    f(Ok(msg));
                }
            }
            Slot::Done(_) | Slot::Expired => {} // a second reply to one call: dropped
        }
    }

    /// Expires the calls whose deadline has passed; returns when the next one is due.
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut wakers = Vec::new();
        let next = {
            let mut calls = lock(&self.calls);
            let Calls {
                pending,
                deadlines,
                timer_target,
                ..
            } = &mut *calls;
            while let Some(Reverse((d, s))) = deadlines.peek().copied() {
                if d > now {
                    break;
                }
                deadlines.pop();
                if let Some(slot) = pending.get_mut(&s) {
                    if matches!(slot, Slot::Waiting { deadline: Some(x), .. } if *x == d) {
                        if let Slot::Waiting { waker: Some(w), .. } =
                            std::mem::replace(slot, Slot::Expired)
                        {
                            wakers.push(w);
                        }
                    }
                }
            }
            *timer_target = deadlines.peek().map(|Reverse((d, _))| *d);
            *timer_target
        };
        for w in wakers {
            w.wake();
        }
        next
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
            calls.deadlines.clear();
            std::mem::take(&mut calls.pending)
        };
        self.closing.store(true, Ordering::Release);
        self.end.send_replace(Some(reason.clone()));
        // Every waiting caller finds its slot gone and fails with `Disconnected`.
        for (_, slot) in pending {
            match slot {
                Slot::Waiting { waker: Some(w), .. } => w.wake(),
                Slot::Callback(f) => f(Err(Error::Disconnected(reason.clone()))),
                _ => {}
            }
        }
        self.subs.close_all();
        lock(&self.write).closing = true;
        self.write_wake.notify_one();
        self.timer_wake.notify_one();
        if let Some(w) = lock(&self.reader_waker).take() {
            w.wake();
        }
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

    /// Waits until what was queued when the connection closed has been sent (or given up on)
    /// and the socket is shut down.
    pub(crate) async fn wait_flushed(&self) {
        let mut rx = self.flushed.subscribe();
        // The writer task gives up on a peer that does not read after CLOSE_FLUSH_TIMEOUT;
        // the outer bound only guards against a writer task that is gone (runtime shutdown).
        let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT * 2, rx.wait_for(|done| *done)).await;
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
                self.complete(rs, msg);
            }
        } else if t == MessageType::SIGNAL {
            self.subs.dispatch(&msg, self.opts.peer_to_peer);
        } else if t == MessageType::METHOD_CALL && !handled {
            crate::export::dispatch(self, msg);
        }
    }

    /// The reader: dispatches every message that has arrived, then waits for more. Returns
    /// how the connection ended (`None`: closed by us, nothing more to do).
    fn poll_read(
        self: &Arc<Self>,
        reader: &mut FramedReader,
        cx: &mut Context<'_>,
    ) -> Poll<Option<DisconnectReason>> {
        {
            let mut w = lock(&self.reader_waker);
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        if !self.is_connected() {
            return Poll::Ready(None);
        }
        let mut corked = false;
        let mut n = 0;
        let end = loop {
            match reader.poll_next_message(cx) {
                Poll::Ready(Ok(Some(msg))) => {
                    // The first message's reply leaves at once; when more messages follow it
                    // in the same burst, their replies are corked and leave in one write.
                    if n == 1 {
                        self.cork();
                        corked = true;
                    }
                    self.dispatch(msg);
                    n += 1;
                    if n == READ_BUDGET {
                        // Let other tasks run; come back at once.
                        if corked {
                            self.uncork();
                        }
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
                Poll::Pending => break None,
                Poll::Ready(Ok(None)) => break Some(DisconnectReason::ByPeer),
                Poll::Ready(Err(e)) if message_local(&e) => {}
                Poll::Ready(Err(e)) => {
                    break Some(DisconnectReason::Error(Arc::new(Error::Transport(e))));
                }
            }
        };
        if corked {
            self.uncork();
        }
        match end {
            None => Poll::Pending,
            Some(reason) => Poll::Ready(Some(reason)),
        }
    }
}

/// Removes a pending call when its caller stops waiting (a dropped future).
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
    let end = std::future::poll_fn(|cx| core.poll_read(&mut reader, cx)).await;
    if let Some(reason) = end {
        core.close(reason);
    }
}

async fn write_loop(core: Arc<Core>) {
    loop {
        core.write_wake.notified().await;
        let (closing, batching) = {
            let mut ws = lock(&core.write);
            if ws.closing {
                (ws.writer.take(), false)
            } else {
                (None, ws.batching)
            }
        };
        if let Some(mut w) = closing {
            // Best effort, and bounded: the peer may be gone or not reading.
            let _ = tokio::time::timeout(CLOSE_FLUSH_TIMEOUT, w.close()).await;
            core.flushed.send_replace(true);
            return;
        }
        if batching {
            // Concurrent callers: let the ones already woken queue their calls first (a
            // yielding task runs again once the worker has nothing else to do), so that one
            // write carries them all instead of one write each.
            tokio::task::yield_now().await;
        }
        let flush = std::future::poll_fn(|cx| {
            let mut ws = lock(&core.write);
            let Some(w) = ws.writer.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let r = w.poll_flush(cx);
            if let Poll::Ready(Ok(())) = r {
                ws.backlog = false;
                ws.batching = false;
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

/// Expires calls at their deadlines; ends with the connection (`close` wakes it).
async fn timer_loop(core: Arc<Core>) {
    let sleep = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(sleep);
    loop {
        if !core.is_connected() {
            return;
        }
        // `register` tells us (`notify_one` keeps a permit if we are not waiting yet) only
        // about deadlines earlier than the one we sleep until.
        match core.expire(Instant::now()) {
            Some(t) => {
                sleep.as_mut().reset(t);
                tokio::select! {
                    () = &mut sleep => {}
                    () = core.timer_wake.notified() => {}
                }
            }
            None => core.timer_wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;
    use std::pin::pin;

    use super::*;

    #[tokio::test]
    async fn a_call_future_registers_on_first_poll_and_forgets_when_dropped() {
        let (a, b) = fastbus_transport::socketpair().unwrap();
        let (ra, wa) = fastbus_transport::raw_framed(Box::new(a));
        // The other end never answers.
        let (mut rb, _wb) = fastbus_transport::raw_framed(Box::new(b));
        let bus = MessageBus::builder()
            .framed(ra, wa)
            .peer_to_peer(true)
            .connect()
            .await
            .unwrap();
        let pending = || lock(&bus.core().calls).pending.len();
        let call = Message::method_call("/a", "M").build().unwrap();
        {
            let mut fut = pin!(bus.call(call));
            assert_eq!(pending(), 0, "nothing happens before the first poll");
            let mut cx = Context::from_waker(Waker::noop());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            assert_eq!(pending(), 1);
            let sent = tokio::time::timeout(Duration::from_secs(20), rb.next_message())
                .await
                .expect("the call was sent on the first poll")
                .unwrap()
                .unwrap();
            assert_eq!(sent.member().unwrap().as_str(), "M");
        }
        assert_eq!(pending(), 0, "the dropped call is forgotten");
    }

    #[test]
    fn serial_hasher_tells_paths_of_every_length_apart() {
        let build = BuildHasherDefault::<SerialHasher>::default();
        let paths: Vec<String> = (0..40)
            .map(|n| format!("/{}", "a".repeat(n)))
            .chain((0..40).map(|n| format!("/org/example/Obj{n}")))
            .chain(["/a/b", "/a/c", "/b/a"].map(String::from))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for p in &paths {
            assert!(seen.insert(build.hash_one(p.as_str())), "collision at {p}");
            // The same string hashes the same every time.
            assert_eq!(
                build.hash_one(p.as_str()),
                build.hash_one(p.clone().as_str())
            );
        }
        // Serials too.
        let serials: std::collections::HashSet<u64> =
            (1..1000u32).map(|s| build.hash_one(s)).collect();
        assert_eq!(serials.len(), 999);
    }
}

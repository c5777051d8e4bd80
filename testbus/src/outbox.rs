//! One connection's outgoing side: a bounded queue of encoded messages that the
//! routing code writes to the socket directly when it can, and a writer task
//! that takes over only while the socket is full.
//!
//! No routing decisions here; this module only moves bytes that the bus
//! state already decided to send.
//!
//! ```text
//! route ─ push(bytes) ─> [FramedWriter queue] ─ try_flush_now ─> socket   (no task hop)
//!                              │ socket full
//!                              └─> wake writer task ─ poll_flush ─> socket
//! ```

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use fastbus_transport::FramedWriter;
use tokio::sync::Notify;

/// What happened to a message pushed into an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Sent or queued.
    Queued,
    /// The queue grew past its limit: the connection was closed (its reader
    /// task is told to clean up).
    Overflow,
    /// The connection is already gone; the message was dropped.
    Dead,
}

#[derive(Debug)]
struct Inner {
    writer: Option<FramedWriter>,
    /// The writer task's waker, to hand it a full socket.
    task: Option<Waker>,
    /// The writer task owns flushing until the queue is empty again.
    task_flushing: bool,
    /// Flush what is queued, then shut the sending direction down.
    closing: bool,
    /// Why the connection was closed by the bus (for the log).
    reason: Option<String>,
    /// Fds of messages routed to this connection and not queued yet
    /// ([`Outbox::reserve_fds`]).
    reserved_fds: usize,
    /// `max_outgoing_unix_fds` ([`Outbox::set_max_fds`]).
    max_fds: usize,
}

/// The outgoing side of one connection, shared by every task that routes to it.
#[derive(Debug)]
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    max_queued: usize,
    /// Tells the connection's reader task to stop and clean up.
    pub(crate) kill: Notify,
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Outbox {
    /// An outbox over `writer` that closes the connection when more than
    /// `max_queued` bytes wait for a slow reader.
    pub(crate) fn new(writer: FramedWriter, max_queued: usize) -> Arc<Outbox> {
        Arc::new(Outbox {
            inner: Mutex::new(Inner {
                writer: Some(writer),
                task: None,
                task_flushing: false,
                closing: false,
                reason: None,
                reserved_fds: 0,
                max_fds: usize::MAX,
            }),
            max_queued,
            kill: Notify::new(),
        })
    }

    /// Queues one encoded message (with its fds) and writes it right away when
    /// the socket takes it.
    pub(crate) fn push(&self, bytes: &[u8], fds: Vec<OwnedFd>) -> Push {
        self.enqueue(bytes, fds, true)
    }

    /// Queues one encoded message (with its fds) without writing it yet: the
    /// caller routes a whole batch, then calls [`Outbox::flush`] once, so that
    /// the batch leaves in one write instead of one per message.
    pub(crate) fn queue(&self, bytes: &[u8], fds: Vec<OwnedFd>) -> Push {
        self.enqueue(bytes, fds, false)
    }

    fn enqueue(&self, bytes: &[u8], fds: Vec<OwnedFd>, write: bool) -> Push {
        let mut g = lock(&self.inner);
        if !fds.is_empty() {
            g.reserved_fds = g.reserved_fds.saturating_sub(fds.len());
        }
        if g.closing {
            return Push::Dead;
        }
        let Some(w) = g.writer.as_mut() else {
            return Push::Dead;
        };
        if let Err(e) = w.queue_bytes(bytes, fds) {
            // Only fd problems fail here; routing checks them first.
            tracing::debug!("dropping a message the connection cannot take: {e}");
            return Push::Queued;
        }
        if g.task_flushing || !write {
            return self.check_size(g);
        }
        self.write_now(g)
    }

    /// Refuses messages with fds once more than `max` fds wait for this
    /// connection (`max_outgoing_unix_fds`, [`Outbox::reserve_fds`]).
    pub(crate) fn set_max_fds(&self, max: usize) {
        let mut g = lock(&self.inner);
        g.max_fds = max;
        if let Some(w) = g.writer.as_mut() {
            // Only a backstop: routing reserves first, and a reservation passes only while at
            // most `max` wait, for one message of at most what one `sendmsg` carries.
            w.set_max_queued_fds(
                max.saturating_add(fastbus_transport::transport::MAX_FDS_PER_SEND),
            );
        }
    }

    /// Whether more fds than `max_outgoing_unix_fds` already wait for this
    /// connection (queued, or routed and about to be): dbus-daemon then
    /// refuses messages for it with `LimitsExceeded`.
    pub(crate) fn fds_full(&self) -> bool {
        let g = lock(&self.inner);
        Self::fds_waiting(&g) > g.max_fds
    }

    /// Takes room for the `n` fds of a message routed to this connection,
    /// to be queued next ([`Outbox::queue`] or [`Outbox::push`] with those
    /// fds gives it back); false when [`Outbox::fds_full`].
    pub(crate) fn reserve_fds(&self, n: usize) -> bool {
        let mut g = lock(&self.inner);
        if Self::fds_waiting(&g) > g.max_fds {
            return false;
        }
        g.reserved_fds = g.reserved_fds.saturating_add(n);
        true
    }

    /// Gives back a reservation of `n` fds whose message will not be queued.
    pub(crate) fn release_fds(&self, n: usize) {
        let mut g = lock(&self.inner);
        g.reserved_fds = g.reserved_fds.saturating_sub(n);
    }

    fn fds_waiting(g: &Inner) -> usize {
        g.writer
            .as_ref()
            .map_or(0, FramedWriter::queued_fds)
            .saturating_add(g.reserved_fds)
    }

    /// Writes what [`Outbox::queue`] left queued, straight to the socket when it
    /// takes it, else through the writer task.
    pub(crate) fn flush(&self) -> Push {
        let g = lock(&self.inner);
        if g.writer.is_none() {
            return Push::Dead;
        }
        if g.task_flushing || g.closing {
            // The writer task owns the queue (and flushes it before closing).
            return Push::Queued;
        }
        self.write_now(g)
    }

    fn write_now(&self, mut g: MutexGuard<'_, Inner>) -> Push {
        let Some(w) = g.writer.as_mut() else {
            return Push::Dead;
        };
        match w.try_flush_now() {
            Ok(true) => Push::Queued,
            Ok(false) => {
                g.task_flushing = true;
                if let Some(t) = &g.task {
                    t.wake_by_ref();
                }
                self.check_size(g)
            }
            Err(e) => {
                g.writer = None;
                g.reason = Some(format!("write failed: {e}"));
                if let Some(t) = g.task.take() {
                    t.wake();
                }
                drop(g);
                self.kill.notify_one();
                Push::Dead
            }
        }
    }

    fn check_size(&self, mut g: MutexGuard<'_, Inner>) -> Push {
        let queued = g.writer.as_ref().map_or(0, FramedWriter::queued_bytes);
        if queued <= self.max_queued {
            return Push::Queued;
        }
        g.writer = None;
        g.reason = Some(format!(
            "outgoing queue of {queued} bytes exceeds the limit of {} (slow reader)",
            self.max_queued
        ));
        if let Some(t) = g.task.take() {
            t.wake();
        }
        drop(g);
        self.kill.notify_one();
        Push::Overflow
    }

    /// Flushes what is queued, shuts the connection's sending side down and
    /// stops the writer task. Messages pushed afterwards are dropped.
    pub(crate) fn close(&self) {
        let mut g = lock(&self.inner);
        g.closing = true;
        if let Some(t) = g.task.take() {
            t.wake();
        }
    }

    /// Closes the connection at once, dropping what is queued, and tells the
    /// reader task to clean up (fault injection, shutdown).
    pub(crate) fn abort(&self, reason: &str) {
        let mut g = lock(&self.inner);
        g.closing = true;
        g.writer = None;
        if g.reason.is_none() {
            g.reason = Some(reason.to_owned());
        }
        if let Some(t) = g.task.take() {
            t.wake();
        }
        drop(g);
        self.kill.notify_one();
    }

    /// Why the bus closed the connection, if it did.
    pub(crate) fn reason(&self) -> Option<String> {
        lock(&self.inner).reason.clone()
    }

    /// The writer task: flushes while the socket is full, then on close
    /// flushes the rest and shuts the sending direction down.
    pub(crate) async fn run_writer(self: Arc<Self>) {
        std::future::poll_fn(|cx| {
            let mut g = lock(&self.inner);
            if !g.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                g.task = Some(cx.waker().clone());
            }
            let closing = g.closing;
            let flushing = g.task_flushing;
            let Some(w) = g.writer.as_mut() else {
                return Poll::Ready(());
            };
            if !flushing && !closing {
                return Poll::Pending;
            }
            match w.poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    g.task_flushing = false;
                    if closing {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                }
                Poll::Ready(Err(e)) => {
                    g.writer = None;
                    if g.reason.is_none() {
                        g.reason = Some(format!("write failed: {e}"));
                    }
                    drop(g);
                    self.kill.notify_one();
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let writer = lock(&self.inner).writer.take();
        if let Some(mut w) = writer {
            // Bounded: a peer that never reads must not keep this task alive.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), w.close()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use fastbus_transport::{FramedReader, raw_framed, socketpair};
    use fastbus_wire::Message;
    use tokio::task::JoinHandle;

    /// An outbox over one end of a socketpair with its writer task running, and a
    /// reader of the other end.
    fn pair(max_queued: usize) -> (Arc<Outbox>, JoinHandle<()>, FramedReader) {
        let (a, b) = socketpair().expect("socketpair");
        let (_ra, wa) = raw_framed(Box::new(a));
        let (rb, _wb) = raw_framed(Box::new(b));
        let o = Outbox::new(wa, max_queued);
        let task = tokio::spawn(Arc::clone(&o).run_writer());
        (o, task, rb)
    }

    async fn finished(task: JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("the writer task did not finish")
            .expect("writer task");
    }

    fn signal(seq: u32, pad: usize) -> Vec<u8> {
        Message::signal("/t", "org.fastbus.T", "S")
            .serial(seq + 1)
            .body(&(seq, "x".repeat(pad)))
            .build()
            .and_then(|m| m.encode())
            .expect("signal")
    }

    /// Reads `n` signals and checks they come in order, then (with `eof`) the end of stream.
    async fn read_all(r: &mut FramedReader, n: u32, eof: bool) {
        let wait = Duration::from_secs(20);
        for seq in 0..n {
            let m = tokio::time::timeout(wait, r.next_message())
                .await
                .expect("timed out reading")
                .expect("read")
                .expect("a message, not the end");
            assert_eq!(m.body::<(u32, &str)>().expect("body").0, seq);
        }
        if eof {
            let end = tokio::time::timeout(wait, r.next_message())
                .await
                .expect("timed out waiting for the end");
            assert!(matches!(end, Ok(None)), "expected the end of stream");
        }
    }

    #[tokio::test]
    async fn pushed_messages_arrive_in_order_then_close_ends_the_stream() {
        let (o, task, mut r) = pair(1 << 20);
        for seq in 0..10 {
            assert_eq!(o.push(&signal(seq, 10), Vec::new()), Push::Queued);
        }
        read_all(&mut r, 10, false).await;
        o.close();
        finished(task).await;
        read_all(&mut r, 0, true).await;
        assert_eq!(o.push(&signal(0, 1), Vec::new()), Push::Dead);
    }

    #[tokio::test]
    async fn queued_messages_wait_for_flush() {
        let (o, _task, mut r) = pair(1 << 20);
        assert_eq!(o.queue(&signal(0, 10), Vec::new()), Push::Queued);
        assert_eq!(o.queue(&signal(1, 10), Vec::new()), Push::Queued);
        let early = tokio::time::timeout(Duration::from_millis(50), r.next_message()).await;
        assert!(early.is_err(), "a queued message left before flush");
        assert_eq!(o.flush(), Push::Queued);
        read_all(&mut r, 2, false).await;
    }

    #[tokio::test]
    async fn a_full_socket_goes_to_the_writer_task_and_every_byte_arrives_in_order() {
        let (o, task, mut r) = pair(64 << 20);
        // Far more than a socket buffer holds, while nobody reads.
        let n = 400;
        for seq in 0..n {
            assert_eq!(o.push(&signal(seq, 16 * 1024), Vec::new()), Push::Queued);
        }
        assert!(
            lock(&o.inner).task_flushing,
            "the full socket was not handed to the writer task"
        );
        read_all(&mut r, n, false).await;
        o.close();
        finished(task).await;
        read_all(&mut r, 0, true).await;
    }

    #[tokio::test]
    async fn closing_delivers_what_is_queued_then_ends() {
        let (o, task, mut r) = pair(64 << 20);
        // Queued and never flushed, more than the socket holds, then closed.
        let n = 300;
        for seq in 0..n {
            assert_eq!(o.queue(&signal(seq, 16 * 1024), Vec::new()), Push::Queued);
        }
        o.close();
        read_all(&mut r, n, true).await;
        finished(task).await;
    }

    #[tokio::test]
    async fn fd_reservations_count_until_released() {
        let (o, _task, _r) = pair(1 << 20);
        o.set_max_fds(4);
        assert!(!o.fds_full());
        assert!(o.reserve_fds(3));
        // Checked before adding, as dbus-daemon does: 3 wait, so 2 more get in.
        assert!(o.reserve_fds(2));
        assert!(o.fds_full());
        assert!(!o.reserve_fds(1), "reserved past max_outgoing_unix_fds");
        o.release_fds(2);
        assert!(!o.fds_full());
        assert!(o.reserve_fds(1));
        o.release_fds(usize::MAX);
        assert!(!o.fds_full());
    }

    #[tokio::test]
    async fn a_queue_over_the_limit_overflows() {
        let (o, task, _r) = pair(256 * 1024);
        let mut overflowed = false;
        for seq in 0..200 {
            match o.push(&signal(seq, 16 * 1024), Vec::new()) {
                Push::Queued => {}
                Push::Overflow => {
                    overflowed = true;
                    break;
                }
                Push::Dead => panic!("dead before overflowing"),
            }
        }
        assert!(overflowed);
        assert!(o.reason().is_some_and(|r| r.contains("slow reader")));
        assert_eq!(o.push(&signal(0, 1), Vec::new()), Push::Dead);
        finished(task).await;
    }
}

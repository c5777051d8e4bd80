//! Framed message I/O: a reader that cuts whole messages out of the byte
//! stream without copying them, and a writer that sends everything queued in
//! one vectored write.
//!
//! Framing itself is `fastbus_wire::frame_len`; decoding is
//! `fastbus_wire::Message::decode`. Nothing here interprets messages beyond
//! their UNIX_FDS header field.
//!
//! ```text
//! reader: recvmsg ─> BytesMut [msg1|msg2|ms…]   fds ─> FIFO of (stream range, fds)
//!          split_to(whole frames).freeze() ─> Bytes [msg1|msg2] ─> split_to(len1) per frame
//!          ─> Message::decode ─> takes the fds its UNIX_FDS field declares
//! writer: queue: [segment: bytes of msgs…][segment with fds: msg + following msgs…]
//!                one sendmsg per segment (fds ride with their message's first byte)
//! ```
//!
//! # Benchmarks
//! `benches/benches/transport.rs` (one-way 200-byte messages against a raw
//! write/read loop) uses [`crate::socketpair`] plus
//! [`crate::handshake::raw_framed`]: a framed writer and reader over a Unix
//! socketpair with no authentication.

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use fastbus_wire::{MAX_MESSAGE_LEN, Message, frame_len};
use tokio::time::{Instant, Sleep};

use crate::error::{Error, Result};
use crate::transport::{MAX_FDS_PER_SEND, TransportRead, TransportWrite};

/// How much room the reader makes when it needs more.
const READ_CHUNK: usize = 64 * 1024;
/// Less room than this left in the read buffer is not worth a read: make more.
const MIN_ROOM: usize = 4 * 1024;
/// `IOV_MAX` on Linux.
const MAX_IOVS: usize = 1024;
/// Default cap on the fds a reader holds for messages not yet complete, per
/// connection (CVE-2014-3636); [`FramedReader::set_max_pending_fds`] changes it.
/// Past it the connection must be dropped.
pub const MAX_PENDING_FDS: usize = 1024;
/// Default cap on the fds one received message may carry: what one `sendmsg`
/// can carry on Linux (`SCM_MAX_FD`). A bus daemon lowers it with
/// [`FramedReader::set_max_message_fds`] (dbus-daemon uses 16 since CVE-2014-3636).
pub const MAX_MESSAGE_FDS: usize = MAX_FDS_PER_SEND;
/// Smallest buffer `frame_len` can decide on.
const FIXED_HEADER: usize = 16;
/// Default cap on the length of one received message: the specification's
/// 128 MiB. [`FramedReader::set_max_message_size`] lowers it (dbus-daemon's
/// `max_message_size`).
pub const MAX_MESSAGE_SIZE: usize = MAX_MESSAGE_LEN;

#[derive(Debug)]
struct FdBatch {
    /// Stream offset of the first byte of the read that brought these fds.
    start: u64,
    /// Stream offset just past the bytes that arrived with these fds.
    end: u64,
    fds: Vec<OwnedFd>,
    truncated: bool,
    /// When the read that brought them returned.
    arrived: Instant,
}

/// Turns a transport's byte stream into `Message`s.
///
/// Message bytes are read into one `BytesMut`, cut off with `split_to` and
/// frozen: the `Message` borrows the read buffer, nothing is copied.
#[derive(Debug)]
pub struct FramedReader {
    inner: Box<dyn TransportRead>,
    /// Whole frames cut from `buf` in one go, not handed out yet; their
    /// lengths are `lens[next..]`.
    ready: Bytes,
    lens: Vec<usize>,
    next: usize,
    /// `buf[..filled]` is data after `ready`; `buf[filled..]` is zeroed room to read into.
    buf: BytesMut,
    filled: usize,
    /// Stream offset of the first byte not handed out (of `ready`, or of `buf` when
    /// `ready` is empty).
    pos: u64,
    /// Fd bookkeeping, boxed: it is rarely touched and keeps the reader small.
    fd: Box<FdState>,
    /// Longest message accepted, checked from its header.
    max_message_size: usize,
    eof: bool,
}

/// Where the fds a reader received are, and its fd caps.
#[derive(Debug)]
struct FdState {
    batches: VecDeque<FdBatch>,
    /// Fds in `batches`.
    pending_fds: usize,
    max_pending_fds: usize,
    max_message_fds: usize,
    scratch_fds: Vec<OwnedFd>,
    /// How long fds may wait for their message to complete (CVE-2014-3637).
    pending_fd_timeout: Option<Duration>,
    /// Wakes a waiting reader when the oldest pending fds expire.
    timer: Option<Pin<Box<Sleep>>>,
}

impl FdState {
    /// When the oldest fds still waiting for their message expire.
    fn deadline(&self) -> Option<Instant> {
        let timeout = self.pending_fd_timeout?;
        // A timeout too long to represent never expires.
        self.batches.front()?.arrived.checked_add(timeout)
    }

    /// Closes every pending fd and says why.
    fn expire(&mut self) -> Error {
        let count = self.pending_fds;
        self.batches.clear();
        self.pending_fds = 0;
        self.timer = None;
        Error::PendingFdsTimeout {
            count,
            timeout: self.pending_fd_timeout.unwrap_or_default(),
        }
    }

    /// Whether the pending fds have expired; when not, arms the timer so
    /// that `cx` is woken when they do.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline() else {
            self.timer = None;
            return false;
        };
        match &mut self.timer {
            Some(t) if t.deadline() == deadline => {}
            Some(t) => t.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        match &mut self.timer {
            Some(t) => t.as_mut().poll(cx).is_ready(),
            None => false,
        }
    }

    /// Closes the fds of bytes before `pos` (frames handed out undecoded).
    fn release_before(&mut self, pos: u64) {
        while self.batches.front().is_some_and(|b| b.start < pos) {
            if let Some(b) = self.batches.pop_front() {
                self.pending_fds -= b.fds.len();
            }
        }
    }
}

impl FramedReader {
    /// A reader over a transport's receiving half.
    pub fn new(inner: Box<dyn TransportRead>) -> Self {
        Self::with_buffer(inner, BytesMut::new())
    }

    /// A reader that first consumes `initial` (bytes that came after `BEGIN`).
    pub fn with_buffer(inner: Box<dyn TransportRead>, initial: BytesMut) -> Self {
        let filled = initial.len();
        FramedReader {
            inner,
            ready: Bytes::new(),
            lens: Vec::new(),
            next: 0,
            buf: initial,
            filled,
            pos: 0,
            fd: Box::new(FdState {
                batches: VecDeque::new(),
                pending_fds: 0,
                max_pending_fds: MAX_PENDING_FDS,
                max_message_fds: MAX_MESSAGE_FDS,
                scratch_fds: Vec::new(),
                pending_fd_timeout: None,
                timer: None,
            }),
            max_message_size: MAX_MESSAGE_SIZE,
            eof: false,
        }
    }

    /// Like [`FramedReader::with_buffer`], with fds that arrived together with
    /// `initial` (in the read that carried `BEGIN`): they go to the messages
    /// that `initial` starts, as if this reader had received them.
    pub(crate) fn with_buffer_and_fds(
        inner: Box<dyn TransportRead>,
        initial: BytesMut,
        fds: Vec<OwnedFd>,
        truncated: bool,
    ) -> Self {
        let mut r = Self::with_buffer(inner, initial);
        if (!fds.is_empty() || truncated) && r.filled > 0 {
            r.fd.pending_fds = fds.len();
            r.fd.batches.push_back(FdBatch {
                start: 0,
                end: r.filled as u64,
                fds,
                truncated,
                arrived: Instant::now(),
            });
        }
        r
    }

    /// Caps the fds held for messages not yet complete (default [`MAX_PENDING_FDS`]).
    /// Past the cap the reader fails with [`Error::TooManyFds`]: drop the connection.
    pub fn set_max_pending_fds(&mut self, n: usize) {
        self.fd.max_pending_fds = n;
    }

    /// Caps the fds one message may carry (default [`MAX_MESSAGE_FDS`]). A message
    /// declaring more fails with [`Error::TooManyFds`] and its fds are closed; the
    /// stream stays usable.
    pub fn set_max_message_fds(&mut self, n: usize) {
        self.fd.max_message_fds = n;
    }

    /// Caps the length of one message (default [`MAX_MESSAGE_SIZE`], the
    /// specification's 128 MiB; a larger value has no effect). The length is
    /// checked from the message's first 16 bytes, as soon as they arrive: a
    /// longer message fails with [`Error::MessageTooLarge`] before the rest of
    /// it is read or buffered (dbus-daemon's `max_message_size`). Messages
    /// wholly received before it are still handed out first.
    pub fn set_max_message_size(&mut self, n: usize) {
        self.max_message_size = n;
    }

    /// The cap set by [`FramedReader::set_max_message_size`].
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// Limits how long fds may be held for a message that has not completed
    /// (CVE-2014-3637; dbus-daemon's `pending_fd_timeout`, 150 s for the
    /// system bus). `None` (the default) means no limit.
    ///
    /// When the oldest fds waiting for the rest of their message have waited
    /// longer than `timeout`, they are closed and [`FramedReader::next_message`]
    /// fails with [`Error::PendingFdsTimeout`]: drop the connection. A waiting
    /// `next_message` future is woken at the deadline even if no more bytes
    /// arrive, so a read loop needs no timer of its own. The time counts from
    /// the read that brought the fds; messages that arrive whole are never
    /// affected.
    ///
    /// # Panics
    /// With a timeout set, the reader must be polled inside a tokio runtime
    /// with timers enabled (as `tokio::time::sleep` requires) once fds are
    /// pending.
    pub fn set_pending_fd_timeout(&mut self, timeout: Option<Duration>) {
        self.fd.pending_fd_timeout = timeout;
        self.fd.timer = None;
    }

    /// Fds received and held for messages not handed out yet (those of an
    /// incomplete message, or of whole messages buffered but not yet returned).
    pub fn pending_fds(&self) -> usize {
        self.fd.pending_fds
    }

    /// The next whole frame (the bytes of one message), without decoding it.
    /// `None` at a clean end of stream. Fds that came with it are closed: a
    /// connection that carries fds is read with [`FramedReader::next_message`].
    ///
    /// # Errors
    /// See [`FramedReader::poll_next_message`].
    ///
    /// # Cancel safety
    /// Cancel safe: no bytes are lost when the future is dropped.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>> {
        let frame = std::future::poll_fn(|cx| self.poll_frame(cx)).await?;
        if !self.fd.batches.is_empty() {
            self.fd.release_before(self.pos);
        }
        Ok(frame)
    }

    /// The next message, with its fds attached. `None` at a clean end of stream.
    ///
    /// # Errors
    /// - [`Error::Wire`] when bytes can never be a message (drop the
    ///   connection) or when one framed message fails to decode;
    /// - [`Error::MissingFds`], [`Error::SurplusFds`], [`Error::FdsTruncated`],
    ///   and [`Error::TooManyFds`] for a message over the per-message cap, fail
    ///   that one message (its fds are closed); the stream stays in sync and the
    ///   next call reads the next message;
    /// - [`Error::TooManyFds`] for more fds waiting on incomplete messages than
    ///   the per-connection cap, [`Error::PendingFdsTimeout`] for fds held
    ///   longer than [`FramedReader::set_pending_fd_timeout`] allows, and
    ///   [`Error::MessageTooLarge`] for a message over
    ///   [`FramedReader::set_max_message_size`]: drop the connection;
    /// - [`Error::UnexpectedEof`] when the stream ends inside a message; I/O errors.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn next_message(&mut self) -> Result<Option<Message>> {
        std::future::poll_fn(|cx| self.poll_next_message(cx)).await
    }

    /// Poll version of [`FramedReader::next_message`].
    ///
    /// # Errors
    /// As [`FramedReader::next_message`].
    #[inline]
    pub fn poll_next_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>>> {
        let Some(frame) = ready!(self.poll_frame(cx))? else {
            return Poll::Ready(Ok(None));
        };
        if self.fd.batches.is_empty() {
            // No fds waiting: nothing to attach (the usual case; the message is built in place).
            return Poll::Ready(Self::decode_without_fds(frame, self.fd.max_message_fds));
        }
        Poll::Ready(self.attach(frame).map(Some))
    }

    /// [`FramedReader::attach`] when no fds are waiting: a message that declares fds is
    /// missing them all.
    #[inline]
    fn decode_without_fds(frame: Bytes, max_message_fds: usize) -> Result<Option<Message>> {
        let msg = Message::decode(frame)?;
        if let Some(n) = msg.unix_fds().filter(|&n| n > 0) {
            check_fd_count(usize::try_from(n).unwrap_or(usize::MAX), 0, max_message_fds)?;
        }
        Ok(Some(msg))
    }

    /// Reads until a whole frame is buffered and cuts it off.
    ///
    /// After each read every whole frame in the buffer is cut off at once
    /// (one `split_to` + `freeze`), then handed out one by one as slices of
    /// that `Bytes`: no copy, and one buffer split per read, not per frame.
    #[inline]
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        match self.take_ready() {
            Some(frame) => Poll::Ready(Ok(Some(frame))),
            None => self.poll_frame_slow(cx),
        }
    }

    /// The next frame already cut off, if any.
    #[inline]
    fn take_ready(&mut self) -> Option<Bytes> {
        let n = *self.lens.get(self.next)?;
        self.next += 1;
        self.pos += n as u64;
        Some(if n == self.ready.len() {
            std::mem::take(&mut self.ready)
        } else {
            self.ready.split_to(n)
        })
    }

    /// Cuts the whole frames in `buf` off, reading first when there are none.
    #[inline(never)]
    fn poll_frame_slow(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>>> {
        loop {
            if let Some(frame) = self.take_ready() {
                return Poll::Ready(Ok(Some(frame)));
            }
            self.lens.clear();
            self.next = 0;
            let mut whole = 0;
            let need = loop {
                match frame_len(&self.buf[whole..self.filled]) {
                    // Over the cap, known from the header alone: fail before buffering it
                    // (after the whole frames in front of it).
                    Ok(Some(n)) if n > self.max_message_size => {
                        if whole == 0 {
                            return Poll::Ready(Err(Error::MessageTooLarge {
                                len: n,
                                limit: self.max_message_size,
                            }));
                        }
                        break 0;
                    }
                    Ok(Some(n)) if n <= self.filled - whole => {
                        self.lens.push(n);
                        whole += n;
                    }
                    // Bytes that can never be a message: the frames before them go out first.
                    Err(e) if whole == 0 => return Poll::Ready(Err(e.into())),
                    Err(_) => break 0,
                    Ok(Some(n)) => break n,
                    Ok(None) => break FIXED_HEADER,
                };
            };
            if whole > 0 {
                self.ready = self.buf.split_to(whole).freeze();
                self.filled -= whole;
                continue;
            }
            if self.eof {
                if self.filled == 0 {
                    return Poll::Ready(Ok(None));
                }
                return Poll::Ready(Err(Error::UnexpectedEof {
                    context: "reading a message",
                }));
            }
            // Everything buffered is an incomplete message now: its fds may have waited too long
            // (checked on every read, so a peer trickling bytes cannot postpone it).
            if self.fd.deadline().is_some_and(|d| Instant::now() >= d) {
                return Poll::Ready(Err(self.fd.expire()));
            }
            // Read into the zeroed room left after the frames cut off so far; grow it (and zero
            // the new part, once) only when it is too small: every byte is zeroed once.
            let missing = need.saturating_sub(self.filled);
            if self.buf.len() - self.filled < missing.max(MIN_ROOM) {
                // Drop the stale tail first so a reallocation copies only real data.
                self.buf.truncate(self.filled);
                self.buf.resize(self.filled + missing.max(READ_CHUNK), 0);
            }
            let got = match self.inner.poll_recv(
                cx,
                &mut self.buf[self.filled..],
                &mut self.fd.scratch_fds,
            ) {
                Poll::Ready(got) => got?,
                Poll::Pending => {
                    // Wake up at the pending fds' deadline even if no more bytes come.
                    if self.fd.pending_fd_timeout.is_some() && self.fd.poll_expired(cx) {
                        return Poll::Ready(Err(self.fd.expire()));
                    }
                    return Poll::Pending;
                }
            };
            if got.bytes == 0 {
                self.eof = true;
                self.fd.scratch_fds.clear();
                continue;
            }
            let start = self.pos + self.filled as u64;
            let end = start + got.bytes as u64;
            self.filled += got.bytes;
            if !self.fd.scratch_fds.is_empty() || got.fds_truncated {
                self.fd.pending_fds += self.fd.scratch_fds.len();
                self.fd.batches.push_back(FdBatch {
                    start,
                    end,
                    fds: std::mem::take(&mut self.fd.scratch_fds),
                    truncated: got.fds_truncated,
                    arrived: Instant::now(),
                });
                if self.fd.pending_fds > self.fd.max_pending_fds {
                    // CVE-2014-3636: a peer piling up fds. Close them all; the caller drops us.
                    let count = self.fd.pending_fds;
                    self.fd.batches.clear();
                    self.fd.pending_fds = 0;
                    return Poll::Ready(Err(Error::TooManyFds {
                        count,
                        limit: self.fd.max_pending_fds,
                    }));
                }
            }
        }
    }

    /// Decodes a frame and gives it the fds it declares.
    ///
    /// Fds ride with the first byte of their message: Linux ends a `recvmsg`
    /// after the data that carried fds, so each batch (the fds of one read)
    /// belongs to one message whose bytes it overlaps. A batch goes to the
    /// first such message that declares fds; a batch that ends inside a
    /// message that declares none can belong to no later message and is
    /// surplus. A message may collect several batches (a sender that split its
    /// fds over several `sendmsg` calls).
    fn attach(&mut self, frame: Bytes) -> Result<Message> {
        let msg_end = self.pos;
        let decoded = Message::decode(frame);
        let declared = decoded
            .as_ref()
            .ok()
            .and_then(Message::unix_fds)
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let mut fds: Vec<OwnedFd> = Vec::new();
        let mut surplus = 0;
        let mut truncated = false;
        while let Some(b) = self.fd.batches.front_mut() {
            if b.start >= msg_end {
                break;
            }
            let wants = declared > 0 && fds.len() < declared;
            if !wants && b.end > msg_end {
                // Starts in this message, goes on into the next: the next one's fds.
                break;
            }
            truncated |= b.truncated;
            self.fd.pending_fds -= b.fds.len();
            if wants {
                fds.append(&mut b.fds);
            } else {
                surplus += b.fds.len();
            }
            self.fd.batches.pop_front();
        }
        if fds.len() > declared {
            surplus += fds.len() - declared;
        }
        // Every early return below drops (closes) the fds gathered for this message.
        let mut msg = decoded?;
        if truncated {
            return Err(Error::FdsTruncated);
        }
        check_fd_count(declared, fds.len(), self.fd.max_message_fds)?;
        if surplus > 0 {
            return Err(Error::SurplusFds { count: surplus });
        }
        if !fds.is_empty() {
            msg.set_fds(fds);
        }
        Ok(msg)
    }
}

/// Refuses a message that declares more fds than one message may carry
/// (`max_message_fds`), or more than the `received` ones that came with it.
#[inline]
fn check_fd_count(declared: usize, received: usize, max_message_fds: usize) -> Result<()> {
    if declared > max_message_fds {
        return Err(Error::TooManyFds {
            count: declared,
            limit: max_message_fds,
        });
    }
    if received < declared {
        return Err(Error::MissingFds {
            declared: u32::try_from(declared).unwrap_or(u32::MAX),
            received,
        });
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Segment {
    data: BytesMut,
    /// Sent with the segment's first byte.
    fds: Vec<OwnedFd>,
}

/// Queues encoded messages and sends all of them with as few writes as possible.
///
/// Messages without fds are encoded back to back into one buffer and go out
/// in a single write; a message with fds starts a new segment so its fds
/// travel in the `sendmsg` that carries its first byte.
#[derive(Debug)]
pub struct FramedWriter {
    inner: Box<dyn TransportWrite>,
    queue: VecDeque<Segment>,
    unix_fd: bool,
    /// Fds in `queue` (not sent yet).
    queued_fds: usize,
    max_queued_fds: usize,
}

impl FramedWriter {
    /// A writer over a transport's sending half; `unix_fd` says whether fds
    /// may be sent (negotiated and supported).
    pub fn new(inner: Box<dyn TransportWrite>, unix_fd: bool) -> Self {
        let can = inner.can_pass_fds();
        FramedWriter {
            inner,
            queue: VecDeque::new(),
            unix_fd: unix_fd && can,
            queued_fds: 0,
            max_queued_fds: usize::MAX,
        }
    }

    /// Whether fds may be sent on this connection.
    pub fn can_send_fds(&self) -> bool {
        self.unix_fd
    }

    /// Bytes queued and not yet sent.
    pub fn queued_bytes(&self) -> usize {
        self.queue.iter().map(|s| s.data.len()).sum()
    }

    /// Fds queued and not yet sent (each leaves the queue, and is closed here,
    /// once the write that carries its message's first byte has gone out).
    /// Constant time: a daemon can check it for every message it routes
    /// (dbus-daemon's `max_outgoing_unix_fds`).
    pub fn queued_fds(&self) -> usize {
        self.queued_fds
    }

    /// Caps the fds this writer holds unsent (default: no cap). A message
    /// whose fds would take the queue over `n` is refused by
    /// [`FramedWriter::queue`] and [`FramedWriter::queue_bytes`] with
    /// [`Error::QueuedFdsLimit`] and nothing is queued; lowering the cap
    /// below what is queued already drops nothing.
    pub fn set_max_queued_fds(&mut self, n: usize) {
        self.max_queued_fds = n;
    }

    /// Encodes `msg` at the end of the queue (nothing is sent yet). Its fds are
    /// duplicated (`Message` keeps its own).
    ///
    /// # Errors
    /// [`Error::Wire`] when the message cannot be encoded; [`Error::FdsNotSupported`],
    /// [`Error::TooManyFds`] or [`Error::QueuedFdsLimit`] for fds that cannot go.
    /// Nothing is queued then.
    pub fn queue(&mut self, msg: &Message) -> Result<()> {
        let fds = msg.fds();
        if fds.is_empty() {
            let seg = self.tail_segment();
            let before = seg.data.len();
            if let Err(e) = msg.encode_into(&mut seg.data) {
                seg.data.truncate(before);
                return Err(e.into());
            }
            return Ok(());
        }
        self.check_fds(fds.len())?;
        let dup = fds
            .iter()
            .map(|f| {
                f.try_clone()
                    .map_err(|e| Error::io("duplicating fd to send", e))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut data = BytesMut::new();
        msg.encode_into(&mut data)?;
        self.queued_fds += dup.len();
        self.queue.push_back(Segment { data, fds: dup });
        Ok(())
    }

    fn check_fds(&self, count: usize) -> Result<()> {
        if !self.unix_fd {
            return Err(Error::FdsNotSupported);
        }
        if count > MAX_FDS_PER_SEND {
            return Err(Error::TooManyFds {
                count,
                limit: MAX_FDS_PER_SEND,
            });
        }
        if self.queued_fds.saturating_add(count) > self.max_queued_fds {
            return Err(Error::QueuedFdsLimit {
                queued: self.queued_fds,
                count,
                limit: self.max_queued_fds,
            });
        }
        Ok(())
    }

    /// Queues already-encoded message bytes with the fds that go with them
    /// (they travel with the first byte of `bytes`).
    ///
    /// # Errors
    /// [`Error::FdsNotSupported`], [`Error::TooManyFds`] or
    /// [`Error::QueuedFdsLimit`]; [`Error::FdsWithoutBytes`] for fds with empty
    /// `bytes` (no byte could carry them). Nothing is queued then, and `fds` are
    /// closed.
    #[inline]
    pub fn queue_bytes(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<()> {
        if fds.is_empty() {
            self.tail_segment().data.extend_from_slice(bytes);
            return Ok(());
        }
        self.queue_bytes_with_fds(bytes, fds)
    }

    #[inline(never)]
    fn queue_bytes_with_fds(&mut self, bytes: &[u8], fds: Vec<OwnedFd>) -> Result<()> {
        if bytes.is_empty() {
            return Err(Error::FdsWithoutBytes { count: fds.len() });
        }
        self.check_fds(fds.len())?;
        self.queued_fds += fds.len();
        self.queue.push_back(Segment {
            data: BytesMut::from(bytes),
            fds,
        });
        Ok(())
    }

    #[inline]
    fn tail_segment(&mut self) -> &mut Segment {
        if self.queue.is_empty() {
            self.queue.push_back(Segment::default());
        }
        match self.queue.back_mut() {
            Some(s) => s,
            None => unreachable!("a segment was just pushed"),
        }
    }

    /// Sends everything queued.
    ///
    /// # Errors
    /// I/O errors; the connection is then unusable.
    ///
    /// # Cancel safety
    /// Cancel safe: unsent bytes stay queued.
    pub async fn flush(&mut self) -> Result<()> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Queues `msg` and flushes.
    ///
    /// # Errors
    /// As [`FramedWriter::queue`] and [`FramedWriter::flush`].
    pub async fn send(&mut self, msg: &Message) -> Result<()> {
        self.queue(msg)?;
        self.flush().await
    }

    /// Writes as much as the socket takes right now without waiting; returns
    /// whether the queue is empty. For a caller that writes directly when
    /// nothing is queued and hands the rest to a writer task.
    ///
    /// # Errors
    /// As [`FramedWriter::flush`].
    pub fn try_flush_now(&mut self) -> Result<bool> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.poll_flush(&mut cx) {
            Poll::Ready(r) => r.map(|()| true),
            Poll::Pending => Ok(false),
        }
    }

    /// Poll version of [`FramedWriter::flush`].
    ///
    /// # Errors
    /// As [`FramedWriter::flush`].
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            while self.queue.front().is_some_and(|s| s.data.is_empty()) {
                if self.queue.len() == 1 {
                    // Keep the allocation for the next messages.
                    if let Some(s) = self.queue.front_mut() {
                        self.queued_fds -= s.fds.len();
                        s.fds.clear();
                    }
                    return Poll::Ready(Ok(()));
                }
                if let Some(s) = self.queue.pop_front() {
                    self.queued_fds -= s.fds.len();
                }
            }
            let Some(first) = self.queue.front_mut() else {
                return Poll::Ready(Ok(()));
            };
            let mut fds = std::mem::take(&mut first.fds);
            let taken = fds.len();
            let sent = if self.queue.len() == 1 {
                // The usual queue: one segment, no slice list to build.
                let only = &self.queue[0].data;
                self.inner.poll_send(cx, &[IoSlice::new(only)], &mut fds)
            } else {
                let mut iovs: Vec<IoSlice<'_>> = Vec::with_capacity(self.queue.len().min(MAX_IOVS));
                for (i, s) in self.queue.iter().enumerate() {
                    if iovs.len() == MAX_IOVS || (i > 0 && !s.fds.is_empty()) {
                        break;
                    }
                    if !s.data.is_empty() {
                        iovs.push(IoSlice::new(&s.data));
                    }
                }
                self.inner.poll_send(cx, &iovs, &mut fds)
            };
            // Fds not sent go back to their segment (the transport empties `fds`
            // when it sends anything).
            self.queued_fds = self.queued_fds - taken + fds.len();
            if !fds.is_empty() {
                if let Some(first) = self.queue.front_mut() {
                    first.fds = fds;
                }
            }
            let n = match sent {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            if n == 0 {
                return Poll::Ready(Err(Error::io(
                    "writing messages",
                    std::io::Error::from(std::io::ErrorKind::WriteZero),
                )));
            }
            let mut left = n;
            for s in self.queue.iter_mut() {
                let k = left.min(s.data.len());
                s.data.advance(k);
                left -= k;
                if left == 0 {
                    break;
                }
            }
        }
    }

    /// Flushes and shuts the sending direction down.
    ///
    /// # Errors
    /// I/O errors.
    pub async fn close(&mut self) -> Result<()> {
        self.flush().await?;
        std::future::poll_fn(|cx| self.inner.poll_shutdown(cx)).await
    }
}

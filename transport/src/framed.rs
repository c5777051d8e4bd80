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
use std::io::IoSlice;
use std::os::fd::OwnedFd;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use fastbus_wire::{Message, frame_len};

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

#[derive(Debug)]
struct FdBatch {
    /// Stream offset of the first byte of the read that brought these fds.
    start: u64,
    /// Stream offset just past the bytes that arrived with these fds.
    end: u64,
    fds: Vec<OwnedFd>,
    truncated: bool,
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
            }),
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

    /// The next whole frame (the bytes of one message) and the fds that came
    /// with it, without decoding it. `None` at a clean end of stream.
    ///
    /// # Errors
    /// See [`FramedReader::poll_next_message`].
    ///
    /// # Cancel safety
    /// Cancel safe: no bytes are lost when the future is dropped.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.poll_frame(cx)).await
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
    ///   the per-connection cap: drop the connection;
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
    pub fn poll_next_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Message>>> {
        let Some(frame) = ready!(self.poll_frame(cx))? else {
            return Poll::Ready(Ok(None));
        };
        Poll::Ready(self.attach(frame).map(Some))
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
            // Read into the zeroed room left after the frames cut off so far; grow it (and zero
            // the new part, once) only when it is too small: every byte is zeroed once.
            let missing = need.saturating_sub(self.filled);
            if self.buf.len() - self.filled < missing.max(MIN_ROOM) {
                // Drop the stale tail first so a reallocation copies only real data.
                self.buf.truncate(self.filled);
                self.buf.resize(self.filled + missing.max(READ_CHUNK), 0);
            }
            let got = ready!(self.inner.poll_recv(
                cx,
                &mut self.buf[self.filled..],
                &mut self.fd.scratch_fds
            ))?;
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
        if declared > self.fd.max_message_fds {
            return Err(Error::TooManyFds {
                count: declared,
                limit: self.fd.max_message_fds,
            });
        }
        if fds.len() < declared {
            return Err(Error::MissingFds {
                declared: u32::try_from(declared).unwrap_or(u32::MAX),
                received: fds.len(),
            });
        }
        if surplus > 0 {
            return Err(Error::SurplusFds { count: surplus });
        }
        if !fds.is_empty() {
            msg.set_fds(fds);
        }
        Ok(msg)
    }
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

    /// Encodes `msg` at the end of the queue (nothing is sent yet). Its fds are
    /// duplicated (`Message` keeps its own).
    ///
    /// # Errors
    /// [`Error::Wire`] when the message cannot be encoded; [`Error::FdsNotSupported`]
    /// or [`Error::TooManyFds`] for fds that cannot go.
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
        Ok(())
    }

    /// Queues already-encoded message bytes with the fds that go with them.
    ///
    /// # Errors
    /// [`Error::FdsNotSupported`] or [`Error::TooManyFds`].
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
        self.check_fds(fds.len())?;
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
                        s.fds.clear();
                    }
                    return Poll::Ready(Ok(()));
                }
                self.queue.pop_front();
            }
            let Some(first) = self.queue.front_mut() else {
                return Poll::Ready(Ok(()));
            };
            let mut fds = std::mem::take(&mut first.fds);
            let n = {
                let mut iovs: Vec<IoSlice<'_>> = Vec::with_capacity(self.queue.len().min(MAX_IOVS));
                for (i, s) in self.queue.iter().enumerate() {
                    if iovs.len() == MAX_IOVS || (i > 0 && !s.fds.is_empty()) {
                        break;
                    }
                    if !s.data.is_empty() {
                        iovs.push(IoSlice::new(&s.data));
                    }
                }
                match self.inner.poll_send(cx, &iovs, &mut fds) {
                    Poll::Ready(Ok(n)) => n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        if let Some(first) = self.queue.front_mut() {
                            first.fds = fds;
                        }
                        return Poll::Pending;
                    }
                }
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

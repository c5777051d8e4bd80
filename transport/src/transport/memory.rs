//! An in-process transport: two byte pipes with fds carried alongside, and
//! no syscalls. Credentials are whatever the creator says.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::sync::mpsc;

use super::{Received, Transport, TransportRead, TransportWrite};
use crate::creds::Credentials;
use crate::error::{Error, Result};

/// Bytes a pipe buffers before the writer waits (backpressure).
const PIPE_CAPACITY: usize = 256 * 1024;

#[derive(Debug, Default)]
struct Pipe {
    buf: BytesMut,
    /// Fds attached at absolute stream positions.
    marks: VecDeque<(u64, Vec<OwnedFd>)>,
    read_pos: u64,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
    reader_gone: bool,
    writer_gone: bool,
}

type Shared = Arc<Mutex<Pipe>>;

fn lock(p: &Shared) -> MutexGuard<'_, Pipe> {
    // A panic while holding the lock cannot leave the pipe inconsistent in a
    // way that matters more than losing the connection: keep going.
    p.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One end of an in-memory connection.
///
/// Dropping it, or either half after [`Transport::split`], closes that
/// direction as closing a socket does: once the buffered bytes are read the
/// peer reads end of stream, and the peer's writes fail with
/// `BrokenPipe`.
#[derive(Debug)]
pub struct MemoryTransport {
    // The halves own the drop behaviour (their `Drop` impls), so an unsplit
    // transport closes both directions when it is dropped.
    reader: MemoryReader,
    writer: MemoryWriter,
    peer: Option<Credentials>,
}

/// Makes a connected pair. `a` reports `b_creds` as its peer and `b` reports `a_creds`.
pub fn memory_pair(
    a_creds: Option<Credentials>,
    b_creds: Option<Credentials>,
) -> (MemoryTransport, MemoryTransport) {
    let ab: Shared = Arc::default();
    let ba: Shared = Arc::default();
    (
        MemoryTransport {
            reader: MemoryReader {
                pipe: Arc::clone(&ba),
            },
            writer: MemoryWriter {
                pipe: Arc::clone(&ab),
            },
            peer: b_creds,
        },
        MemoryTransport {
            reader: MemoryReader { pipe: ab },
            writer: MemoryWriter { pipe: ba },
            peer: a_creds,
        },
    )
}

impl Transport for MemoryTransport {
    fn can_pass_fds(&self) -> bool {
        true
    }
    fn peer_credentials(&self) -> Option<Credentials> {
        self.peer
    }
    fn split(self: Box<Self>) -> (Box<dyn TransportRead>, Box<dyn TransportWrite>) {
        let MemoryTransport { reader, writer, .. } = *self;
        (Box::new(reader), Box::new(writer))
    }
}

#[derive(Debug)]
struct MemoryReader {
    pipe: Shared,
}

#[derive(Debug)]
struct MemoryWriter {
    pipe: Shared,
}

impl Drop for MemoryReader {
    fn drop(&mut self) {
        let mut p = lock(&self.pipe);
        p.reader_gone = true;
        p.buf.clear();
        p.marks.clear();
        if let Some(w) = p.write_waker.take() {
            w.wake();
        }
    }
}

impl Drop for MemoryWriter {
    fn drop(&mut self) {
        let mut p = lock(&self.pipe);
        p.writer_gone = true;
        if let Some(w) = p.read_waker.take() {
            w.wake();
        }
    }
}

impl TransportRead for MemoryReader {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> Poll<Result<Received>> {
        let mut p = lock(&self.pipe);
        if p.buf.is_empty() {
            if p.writer_gone {
                return Poll::Ready(Ok(Received::default()));
            }
            p.read_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let pos = p.read_pos;
        let avail = p.buf.len() as u64;
        // Stop before the next fd mark so fds come with their first byte (as SCM_RIGHTS does).
        let mut limit = avail;
        if let Some((at, _)) = p.marks.front() {
            if *at == pos {
                if let Some((_, f)) = p.marks.pop_front() {
                    fds.extend(f);
                }
                if let Some((next, _)) = p.marks.front() {
                    limit = limit.min(next - pos);
                }
            } else {
                limit = limit.min(at - pos);
            }
        }
        let n = usize::try_from(limit).unwrap_or(usize::MAX).min(buf.len());
        buf[..n].copy_from_slice(&p.buf[..n]);
        p.buf.advance(n);
        p.read_pos += n as u64;
        if let Some(w) = p.write_waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(Received {
            bytes: n,
            fds_truncated: false,
        }))
    }
}

impl TransportWrite for MemoryWriter {
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        fds: &mut Vec<OwnedFd>,
    ) -> Poll<Result<usize>> {
        let mut p = lock(&self.pipe);
        if p.reader_gone {
            return Poll::Ready(Err(Error::io(
                "writing to in-memory pipe",
                std::io::Error::from(std::io::ErrorKind::BrokenPipe),
            )));
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let room = PIPE_CAPACITY.saturating_sub(p.buf.len());
        if room == 0 {
            p.write_waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        if !fds.is_empty() {
            let at = p.read_pos + p.buf.len() as u64;
            p.marks.push_back((at, std::mem::take(fds)));
        }
        let mut left = room;
        for b in bufs {
            if left == 0 {
                break;
            }
            let n = b.len().min(left);
            p.buf.extend_from_slice(&b[..n]);
            left -= n;
        }
        if let Some(w) = p.read_waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(room - left))
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        let mut p = lock(&self.pipe);
        p.writer_gone = true;
        if let Some(w) = p.read_waker.take() {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }

    fn can_pass_fds(&self) -> bool {
        true
    }
}

/// The accepting side of in-memory connections (for an in-process bus).
#[derive(Debug)]
pub struct MemoryListener {
    rx: mpsc::UnboundedReceiver<MemoryTransport>,
}

/// Makes connections to a [`MemoryListener`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryConnector {
    tx: mpsc::UnboundedSender<MemoryTransport>,
    server_creds: Option<Credentials>,
}

impl MemoryListener {
    /// A listener whose connections report `server_creds` to their clients.
    pub fn new(server_creds: Option<Credentials>) -> (MemoryListener, MemoryConnector) {
        let (tx, rx) = mpsc::unbounded_channel();
        (MemoryListener { rx }, MemoryConnector { tx, server_creds })
    }

    /// The next connection; `None` when every connector is gone.
    pub async fn accept(&mut self) -> Option<MemoryTransport> {
        self.rx.recv().await
    }
}

impl MemoryConnector {
    /// Connects as a client whose credentials are `client_creds`.
    ///
    /// # Errors
    /// [`Error::Io`] (connection refused) when the listener is gone.
    pub fn connect(&self, client_creds: Option<Credentials>) -> Result<MemoryTransport> {
        let (client, server) = memory_pair(client_creds, self.server_creds);
        self.tx.send(server).map_err(|_| {
            Error::io(
                "connecting in memory",
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
            )
        })?;
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use super::*;
    use crate::transport::{recv, send};

    /// Fails the test instead of hanging it.
    async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
        match tokio::time::timeout(Duration::from_secs(20), f).await {
            Ok(v) => v,
            Err(_) => panic!("timed out: {what}"),
        }
    }

    fn is_broken_pipe(r: &Result<()>) -> bool {
        matches!(r, Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe)
    }

    #[tokio::test]
    async fn dropping_an_unsplit_transport_ends_the_peers_reads_and_fails_its_writes() {
        let (a, b) = memory_pair(None, None);
        let (mut br, mut bw) = (Box::new(b) as Box<dyn Transport>).split();
        // A read already waiting is woken by the drop.
        let waiting = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let mut fds = Vec::new();
            let got = recv(&mut *br, &mut buf, &mut fds).await;
            (got.map(|g| g.bytes), br)
        });
        tokio::task::yield_now().await;
        drop(a);
        let (got, mut br) = bounded("the peer's read", waiting).await.unwrap();
        assert_eq!(got.unwrap(), 0, "end of stream");
        let mut buf = [0u8; 16];
        let got = recv(&mut *br, &mut buf, &mut Vec::new()).await.unwrap();
        assert_eq!(got.bytes, 0, "end of stream stays");
        let r = bounded("the peer's write", send(&mut *bw, b"hello", Vec::new())).await;
        assert!(is_broken_pipe(&r), "{r:?}");
    }

    #[tokio::test]
    async fn dropping_the_write_half_ends_the_stream_after_the_buffered_bytes() {
        let (a, b) = memory_pair(None, None);
        let (ar, mut aw) = (Box::new(a) as Box<dyn Transport>).split();
        let (mut br, mut bw) = (Box::new(b) as Box<dyn Transport>).split();
        send(&mut *aw, b"last words", Vec::new()).await.unwrap();
        drop(aw);
        let mut buf = [0u8; 64];
        let got = recv(&mut *br, &mut buf, &mut Vec::new()).await.unwrap();
        assert_eq!(&buf[..got.bytes], b"last words");
        let got = bounded("end of stream", recv(&mut *br, &mut buf, &mut Vec::new()))
            .await
            .unwrap();
        assert_eq!(got.bytes, 0);
        // The other direction still works while `ar` lives.
        send(&mut *bw, b"still here", Vec::new()).await.unwrap();
        drop(ar);
        let r = send(&mut *bw, b"gone", Vec::new()).await;
        assert!(is_broken_pipe(&r), "{r:?}");
    }

    #[tokio::test]
    async fn dropping_the_read_half_fails_a_writer_waiting_on_a_full_pipe() {
        let (a, b) = memory_pair(None, None);
        let (ar, _aw) = (Box::new(a) as Box<dyn Transport>).split();
        let (_br, mut bw) = (Box::new(b) as Box<dyn Transport>).split();
        // More than the pipe holds: the writer waits for room until the reader goes.
        let writer = tokio::spawn(async move {
            let big = vec![7u8; PIPE_CAPACITY * 2];
            send(&mut *bw, &big, Vec::new()).await
        });
        tokio::task::yield_now().await;
        drop(ar);
        let r = bounded("the waiting writer", writer).await.unwrap();
        assert!(is_broken_pipe(&r), "{r:?}");
    }
}

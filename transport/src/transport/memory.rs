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
#[derive(Debug)]
pub struct MemoryTransport {
    incoming: Shared,
    outgoing: Shared,
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
            incoming: Arc::clone(&ba),
            outgoing: Arc::clone(&ab),
            peer: b_creds,
        },
        MemoryTransport {
            incoming: ab,
            outgoing: ba,
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
        (
            Box::new(MemoryReader {
                pipe: self.incoming,
            }),
            Box::new(MemoryWriter {
                pipe: self.outgoing,
            }),
        )
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

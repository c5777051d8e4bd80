//! The `Transport` trait: a byte stream that may carry Unix fds, split into
//! a reader and a writer half usable from two tasks at once.
//!
//! Implementations: [`UnixTransport`] (path and abstract sockets, SCM_RIGHTS,
//! SO_PEERCRED), [`TcpTransport`] (also nonce-tcp) and [`MemoryTransport`]
//! (an in-process pair; fds move without syscalls). Nothing here knows SASL
//! or messages: see [`crate::handshake`] and [`crate::framed`].
//!
//! The halves are poll-based (like `AsyncRead`), so they are object-safe, need
//! no allocation per call and are cancel safe; [`recv`] and [`send`] give
//! `async` versions.

mod memory;
mod tcp;
mod unix;

pub use memory::{MemoryConnector, MemoryListener, MemoryTransport, memory_pair};
pub use tcp::TcpTransport;
pub(crate) use unix::abstract_addr as unix_abstract_addr;
pub use unix::{DEFAULT_MAX_RECV_FDS, MAX_FDS_PER_SEND, UnixTransport, socketpair};

use std::fmt;
use std::future::poll_fn;
use std::io::IoSlice;
use std::os::fd::OwnedFd;
use std::task::{Context, Poll};

use crate::creds::Credentials;
use crate::error::Result;

/// What one receive call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// Bytes written at the start of the buffer; 0 means end of stream.
    pub bytes: usize,
    /// The kernel truncated the fd control data (MSG_CTRUNC): the fds that
    /// did arrive were closed, and the message they belonged to must fail.
    pub fds_truncated: bool,
}

/// The receiving half of a transport.
pub trait TransportRead: Send + Sync + fmt::Debug {
    /// Receives bytes into `buf` and any fds that came with them into `fds`.
    ///
    /// Fds always arrive with (or before) the first byte of the message they
    /// belong to. `Ok(Received { bytes: 0, .. })` is end of stream.
    ///
    /// # Errors
    /// I/O errors of the underlying socket.
    ///
    /// # Cancel safety
    /// Nothing is lost when the caller stops polling.
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> Poll<Result<Received>>;
}

/// The sending half of a transport.
pub trait TransportWrite: Send + Sync + fmt::Debug {
    /// Sends bytes from `bufs` (in order) and, with the first byte, all of `fds`.
    /// Returns how many bytes went out; when that is more than 0, `fds` has been
    /// emptied (sent, then closed here, or moved to the peer).
    ///
    /// # Errors
    /// I/O errors; [`crate::Error::FdsNotSupported`] when `fds` is not empty
    /// and this transport cannot pass fds.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        fds: &mut Vec<OwnedFd>,
    ) -> Poll<Result<usize>>;

    /// Shuts the sending direction down (the peer reads end of stream).
    ///
    /// # Errors
    /// I/O errors.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>>;

    /// Whether this half can carry Unix fds.
    fn can_pass_fds(&self) -> bool;
}

/// A connected byte stream to a D-Bus peer, before it is split into halves.
pub trait Transport: Send + Sync + fmt::Debug {
    /// Whether Unix fds can travel over this transport.
    fn can_pass_fds(&self) -> bool;
    /// What the operating system (or the creator of an in-memory pair) says about the peer.
    fn peer_credentials(&self) -> Option<Credentials>;
    /// Splits into a reader and a writer half, usable from two tasks at once.
    fn split(self: Box<Self>) -> (Box<dyn TransportRead>, Box<dyn TransportWrite>);
}

/// A boxed transport of any kind.
pub type BoxTransport = Box<dyn Transport>;

/// Receives once (async version of [`TransportRead::poll_recv`]).
///
/// # Errors
/// As [`TransportRead::poll_recv`].
pub async fn recv(
    r: &mut (impl TransportRead + ?Sized),
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> Result<Received> {
    poll_fn(|cx| r.poll_recv(cx, buf, fds)).await
}

/// Sends all of `bytes`, with `fds` attached to the first byte.
///
/// # Errors
/// As [`TransportWrite::poll_send`]; a zero-byte write is an error.
pub async fn send(
    w: &mut (impl TransportWrite + ?Sized),
    mut bytes: &[u8],
    mut fds: Vec<OwnedFd>,
) -> Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| w.poll_send(cx, &[IoSlice::new(bytes)], &mut fds)).await?;
        if n == 0 {
            return Err(crate::Error::io(
                "sending",
                std::io::Error::from(std::io::ErrorKind::WriteZero),
            ));
        }
        bytes = &bytes[n.min(bytes.len())..];
    }
    Ok(())
}

/// Shuts the sending direction down.
///
/// # Errors
/// As [`TransportWrite::poll_shutdown`].
pub async fn shutdown(w: &mut (impl TransportWrite + ?Sized)) -> Result<()> {
    poll_fn(|cx| w.poll_shutdown(cx)).await
}

//! Unix domain stream sockets: path and abstract addresses, SCM_RIGHTS fd
//! passing with `sendmsg`/`recvmsg` (through rustix's safe API), and
//! SO_PEERCRED credentials.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

use super::{Received, Transport, TransportRead, TransportWrite};
use crate::creds::Credentials;
use crate::error::{Error, Result};

/// Linux's limit on fds in one `sendmsg` (`SCM_MAX_FD`).
pub const MAX_FDS_PER_SEND: usize = 253;

/// How many fds one `recvmsg` makes room for by default (`SCM_MAX_FD`).
pub const DEFAULT_MAX_RECV_FDS: usize = MAX_FDS_PER_SEND;

/// A connected Unix domain stream socket.
#[derive(Debug)]
pub struct UnixTransport {
    stream: Arc<UnixStream>,
    creds: Option<Credentials>,
    max_recv_fds: usize,
}

impl UnixTransport {
    /// Wraps a connected tokio socket and reads its peer's credentials.
    pub fn new(stream: UnixStream) -> Self {
        let creds = Credentials::from_socket(&stream);
        UnixTransport {
            stream: Arc::new(stream),
            creds,
            max_recv_fds: DEFAULT_MAX_RECV_FDS,
        }
    }

    /// Wraps a connected std socket (it is made non-blocking).
    ///
    /// # Errors
    /// When the socket cannot be registered with tokio (needs a runtime).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> Result<Self> {
        stream
            .set_nonblocking(true)
            .map_err(|e| Error::io("setting non-blocking", e))?;
        let s = UnixStream::from_std(stream).map_err(|e| Error::io("registering socket", e))?;
        Ok(Self::new(s))
    }

    /// Connects to a socket in the file system.
    ///
    /// # Errors
    /// [`Error::Io`] when the connection fails.
    pub async fn connect_path(path: &std::path::Path) -> Result<Self> {
        let s = UnixStream::connect(path)
            .await
            .map_err(|e| Error::io("connecting to unix socket", e))?;
        Ok(Self::new(s))
    }

    /// Connects to a Linux abstract socket (`name` without the leading NUL).
    ///
    /// # Errors
    /// [`Error::Io`] when the connection fails.
    pub async fn connect_abstract(name: &[u8]) -> Result<Self> {
        let addr = abstract_addr(name)?;
        // A local connect does not block for long; done on the blocking pool all the same.
        let std = tokio::task::spawn_blocking(move || {
            std::os::unix::net::UnixStream::connect_addr(&addr)
        })
        .await
        .map_err(|e| Error::io("connecting to abstract socket", std::io::Error::other(e)))?
        .map_err(|e| Error::io("connecting to abstract socket", e))?;
        Self::from_std(std)
    }

    /// At most this many fds per `recvmsg` (default [`DEFAULT_MAX_RECV_FDS`];
    /// at least 1): a read that brings more, or that the kernel truncates
    /// (MSG_CTRUNC), has all its fds closed and is reported with
    /// [`Received::fds_truncated`], which fails the message it belongs to.
    pub fn set_max_recv_fds(&mut self, n: usize) {
        self.max_recv_fds = n;
    }
}

pub(crate) fn abstract_addr(name: &[u8]) -> Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name)
        .map_err(|e| Error::io("abstract socket name", e))
}

/// A connected pair of Unix sockets (for tests, benchmarks and in-process use with real fds).
///
/// # Errors
/// When the sockets cannot be made or registered (needs a tokio runtime).
pub fn socketpair() -> Result<(UnixTransport, UnixTransport)> {
    let (a, b) = std::os::unix::net::UnixStream::pair().map_err(|e| Error::io("socketpair", e))?;
    Ok((UnixTransport::from_std(a)?, UnixTransport::from_std(b)?))
}

impl Transport for UnixTransport {
    fn can_pass_fds(&self) -> bool {
        true
    }
    fn peer_credentials(&self) -> Option<Credentials> {
        self.creds
    }
    fn split(self: Box<Self>) -> (Box<dyn TransportRead>, Box<dyn TransportWrite>) {
        let max_fds = self.max_recv_fds.max(1);
        let space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(max_fds))];
        let short_read_drains = short_read_drains(&self.stream);
        (
            Box::new(UnixReadHalf {
                stream: Arc::clone(&self.stream),
                space,
                max_fds,
                short_read_drains,
            }),
            Box::new(UnixWriteHalf {
                stream: self.stream,
            }),
        )
    }
}

/// Reading half of a [`UnixTransport`].
#[derive(Debug)]
struct UnixReadHalf {
    stream: Arc<UnixStream>,
    space: Vec<MaybeUninit<u8>>,
    max_fds: usize,
    /// Whether a short read without fds shows the socket drained (see [`short_read_drains`]).
    short_read_drains: bool,
}

/// Whether a `recvmsg` that fills less than its buffer, and brings no fds, shows that the
/// socket's receive queue was empty, so that the read readiness can be cleared at once (as
/// tokio's own `UnixStream::poll_read` does) instead of finding out with one more `recvmsg`
/// that fails with `EAGAIN`: one syscall less per burst of incoming messages.
///
/// On Linux a stream `recvmsg` returns less than asked while more data is queued only when
/// it stops after data that carried fds (the fds of two writes are never merged), or, with
/// `SO_PASSCRED` set, at a change of the writer's credentials (and at an out-of-band byte,
/// which a D-Bus peer never sends: a peer that does only stalls its own connection, as one
/// that stops halfway through a message does). Reads with fds never clear, and neither does
/// any read on a socket with `SO_PASSCRED` (checked once, when the transport is split; this
/// crate never sets it, nor `SO_PASSPIDFD`, which has the same effect). Elsewhere than on
/// Linux and Android, readiness is cleared only by `EAGAIN`.
fn short_read_drains(stream: &UnixStream) -> bool {
    cfg!(any(target_os = "linux", target_os = "android"))
        && rustix::net::sockopt::socket_passcred(stream).is_ok_and(|on| !on)
}

/// Writing half of a [`UnixTransport`].
#[derive(Debug)]
struct UnixWriteHalf {
    stream: Arc<UnixStream>,
}

/// One `recvmsg`. When the kernel truncated the control data (MSG_CTRUNC), or
/// more than `max_fds` fds arrived (the buffer is rounded up, so the kernel
/// may fit a few more than asked for), every fd of this read is closed and the
/// read is reported as truncated (CVE-2014-3635, CVE-2020-12049).
fn recv_once(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    space: &mut [MaybeUninit<u8>],
    max_fds: usize,
    fds: &mut Vec<OwnedFd>,
) -> std::io::Result<Received> {
    let mut cmsg = RecvAncillaryBuffer::new(space);
    let mut iov = [IoSliceMut::new(buf)];
    let r = rustix::net::recvmsg(fd, &mut iov, &mut cmsg, RecvFlags::CMSG_CLOEXEC)?;
    let mut truncated = r.flags.contains(ReturnFlags::CTRUNC);
    let before = fds.len();
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(iter) = msg {
            // Take ownership of every fd first, so none can leak.
            fds.extend(iter);
        }
    }
    if fds.len() - before > max_fds {
        truncated = true;
    }
    if truncated {
        // Close what arrived instead of leaking it.
        fds.truncate(before);
    }
    Ok(Received {
        bytes: r.bytes,
        fds_truncated: truncated,
    })
}

impl TransportRead for UnixReadHalf {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> Poll<Result<Received>> {
        let UnixReadHalf {
            stream,
            space,
            max_fds,
            short_read_drains,
        } = self;
        let len = buf.len();
        loop {
            ready!(stream.poll_read_ready(cx)).map_err(|e| Error::io("waiting to read", e))?;
            // A read that shows the socket drained is handed back as `WouldBlock`, which is how
            // `try_io` is told to clear the readiness it saw before the read (a readiness event
            // that arrives meanwhile is kept), and the read itself is returned from here.
            let mut drained = None;
            match stream.try_io(Interest::READABLE, || {
                let before = fds.len();
                let r = recv_once(stream.as_fd(), buf, space, *max_fds, fds)?;
                if *short_read_drains
                    && r.bytes > 0
                    && r.bytes < len
                    && !r.fds_truncated
                    && fds.len() == before
                {
                    drained = Some(r);
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                Ok(r)
            }) {
                Ok(r) => return Poll::Ready(Ok(r)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Some(r) = drained {
                        return Poll::Ready(Ok(r));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(Error::io("recvmsg", e))),
            }
        }
    }
}

fn send_once(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>], fds: &[OwnedFd]) -> std::io::Result<usize> {
    if let ([one], []) = (bufs, fds) {
        // The common case: `send` spares the kernel copying in a msghdr and an iovec.
        return Ok(rustix::net::send(fd, one, SendFlags::NOSIGNAL)?);
    }
    if fds.is_empty() {
        let mut empty = SendAncillaryBuffer::default();
        return Ok(rustix::net::sendmsg(
            fd,
            bufs,
            &mut empty,
            SendFlags::NOSIGNAL,
        )?);
    }
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(AsFd::as_fd).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(borrowed.len()))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    if !cmsg.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(std::io::Error::other("fd control buffer too small"));
    }
    Ok(rustix::net::sendmsg(
        fd,
        bufs,
        &mut cmsg,
        SendFlags::NOSIGNAL,
    )?)
}

impl TransportWrite for UnixWriteHalf {
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        fds: &mut Vec<OwnedFd>,
    ) -> Poll<Result<usize>> {
        if fds.len() > MAX_FDS_PER_SEND {
            return Poll::Ready(Err(Error::TooManyFds {
                count: fds.len(),
                limit: MAX_FDS_PER_SEND,
            }));
        }
        let stream = &self.stream;
        loop {
            ready!(stream.poll_write_ready(cx)).map_err(|e| Error::io("waiting to write", e))?;
            match stream.try_io(Interest::WRITABLE, || send_once(stream.as_fd(), bufs, fds)) {
                Ok(n) => {
                    if n > 0 {
                        // The kernel holds its own references now; close ours.
                        fds.clear();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(Error::io("sendmsg", e))),
            }
        }
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        let r = rustix::net::shutdown(self.stream.as_fd(), rustix::net::Shutdown::Write);
        Poll::Ready(r.map_err(|e| Error::io("shutdown", e.into())))
    }

    fn can_pass_fds(&self) -> bool {
        true
    }
}

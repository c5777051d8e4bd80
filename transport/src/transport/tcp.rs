//! TCP streams (plain `tcp:` and `nonce-tcp:` once the nonce is exchanged).
//! No fd passing and no peer credentials.

use std::io::IoSlice;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::net::TcpStream;

use super::{Received, Transport, TransportRead, TransportWrite};
use crate::creds::Credentials;
use crate::error::{Error, Result};

/// A connected TCP stream.
#[derive(Debug)]
pub struct TcpTransport {
    stream: Arc<TcpStream>,
}

impl TcpTransport {
    /// Wraps a connected stream (Nagle is turned off: D-Bus is request/response).
    pub fn new(stream: TcpStream) -> Self {
        let _ = stream.set_nodelay(true);
        TcpTransport {
            stream: Arc::new(stream),
        }
    }

    /// Connects to `host:port` (trying every resolved address).
    ///
    /// # Errors
    /// [`Error::Io`] when no address connects.
    pub async fn connect(host: &str, port: u16) -> Result<Self> {
        let s = TcpStream::connect((host, port))
            .await
            .map_err(|e| Error::io("connecting over TCP", e))?;
        Ok(Self::new(s))
    }
}

impl Transport for TcpTransport {
    fn can_pass_fds(&self) -> bool {
        false
    }
    fn peer_credentials(&self) -> Option<Credentials> {
        None
    }
    fn split(self: Box<Self>) -> (Box<dyn TransportRead>, Box<dyn TransportWrite>) {
        (
            Box::new(TcpHalf {
                stream: Arc::clone(&self.stream),
            }),
            Box::new(TcpHalf {
                stream: self.stream,
            }),
        )
    }
}

/// Either half of a [`TcpTransport`].
#[derive(Debug)]
struct TcpHalf {
    stream: Arc<TcpStream>,
}

impl TransportRead for TcpHalf {
    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
        _fds: &mut Vec<OwnedFd>,
    ) -> Poll<Result<Received>> {
        loop {
            ready!(self.stream.poll_read_ready(cx)).map_err(|e| Error::io("waiting to read", e))?;
            match self.stream.try_read(buf) {
                Ok(n) => {
                    return Poll::Ready(Ok(Received {
                        bytes: n,
                        fds_truncated: false,
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(Error::io("reading TCP", e))),
            }
        }
    }
}

impl TransportWrite for TcpHalf {
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
        fds: &mut Vec<OwnedFd>,
    ) -> Poll<Result<usize>> {
        if !fds.is_empty() {
            return Poll::Ready(Err(Error::FdsNotSupported));
        }
        loop {
            ready!(self.stream.poll_write_ready(cx))
                .map_err(|e| Error::io("waiting to write", e))?;
            match self.stream.try_write_vectored(bufs) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(Error::io("writing TCP", e))),
            }
        }
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        use std::os::fd::AsFd;
        let r = rustix::net::shutdown(self.stream.as_fd(), rustix::net::Shutdown::Write);
        Poll::Ready(r.map_err(|e| Error::io("shutdown", e.into())))
    }

    fn can_pass_fds(&self) -> bool {
        false
    }
}

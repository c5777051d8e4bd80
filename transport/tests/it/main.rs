//! End-to-end tests of fastbus-transport (one binary, modules below).

mod auth_server;
mod connect;
mod dbus_daemon;
mod fds;
mod limits;
mod mutation;
mod readiness;

use fastbus_transport::transport::TransportWrite;
use fastbus_transport::{BoxTransport, FramedReader, FramedWriter, raw_framed, socketpair};
use fastbus_wire::Message;

/// Two framed ends of a Unix socketpair.
pub(crate) fn framed_pair() -> ((FramedReader, FramedWriter), (FramedReader, FramedWriter)) {
    let (a, b) = socketpair().unwrap();
    (raw_framed(Box::new(a)), raw_framed(Box::new(b)))
}

/// A framed reader fed by a raw sending half over a Unix socketpair (to send partial
/// messages, or bytes without the fds they declare).
pub(crate) fn raw_to_framed() -> (Box<dyn TransportWrite>, FramedReader) {
    let (a, b) = socketpair().unwrap();
    let (_, w) = (Box::new(a) as BoxTransport).split();
    (w, raw_framed(Box::new(b)).0)
}

/// A `Hello` call with serial `serial`, encoded.
pub(crate) fn hello(serial: u32) -> Message {
    Message::method_call("/org/freedesktop/DBus", "Hello")
        .interface("org.freedesktop.DBus")
        .destination("org.freedesktop.DBus")
        .serial(serial)
        .build()
        .expect("a static Hello call builds")
}

/// The encoded bytes of `msg`.
pub(crate) fn encoded(msg: &Message) -> Vec<u8> {
    msg.encode().expect("test message encodes")
}

/// Our effective uid.
pub(crate) fn my_uid() -> u32 {
    fastbus_transport::Credentials::current_process()
        .uid
        .expect("own uid is known")
}

/// Lower-case hex.
pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// A sending half that counts the `poll_send` calls that wrote something.
#[derive(Debug)]
pub(crate) struct CountingWriter {
    pub(crate) inner: Box<dyn fastbus_transport::TransportWrite>,
    pub(crate) writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl fastbus_transport::TransportWrite for CountingWriter {
    fn poll_send(
        &mut self,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
        fds: &mut Vec<std::os::fd::OwnedFd>,
    ) -> std::task::Poll<fastbus_transport::Result<usize>> {
        let r = self.inner.poll_send(cx, bufs, fds);
        if matches!(r, std::task::Poll::Ready(Ok(n)) if n > 0) {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }
    fn poll_shutdown(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<fastbus_transport::Result<()>> {
        self.inner.poll_shutdown(cx)
    }
    fn can_pass_fds(&self) -> bool {
        self.inner.can_pass_fds()
    }
}

/// A transport whose sending half is a [`CountingWriter`].
#[derive(Debug)]
pub(crate) struct CountingTransport {
    pub(crate) inner: fastbus_transport::BoxTransport,
    pub(crate) writes: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl fastbus_transport::Transport for CountingTransport {
    fn can_pass_fds(&self) -> bool {
        self.inner.can_pass_fds()
    }
    fn peer_credentials(&self) -> Option<fastbus_transport::Credentials> {
        self.inner.peer_credentials()
    }
    fn split(
        self: Box<Self>,
    ) -> (
        Box<dyn fastbus_transport::TransportRead>,
        Box<dyn fastbus_transport::TransportWrite>,
    ) {
        let (r, w) = self.inner.split();
        (
            r,
            Box::new(CountingWriter {
                inner: w,
                writes: self.writes,
            }),
        )
    }
}

//! Starts either testbus or the real dbus-daemon, and a raw client over the
//! transport crate, so that each conformance test is written once and run
//! against both daemons.

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::Duration;

use fastbus_testbus::{Limits, TestBus};
use fastbus_transport::address::parse_list;
use fastbus_transport::{ClientOptions, FramedReader, FramedWriter};
use fastbus_wire::{Encode, Message, MessageBuilder, MessageType};
use tokio::io::AsyncBufReadExt;

pub(crate) const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";
/// How long any wait in these tests may take before it fails the test.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// Awaits `f`, or panics with `what` after [`WAIT`], so that no test hangs.
pub(crate) async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    TestBus,
    DbusDaemon,
}

/// A running daemon of either kind, stopped when dropped.
pub(crate) struct Daemon {
    kind: Kind,
    pub(crate) address: String,
    bus: Option<TestBus>,
    child: Option<tokio::process::Child>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Which daemon this is.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// The in-process bus, when this is testbus.
    pub(crate) fn testbus(&self) -> Option<&TestBus> {
        self.bus.as_ref()
    }

    pub(crate) async fn start(kind: Kind) -> Option<Daemon> {
        Self::start_with(kind, &[]).await
    }

    /// Starts a daemon with `limits` (dbus-daemon `<limit>` names). `None`
    /// when dbus-daemon is wanted but not installed (a message says so).
    pub(crate) async fn start_with(kind: Kind, limits: &[(&str, u64)]) -> Option<Daemon> {
        let dir = tempfile::tempdir().expect("tempdir");
        match kind {
            Kind::TestBus => {
                let mut l = Limits::default();
                for (n, v) in limits {
                    assert!(l.set_by_name(n, *v), "unknown limit {n}");
                }
                let bus = TestBus::builder()
                    .limits(l)
                    .listen(&format!("unix:dir={}", dir.path().display()))
                    .expect("address")
                    .start()
                    .await
                    .expect("start testbus");
                let address = bus.address().expect("address");
                Some(Daemon {
                    kind,
                    address,
                    bus: Some(bus),
                    child: None,
                    _dir: dir,
                })
            }
            Kind::DbusDaemon => {
                if !std::path::Path::new(DBUS_DAEMON).exists() {
                    eprintln!(
                        "SKIPPED: {DBUS_DAEMON} is not installed (Debian package dbus-daemon)"
                    );
                    return None;
                }
                let mut lim = String::new();
                for (n, v) in limits {
                    lim.push_str(&format!("  <limit name=\"{n}\">{v}</limit>\n"));
                }
                let conf = format!(
                    "<busconfig>\n  <type>session</type>\n  <listen>unix:dir={}</listen>\n  <auth>EXTERNAL</auth>\n  <policy context=\"default\">\n    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n  </policy>\n{lim}</busconfig>\n",
                    dir.path().display()
                );
                let conf_path = dir.path().join("bus.conf");
                std::fs::write(&conf_path, conf).expect("write config");
                let mut child = tokio::process::Command::new(DBUS_DAEMON)
                    .arg(format!("--config-file={}", conf_path.display()))
                    .arg("--print-address=1")
                    .arg("--nofork")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("start dbus-daemon");
                let out = child.stdout.take().expect("stdout");
                let mut lines = tokio::io::BufReader::new(out).lines();
                let address = tokio::time::timeout(WAIT, lines.next_line())
                    .await
                    .expect("dbus-daemon prints its address")
                    .expect("read")
                    .expect("a line");
                Some(Daemon {
                    kind,
                    address,
                    bus: None,
                    child: Some(child),
                    _dir: dir,
                })
            }
        }
    }

    pub(crate) async fn client(&self) -> Client {
        Client::connect(&self.address).await
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.start_kill();
        }
    }
}

/// A minimal client: raw messages in and out.
pub(crate) struct Client {
    pub(crate) r: FramedReader,
    pub(crate) w: FramedWriter,
    pub(crate) serial: u32,
    pub(crate) name: String,
    pub(crate) queue: VecDeque<Message>,
}

impl Client {
    /// Connects and authenticates, without Hello.
    pub(crate) async fn connect_raw(address: &str) -> Client {
        Self::connect_raw_with(address, &ClientOptions::default()).await
    }

    /// Connects and authenticates with `options`, without Hello.
    pub(crate) async fn connect_raw_with(address: &str, options: &ClientOptions) -> Client {
        let addrs = parse_list(address).expect("address");
        let c = within(
            "connecting and authenticating",
            fastbus_transport::connect(&addrs, options, None),
        )
        .await
        .expect("connect");
        Client::over(c.reader, c.writer)
    }

    /// A client over an already authenticated reader and writer (no Hello yet).
    pub(crate) fn over(r: FramedReader, w: FramedWriter) -> Client {
        Client {
            r,
            w,
            serial: 0,
            name: String::new(),
            queue: VecDeque::new(),
        }
    }

    /// Connects, authenticates and calls Hello.
    pub(crate) async fn connect(address: &str) -> Client {
        let mut c = Self::connect_raw(address).await;
        c.hello().await;
        c
    }

    pub(crate) async fn hello(&mut self) {
        let r = self.call_bus("Hello", &()).await;
        assert_eq!(r.message_type(), MessageType::METHOD_RETURN, "{r:?}");
        let name: &str = r.body().expect("hello reply");
        self.name = name.to_owned();
        // NameAcquired for the unique name follows.
        let acq = self
            .recv_where(|m| m.member().is_some_and(|x| x.as_str() == "NameAcquired"))
            .await;
        assert_eq!(acq.body::<&str>().ok(), Some(self.name.as_str()));
    }

    pub(crate) fn next_serial(&mut self) -> u32 {
        self.serial += 1;
        self.serial
    }

    /// Sends a message built from `b` (a serial is set); returns the serial.
    pub(crate) async fn send(&mut self, b: MessageBuilder) -> u32 {
        let s = self.next_serial();
        let m = b.serial(s).build().expect("build");
        self.send_msg(&m).await;
        s
    }

    pub(crate) async fn send_msg(&mut self, m: &Message) {
        within("sending a message", self.w.send(m))
            .await
            .expect("send");
    }

    /// Writes raw bytes (queued, then flushed).
    pub(crate) async fn send_bytes(&mut self, bytes: &[u8], fds: Vec<std::os::fd::OwnedFd>) {
        self.w.queue_bytes(bytes, fds).expect("queue");
        within("flushing", self.w.flush()).await.expect("flush");
    }

    /// The next message from the wire or the queue.
    pub(crate) async fn recv(&mut self) -> Message {
        if let Some(m) = self.queue.pop_front() {
            return m;
        }
        self.read()
            .await
            .expect("connection closed while waiting for a message")
    }

    /// Reads one message from the wire (None at end of stream or error).
    pub(crate) async fn read(&mut self) -> Option<Message> {
        match tokio::time::timeout(WAIT, self.r.next_message()).await {
            Ok(Ok(m)) => m,
            Ok(Err(_)) => None,
            Err(_) => panic!("no message within {WAIT:?}"),
        }
    }

    /// Waits for a message satisfying `f`; others are queued.
    pub(crate) async fn recv_where(&mut self, f: impl Fn(&Message) -> bool) -> Message {
        if let Some(i) = self.queue.iter().position(&f) {
            return self.queue.remove(i).expect("present");
        }
        loop {
            let m = self.read().await.expect("connection closed");
            if f(&m) {
                return m;
            }
            self.queue.push_back(m);
        }
    }

    /// Sends a call and waits for its reply (other messages are queued).
    pub(crate) async fn call(&mut self, b: MessageBuilder) -> Message {
        let s = self.send(b).await;
        self.recv_where(|m| m.reply_serial() == Some(s)).await
    }

    pub(crate) async fn call_bus<T: Encode + ?Sized>(&mut self, member: &str, body: &T) -> Message {
        self.call(bus_call(member).body(body)).await
    }

    /// Calls the bus and returns the error name, or "" for a method return.
    pub(crate) async fn bus_error<T: Encode + ?Sized>(&mut self, member: &str, body: &T) -> String {
        let r = self.call_bus(member, body).await;
        error_name(&r)
    }

    pub(crate) async fn add_match(&mut self, rule: &str) {
        let r = self.call_bus("AddMatch", &(rule,)).await;
        assert_eq!(error_name(&r), "", "AddMatch {rule}: {:?}", r.error_text());
    }

    /// Everything that arrives before the reply to a Ping of the bus (a
    /// barrier: the bus answers in order, so earlier messages are in).
    pub(crate) async fn drain(&mut self) -> Vec<Message> {
        let s = self
            .send(
                Message::method_call("/org/freedesktop/DBus", "Ping")
                    .interface("org.freedesktop.DBus.Peer")
                    .destination("org.freedesktop.DBus"),
            )
            .await;
        let mut got: Vec<Message> = self.queue.drain(..).collect();
        loop {
            let m = self.read().await.expect("connection closed");
            if m.reply_serial() == Some(s)
                && m.sender()
                    .is_some_and(|x| x.as_str() == "org.freedesktop.DBus")
            {
                return got;
            }
            got.push(m);
        }
    }

    /// Asserts the bus closed this connection.
    pub(crate) async fn expect_closed(&mut self) {
        loop {
            match tokio::time::timeout(WAIT, self.r.next_message()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return,
                Err(_) => panic!("the bus did not close the connection"),
            }
        }
    }
}

pub(crate) fn bus_call(member: &str) -> MessageBuilder {
    Message::method_call("/org/freedesktop/DBus", member)
        .interface("org.freedesktop.DBus")
        .destination("org.freedesktop.DBus")
}

pub(crate) fn error_name(m: &Message) -> String {
    if m.message_type() == MessageType::ERROR {
        m.error_name().map(|e| e.to_string()).unwrap_or_default()
    } else {
        String::new()
    }
}

pub(crate) fn member_is(m: &Message, member: &str) -> bool {
    m.member().is_some_and(|x| x.as_str() == member)
}

/// Runs `$check` against testbus and against dbus-daemon (skipped when absent).
#[macro_export]
macro_rules! both {
    ($name:ident, $check:ident) => {
        $crate::both!($name, $check, &[]);
    };
    ($name:ident, $check:ident, $limits:expr) => {
        mod $name {
            #[tokio::test]
            async fn testbus() {
                let d =
                    $crate::harness::Daemon::start_with($crate::harness::Kind::TestBus, $limits)
                        .await
                        .expect("testbus starts");
                super::$check(d).await;
            }
            #[tokio::test]
            async fn dbus_daemon() {
                let Some(d) =
                    $crate::harness::Daemon::start_with($crate::harness::Kind::DbusDaemon, $limits)
                        .await
                else {
                    return;
                };
                super::$check(d).await;
            }
        }
    };
}

/// A pipe (`std::io::pipe` is newer than the MSRV): read end, write end.
pub(crate) fn pipe() -> (std::fs::File, std::fs::File) {
    // Close-on-exec: children that other tests spawn meanwhile must not hold it.
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
    (std::fs::File::from(r), std::fs::File::from(w))
}

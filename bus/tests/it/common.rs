//! The bus the tests run against, and a test service (`Test`) exported by hand.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fastbus::{DBusError, Interface, Message, MessageBus, MethodResult, async_trait};
use fastbus_wire::introspection::{self as intro, Arg, ArgDirection, Method};
use fastbus_wire::names::{InterfaceName, MemberName};
use fastbus_wire::{Fd, Signature, Value};

const DAEMON: &str = "/usr/bin/dbus-daemon";

/// The interface name of [`TestService`].
pub(crate) const IFACE: &str = "org.fastbus.Test";
/// Where tests export [`TestService`].
pub(crate) const PATH: &str = "/org/fastbus/Test";

/// A dbus-daemon child process, killed on drop.
#[derive(Debug)]
pub(crate) struct Daemon {
    child: Mutex<Child>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn kill(&self) {
        let mut c = self.child.lock().unwrap();
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One bus to run a test against.
#[derive(Clone, Debug)]
pub(crate) struct Env {
    pub(crate) name: &'static str,
    address: String,
    daemon: Option<Arc<Daemon>>,
    testbus: Option<Arc<Mutex<Option<fastbus_testbus::TestBus>>>>,
}

impl Env {
    /// A builder aimed at this bus.
    pub(crate) fn builder(&self) -> fastbus::MessageBusBuilder {
        if let Some(tb) = &self.testbus {
            let t = tb
                .lock()
                .unwrap()
                .as_ref()
                .expect("testbus running")
                .connect_memory()
                .expect("in-memory connection to testbus");
            return MessageBus::builder().transport(t);
        }
        MessageBus::builder().address(self.address.clone())
    }

    /// The bus's address (empty for the in-process testbus, which is reached in memory).
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// A new connection with default options.
    pub(crate) async fn connect(&self) -> MessageBus {
        self.builder().connect().await.expect("connect")
    }

    /// A connection exporting [`TestService`] at [`PATH`].
    pub(crate) async fn service(&self) -> (MessageBus, Arc<TestService>) {
        let bus = self.connect().await;
        let svc = Arc::new(TestService::default());
        bus.export(PATH, svc.clone()).unwrap();
        (bus, svc)
    }

    /// Stops the bus (the connections see their peer go away).
    pub(crate) async fn stop(&self) {
        if let Some(d) = &self.daemon {
            d.kill();
        }
        if let Some(tb) = &self.testbus {
            let bus = tb.lock().unwrap().take();
            if let Some(bus) = bus {
                bus.shutdown().await;
            }
        }
    }
}

/// A private dbus-daemon alone (`None`, with a printed SKIPPED line, when not installed).
pub(crate) fn start_daemon() -> Option<Env> {
    if !Path::new(DAEMON).exists() {
        println!("SKIPPED against dbus-daemon: {DAEMON} is not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <limit name="max_replies_per_connection">100000</limit>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">1000000000</limit>
</busconfig>
"#,
            dir.path().join("bus").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(DAEMON)
        .arg(format!("--config-file={}", conf.display()))
        .arg("--print-address=1")
        .arg("--nofork")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    Some(Env {
        name: "dbus-daemon",
        address: line.trim().to_owned(),
        daemon: Some(Arc::new(Daemon {
            child: Mutex::new(child),
            _dir: dir,
        })),
        testbus: None,
    })
}

async fn start_testbus() -> Env {
    let bus = fastbus_testbus::TestBus::start()
        .await
        .expect("start testbus");
    Env {
        name: "testbus (in-process)",
        address: String::new(),
        daemon: None,
        testbus: Some(Arc::new(Mutex::new(Some(bus)))),
    }
}

/// Runs `body` against every bus that is available, each started afresh: dbus-daemon (when
/// installed) and the in-process testbus.
pub(crate) async fn run<F, Fut>(body: F)
where
    F: Fn(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(env) = start_daemon() {
        println!("against {}", env.name);
        body(env).await;
    }
    let env = start_testbus().await;
    println!("against {}", env.name);
    body(env.clone()).await;
    env.stop().await;
}

/// Waits for `fut`, failing the test after 20 s instead of hanging.
pub(crate) async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("the test did not finish within 20 s")
}

/// A call to [`TestService`] at `dest`.
pub(crate) fn test_call(dest: &str, member: &str) -> fastbus_wire::MessageBuilder {
    Message::method_call(PATH, member)
        .interface(IFACE)
        .destination(dest)
}

/// The test service: `Echo(s) -> s`, `Sleep(u ms)`, `Fail()`, `WriteFd(h)`, `ReadFd() -> h`,
/// `Record(u)`, `Log() -> au`, `Burst(u n)` (emits n `Tick(u)` signals, then replies),
/// `Panic()` and `PanicLater()` (panic at once / after waiting once), `Hold(s)` (waits until
/// the test calls `release`, then records its argument and replies).
#[derive(Debug, Default)]
pub(crate) struct TestService {
    pub(crate) calls: std::sync::atomic::AtomicUsize,
    /// The number of calls so far, to wait on.
    pub(crate) seen: tokio::sync::watch::Sender<usize>,
    pub(crate) log: Mutex<Vec<u32>>,
    /// `Hold` has started waiting.
    pub(crate) holding: tokio::sync::Notify,
    release: tokio::sync::Notify,
    /// `Hold` has recorded its argument in `held`.
    pub(crate) held_done: tokio::sync::Notify,
    pub(crate) held: Mutex<Vec<String>>,
}

impl TestService {
    /// Lets one waiting `Hold` go on.
    pub(crate) fn release(&self) {
        self.release.notify_one();
    }

    /// Waits until `n` `Hold` calls have recorded their argument (notifications may coalesce,
    /// so this looks at the record).
    pub(crate) async fn wait_held(&self, n: usize) {
        while self.held.lock().unwrap().len() < n {
            within(self.held_done.notified()).await;
        }
    }
}

fn method(name: &str, ins: &[&str], outs: &[&str]) -> Method<'static> {
    let mut m = Method::new(MemberName::new(name).unwrap().into_owned());
    for s in ins {
        m = m
            .with_arg(Arg::new(Signature::new(s).unwrap().into_owned(), ArgDirection::In).unwrap());
    }
    for s in outs {
        m = m.with_arg(
            Arg::new(Signature::new(s).unwrap().into_owned(), ArgDirection::Out).unwrap(),
        );
    }
    m
}

#[async_trait]
impl Interface for TestService {
    fn name(&self) -> &str {
        IFACE
    }

    fn introspect(&self) -> intro::Interface<'static> {
        intro::Interface::new(InterfaceName::new(IFACE).unwrap().into_owned())
            .with_method(method("Echo", &["s"], &["s"]))
            .with_method(method("Sleep", &["u"], &[]))
            .with_method(method("Fail", &[], &[]))
            .with_method(method("WriteFd", &["h"], &[]))
            .with_method(method("Record", &["u"], &[]))
            .with_method(method("Log", &[], &["au"]))
            .with_method(method("Burst", &["u"], &[]))
            .with_method(method("ReadFd", &[], &["h"]))
            .with_method(method("Panic", &[], &[]))
            .with_method(method("PanicLater", &[], &[]))
            .with_method(method("Hold", &["s"], &[]))
    }

    fn has_method(&self, member: &str) -> bool {
        matches!(
            member,
            "Echo"
                | "Sleep"
                | "Fail"
                | "WriteFd"
                | "ReadFd"
                | "Record"
                | "Log"
                | "Burst"
                | "Panic"
                | "PanicLater"
                | "Hold"
        )
    }

    async fn call(&self, bus: &MessageBus, call: &Message) -> MethodResult {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.seen.send_replace(n + 1);
        let bad = |e: fastbus_wire::Error| DBusError::invalid_args(e.to_string());
        let ret = || Message::method_return(call);
        let member = call
            .member()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let reply = match member.as_str() {
            "Echo" => {
                let args: Vec<Value> = call.body_values().map_err(bad)?;
                ret().body_values(&args)
            }
            "Sleep" => {
                let ms: u32 = call.body().map_err(bad)?;
                tokio::time::sleep(Duration::from_millis(ms.into())).await;
                ret()
            }
            "Fail" => {
                return Err(DBusError::new(
                    "org.fastbus.Error.AsAsked",
                    "failing as asked",
                ));
            }
            "WriteFd" => {
                let fd: Fd = call.body().map_err(bad)?;
                let fd = call.fd(fd).map_err(bad)?;
                rustix::io::write(fd, b"hello through an fd")
                    .map_err(|e| DBusError::failed(e.to_string()))?;
                ret()
            }
            "Record" => {
                let n: u32 = call.body().map_err(bad)?;
                if n % 2 == 0 {
                    // Make even calls wait, so a later odd call would overtake it if calls
                    // to one object were not handled in order.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                self.log.lock().unwrap().push(n);
                ret()
            }
            "Log" => {
                let log = self.log.lock().unwrap().clone();
                ret().body(&(log,))
            }
            "Burst" => {
                let n: u32 = call.body().map_err(bad)?;
                for i in 0..n {
                    let s = Message::signal(PATH, IFACE, "Tick")
                        .body(&(i,))
                        .build()
                        .map_err(bad)?;
                    bus.send(s).map_err(|e| DBusError::failed(e.to_string()))?;
                }
                ret()
            }
            "ReadFd" => {
                let (r, w) = rustix::pipe::pipe().map_err(|e| DBusError::failed(e.to_string()))?;
                rustix::io::write(&w, b"hello from the service")
                    .map_err(|e| DBusError::failed(e.to_string()))?;
                ret().body(&(Fd(0),)).fds(vec![r])
            }
            "Panic" => panic!("Panic was called"),
            "PanicLater" => {
                tokio::task::yield_now().await;
                panic!("PanicLater was called")
            }
            "Hold" => {
                self.holding.notify_one();
                self.release.notified().await;
                // The request message is still alive and readable after the wait (CVE-2020-1712).
                let s: &str = call.body().map_err(bad)?;
                self.held.lock().unwrap().push(s.to_owned());
                self.held_done.notify_one();
                ret()
            }
            _ => return Err(DBusError::failed("not reached: has_method filters")),
        };
        reply.build().map(Some).map_err(bad)
    }
}

/// A bus played by the test over a socketpair: the returned connection has said `Hello` and
/// was named `:1.7`; the test reads what it sends and writes what the bus would answer, in
/// exactly the order and grouping it wants (for ordering properties a real bus cannot be
/// made to show on demand).
pub(crate) async fn scripted_bus() -> (
    MessageBus,
    fastbus_transport::FramedReader,
    fastbus_transport::FramedWriter,
) {
    let (a, b) = fastbus_transport::socketpair().unwrap();
    let (ra, wa) = fastbus_transport::raw_framed(Box::new(a));
    let (mut rb, mut wb) = fastbus_transport::raw_framed(Box::new(b));
    let connect = tokio::spawn(MessageBus::builder().framed(ra, wa).connect());
    let hello = within(rb.next_message()).await.unwrap().unwrap();
    assert_eq!(hello.member().unwrap().as_str(), "Hello");
    let reply = Message::method_return(&hello)
        .sender(fastbus::DBUS_NAME)
        .serial(1)
        .body(&(":1.7",))
        .build()
        .unwrap();
    wb.queue(&reply).unwrap();
    within(wb.flush()).await.unwrap();
    let bus = within(connect).await.unwrap().unwrap();
    assert_eq!(bus.unique_name(), Some(":1.7"));
    (bus, rb, wb)
}

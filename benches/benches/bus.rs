//! `MessageBus` round trips.
//!
//! - `p2p_roundtrip`: peer-to-peer over a Unix socketpair (no daemon), sequential
//!   `Echo(s)` calls: a raw ping-pong of the very same bytes (the floor: tokio `write_all` /
//!   `read_exact`, no framing, no codec), fastbus with direct writes (the default) and fastbus
//!   with a writer task (the textbook design), in one run. The fastbus client sends a clone of
//!   one prebuilt call, so this measures the connection, not message building.
//! - `daemon_echo`: `Echo(s)` through a private dbus-daemon, client and server of the same
//!   library: fastbus against zbus 6, sequentially and with 64 calls in flight. Both clients
//!   build each call with their library's `call_method`-style API, with the same path,
//!   interface and payload (names of equal length), and read the reply as a borrowed `&str`.
//!
//! Fairness: every side runs on one 2-worker tokio runtime (zbus with its `tokio` feature, so
//! it spawns no threads of its own) and every client loop, the raw floor's included, is a
//! task spawned on it, so each side pays the same scheduling.
//!
//! After criterion's runs, the bench measures each comparison *interleaved* ([`ROUNDS`]
//! rounds, each side in turn) and prints the median of the per-round ratios, which is what
//! `benches/RESULTS.md` quotes: on a shared machine, a busy neighbour during one criterion
//! group would otherwise favour the other side.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-benches cargo bench -p fastbus-benches --bench bus`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use fastbus::{
    DBusError, Interface, Message, MessageBus, MethodResult, RequestNameFlags, WriteMode,
    async_trait,
};
use fastbus_transport::{raw_framed, socketpair};
use fastbus_wire::introspection as intro;
use fastbus_wire::names::{InterfaceName, MemberName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

const PATH: &str = "/org/bench/Echo";
const IFACE: &str = "org.bench.Echo";
/// The bus names of the two servers (of equal length, so both calls are the same size).
const FASTBUS_NAME: &str = "org.bench.Fast";
const ZBUS_NAME: &str = "org.bench.Zbus";
const PAYLOAD: &str = "hello, this is a short echo payload";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `Echo(s) -> s`.
struct Echo;

#[async_trait]
impl Interface for Echo {
    fn name(&self) -> &str {
        IFACE
    }
    fn introspect(&self) -> intro::Interface<'static> {
        intro::Interface::new(InterfaceName::new(IFACE).expect("name"))
            .with_method(intro::Method::new(MemberName::new("Echo").expect("name")))
    }
    fn has_method(&self, member: &str) -> bool {
        member == "Echo"
    }
    async fn call(&self, _bus: &MessageBus, call: &Message) -> MethodResult {
        let s: &str = call
            .body()
            .map_err(|e| DBusError::invalid_args(e.to_string()))?;
        Message::method_return(call)
            .body(&(s,))
            .build()
            .map(Some)
            .map_err(|e| DBusError::failed(e.to_string()))
    }
}

fn echo_call() -> Message {
    Message::method_call(PATH, "Echo")
        .interface(IFACE)
        .body(&(PAYLOAD,))
        .build()
        .expect("call")
}

async fn p2p_pair(mode: WriteMode) -> (MessageBus, MessageBus) {
    let (a, b) = socketpair().expect("socketpair");
    let (ra, wa) = raw_framed(Box::new(a));
    let (rb, wb) = raw_framed(Box::new(b));
    let client = MessageBus::builder()
        .framed(ra, wa)
        .peer_to_peer(true)
        .write_mode(mode)
        .connect()
        .await
        .expect("client");
    let server = MessageBus::builder()
        .framed(rb, wb)
        .peer_to_peer(true)
        .write_mode(mode)
        .connect()
        .await
        .expect("server");
    server.export(PATH, Arc::new(Echo)).expect("export");
    (client, server)
}

/// The raw floor: a client and a server task ping-ponging the bytes of one Echo call and its
/// reply over a socketpair.
struct Raw {
    client: Option<tokio::net::UnixStream>,
    call: Vec<u8>,
    reply_len: usize,
}

impl Raw {
    fn new(rt: &Runtime) -> Self {
        // The same bytes fastbus sends and receives.
        let mut call = echo_call();
        call.set_serial(7);
        let call_bytes = call.encode().expect("encode");
        let reply_bytes = Message::method_return(&call)
            .serial(9)
            .body(&(PAYLOAD,))
            .build()
            .and_then(|m| m.encode())
            .expect("reply");
        let (client, mut server) = rt.block_on(async {
            let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
            a.set_nonblocking(true).expect("nb");
            b.set_nonblocking(true).expect("nb");
            (
                tokio::net::UnixStream::from_std(a).expect("a"),
                tokio::net::UnixStream::from_std(b).expect("b"),
            )
        });
        let (cl, rb) = (call_bytes.len(), reply_bytes.clone());
        rt.spawn(async move {
            let mut buf = vec![0u8; cl];
            while server.read_exact(&mut buf).await.is_ok() {
                if server.write_all(&rb).await.is_err() {
                    break;
                }
            }
        });
        Raw {
            client: Some(client),
            call: call_bytes,
            reply_len: reply_bytes.len(),
        }
    }

    fn run(&mut self, rt: &Runtime, iters: u64) -> Duration {
        // The client loop is a task on the runtime, as the fastbus client loops are.
        let (mut c, cb, rl) = (
            self.client.take().expect("client"),
            self.call.clone(),
            self.reply_len,
        );
        let (c, elapsed) = in_task(rt, async move {
            let mut buf = vec![0u8; rl];
            let t = Instant::now();
            for _ in 0..iters {
                c.write_all(&cb).await.expect("write");
                c.read_exact(&mut buf).await.expect("read");
            }
            (c, t.elapsed())
        });
        self.client = Some(c);
        elapsed
    }
}

/// Runs `fut` as a task on `rt` (client loops run as tasks, as the fastbus client's do) and
/// returns its output.
fn in_task<T: Send + 'static>(
    rt: &Runtime,
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(async move { tokio::spawn(fut).await.expect("task") })
}

/// `iters` sequential calls of a clone of `msg` (peer-to-peer: one prebuilt call).
fn p2p_calls(rt: &Runtime, client: &MessageBus, msg: &Message, iters: u64) -> Duration {
    let (client, msg) = (client.clone(), msg.clone());
    in_task(rt, async move {
        let t = Instant::now();
        for _ in 0..iters {
            client.call(msg.clone()).await.expect("call");
        }
        t.elapsed()
    })
}

/// Everything the bench measures, set up once.
struct Setup {
    rt: Runtime,
    raw: Raw,
    direct: (MessageBus, MessageBus),
    writer_task: (MessageBus, MessageBus),
    p2p_msg: Message,
    daemon: Option<DaemonSide>,
}

impl Setup {
    fn new() -> Self {
        let rt = runtime();
        let raw = Raw::new(&rt);
        let direct = rt.block_on(p2p_pair(WriteMode::Direct));
        let writer_task = rt.block_on(p2p_pair(WriteMode::WriterTask));
        let daemon = start_daemon().map(|d| DaemonSide::new(&rt, d));
        Setup {
            rt,
            raw,
            direct,
            writer_task,
            p2p_msg: echo_call(),
            daemon,
        }
    }

    fn raw(&mut self, iters: u64) -> Duration {
        self.raw.run(&self.rt, iters)
    }

    fn direct(&self, iters: u64) -> Duration {
        p2p_calls(&self.rt, &self.direct.0, &self.p2p_msg, iters)
    }

    fn writer_task(&self, iters: u64) -> Duration {
        p2p_calls(&self.rt, &self.writer_task.0, &self.p2p_msg, iters)
    }
}

/// A private dbus-daemon, killed on drop.
struct Daemon {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon() -> Option<Daemon> {
    const DAEMON: &str = "/usr/bin/dbus-daemon";
    if !Path::new(DAEMON).exists() {
        println!("SKIPPED daemon_echo: {DAEMON} is not installed");
        return None;
    }
    let dir = tempfile::tempdir().ok()?;
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
</busconfig>
"#,
            dir.path().join("bus").display()
        ),
    )
    .ok()?;
    let mut child = Command::new(DAEMON)
        .arg(format!("--config-file={}", conf.display()))
        .arg("--print-address=1")
        .arg("--nofork")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    Some(Daemon {
        child,
        address: line.trim().to_owned(),
        _dir: dir,
    })
}

struct ZEcho;

#[zbus::interface(name = "org.bench.Echo")]
impl ZEcho {
    fn echo(&self, s: String) -> String {
        s
    }
}

const IN_FLIGHT: usize = 64;

/// One Echo call by fastbus, built afresh as zbus's `call_method` builds it, the reply read
/// as a borrowed `&str`.
async fn fcall(client: MessageBus) {
    let msg = Message::method_call(PATH, "Echo")
        .destination(FASTBUS_NAME)
        .interface(IFACE)
        .body(&(PAYLOAD,))
        .build()
        .expect("call");
    let r = client.call(msg).await.expect("call").expect("reply");
    assert_eq!(r.body::<&str>().expect("body"), PAYLOAD);
}

/// The same call by zbus.
async fn zcall(client: zbus::Connection) {
    let r = client
        .call_method(Some(ZBUS_NAME), PATH, Some(IFACE), "Echo", &(PAYLOAD,))
        .await
        .expect("zbus call");
    let body = r.body();
    let s: &str = body.deserialize().expect("body");
    assert_eq!(s, PAYLOAD);
}

/// Both libraries' servers and clients on one private dbus-daemon.
struct DaemonSide {
    fclient: MessageBus,
    _fserver: MessageBus,
    zclient: zbus::Connection,
    _zserver: zbus::Connection,
    _daemon: Daemon,
}

impl DaemonSide {
    fn new(rt: &Runtime, d: Daemon) -> Self {
        let addr = d.address.clone();
        let (fclient, fserver) = rt.block_on(async {
            let server = MessageBus::connect_address(&addr).await.expect("server");
            server.export(PATH, Arc::new(Echo)).expect("export");
            server
                .request_name(FASTBUS_NAME, RequestNameFlags::NONE)
                .await
                .expect("name");
            let client = MessageBus::connect_address(&addr).await.expect("client");
            (client, server)
        });
        let (zclient, zserver) = rt.block_on(async {
            let server = zbus::connection::Builder::address(addr.as_str())
                .name(ZBUS_NAME)
                .serve_at(PATH, ZEcho)
                .build()
                .await
                .expect("zbus server");
            let client = zbus::connection::Builder::address(addr.as_str())
                .build()
                .await
                .expect("zbus client");
            (client, server)
        });
        DaemonSide {
            fclient,
            _fserver: fserver,
            zclient,
            _zserver: zserver,
            _daemon: d,
        }
    }
}

/// `iters` sequential calls made by `call` from a task.
fn sequential<C, F>(
    rt: &Runtime,
    client: &C,
    call: impl Fn(C) -> F + Send + 'static,
    iters: u64,
) -> Duration
where
    C: Clone + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let client = client.clone();
    in_task(rt, async move {
        let t = Instant::now();
        for _ in 0..iters {
            call(client.clone()).await;
        }
        t.elapsed()
    })
}

/// `iters` rounds of [`IN_FLIGHT`] concurrent calls, driven from a task: the rounds run
/// one after the other as [`sequential`]'s calls do.
fn in_flight<C, F>(rt: &Runtime, client: &C, call: fn(C) -> F, iters: u64) -> Duration
where
    C: Clone + Send + 'static,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let round = move |client: C| async move {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..IN_FLIGHT {
            set.spawn(call(client.clone()));
        }
        // A call that failed (its task panicked) fails the bench instead of passing as done.
        while let Some(r) = set.join_next().await {
            r.expect("call task");
        }
    };
    sequential(rt, client, round, iters)
}

/// Interleaved rounds for the printed ratios.
const ROUNDS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `a` and `b` in turn for [`ROUNDS`] rounds of `n` operations each and prints the
/// median of the per-round throughput ratios `a / b`, with both medians.
fn interleaved(
    label: &str,
    n: u64,
    per_op: u64,
    mut a: impl FnMut(u64) -> Duration,
    mut b: impl FnMut(u64) -> Duration,
) {
    let (mut ta, mut tb, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let x = a(n).as_secs_f64();
        let y = b(n).as_secs_f64();
        ta.push(x);
        tb.push(y);
        ratio.push(y / x);
    }
    let rate = |t: f64| (n * per_op) as f64 / t / 1000.0;
    let mut sorted = ratio.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{label}: {:.2} (median of {ROUNDS} interleaved rounds; min {:.2}, max {:.2}; \
         medians {:.1}k/s vs {:.1}k/s)",
        median(ratio),
        sorted[0],
        sorted[ROUNDS - 1],
        rate(median(ta)),
        rate(median(tb)),
    );
}

/// `FASTBUS_BUS_OP=<fastbus|zbus>_<seq|inflight>:<n>`: only `n` sequential calls (or `n`
/// rounds of [`IN_FLIGHT`]) through the private dbus-daemon, no criterion, then exit: for
/// counting syscalls (`strace -f -c`) and CPU time (`/usr/bin/time`) per call, which do not
/// depend on the load of a shared machine as wall-clock rates do. Prints the wall time.
fn count_calls(setup: &Setup, spec: &str) {
    let (op, n) = spec.split_once(':').expect("FASTBUS_BUS_OP is <op>:<n>");
    let n: u64 = n.parse().expect("FASTBUS_BUS_OP count");
    let d = setup
        .daemon
        .as_ref()
        .expect("FASTBUS_BUS_OP needs /usr/bin/dbus-daemon");
    let rt = &setup.rt;
    let t = match op {
        "fastbus_seq" => sequential(rt, &d.fclient, fcall, n),
        "zbus_seq" => sequential(rt, &d.zclient, zcall, n),
        "fastbus_inflight" => in_flight(rt, &d.fclient, fcall, n),
        "zbus_inflight" => in_flight(rt, &d.zclient, zcall, n),
        other => panic!("unknown FASTBUS_BUS_OP {other:?}"),
    };
    println!("{op}: {n} in {t:?}");
}

fn main() {
    let mut setup = Setup::new();
    if let Ok(spec) = std::env::var("FASTBUS_BUS_OP") {
        return count_calls(&setup, &spec);
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    {
        let mut g = c.benchmark_group("p2p_roundtrip");
        g.throughput(Throughput::Elements(1));
        g.bench_function("raw_pingpong", |b| b.iter_custom(|n| setup.raw(n)));
        g.bench_function("fastbus_direct_write", |b| {
            b.iter_custom(|n| setup.direct(n))
        });
        g.bench_function("fastbus_writer_task", |b| {
            b.iter_custom(|n| setup.writer_task(n))
        });
        g.finish();
    }
    if let Some(d) = &setup.daemon {
        let rt = &setup.rt;
        let mut g = c.benchmark_group("daemon_echo_sequential");
        g.throughput(Throughput::Elements(1));
        g.bench_function("fastbus", |b| {
            b.iter_custom(|n| sequential(rt, &d.fclient, fcall, n))
        });
        g.bench_function("zbus", |b| {
            b.iter_custom(|n| sequential(rt, &d.zclient, zcall, n))
        });
        g.finish();
        let mut g = c.benchmark_group("daemon_echo_64_in_flight");
        g.throughput(Throughput::Elements(IN_FLIGHT as u64));
        g.bench_function("fastbus", |b| {
            b.iter_custom(|n| in_flight(rt, &d.fclient, fcall, n))
        });
        g.bench_function("zbus", |b| {
            b.iter_custom(|n| in_flight(rt, &d.zclient, zcall, n))
        });
        g.finish();
    }
    c.final_summary();
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches`: criterion ran each bench once; that is the test.
    }

    // Interleaved: the ratios RESULTS.md quotes (fastbus over its peer: above 1 is faster).
    println!();
    let s = std::cell::RefCell::new(setup);
    interleaved(
        "p2p sequential, fastbus direct write / raw ping-pong",
        20_000,
        1,
        |n| s.borrow().direct(n),
        |n| s.borrow_mut().raw(n),
    );
    interleaved(
        "p2p sequential, fastbus writer task / raw ping-pong",
        20_000,
        1,
        |n| s.borrow().writer_task(n),
        |n| s.borrow_mut().raw(n),
    );
    let setup = s.into_inner();
    if let Some(d) = &setup.daemon {
        let rt = &setup.rt;
        interleaved(
            "dbus-daemon sequential, fastbus / zbus",
            2_000,
            1,
            |n| sequential(rt, &d.fclient, fcall, n),
            |n| sequential(rt, &d.zclient, zcall, n),
        );
        interleaved(
            "dbus-daemon 64 in flight, fastbus / zbus",
            60,
            IN_FLIGHT as u64,
            |n| in_flight(rt, &d.fclient, fcall, n),
            |n| in_flight(rt, &d.zclient, zcall, n),
        );
    }
}

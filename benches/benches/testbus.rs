//! Routing through `fastbus-testbus` against `/usr/bin/dbus-daemon`, in one run, with the
//! same client code on both sides (issue 6, "Speed").
//!
//! Both daemons read the same busconfig (limits raised so the big cases fit) and listen on
//! a Unix socket in a temporary directory. testbus runs in this process on its own 2-worker
//! tokio runtime (as its binary does); dbus-daemon is a private child process. Every client
//! is the `fastbus` `MessageBus` on a separate 2-worker runtime, except the raw connect case.
//!
//! - `testbus_echo_sequential` / `testbus_echo_64_in_flight`: `Echo(s)` round trips between
//!   two clients through the bus.
//! - `testbus_broadcast_10000x20`: 10,000 signals from one client to 20 subscribers (each
//!   with a match rule), timed until every subscriber has received all of them, in order.
//! - `testbus_unrelated_match_rules`: one signal to one subscriber, sent and awaited one at
//!   a time, with 0 and then 65,536 match rules on four other connections that do not match
//!   it (different member, interface, path or sender, or the same member with another `arg0`).
//! - `testbus_pending_replies`: sequential `Echo(s)` round trips with 0 and then 131,072
//!   calls (from four connections) awaiting replies from a fifth connection that never answers.
//! - `testbus_connect`: SASL EXTERNAL + `Hello`, from a blocking socket that pipelines both
//!   and waits for the `Hello` reply (as dbus-broker's bench-connect does), and with
//!   `MessageBus::connect_address`.
//!
//! Each case is checked once before it is timed (replies, counts, order, connect replies).
//! After each case a `CPU ...` line gives the daemon's own CPU time per element (from the
//! kernel's schedstat of its threads), which the load of other processes disturbs less
//! than the wall-clock figures.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-benches cargo bench -p fastbus-benches --bench testbus`.
//! Knobs: `FASTBUS_BENCH_ONLY=<part of a group name>` runs (and sets up) only those groups;
//! `FASTBUS_BENCH_BUS=testbus|dbus-daemon` starts only that daemon (for profiling);
//! `FASTBUS_BENCH_TESTBUS_WORKERS=N` gives testbus's runtime N workers (default 2);
//! `FASTBUS_BENCH_FULL=1` also parks 131,072 calls in dbus-daemon, which takes minutes
//! (it checks each new call against every pending one).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use fastbus::{
    DBusError, HandlerResult, Interface, Message, MessageBus, MessageType, MethodResult,
    RequestNameFlags, async_trait,
};
use fastbus_testbus::{Limits, TestBus};
use fastbus_transport::auth::Mechanism;
use fastbus_wire::introspection as intro;
use fastbus_wire::names::{InterfaceName, MemberName};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

const PATH: &str = "/org/fastbus/Bench";
const IFACE: &str = "org.fastbus.Bench";
const NAME: &str = "org.fastbus.Bench";
const PAYLOAD: &str = "hello, this is a short echo payload";
const DBUS_NAME: &str = "org.freedesktop.DBus";
const DBUS_PATH: &str = "/org/freedesktop/DBus";
const DBUS_IFACE: &str = "org.freedesktop.DBus";
const DAEMON: &str = "/usr/bin/dbus-daemon";

const IN_FLIGHT: usize = 64;
const BROADCAST_SIGNALS: u32 = 10_000;
const SUBSCRIBERS: usize = 20;
const UNRELATED_RULES: usize = 65_536;
const PENDING_CALLS: usize = 131_072;
/// The big cases are spread over this many connections (per-connection limits stay sane).
const SPREAD: usize = 4;
/// No wait in this bench may hang the run.
const WAIT: Duration = Duration::from_secs(120);

/// A 2-worker runtime whose threads are called `name` (so profiles tell the bus from the
/// clients).
fn runtime(name: &str) -> Runtime {
    runtime_with(name, 2)
}

fn runtime_with(name: &str, workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("runtime")
}

// ----------------------------------------------------------------------------
// The two daemons, started from one busconfig.

/// The busconfig both daemons read. dbus-daemon's built-in limits (used when a config file
/// sets none) are far below the big cases: 512 match rules and 128 pending replies per
/// connection, 256 connections per user. Both daemons get the same raised limits.
fn busconfig(socket: &Path) -> String {
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
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">1000000000</limit>
  <limit name="max_completed_connections">100000</limit>
  <limit name="max_incomplete_connections">10000</limit>
  <limit name="max_connections_per_user">100000</limit>
  <limit name="max_names_per_connection">50000</limit>
  <limit name="max_match_rules_per_connection">100000</limit>
  <limit name="max_replies_per_connection">200000</limit>
  <limit name="reply_timeout">3600000</limit>
  <limit name="auth_timeout">240000</limit>
</busconfig>
"#,
        socket.display()
    )
}

enum Inner {
    Testbus {
        bus: Option<TestBus>,
        rt: Option<Runtime>,
        /// The name of its runtime's threads (unique per instance).
        threads: String,
    },
    Daemon(Child),
}

/// A running bus daemon with its socket in a private directory; stopped on drop.
struct Bus {
    name: &'static str,
    address: String,
    socket: PathBuf,
    inner: Inner,
    _dir: tempfile::TempDir,
}

impl Drop for Bus {
    fn drop(&mut self) {
        match &mut self.inner {
            Inner::Testbus { bus, rt, .. } => {
                if let (Some(bus), Some(rt)) = (bus.take(), rt.take()) {
                    rt.block_on(async {
                        let _ = tokio::time::timeout(Duration::from_secs(10), bus.shutdown()).await;
                    });
                    rt.shutdown_timeout(Duration::from_secs(5));
                }
            }
            Inner::Daemon(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Bus {
    /// Nanoseconds the daemon's threads have spent on a CPU so far (the kernel's
    /// per-thread schedstat): testbus's are the threads of its runtime in this process.
    fn cpu_ns(&self) -> u64 {
        let (pid, comm) = match &self.inner {
            Inner::Testbus { threads, .. } => (std::process::id(), Some(threads.as_str())),
            Inner::Daemon(child) => (child.id(), None),
        };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return 0;
        };
        let mut total = 0;
        for t in tasks.flatten() {
            let dir = t.path();
            if let Some(want) = comm {
                let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                if name.trim_end() != want {
                    continue;
                }
            }
            let stat = std::fs::read_to_string(dir.join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }
}

/// Times one case on `bus` with criterion (`run(iters)` does `iters` iterations and
/// returns their wall-clock time), then prints the daemon's CPU time per element over
/// every iteration criterion ran (warm-up included): a cost figure that the load other
/// processes put on the machine disturbs much less than wall-clock time. Returns whether
/// the case ran (criterion's command-line filter may skip it).
fn bench_on(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: BenchmarkId,
    label: &str,
    bus: &Bus,
    elements: u64,
    mut run: impl FnMut(u64) -> Duration,
) -> bool {
    let mut iterations = 0;
    let cpu = bus.cpu_ns();
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            iterations += iters;
            run(iters)
        });
    });
    let cpu = bus.cpu_ns().saturating_sub(cpu);
    if iterations == 0 {
        return false;
    }
    let n = iterations * elements;
    println!(
        "CPU {label}: {:.2} us of {} per element ({n} elements)",
        cpu as f64 / n as f64 / 1000.0,
        bus.name
    );
    true
}

/// Turns of each side in [`interleaved`], and how long each turn lasts at least.
const ROUNDS: usize = 10;
const TURN: Duration = Duration::from_millis(200);

/// One side of an [`interleaved`] comparison: a daemon, and a closure that does operations
/// on it until the deadline (at least one) and returns how many elements it did.
struct Side<'a> {
    bus: &'a Bus,
    run: Box<dyn FnMut(Instant) -> u64 + 'a>,
}

/// Median, least and greatest of `v` (not empty).
fn median(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// Runs `a` and `b` in turn for [`TURN`] each, [`ROUNDS`] times (a first in even rounds,
/// b first in odd ones), and prints the median and range over the rounds of the ratio
/// b / a of wall-clock time per element and of the daemons' CPU time per element, then
/// each side's median figures. Both sides see the load of the same moment, which
/// criterion's one-after-the-other measurements cannot promise on a shared machine.
fn interleaved(label: &str, mut a: Side<'_>, mut b: Side<'_>) {
    let turn = |s: &mut Side<'_>| {
        let cpu = s.bus.cpu_ns();
        let t = Instant::now();
        let n = (s.run)(t + TURN).max(1) as f64;
        let wall = t.elapsed().as_nanos() as f64 / n;
        (wall, s.bus.cpu_ns().saturating_sub(cpu) as f64 / n)
    };
    let (mut wa, mut wb, mut ca, mut cb) = (vec![], vec![], vec![], vec![]);
    let (mut wall, mut cpu) = (vec![], vec![]);
    for round in 0..ROUNDS {
        let ((w1, c1), (w2, c2)) = if round % 2 == 0 {
            let x = turn(&mut a);
            (x, turn(&mut b))
        } else {
            let y = turn(&mut b);
            (turn(&mut a), y)
        };
        wa.push(w1);
        wb.push(w2);
        ca.push(c1);
        cb.push(c2);
        wall.push(w2 / w1);
        cpu.push(c2 / c1.max(1.0));
    }
    let (w, wlo, whi) = median(&mut wall);
    let (c, clo, chi) = median(&mut cpu);
    let us = |v: &mut Vec<f64>| median(v).0 / 1000.0;
    println!(
        "RATIO {label}: wall time per element {w:.3} (rounds {wlo:.3}-{whi:.3}), \
         daemon CPU per element {c:.3} (rounds {clo:.3}-{chi:.3}); \
         medians: {} {:.2} us wall {:.2} us CPU, {} {:.2} us wall {:.2} us CPU",
        a.bus.name,
        us(&mut wa),
        us(&mut ca),
        b.bus.name,
        us(&mut wb),
        us(&mut cb),
    );
}

fn bus_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("bus");
    let conf = dir.path().join("bus.conf");
    std::fs::write(&conf, busconfig(&socket)).expect("writing the busconfig");
    (dir, socket, conf)
}

/// testbus in this process, on its own runtime, configured from the shared busconfig.
fn start_testbus() -> Bus {
    let (dir, socket, conf) = bus_dir();
    let cfg = fastbus_testbus::config::read_busconfig(&conf).expect("busconfig");
    let mut limits = Limits::default();
    for (name, value) in &cfg.limits {
        // Limits testbus does not have (max_incoming_bytes, reply_timeout) are ignored,
        // as its binary does.
        let _ = limits.set_by_name(name, *value);
    }
    let mut builder = TestBus::builder()
        .limits(limits)
        .mechanisms(vec![Mechanism::External]);
    for l in &cfg.listen {
        builder = builder.listen(l).expect("listen address");
    }
    // As its binary runs (2 workers), unless FASTBUS_BENCH_TESTBUS_WORKERS says otherwise.
    let workers = std::env::var("FASTBUS_BENCH_TESTBUS_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(2);
    static INSTANCE: AtomicUsize = AtomicUsize::new(0);
    let threads = format!("testbus-{}", INSTANCE.fetch_add(1, Ordering::Relaxed));
    let rt = runtime_with(&threads, workers);
    let bus = rt.block_on(builder.start()).expect("starting testbus");
    let address = bus.address().expect("testbus address");
    Bus {
        name: "testbus",
        address,
        socket,
        inner: Inner::Testbus {
            bus: Some(bus),
            rt: Some(rt),
            threads,
        },
        _dir: dir,
    }
}

/// A private dbus-daemon with the shared busconfig, or `None` when it is not installed.
fn start_dbus_daemon() -> Option<Bus> {
    if !Path::new(DAEMON).exists() {
        println!("SKIPPED the dbus-daemon side: {DAEMON} is not installed");
        return None;
    }
    let (dir, socket, conf) = bus_dir();
    let mut child = Command::new(DAEMON)
        .arg(format!("--config-file={}", conf.display()))
        .arg("--print-address=1")
        .arg("--nofork")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting dbus-daemon");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reading dbus-daemon's address");
    assert!(!line.trim().is_empty(), "dbus-daemon printed no address");
    Some(Bus {
        name: "dbus-daemon",
        address: line.trim().to_owned(),
        socket,
        inner: Inner::Daemon(child),
        _dir: dir,
    })
}

/// Whether to run the groups named `group...`: all of them unless `FASTBUS_BENCH_ONLY` is
/// set (then only those whose name contains it). Unlike criterion's own filter this also
/// skips their setup, so a profile of one case shows only that case.
fn wanted(group: &str) -> bool {
    std::env::var("FASTBUS_BENCH_ONLY").map_or(true, |only| group.contains(only.as_str()))
}

/// testbus and (when installed) dbus-daemon, fresh. `FASTBUS_BENCH_BUS=testbus` or
/// `=dbus-daemon` starts only that one (for profiling one side).
fn start_buses() -> Vec<Bus> {
    let only = std::env::var("FASTBUS_BENCH_BUS").unwrap_or_default();
    let mut v = Vec::new();
    if only.is_empty() || only == "testbus" {
        v.push(start_testbus());
    }
    if only.is_empty() || only == "dbus-daemon" {
        v.extend(start_dbus_daemon());
    }
    v
}

// ----------------------------------------------------------------------------
// Client pieces shared by the cases.

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
        .destination(NAME)
        .body(&(PAYLOAD,))
        .build()
        .expect("call")
}

async fn echo(client: MessageBus, msg: Message) {
    let r = client.call(msg).await.expect("call").expect("reply");
    assert_eq!(r.body::<&str>().expect("body"), PAYLOAD);
}

/// A client and an Echo server (owning [`NAME`]) on `address`.
async fn echo_pair(address: &str) -> (MessageBus, MessageBus) {
    let server = MessageBus::connect_address(address).await.expect("server");
    server.export(PATH, Arc::new(Echo)).expect("export");
    server
        .request_name(NAME, RequestNameFlags::NONE)
        .await
        .expect("name");
    let client = MessageBus::connect_address(address).await.expect("client");
    echo(client.clone(), echo_call()).await;
    (client, server)
}

async fn add_match(bus: &MessageBus, rule: &str) {
    bus.call_method::<_, ()>(DBUS_NAME, DBUS_PATH, DBUS_IFACE, "AddMatch", &(rule,))
        .await
        .unwrap_or_else(|e| panic!("AddMatch {rule}: {e}"));
}

/// Adds `rules` on `bus`, 256 calls in flight, each reply checked.
async fn add_matches(bus: &MessageBus, rules: Vec<String>) {
    let mut set = tokio::task::JoinSet::new();
    for rule in rules {
        if set.len() >= 256 {
            set.join_next().await.expect("task").expect("AddMatch task");
        }
        let bus = bus.clone();
        set.spawn(async move { add_match(&bus, &rule).await });
    }
    while let Some(r) = set.join_next().await {
        r.expect("AddMatch task");
    }
}

async fn wait(what: &str, notify: &Notify) {
    if tokio::time::timeout(WAIT, notify.notified()).await.is_err() {
        panic!("timed out after {WAIT:?} waiting for {what}");
    }
}

const TICK_RULE: &str =
    "type='signal',interface='org.fastbus.Bench',member='Tick',path='/org/fastbus/Bench'";

/// The first argument of every Tick signal (a string, so `arg0` rules are compared with it).
const TICK_ARG0: &str = "org.fastbus.Tick";

fn tick(seq: u32) -> Message {
    Message::signal(PATH, IFACE, "Tick")
        .body(&(TICK_ARG0, seq))
        .build()
        .expect("signal")
}

fn is_tick(m: &Message) -> bool {
    m.message_type() == MessageType::SIGNAL
        && m.member().is_some_and(|n| n.as_str() == "Tick")
        && m.interface().is_some_and(|i| i.as_str() == IFACE)
}

/// Counts the Tick signals every subscriber receives and checks they arrive in order.
struct Tally {
    /// Deliveries still expected in this round, over all subscribers.
    remaining: AtomicUsize,
    /// Set when a subscriber saw a sequence number out of order.
    disorder: AtomicBool,
    /// Woken when `remaining` reaches zero (or, with `each`, on every delivery).
    done: Notify,
    each: bool,
}

impl Tally {
    fn new(each: bool) -> Arc<Tally> {
        Arc::new(Tally {
            remaining: AtomicUsize::new(0),
            disorder: AtomicBool::new(false),
            done: Notify::new(),
            each,
        })
    }
}

/// A connection that subscribes to Tick and reports to `tally`; `next` is the sequence
/// number it expects next.
async fn subscriber(address: &str, tally: &Arc<Tally>) -> (MessageBus, Arc<AtomicU32>) {
    let bus = MessageBus::connect_address(address)
        .await
        .expect("subscriber");
    let next = Arc::new(AtomicU32::new(0));
    let (t, n) = (Arc::clone(tally), Arc::clone(&next));
    bus.add_message_handler(move |m| {
        if !is_tick(m) {
            return HandlerResult::NotHandled;
        }
        let seq = match m.body::<(&str, u32)>() {
            Ok((TICK_ARG0, seq)) => seq,
            _ => u32::MAX,
        };
        if n.fetch_add(1, Ordering::Relaxed) != seq {
            t.disorder.store(true, Ordering::Relaxed);
        }
        if t.remaining.fetch_sub(1, Ordering::AcqRel) == 1 || t.each {
            t.done.notify_one();
        }
        HandlerResult::Handled
    });
    add_match(&bus, TICK_RULE).await;
    (bus, next)
}

// ----------------------------------------------------------------------------
// 1. Echo(s) round trips.

fn echo_benches(c: &mut Criterion) {
    if !wanted("testbus_echo") {
        return;
    }
    let buses = start_buses();
    let rt = runtime("clients");
    let pairs: Vec<_> = buses
        .iter()
        .map(|b| rt.block_on(echo_pair(&b.address)))
        .collect();

    let group = "testbus_echo_sequential";
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    let mut ran = true;
    for (bus, (client, _server)) in buses.iter().zip(&pairs) {
        let id = BenchmarkId::from_parameter(bus.name);
        let label = format!("{group}/{}", bus.name);
        ran &= bench_echo(&mut g, &rt, id, &label, bus, client);
    }
    g.finish();
    if let (true, [tb, dd], [(tc, _), (dc, _)]) = (ran, &buses[..], &pairs[..]) {
        interleaved(
            &format!("{group}: dbus-daemon / testbus"),
            echo_side(&rt, tb, tc),
            echo_side(&rt, dd, dc),
        );
    }

    let group = "testbus_echo_64_in_flight";
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(IN_FLIGHT as u64));
    let mut ran = true;
    for (bus, (client, _server)) in buses.iter().zip(&pairs) {
        let id = BenchmarkId::from_parameter(bus.name);
        let label = format!("{group}/{}", bus.name);
        ran &= bench_on(&mut g, id, &label, bus, IN_FLIGHT as u64, |iters| {
            let client = client.clone();
            rt.block_on(async move {
                let t = Instant::now();
                for _ in 0..iters {
                    echo_batch(&client).await;
                }
                t.elapsed()
            })
        });
    }
    g.finish();
    if let (true, [tb, dd], [(tc, _), (dc, _)]) = (ran, &buses[..], &pairs[..]) {
        interleaved(
            &format!("{group}: dbus-daemon / testbus"),
            echo_batch_side(&rt, tb, tc),
            echo_batch_side(&rt, dd, dc),
        );
    }
    drop(pairs);
    drop(rt);
    drop(buses);
}

/// [`IN_FLIGHT`] `Echo(s)` calls from `client` at once, each reply checked.
async fn echo_batch(client: &MessageBus) {
    let msg = echo_call();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        set.spawn(echo(client.clone(), msg.clone()));
    }
    while let Some(r) = set.join_next().await {
        r.expect("echo task");
    }
}

/// An [`interleaved`] side making batches of [`IN_FLIGHT`] concurrent `Echo(s)` calls.
fn echo_batch_side<'a>(rt: &'a Runtime, bus: &'a Bus, client: &MessageBus) -> Side<'a> {
    let client = client.clone();
    Side {
        bus,
        run: Box::new(move |deadline| {
            rt.block_on(async {
                let mut n = 0;
                loop {
                    echo_batch(&client).await;
                    n += IN_FLIGHT as u64;
                    if Instant::now() >= deadline {
                        return n;
                    }
                }
            })
        }),
    }
}

// ----------------------------------------------------------------------------
// 2. Broadcast of 10,000 signals to 20 subscribers.

struct Broadcast {
    sender: MessageBus,
    tally: Arc<Tally>,
    nexts: Vec<Arc<AtomicU32>>,
    _subs: Vec<MessageBus>,
    signals: Arc<Vec<Message>>,
}

impl Broadcast {
    async fn new(address: &str) -> Broadcast {
        let tally = Tally::new(false);
        let mut subs = Vec::new();
        let mut nexts = Vec::new();
        for _ in 0..SUBSCRIBERS {
            let (s, n) = subscriber(address, &tally).await;
            subs.push(s);
            nexts.push(n);
        }
        let sender = MessageBus::connect_address(address).await.expect("sender");
        Broadcast {
            sender,
            tally,
            nexts,
            _subs: subs,
            signals: Arc::new((0..BROADCAST_SIGNALS).map(tick).collect()),
        }
    }

    /// One round: every signal sent, every subscriber has all of them.
    async fn round(&self) {
        for n in &self.nexts {
            n.store(0, Ordering::Relaxed);
        }
        self.tally
            .remaining
            .store(SUBSCRIBERS * BROADCAST_SIGNALS as usize, Ordering::Release);
        for m in self.signals.iter() {
            self.sender.send(m.clone()).expect("send");
        }
        wait("every subscriber to receive every signal", &self.tally.done).await;
    }

    fn check(&self) {
        assert!(
            !self.tally.disorder.load(Ordering::Relaxed),
            "a subscriber saw the signals out of order"
        );
        for n in &self.nexts {
            assert_eq!(n.load(Ordering::Relaxed), BROADCAST_SIGNALS);
        }
        assert_eq!(self.tally.remaining.load(Ordering::Relaxed), 0);
    }
}

fn broadcast_bench(c: &mut Criterion) {
    if !wanted("testbus_broadcast") {
        return;
    }
    let buses = start_buses();
    let rt = runtime("clients");
    let group = "testbus_broadcast_10000x20";
    let mut g = c.benchmark_group(group);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(u64::from(BROADCAST_SIGNALS)));
    let mut ran = true;
    let mut setups = Vec::new();
    for bus in &buses {
        let setup = Arc::new(rt.block_on(Broadcast::new(&bus.address)));
        // Checked once before timing: every subscriber got all 10,000, in order, no more.
        rt.block_on(setup.round());
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
        setup.check();
        let id = BenchmarkId::from_parameter(bus.name);
        let label = format!("{group}/{}", bus.name);
        let elements = u64::from(BROADCAST_SIGNALS);
        ran &= bench_on(&mut g, id, &label, bus, elements, |iters| {
            let s = Arc::clone(&setup);
            let d = rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    for _ in 0..iters {
                        s.round().await;
                    }
                    t.elapsed()
                })
                .await
                .expect("task")
            });
            setup.check();
            d
        });
        setups.push(setup);
    }
    g.finish();
    if let (true, [tb, dd], [ts, ds]) = (ran, &buses[..], &setups[..]) {
        interleaved(
            &format!("{group}: dbus-daemon / testbus"),
            broadcast_side(&rt, tb, ts),
            broadcast_side(&rt, dd, ds),
        );
    }
    drop(setups);
    drop(rt);
    drop(buses);
}

/// An [`interleaved`] side doing whole broadcast rounds (10,000 signals each), every
/// delivery checked after each round.
fn broadcast_side<'a>(rt: &'a Runtime, bus: &'a Bus, s: &Arc<Broadcast>) -> Side<'a> {
    let s = Arc::clone(s);
    Side {
        bus,
        run: Box::new(move |deadline| {
            let mut n = 0;
            loop {
                let s2 = Arc::clone(&s);
                rt.block_on(async move { tokio::spawn(async move { s2.round().await }).await })
                    .expect("task");
                s.check();
                n += u64::from(BROADCAST_SIGNALS);
                if Instant::now() >= deadline {
                    return n;
                }
            }
        }),
    }
}

// ----------------------------------------------------------------------------
// 3a. Match rules that do not concern a message.

/// The unrelated rules of connection `k` of [`SPREAD`]: five kinds in turn, each with one
/// key the measured Tick signal does not have: another member of its interface, another
/// interface, another path, a sender that is not its sender, or its very member and
/// interface with another first argument (as clients watch NameOwnerChanged for one name).
fn unrelated_rules(k: usize) -> Vec<String> {
    let per = UNRELATED_RULES / SPREAD;
    (k * per..(k + 1) * per)
        .map(|i| match i % 5 {
            0 => format!("type='signal',interface='org.fastbus.Bench',member='Other{i}'"),
            1 => format!("type='signal',interface='org.fastbus.Unrelated{i}'"),
            2 => format!("type='signal',path='/org/fastbus/unrelated/n{i}'"),
            3 => format!("type='signal',sender='org.fastbus.Unrelated{i}'"),
            _ => format!(
                "type='signal',interface='org.fastbus.Bench',member='Tick',arg0='org.fastbus.Unrelated{i}'"
            ),
        })
        .collect()
}

/// One signal at a time: send it, wait until the subscriber has it.
struct OneByOne {
    sender: MessageBus,
    tally: Arc<Tally>,
    next: Arc<AtomicU32>,
    _sub: MessageBus,
}

impl OneByOne {
    async fn new(address: &str) -> OneByOne {
        let tally = Tally::new(true);
        let (sub, next) = subscriber(address, &tally).await;
        let sender = MessageBus::connect_address(address).await.expect("sender");
        OneByOne {
            sender,
            tally,
            next,
            _sub: sub,
        }
    }

    async fn one(&self) {
        let seq = self.next.load(Ordering::Relaxed);
        self.tally.remaining.store(1, Ordering::Release);
        self.sender.send(tick(seq)).expect("send");
        wait("the subscriber to receive the signal", &self.tally.done).await;
    }

    async fn run(&self, iters: u64) -> Duration {
        let t = Instant::now();
        for _ in 0..iters {
            self.one().await;
        }
        t.elapsed()
    }

    async fn run_until(&self, deadline: Instant) -> u64 {
        let mut n = 0;
        loop {
            self.one().await;
            n += 1;
            if Instant::now() >= deadline {
                return n;
            }
        }
    }

    fn check(&self) {
        assert!(
            !self.tally.disorder.load(Ordering::Relaxed),
            "the subscriber missed or reordered a signal"
        );
    }
}

/// An [`interleaved`] side sending one signal at a time through `s`.
fn one_by_one_side<'a>(rt: &'a Runtime, bus: &'a Bus, s: &Arc<OneByOne>) -> Side<'a> {
    let s = Arc::clone(s);
    Side {
        bus,
        run: Box::new(move |deadline| {
            let s = Arc::clone(&s);
            rt.block_on(async move {
                tokio::spawn(async move { s.run_until(deadline).await })
                    .await
                    .expect("task")
            })
        }),
    }
}

fn match_rules_bench(c: &mut Criterion) {
    if !wanted("testbus_unrelated_match_rules") {
        return;
    }
    // Each daemon twice: one stays without rules, the other gets them, so the two can
    // also be compared turn by turn at the end.
    let plain = start_buses();
    let loaded = start_buses();
    let rt = runtime("clients");
    let setup = |buses: &[Bus]| -> Vec<Arc<OneByOne>> {
        buses
            .iter()
            .map(|b| Arc::new(rt.block_on(OneByOne::new(&b.address))))
            .collect()
    };
    let (sp, sl) = (setup(&plain), setup(&loaded));
    let mut holders: Vec<MessageBus> = Vec::new();
    let group = "testbus_unrelated_match_rules";
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    let mut ran = true;
    for rules in [0, UNRELATED_RULES] {
        let (buses, setups) = if rules == 0 {
            (&plain, &sp)
        } else {
            (&loaded, &sl)
        };
        if rules > 0 {
            for b in buses {
                let t = Instant::now();
                rt.block_on(async {
                    for k in 0..SPREAD {
                        let h = MessageBus::connect_address(&b.address)
                            .await
                            .expect("rule holder");
                        add_matches(&h, unrelated_rules(k)).await;
                        holders.push(h);
                    }
                });
                println!(
                    "{}: added {rules} unrelated match rules in {:?}",
                    b.name,
                    t.elapsed()
                );
            }
        }
        for (bus, s) in buses.iter().zip(setups) {
            // Checked before timing: the signal still arrives, in order, with the rules in place.
            rt.block_on(s.run(3));
            s.check();
            let id = BenchmarkId::new(bus.name, rules);
            let label = format!("{group}/{}/{rules}", bus.name);
            ran &= bench_on(&mut g, id, &label, bus, 1, |iters| {
                let s2 = Arc::clone(s);
                let d = rt.block_on(async move {
                    tokio::spawn(async move { s2.run(iters).await })
                        .await
                        .expect("task")
                });
                s.check();
                d
            });
        }
    }
    g.finish();
    if ran {
        // One interleaved comparison of two (daemon, subscriber) pairs; both subscribers are
        // checked afterwards.
        let compare =
            |label: String, (a, sa): (&Bus, &Arc<OneByOne>), (b, sb): (&Bus, &Arc<OneByOne>)| {
                interleaved(
                    &label,
                    one_by_one_side(&rt, a, sa),
                    one_by_one_side(&rt, b, sb),
                );
                sa.check();
                sb.check();
            };
        for (((p, l), sp), sl) in plain.iter().zip(&loaded).zip(&sp).zip(&sl) {
            compare(
                format!("{group}/{}: {UNRELATED_RULES} rules / 0 rules", p.name),
                (p, sp),
                (l, sl),
            );
        }
        for (rules, buses, setups) in [(0, &plain, &sp), (UNRELATED_RULES, &loaded, &sl)] {
            if let ([tb, dd], [ts, ds]) = (&buses[..], &setups[..]) {
                compare(
                    format!("{group}/{rules}: dbus-daemon / testbus"),
                    (tb, ts),
                    (dd, ds),
                );
            }
        }
    }
    drop(holders);
    drop((sp, sl));
    drop(rt);
    drop((plain, loaded));
}

// ----------------------------------------------------------------------------
// 3b. Calls awaiting replies that do not concern a reply.

/// Makes `n` more calls (from [`SPREAD`] connections) to a connection that reads them and
/// never answers; returns once it has received every one, so the bus holds them all.
async fn park_calls(address: &str, n: usize) -> Vec<MessageBus> {
    let sink = MessageBus::connect_address(address).await.expect("sink");
    let got = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(Notify::new());
    let (g, a) = (Arc::clone(&got), Arc::clone(&all));
    sink.add_message_handler(move |m| {
        if m.message_type() != MessageType::METHOD_CALL
            || m.member().is_none_or(|n| n.as_str() != "Park")
        {
            return HandlerResult::NotHandled;
        }
        if g.fetch_add(1, Ordering::AcqRel) + 1 == n {
            a.notify_one();
        }
        // Handled and no reply: the call stays pending in the bus.
        HandlerResult::Handled
    });
    let dest = sink.unique_name().expect("sink name").to_owned();
    let mut conns = vec![sink];
    for _ in 0..SPREAD {
        let caller = MessageBus::connect_address(address).await.expect("caller");
        for _ in 0..n / SPREAD {
            let m = Message::method_call("/org/fastbus/Parked", "Park")
                .interface(IFACE)
                .destination(&dest)
                .build()
                .expect("call");
            caller.send(m).expect("send");
        }
        conns.push(caller);
    }
    // dbus-daemon checks each new call against every pending one (quadratic setup).
    if tokio::time::timeout(Duration::from_secs(1800), all.notified())
        .await
        .is_err()
    {
        panic!("timed out waiting for the sink to receive every parked call");
    }
    assert_eq!(got.load(Ordering::Acquire), n);
    conns
}

/// Whether to run dbus-daemon's slow cases in full (`FASTBUS_BENCH_FULL=1`).
fn full() -> bool {
    std::env::var("FASTBUS_BENCH_FULL").is_ok_and(|v| v == "1")
}

/// The pending-call counts measured: 0, a quarter, all.
const PENDING_LEVELS: [usize; 3] = [0, PENDING_CALLS / 4, PENDING_CALLS];

/// An [`interleaved`] side making sequential `Echo(s)` calls from `client`.
fn echo_side<'a>(rt: &'a Runtime, bus: &'a Bus, client: &MessageBus) -> Side<'a> {
    let client = client.clone();
    Side {
        bus,
        run: Box::new(move |deadline| {
            let client = client.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let msg = echo_call();
                    let mut n = 0;
                    loop {
                        echo(client.clone(), msg.clone()).await;
                        n += 1;
                        if Instant::now() >= deadline {
                            return n;
                        }
                    }
                })
                .await
                .expect("task")
            })
        }),
    }
}

/// Times sequential `Echo(s)` round trips from `client` on `bus` as case `id`.
fn bench_echo(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: BenchmarkId,
    label: &str,
    bus: &Bus,
    client: &MessageBus,
) -> bool {
    // Checked before timing: the reply comes back right (echo() asserts it).
    rt.block_on(echo(client.clone(), echo_call()));
    bench_on(g, id, label, bus, 1, |iters| {
        let client = client.clone();
        rt.block_on(async move {
            tokio::spawn(async move {
                let msg = echo_call();
                let t = Instant::now();
                for _ in 0..iters {
                    echo(client.clone(), msg.clone()).await;
                }
                t.elapsed()
            })
            .await
            .expect("task")
        })
    })
}

fn pending_replies_bench(c: &mut Criterion) {
    if !wanted("testbus_pending_replies") {
        return;
    }
    // Each daemon twice: one never has calls parked, the other gets them, so the two can
    // also be compared turn by turn.
    let plain = start_buses();
    let loaded = start_buses();
    let rt = runtime("clients");
    let pairs = |buses: &[Bus]| -> Vec<(MessageBus, MessageBus)> {
        buses
            .iter()
            .map(|b| rt.block_on(echo_pair(&b.address)))
            .collect()
    };
    let (pp, lp) = (pairs(&plain), pairs(&loaded));
    let mut parked: Vec<MessageBus> = Vec::new();
    let group = "testbus_pending_replies";
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    let mut ran = true;
    for (bus, (client, _server)) in plain.iter().zip(&pp) {
        let label = format!("{group}/{}/0", bus.name);
        ran &= bench_echo(
            &mut g,
            &rt,
            BenchmarkId::new(bus.name, 0),
            &label,
            bus,
            client,
        );
    }
    if let (true, [tb, dd], [(tc, _), (dc, _)]) = (ran, &plain[..], &pp[..]) {
        interleaved(
            &format!("{group}/0: dbus-daemon / testbus"),
            echo_side(&rt, tb, tc),
            echo_side(&rt, dd, dc),
        );
    }
    // Calls parked so far, per bus.
    let mut have = vec![0; loaded.len()];
    for pending in PENDING_LEVELS {
        if pending == 0 {
            continue;
        }
        for (i, (bus, (client, _server))) in loaded.iter().zip(&lp).enumerate() {
            if bus.name == "dbus-daemon" && pending == PENDING_CALLS && !full() {
                // Parking 131,072 calls in dbus-daemon takes minutes (each new call is
                // checked against every pending one); FASTBUS_BENCH_FULL=1 runs it.
                println!(
                    "SKIPPED dbus-daemon with {pending} pending calls (set FASTBUS_BENCH_FULL=1)"
                );
                continue;
            }
            let t = Instant::now();
            parked.extend(rt.block_on(park_calls(&bus.address, pending - have[i])));
            println!(
                "{}: {pending} calls awaiting replies (parked {} more in {:?})",
                bus.name,
                pending - have[i],
                t.elapsed()
            );
            have[i] = pending;
            let label = format!("{group}/{}/{pending}", bus.name);
            let id = BenchmarkId::new(bus.name, pending);
            if !bench_echo(&mut g, &rt, id, &label, bus, client) {
                continue;
            }
            interleaved(
                &format!("{group}/{}: {pending} pending / 0 pending", bus.name),
                echo_side(&rt, &plain[i], &pp[i].0),
                echo_side(&rt, bus, client),
            );
        }
        // Both daemons hold this level: compare them turn by turn at it.
        if let ([tb, dd], [(tc, _), (dc, _)], [p1, p2]) = (&loaded[..], &lp[..], &have[..]) {
            if *p1 == pending && *p2 == pending {
                interleaved(
                    &format!("{group}/{pending}: dbus-daemon / testbus"),
                    echo_side(&rt, tb, tc),
                    echo_side(&rt, dd, dc),
                );
            }
        }
    }
    g.finish();
    drop(parked);
    drop((pp, lp));
    drop(rt);
    drop((plain, loaded));
}

// ----------------------------------------------------------------------------
// 4. Connecting: SASL + Hello.

/// What a blocking client writes in one go: the NUL byte, `AUTH EXTERNAL <uid>`, `BEGIN`,
/// and the `Hello` call.
fn raw_hello_bytes() -> Vec<u8> {
    let uid = std::fs::metadata("/proc/self")
        .expect("/proc/self")
        .uid()
        .to_string();
    let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    let mut out = format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").into_bytes();
    let hello = Message::method_call(DBUS_PATH, "Hello")
        .interface(DBUS_IFACE)
        .destination(DBUS_NAME)
        .serial(1)
        .build()
        .expect("Hello")
        .encode()
        .expect("encode");
    out.extend_from_slice(&hello);
    out
}

/// Length of the D-Bus message whose fixed header starts `h` (16 bytes).
fn frame_len(h: &[u8]) -> usize {
    let u32_at = |i: usize| {
        let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
        if h[0] == b'B' {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let fields = u32_at(12) as usize;
    16 + fields.div_ceil(8) * 8 + u32_at(4) as usize
}

/// Connects with a blocking socket, authenticates and says Hello; returns the bytes of the
/// first message (the Hello reply) after the `OK` line.
fn raw_connect(socket: &Path, hello: &[u8], buf: &mut Vec<u8>) -> std::ops::Range<usize> {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.write_all(hello).expect("write");
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).expect("read");
        assert!(n > 0, "the bus closed the connection during connect");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") {
            let start = eol + 2;
            if buf.len() >= start + 16 {
                let end = start + frame_len(&buf[start..start + 16]);
                if buf.len() >= end {
                    return start..end;
                }
            }
        }
    }
}

/// An [`interleaved`] side connecting with a blocking socket, one connection at a time.
fn raw_connect_side<'a>(bus: &'a Bus, hello: &[u8]) -> Side<'a> {
    let hello = hello.to_vec();
    let mut buf = Vec::new();
    Side {
        bus,
        run: Box::new(move |deadline| {
            let mut n = 0;
            loop {
                let r = raw_connect(&bus.socket, &hello, &mut buf);
                assert_eq!(buf[r.start + 1], 2, "not a method return");
                n += 1;
                if Instant::now() >= deadline {
                    return n;
                }
            }
        }),
    }
}

fn connect_bench(c: &mut Criterion) {
    if !wanted("testbus_connect") {
        return;
    }
    let buses = start_buses();
    let rt = runtime("clients");
    let hello = raw_hello_bytes();
    let group = "testbus_connect";
    let mut g = c.benchmark_group(group);
    g.sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    let mut ran = true;
    for bus in &buses {
        // Checked once: OK line, then the Hello reply with a unique name.
        let mut buf = Vec::new();
        let r = raw_connect(&bus.socket, &hello, &mut buf);
        assert!(buf.starts_with(b"OK "), "no OK line from {}", bus.name);
        let reply = Message::decode(bytes::Bytes::copy_from_slice(&buf[r])).expect("reply");
        assert_eq!(reply.message_type(), MessageType::METHOD_RETURN);
        assert_eq!(reply.reply_serial(), Some(1));
        assert!(reply.body::<&str>().expect("name").starts_with(':'));
        let id = BenchmarkId::new("raw_blocking", bus.name);
        let label = format!("{group}/raw_blocking/{}", bus.name);
        ran &= bench_on(&mut g, id, &label, bus, 1, |iters| {
            let t = Instant::now();
            for _ in 0..iters {
                let r = raw_connect(&bus.socket, &hello, &mut buf);
                assert_eq!(buf[r.start + 1], 2, "not a method return");
            }
            t.elapsed()
        });
    }
    if let (true, [tb, dd]) = (ran, &buses[..]) {
        interleaved(
            &format!("{group}/raw_blocking: dbus-daemon / testbus"),
            raw_connect_side(tb, &hello),
            raw_connect_side(dd, &hello),
        );
    }
    for bus in &buses {
        let id = BenchmarkId::new("messagebus", bus.name);
        let label = format!("{group}/messagebus/{}", bus.name);
        bench_on(&mut g, id, &label, bus, 1, |iters| {
            let addr = bus.address.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let t = Instant::now();
                        let m = MessageBus::connect_address(&addr).await.expect("connect");
                        total += t.elapsed();
                        assert!(m.unique_name().is_some_and(|n| n.starts_with(':')));
                        m.disconnect().await;
                    }
                    total
                })
                .await
                .expect("task")
            })
        });
    }
    g.finish();
    drop(rt);
    drop(buses);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = echo_benches, broadcast_bench, match_rules_bench, pending_replies_bench, connect_bench
}
criterion_main!(benches);

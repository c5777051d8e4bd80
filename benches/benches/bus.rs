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
//! Run: `CARGO_TARGET_DIR=/work/target-benches cargo bench -p fastbus-benches --bench bus`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

fn p2p(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("p2p_roundtrip");
    g.throughput(Throughput::Elements(1));

    // The same bytes fastbus sends and receives, ping-ponged raw.
    let mut call = echo_call();
    call.set_serial(7);
    let call_bytes = call.encode().expect("encode");
    let reply_bytes = Message::method_return(&call)
        .serial(9)
        .body(&(PAYLOAD,))
        .build()
        .and_then(|m| m.encode())
        .expect("reply");
    g.bench_function("raw_pingpong", |b| {
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
        let mut client = Some(client);
        let cb = call_bytes.clone();
        let rl = reply_bytes.len();
        b.iter_custom(|iters| {
            // The client loop is a task on the runtime, as the fastbus client loops are.
            let (mut c, cb) = (client.take().expect("client"), cb.clone());
            let (c, elapsed) = rt.block_on(async move {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; rl];
                    let t = Instant::now();
                    for _ in 0..iters {
                        c.write_all(&cb).await.expect("write");
                        c.read_exact(&mut buf).await.expect("read");
                    }
                    (c, t.elapsed())
                })
                .await
                .expect("task")
            });
            client = Some(c);
            elapsed
        });
    });

    for (name, mode) in [
        ("fastbus_direct_write", WriteMode::Direct),
        ("fastbus_writer_task", WriteMode::WriterTask),
    ] {
        let (client, _server) = rt.block_on(p2p_pair(mode));
        let msg = echo_call();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let (client, msg) = (client.clone(), msg.clone());
                rt.block_on(async move {
                    tokio::spawn(async move {
                        let t = Instant::now();
                        for _ in 0..iters {
                            client.call(msg.clone()).await.expect("call");
                        }
                        t.elapsed()
                    })
                    .await
                    .expect("task")
                })
            });
        });
    }
    g.finish();
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

fn daemon(c: &mut Criterion) {
    let Some(d) = start_daemon() else { return };
    let rt = runtime();
    let addr = d.address.clone();
    let (fclient, _fserver) = rt.block_on(async {
        let server = MessageBus::connect_address(&addr).await.expect("server");
        server.export(PATH, Arc::new(Echo)).expect("export");
        server
            .request_name(FASTBUS_NAME, RequestNameFlags::NONE)
            .await
            .expect("name");
        let client = MessageBus::connect_address(&addr).await.expect("client");
        (client, server)
    });
    let (zclient, _zserver) = rt.block_on(async {
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
    // Each call is built afresh, as zbus's `call_method` builds it; the reply is read as a
    // borrowed `&str` by both.
    let fcall = |client: MessageBus| async move {
        let msg = Message::method_call(PATH, "Echo")
            .destination(FASTBUS_NAME)
            .interface(IFACE)
            .body(&(PAYLOAD,))
            .build()
            .expect("call");
        let r = client.call(msg).await.expect("call").expect("reply");
        assert_eq!(r.body::<&str>().expect("body"), PAYLOAD);
    };
    let zcall = |client: zbus::Connection| async move {
        let r = client
            .call_method(Some(ZBUS_NAME), PATH, Some(IFACE), "Echo", &(PAYLOAD,))
            .await
            .expect("zbus call");
        let body = r.body();
        let s: &str = body.deserialize().expect("body");
        assert_eq!(s, PAYLOAD);
    };

    let mut g = c.benchmark_group("daemon_echo_sequential");
    g.throughput(Throughput::Elements(1));
    g.bench_function("fastbus", |b| {
        b.iter_custom(|iters| {
            let client = fclient.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    for _ in 0..iters {
                        fcall(client.clone()).await;
                    }
                    t.elapsed()
                })
                .await
                .expect("task")
            })
        });
    });
    g.bench_function("zbus", |b| {
        b.iter_custom(|iters| {
            let client = zclient.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    for _ in 0..iters {
                        zcall(client.clone()).await;
                    }
                    t.elapsed()
                })
                .await
                .expect("task")
            })
        });
    });
    g.finish();

    let mut g = c.benchmark_group("daemon_echo_64_in_flight");
    g.throughput(Throughput::Elements(IN_FLIGHT as u64));
    g.bench_function("fastbus", |b| {
        b.iter_custom(|iters| {
            let client = fclient.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    for _ in 0..iters {
                        let mut set = tokio::task::JoinSet::new();
                        for _ in 0..IN_FLIGHT {
                            set.spawn(fcall(client.clone()));
                        }
                        while set.join_next().await.is_some() {}
                    }
                    t.elapsed()
                })
                .await
                .expect("task")
            })
        });
    });
    g.bench_function("zbus", |b| {
        b.iter_custom(|iters| {
            let client = zclient.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    for _ in 0..iters {
                        let mut set = tokio::task::JoinSet::new();
                        for _ in 0..IN_FLIGHT {
                            set.spawn(zcall(client.clone()));
                        }
                        while set.join_next().await.is_some() {}
                    }
                    t.elapsed()
                })
                .await
                .expect("task")
            })
        });
    });
    g.finish();
    drop(d);
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
    targets = p2p, daemon
}
criterion_main!(benches);

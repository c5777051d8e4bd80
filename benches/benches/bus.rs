//! `MessageBus` round trips.
//!
//! - `p2p_roundtrip`: peer-to-peer over a Unix socketpair (no daemon), sequential
//!   `Echo(s)` calls: a raw ping-pong of the very same bytes (the floor), fastbus with direct
//!   writes (the default) and fastbus with a writer task (the textbook design), in one run.
//! - `daemon_echo`: `Echo(s)` through a private dbus-daemon, client and server of the same
//!   library: fastbus against zbus 6, sequentially and with 64 calls in flight.
//!
//! Every side runs on one 2-worker tokio runtime; the client loop is a task on it.
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

const PATH: &str = "/org/fastbus/Bench";
const IFACE: &str = "org.fastbus.Bench";
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

fn echo_call(dest: Option<&str>) -> Message {
    let mut b = Message::method_call(PATH, "Echo").interface(IFACE);
    if let Some(d) = dest {
        b = b.destination(d);
    }
    b.body(&(PAYLOAD,)).build().expect("call")
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
    let mut call = echo_call(None);
    call.set_serial(7);
    let call_bytes = call.encode().expect("encode");
    let reply_bytes = Message::method_return(&call)
        .serial(9)
        .body(&(PAYLOAD,))
        .build()
        .and_then(|m| m.encode())
        .expect("reply");
    g.bench_function("raw_pingpong", |b| {
        let (mut client, mut server) = rt.block_on(async {
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
        let cb = call_bytes.clone();
        let rl = reply_bytes.len();
        b.iter_custom(|iters| {
            let (c, cb) = (&mut client, &cb);
            rt.block_on(async move {
                let mut buf = vec![0u8; rl];
                let t = Instant::now();
                for _ in 0..iters {
                    c.write_all(cb).await.expect("write");
                    c.read_exact(&mut buf).await.expect("read");
                }
                t.elapsed()
            })
        });
    });

    for (name, mode) in [
        ("fastbus_direct_write", WriteMode::Direct),
        ("fastbus_writer_task", WriteMode::WriterTask),
    ] {
        let (client, _server) = rt.block_on(p2p_pair(mode));
        let msg = echo_call(None);
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

#[zbus::interface(name = "org.zbus.Bench")]
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
            .request_name("org.fastbus.Bench", RequestNameFlags::NONE)
            .await
            .expect("name");
        let client = MessageBus::connect_address(&addr).await.expect("client");
        (client, server)
    });
    let (zclient, _zserver) = rt.block_on(async {
        let server = zbus::connection::Builder::address(addr.as_str())
            .name("org.zbus.Bench")
            .serve_at("/org/zbus/Bench", ZEcho)
            .build()
            .await
            .expect("zbus server");
        let client = zbus::connection::Builder::address(addr.as_str())
            .build()
            .await
            .expect("zbus client");
        (client, server)
    });
    let fmsg = echo_call(Some("org.fastbus.Bench"));
    let fcall = |client: MessageBus, msg: Message| async move {
        let r = client.call(msg).await.expect("call").expect("reply");
        assert_eq!(r.body::<&str>().expect("body"), PAYLOAD);
    };
    let zcall = |client: zbus::Connection| async move {
        let r = client
            .call_method(
                Some("org.zbus.Bench"),
                "/org/zbus/Bench",
                Some("org.zbus.Bench"),
                "Echo",
                &(PAYLOAD,),
            )
            .await
            .expect("zbus call");
        let s: String = r.body().deserialize().expect("body");
        assert_eq!(s, PAYLOAD);
    };

    let mut g = c.benchmark_group("daemon_echo_sequential");
    g.throughput(Throughput::Elements(1));
    g.bench_function("fastbus", |b| {
        b.iter_custom(|iters| {
            let (client, msg) = (fclient.clone(), fmsg.clone());
            rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    for _ in 0..iters {
                        fcall(client.clone(), msg.clone()).await;
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
            let (client, msg) = (fclient.clone(), fmsg.clone());
            rt.block_on(async move {
                let t = Instant::now();
                for _ in 0..iters {
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..IN_FLIGHT {
                        set.spawn(fcall(client.clone(), msg.clone()));
                    }
                    while set.join_next().await.is_some() {}
                }
                t.elapsed()
            })
        });
    });
    g.bench_function("zbus", |b| {
        b.iter_custom(|iters| {
            let client = zclient.clone();
            rt.block_on(async move {
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

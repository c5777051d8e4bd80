//! A profiling aid, not a benchmark: `n` sequential peer-to-peer `Echo(s)` round trips over a
//! Unix socketpair (the setup of `benches/benches/bus.rs`'s `p2p_roundtrip`), or the raw
//! ping-pong of the same bytes, so that instruction counts and syscalls can be taken per round
//! trip with `valgrind --tool=callgrind` and `strace -c -f` (take two runs with different `n`
//! and divide the difference). The measured ratios are in `benches/RESULTS.md`.
//!
//! `cargo build --release -p fastbus --example p2p_loop`, then
//! `target/release/examples/p2p_loop bus|raw <round trips> [<warm-up round trips>]`.
use std::sync::Arc;
use std::time::Instant;

use fastbus::{DBusError, Interface, Message, MessageBus, MethodResult, async_trait};
use fastbus_transport::{raw_framed, socketpair};
use fastbus_wire::introspection as intro;
use fastbus_wire::names::{InterfaceName, MemberName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATH: &str = "/org/bench/Echo";
const IFACE: &str = "org.bench.Echo";
const PAYLOAD: &str = "hello, this is a short echo payload";

/// `Echo(s) -> s`, as the bench's server.
struct Echo;

#[async_trait]
impl Interface for Echo {
    fn name(&self) -> &str {
        IFACE
    }
    fn introspect(&self) -> intro::Interface<'static> {
        intro::Interface::new(InterfaceName::new(IFACE).unwrap())
            .with_method(intro::Method::new(MemberName::new("Echo").unwrap()))
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

/// The bench's call.
fn echo_call() -> Message {
    Message::method_call(PATH, "Echo")
        .interface(IFACE)
        .body(&(PAYLOAD,))
        .build()
        .unwrap()
}

/// Runs the loop the arguments ask for and prints its rate.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or("bus".into());
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let warm: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        if mode == "raw" {
            let mut call = echo_call();
            call.set_serial(7);
            let cb = call.encode().unwrap();
            let rb = Message::method_return(&call)
                .serial(9)
                .body(&(PAYLOAD,))
                .build()
                .and_then(|m| m.encode())
                .unwrap();
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            let mut c = tokio::net::UnixStream::from_std(a).unwrap();
            let mut s = tokio::net::UnixStream::from_std(b).unwrap();
            let cl = cb.len();
            let rl = rb.len();
            tokio::spawn(async move {
                let mut buf = vec![0u8; cl];
                while s.read_exact(&mut buf).await.is_ok() {
                    if s.write_all(&rb).await.is_err() {
                        break;
                    }
                }
            });
            let el = tokio::spawn(async move {
                let mut buf = vec![0u8; rl];
                for _ in 0..warm {
                    c.write_all(&cb).await.unwrap();
                    c.read_exact(&mut buf).await.unwrap();
                }
                let t = Instant::now();
                for _ in 0..n {
                    c.write_all(&cb).await.unwrap();
                    c.read_exact(&mut buf).await.unwrap();
                }
                t.elapsed()
            })
            .await
            .unwrap();
            println!("raw {n}: {:.1}k/s", n as f64 / el.as_secs_f64() / 1000.0);
        } else {
            let (a, b) = socketpair().unwrap();
            let (ra, wa) = raw_framed(Box::new(a));
            let (rb, wb) = raw_framed(Box::new(b));
            let client = MessageBus::builder()
                .framed(ra, wa)
                .peer_to_peer(true)
                .connect()
                .await
                .unwrap();
            let server = MessageBus::builder()
                .framed(rb, wb)
                .peer_to_peer(true)
                .connect()
                .await
                .unwrap();
            server.export(PATH, Arc::new(Echo)).unwrap();
            let msg = echo_call();
            let el = tokio::spawn(async move {
                for _ in 0..warm {
                    client.call(msg.clone()).await.unwrap();
                }
                let t = Instant::now();
                for _ in 0..n {
                    client.call(msg.clone()).await.unwrap();
                }
                t.elapsed()
            })
            .await
            .unwrap();
            println!("bus {n}: {:.1}k/s", n as f64 / el.as_secs_f64() / 1000.0);
            drop(server);
        }
    });
}

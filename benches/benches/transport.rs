//! One-way throughput of 200-byte messages over a Unix socketpair (issue 4, "Speed").
//!
//! Three ways of moving the very same bytes, in one run:
//!
//! - `raw_write_read`: the physical limit. Two blocking threads; the writer `write_all`s
//!   [`BATCH`] messages' bytes at a time, the reader `read`s 64 KiB at a time.
//! - `framed_frames`: fastbus-transport's `FramedWriter` (`queue_bytes` of an encoded message,
//!   `flush` every [`BATCH`] messages: one vectored `sendmsg`) and `FramedReader::next_frame`
//!   (recvmsg into a `BytesMut`, `frame_len`, `split_to`, `freeze`) as two tasks on a 2-worker
//!   tokio runtime. This is the transport's own cost, the figure the target is about.
//! - `framed_messages`: the same with the codec in the loop: `FramedWriter::queue(&Message)`
//!   encodes every message and `FramedReader::next_message` decodes every message
//!   (`Message::decode` of fastbus-wire).
//!
//! After criterion's runs, the bench measures the three *interleaved* for [`ROUNDS`] rounds and
//! prints the median ratio of each framed variant to raw, which is what `benches/RESULTS.md`
//! quotes (interleaving keeps a busy neighbour from favouring one side).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-benches cargo bench -p fastbus-benches --bench transport`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use fastbus_transport::{FramedReader, FramedWriter, raw_framed, socketpair};
use fastbus_wire::Message;
use tokio::runtime::Runtime;

/// Bytes of one message on the wire.
const MSG_LEN: usize = 200;
/// Messages per write (raw) and per flush (framed); one criterion iteration moves one batch.
const BATCH: usize = 128;
/// Interleaved rounds for the printed ratios.
const ROUNDS: usize = 15;
/// Messages moved by each side in one interleaved round (a whole number of batches).
const ROUND_MESSAGES: u64 = 320 * BATCH as u64;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A signal of exactly [`MSG_LEN`] bytes: header plus a string body padded to size.
fn message() -> Message {
    (0..MSG_LEN)
        .map(|pad| {
            Message::signal("/org/fastbus/Bench", "org.fastbus.Bench", "Tick")
                .serial(1)
                .body(&"x".repeat(pad).as_str())
                .build()
                .expect("bench message builds")
        })
        .find(|m| m.encode().expect("encodes").len() == MSG_LEN)
        .expect("some padding gives exactly MSG_LEN bytes")
}

/// The raw loop: moves `messages` messages' bytes (a multiple of [`BATCH`]) from `w` to `r`.
fn raw(w: &mut UnixStream, r: &mut UnixStream, batch: &[u8], messages: u64) -> Duration {
    assert_eq!(messages % BATCH as u64, 0, "whole batches only");
    let batches = messages / BATCH as u64;
    let total = batches * batch.len() as u64;
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0u64;
            while got < total {
                match r.read(&mut buf) {
                    Ok(0) => panic!("raw reader: end of stream after {got} bytes"),
                    Ok(n) => got += n as u64,
                    Err(e) => panic!("raw reader: {e}"),
                }
            }
        });
        for _ in 0..batches {
            w.write_all(batch).expect("raw write");
        }
    });
    t.elapsed()
}

/// One framed connection, moved into the two tasks and back for every measurement.
struct Framed {
    w: Option<FramedWriter>,
    r: Option<FramedReader>,
}

impl Framed {
    fn new(rt: &Runtime) -> Framed {
        let (w, r) = rt.block_on(async {
            let (x, y) = socketpair().expect("socketpair");
            (raw_framed(Box::new(x)).1, raw_framed(Box::new(y)).0)
        });
        Framed {
            w: Some(w),
            r: Some(r),
        }
    }

    /// Moves `messages` messages: pre-encoded bytes in, frames out (`decode == false`), or
    /// `Message`s encoded by the writer and decoded by the reader (`decode == true`).
    fn run(&mut self, rt: &Runtime, msg: &Message, messages: u64, decode: bool) -> Duration {
        let (mut w, mut r) = (
            self.w.take().expect("writer"),
            self.r.take().expect("reader"),
        );
        let bytes = msg.encode().expect("encodes");
        let msg = msg.clone();
        let (w, r, d) = rt.block_on(async move {
            let t = Instant::now();
            let reader = tokio::spawn(async move {
                for _ in 0..messages {
                    if decode {
                        let m = r.next_message().await.expect("read").expect("message");
                        assert_eq!(m.serial(), 1);
                    } else {
                        let f = r.next_frame().await.expect("read").expect("frame");
                        assert_eq!(f.len(), MSG_LEN);
                    }
                }
                r
            });
            let writer = tokio::spawn(async move {
                for i in 1..=messages {
                    if decode {
                        w.queue(&msg).expect("queue");
                    } else {
                        w.queue_bytes(&bytes, Vec::new()).expect("queue");
                    }
                    if i % BATCH as u64 == 0 {
                        w.flush().await.expect("flush");
                    }
                }
                w.flush().await.expect("flush");
                w
            });
            let w = writer.await.expect("writer task");
            let r = reader.await.expect("reader task");
            (w, r, t.elapsed())
        });
        self.w = Some(w);
        self.r = Some(r);
        d
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rt = runtime();
    let msg = message();
    let one = msg.encode().expect("encodes");
    let batch: Vec<u8> = one.iter().copied().cycle().take(BATCH * MSG_LEN).collect();
    let (mut rw, mut rr) = UnixStream::pair().expect("socketpair");
    let mut framed = Framed::new(&rt);

    let mut c = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    {
        let mut g = c.benchmark_group("transport_one_way_200B");
        g.throughput(Throughput::Bytes((BATCH * MSG_LEN) as u64));
        g.bench_function("raw_write_read", |b| {
            b.iter_custom(|iters| raw(&mut rw, &mut rr, &batch, iters * BATCH as u64));
        });
        g.bench_function("framed_frames", |b| {
            b.iter_custom(|iters| framed.run(&rt, &msg, iters * BATCH as u64, false));
        });
        g.bench_function("framed_messages", |b| {
            b.iter_custom(|iters| framed.run(&rt, &msg, iters * BATCH as u64, true));
        });
        g.finish();
    }
    c.final_summary();

    // Interleaved rounds: raw, frames, messages, raw, ... ratios of throughput (raw time / framed time).
    let (mut f_ratio, mut m_ratio) = (Vec::new(), Vec::new());
    let (mut raw_t, mut f_t, mut m_t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let r = raw(&mut rw, &mut rr, &batch, ROUND_MESSAGES).as_secs_f64();
        let f = framed.run(&rt, &msg, ROUND_MESSAGES, false).as_secs_f64();
        let m = framed.run(&rt, &msg, ROUND_MESSAGES, true).as_secs_f64();
        f_ratio.push(r / f);
        m_ratio.push(r / m);
        raw_t.push(r);
        f_t.push(f);
        m_t.push(m);
    }
    let per_msg = |t: f64| t / ROUND_MESSAGES as f64 * 1e9;
    let mbs = |t: f64| (ROUND_MESSAGES * MSG_LEN as u64) as f64 / t / 1e6;
    println!(
        "\ntransport one-way, {MSG_LEN}-byte messages, {BATCH} per write/flush, \
         {ROUNDS} interleaved rounds of {ROUND_MESSAGES} messages (medians):"
    );
    for (name, t) in [
        ("raw write/read", median(raw_t)),
        ("framed frames", median(f_t)),
        ("framed messages", median(m_t)),
    ] {
        println!(
            "  {name:<16} {:8.1} MB/s  {:6.1} ns/message",
            mbs(t),
            per_msg(t)
        );
    }
    println!(
        "  ratio framed frames / raw:   {:.2}  (target >= 0.5)",
        median(f_ratio)
    );
    println!(
        "  ratio framed messages / raw: {:.2}  (encode + decode of every message included)",
        median(m_ratio)
    );
}

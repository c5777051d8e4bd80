//! One-way throughput of 200-byte messages over a Unix socketpair through the
//! framed writer and reader, next to a raw `write`/`read` loop moving the
//! same bytes in the same run.
//!
//! `cargo run --release -p fastbus-transport --example throughput [count]`
//!
//! The `benches` crate has the criterion version; this is a quick check.

use std::io::{Read, Write};
use std::time::Instant;

use fastbus_transport::{raw_framed, socketpair};
use fastbus_wire::Message;

fn message(serial: u32) -> Message {
    // 200 bytes on the wire: header + a string body padded to size.
    let probe = Message::signal("/bench", "org.example.Bench", "Tick")
        .serial(1)
        .body(&"")
        .build();
    let base = probe.and_then(|m| m.encode()).map(|b| b.len()).unwrap_or(0);
    let pad = "x".repeat(200usize.saturating_sub(base + 4));
    Message::signal("/bench", "org.example.Bench", "Tick")
        .serial(serial)
        .body(&pad.as_str())
        .build()
        .expect("bench message builds")
}

fn main() {
    let count: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let msg = message(1);
    let len = msg.encode().expect("encodes").len();
    let total = len as u64 * u64::from(count);

    // Raw: the same bytes through write/read, 64 KiB at a time.
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
    let payload: Vec<u8> = (0..count.min(1000))
        .flat_map(|_| msg.encode().expect("encodes"))
        .collect();
    let t = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < total {
            match b.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        got
    });
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(payload.len() as u64) as usize;
        a.write_all(&payload[..n]).expect("raw write");
        sent += n as u64;
    }
    let got = reader.join().expect("reader thread");
    let raw = t.elapsed();
    assert_eq!(got, total);

    // Framed: queue + flush every 1000 messages (the raw loop writes 1000 at a time), decode every message on the other side.
    let msg2 = msg.clone();
    let framed = rt.block_on(async move {
        let msg = msg2;
        let (x, y) = socketpair().expect("socketpair");
        let (_, mut w) = raw_framed(Box::new(x));
        let (mut r, _) = raw_framed(Box::new(y));
        let t = Instant::now();
        let writer = tokio::spawn(async move {
            for i in 1..=count {
                w.queue(&message_fast(&msg, i)).expect("queue");
                if i % 1000 == 0 {
                    w.flush().await.expect("flush");
                }
            }
            w.flush().await.expect("flush");
        });
        let mut n = 0u32;
        while n < count {
            r.next_message().await.expect("read").expect("message");
            n += 1;
        }
        writer.await.expect("writer");
        t.elapsed()
    });
    let bytes_only = rt.block_on(async move {
        let encoded = message(1).encode().expect("encodes");
        let (x, y) = socketpair().expect("socketpair");
        let (_, mut w) = raw_framed(Box::new(x));
        let (mut r, _) = raw_framed(Box::new(y));
        let t = Instant::now();
        let writer = tokio::spawn(async move {
            for i in 1..=count {
                w.queue_bytes(&encoded, Vec::new()).expect("queue");
                if i % 1000 == 0 {
                    w.flush().await.expect("flush");
                }
            }
            w.flush().await.expect("flush");
        });
        let mut n = 0u32;
        while n < count {
            r.next_frame().await.expect("read").expect("frame");
            n += 1;
        }
        writer.await.expect("writer");
        t.elapsed()
    });
    let mb = |d: std::time::Duration| total as f64 / d.as_secs_f64() / 1e6;
    println!("{count} messages of {len} bytes");
    println!("raw write/read : {:8.1} MB/s ({raw:?})", mb(raw));
    println!("framed         : {:8.1} MB/s ({framed:?})", mb(framed));
    println!(
        "framing only   : {:8.1} MB/s ({bytes_only:?})  (pre-encoded bytes, frames not decoded)",
        mb(bytes_only)
    );
    println!(
        "ratio framed/raw       : {:.2}",
        raw.as_secs_f64() / framed.as_secs_f64()
    );
    println!(
        "ratio framing-only/raw : {:.2}",
        raw.as_secs_f64() / bytes_only.as_secs_f64()
    );
}

fn message_fast(template: &Message, serial: u32) -> Message {
    let mut m = template.clone();
    m.set_serial(serial);
    m
}

//! MSG_CTRUNC regression (CVE-2020-12049): more fds than the receive buffer
//! holds must not leak. Its own test binary because it counts the entries of
//! /proc/self/fd, which other tests running in parallel would disturb.

use std::os::fd::OwnedFd;

use fastbus_transport::transport::{self as tr};
use fastbus_transport::{BoxTransport, Error, raw_framed, socketpair};
use fastbus_wire::{Fd, Message};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "current_thread")]
async fn truncated_fd_control_data_closes_what_arrived_and_fails_the_message() {
    if !std::path::Path::new("/proc/self/fd").exists() {
        println!("SKIPPED: no /proc/self/fd");
        return;
    }
    let (a, mut b) = socketpair().unwrap();
    b.set_max_recv_fds(2);
    let (_, mut raw_w) = (Box::new(a) as BoxTransport).split();
    let (mut r, _) = raw_framed(Box::new(b));
    let before = open_fds();
    for round in 0..5u32 {
        let pipes: Vec<(OwnedFd, OwnedFd)> =
            (0..8).map(|_| rustix::pipe::pipe().unwrap()).collect();
        let (readers, writers): (Vec<OwnedFd>, Vec<OwnedFd>) = pipes.into_iter().unzip();
        let idx: Vec<Fd> = (0..8).map(Fd).collect();
        let m = Message::signal("/t", "org.example.T", "Many")
            .serial(round + 1)
            .body(&idx)
            .fds(writers)
            .build()
            .unwrap();
        let dups: Vec<OwnedFd> = m.fds().iter().map(|f| f.try_clone().unwrap()).collect();
        let bytes = m.encode().unwrap();
        drop(m);
        tr::send(&mut *raw_w, &bytes, dups).await.unwrap();
        match r.next_message().await {
            Err(Error::FdsTruncated) => {}
            other => panic!("expected FdsTruncated, got {other:?}"),
        }
        // Every write end is closed everywhere: the pipes read end-of-file.
        for pr in &readers {
            let mut b1 = [0u8; 1];
            assert_eq!(rustix::io::read(pr, &mut b1).unwrap(), 0);
        }
        drop(readers);
        // A following message still arrives.
        let ok = Message::signal("/t", "org.example.T", "After")
            .serial(100 + round)
            .build()
            .unwrap();
        tr::send(&mut *raw_w, &ok.encode().unwrap(), Vec::new())
            .await
            .unwrap();
        assert_eq!(
            r.next_message().await.unwrap().unwrap().serial(),
            100 + round
        );
    }
    assert_eq!(
        open_fds(),
        before,
        "no fd leaked across 5 truncated messages"
    );
}

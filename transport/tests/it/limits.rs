//! Per-connection limits a bus daemon sets on the framed reader and writer:
//! message size, how long fds may wait for their message, fds queued to send.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::time::Duration;

use fastbus_transport::transport::{self as tr};
use fastbus_transport::{
    Error, FramedReader, FramedWriter, MAX_MESSAGE_SIZE, memory_pair, raw_framed,
};
use fastbus_wire::{Fd, Message};

use crate::{framed_pair, raw_to_framed};

/// Fails the test instead of hanging it.
async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn with_fds(serial: u32, fds: Vec<OwnedFd>) -> Message {
    let n = u32::try_from(fds.len()).unwrap();
    let idx: Vec<Fd> = (0..n).map(Fd).collect();
    Message::signal("/t", "org.example.T", "Fds")
        .serial(serial)
        .body(&idx)
        .fds(fds)
        .build()
        .unwrap()
}

fn sized(serial: u32, body_len: usize) -> Message {
    Message::signal("/t", "org.example.T", "Sized")
        .serial(serial)
        .body(&vec![7u8; body_len])
        .build()
        .unwrap()
}

#[test]
fn reader_and_writer_stay_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<FramedReader>();
    both::<FramedWriter>();
}

#[tokio::test]
async fn message_over_the_size_cap_fails_from_its_header_alone() {
    let (mut raw_w, mut r) = raw_to_framed();
    assert_eq!(r.max_message_size(), MAX_MESSAGE_SIZE);
    r.set_max_message_size(1024);
    let big = sized(2, 4096).encode().unwrap();
    // A message under the cap in front of it still arrives; of the big one only
    // its fixed header is sent: the reader must not wait for the rest.
    let mut bytes = sized(1, 100).encode().unwrap();
    bytes.extend_from_slice(&big[..16]);
    tr::send(&mut *raw_w, &bytes, Vec::new()).await.unwrap();
    let first = bounded("the small message", r.next_message()).await;
    assert_eq!(first.unwrap().unwrap().serial(), 1);
    match bounded("the size error", r.next_message()).await {
        Err(Error::MessageTooLarge { len, limit: 1024 }) => assert_eq!(len, big.len()),
        other => panic!("expected MessageTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn message_exactly_at_the_size_cap_is_accepted() {
    let ((_, mut w), (mut r, _)) = framed_pair();
    let m = sized(1, 3000);
    let len = m.encode().unwrap().len();
    r.set_max_message_size(len);
    w.send(&m).await.unwrap();
    let got = bounded("the message", r.next_message()).await;
    assert_eq!(got.unwrap().unwrap().serial(), 1);
    r.set_max_message_size(len - 1);
    w.send(&sized(2, 3000)).await.unwrap();
    assert!(matches!(
        bounded("the size error", r.next_message()).await,
        Err(Error::MessageTooLarge { .. })
    ));
}

#[tokio::test]
async fn fds_of_an_incomplete_message_time_out_without_more_bytes() {
    let (mut raw_w, mut r) = raw_to_framed();
    r.set_pending_fd_timeout(Some(Duration::from_millis(100)));
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    let m = with_fds(1, vec![pw]);
    let bytes = m.encode().unwrap();
    let dup = m.fds()[0].try_clone().unwrap();
    drop(m);
    // The first part of the message with its fd; the rest never comes.
    tr::send(&mut *raw_w, &bytes[..20], vec![dup])
        .await
        .unwrap();
    match bounded("the pending fd timeout", r.next_message()).await {
        Err(Error::PendingFdsTimeout { count: 1, timeout }) => {
            assert_eq!(timeout, Duration::from_millis(100));
        }
        other => panic!("expected PendingFdsTimeout, got {other:?}"),
    }
    assert_eq!(r.pending_fds(), 0);
    // The fd was closed: the pipe's write end is gone everywhere.
    let mut b1 = [0u8; 1];
    assert_eq!(rustix::io::read(&pr, &mut b1).unwrap(), 0);
}

#[tokio::test]
async fn fds_of_a_message_completed_in_time_are_delivered() {
    let (mut raw_w, mut r) = raw_to_framed();
    // Long enough never to expire during the test; shows the timer does not
    // disturb a message whose rest arrives while `next_message` waits.
    r.set_pending_fd_timeout(Some(Duration::from_secs(3600)));
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    let m = with_fds(1, vec![pw]);
    let bytes = m.encode().unwrap();
    let dup = m.fds()[0].try_clone().unwrap();
    drop(m);
    tr::send(&mut *raw_w, &bytes[..20], vec![dup])
        .await
        .unwrap();
    let reader = tokio::spawn(async move { (r.next_message().await, r) });
    tokio::task::yield_now().await;
    tr::send(&mut *raw_w, &bytes[20..], Vec::new())
        .await
        .unwrap();
    let (got, r) = bounded("the completed message", reader).await.unwrap();
    let msg = got.unwrap().unwrap();
    rustix::io::write(&msg.fds()[0], b"x").unwrap();
    let mut b1 = [0u8; 1];
    assert_eq!(rustix::io::read(&pr, &mut b1).unwrap(), 1);
    assert_eq!(r.pending_fds(), 0);
}

#[tokio::test]
async fn whole_fd_messages_are_not_affected_by_a_short_pending_fd_timeout() {
    let ((_, mut w), (mut r, _)) = framed_pair();
    r.set_pending_fd_timeout(Some(Duration::from_millis(1)));
    for serial in 1..=3 {
        let (_pr, pw) = rustix::pipe::pipe().unwrap();
        w.send(&with_fds(serial, vec![pw])).await.unwrap();
        let got = bounded("the fd message", r.next_message()).await;
        assert_eq!(got.unwrap().unwrap().fds().len(), 1);
    }
}

#[tokio::test]
async fn next_frame_closes_the_fds_of_the_frames_it_hands_out() {
    let ((_, mut w), (mut r, _)) = framed_pair();
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    w.send(&with_fds(1, vec![pw])).await.unwrap();
    let frame = bounded("the frame", r.next_frame()).await.unwrap().unwrap();
    assert_eq!(Message::decode(frame).unwrap().serial(), 1);
    assert_eq!(r.pending_fds(), 0);
    let mut b1 = [0u8; 1];
    assert_eq!(rustix::io::read(&pr, &mut b1).unwrap(), 0, "fd closed");
}

#[tokio::test]
async fn writer_counts_queued_fds_and_refuses_past_its_cap() {
    let ((_, mut w), (mut r, _)) = framed_pair();
    let pipe = || rustix::pipe::pipe().unwrap().1;
    assert_eq!(w.queued_fds(), 0);
    w.queue(&with_fds(1, vec![pipe()])).unwrap();
    w.queue(&sized(2, 10)).unwrap();
    let m3 = with_fds(3, vec![pipe(), pipe()]);
    let dups: Vec<OwnedFd> = m3.fds().iter().map(|f| f.try_clone().unwrap()).collect();
    w.queue_bytes(&m3.encode().unwrap(), dups).unwrap();
    assert_eq!(w.queued_fds(), 3);
    w.set_max_queued_fds(4);
    let bytes_before = w.queued_bytes();
    match w.queue(&with_fds(4, vec![pipe(), pipe()])) {
        Err(Error::QueuedFdsLimit {
            queued: 3,
            count: 2,
            limit: 4,
        }) => {}
        other => panic!("expected QueuedFdsLimit, got {other:?}"),
    }
    assert!(matches!(
        w.queue_bytes(b"ignored", vec![pipe(), pipe()]),
        Err(Error::QueuedFdsLimit { .. })
    ));
    assert_eq!(w.queued_bytes(), bytes_before, "nothing was queued");
    assert_eq!(w.queued_fds(), 3);
    // One more fits.
    w.queue(&with_fds(5, vec![pipe()])).unwrap();
    assert_eq!(w.queued_fds(), 4);
    bounded("flush", w.flush()).await.unwrap();
    assert_eq!(w.queued_fds(), 0);
    for serial in [1, 2, 3, 5] {
        let got = bounded("a message", r.next_message())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.serial(), serial);
    }
    w.queue(&with_fds(6, vec![pipe(), pipe()])).unwrap();
    assert_eq!(w.queued_fds(), 2);
}

#[tokio::test]
async fn fds_stay_counted_while_the_peer_does_not_read() {
    let (a, b) = memory_pair(None, None);
    let (_, mut w) = raw_framed(Box::new(a));
    let (mut r, _) = raw_framed(Box::new(b));
    // Fill the in-memory pipe (256 KiB) so the fd message cannot go yet.
    w.queue(&sized(1, 400 * 1024)).unwrap();
    let (_pr, pw) = rustix::pipe::pipe().unwrap();
    w.queue(&with_fds(2, vec![pw])).unwrap();
    assert!(!w.try_flush_now().unwrap(), "the pipe is full");
    assert_eq!(w.queued_fds(), 1);
    let reader = tokio::spawn(async move {
        let a = r.next_message().await.unwrap().unwrap();
        let b = r.next_message().await.unwrap().unwrap();
        (a.serial(), b.fds().len())
    });
    bounded("flush", w.flush()).await.unwrap();
    assert_eq!(w.queued_fds(), 0);
    assert_eq!(bounded("reader", reader).await.unwrap(), (1, 1));
}

#[tokio::test]
async fn writer_refuses_fds_without_bytes_to_carry_them() {
    let ((_, mut w), (mut r, _)) = framed_pair();
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    match w.queue_bytes(&[], vec![pw]) {
        Err(Error::FdsWithoutBytes { count: 1 }) => {}
        other => panic!("expected FdsWithoutBytes, got {other:?}"),
    }
    assert_eq!(w.queued_bytes(), 0, "nothing was queued");
    assert_eq!(w.queued_fds(), 0);
    let mut b1 = [0u8; 1];
    assert_eq!(rustix::io::read(&pr, &mut b1).unwrap(), 0, "fd closed");
    // Empty bytes without fds queue nothing and are no error; the writer still works.
    w.queue_bytes(&[], Vec::new()).unwrap();
    w.send(&sized(1, 4)).await.unwrap();
    let got = bounded("a message", r.next_message()).await;
    assert_eq!(got.unwrap().unwrap().serial(), 1);
}

//! Unix fd passing through the framed reader and writer.

use std::os::fd::OwnedFd;

use fastbus_transport::transport::{self as tr, MemoryTransport};
use fastbus_transport::{
    BoxTransport, Error, FramedReader, FramedWriter, Transport, memory_pair, raw_framed, socketpair,
};
use fastbus_wire::{Fd, Message};

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

fn plain(serial: u32) -> Message {
    Message::signal("/t", "org.example.T", "Plain")
        .serial(serial)
        .body(&"x")
        .build()
        .unwrap()
}

fn pair() -> ((FramedReader, FramedWriter), (FramedReader, FramedWriter)) {
    let (a, b) = socketpair().unwrap();
    (raw_framed(Box::new(a)), raw_framed(Box::new(b)))
}

/// Writes `data` through `w` and reads it back from `r`.
fn check_pipe(w: &OwnedFd, r: &OwnedFd, data: &[u8]) {
    assert_eq!(rustix::io::write(w, data).unwrap(), data.len());
    let mut buf = vec![0u8; data.len()];
    assert_eq!(rustix::io::read(r, &mut buf).unwrap(), data.len());
    assert_eq!(buf, data);
}

#[tokio::test]
async fn pipe_write_end_round_trips_over_a_socketpair() {
    let ((_, mut w), (mut r, _)) = pair();
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    w.send(&with_fds(1, vec![pw])).await.unwrap();
    let msg = r.next_message().await.unwrap().unwrap();
    assert_eq!(msg.unix_fds(), Some(1));
    assert_eq!(msg.fds().len(), 1);
    check_pipe(&msg.fds()[0], &pr, b"through the socket");
}

#[tokio::test]
async fn several_fd_messages_in_one_read_keep_their_own_fds() {
    let ((_, mut w), (mut r, _)) = pair();
    let pipes: Vec<(OwnedFd, OwnedFd)> = (0..3).map(|_| rustix::pipe::pipe().unwrap()).collect();
    let mut readers = Vec::new();
    // plain, 1 fd, plain, 2 fds: queued together, flushed at once.
    w.queue(&plain(1)).unwrap();
    let mut it = pipes.into_iter();
    let (r0, w0) = it.next().unwrap();
    readers.push(r0);
    w.queue(&with_fds(2, vec![w0])).unwrap();
    w.queue(&plain(3)).unwrap();
    let ((r1, w1), (r2, w2)) = (it.next().unwrap(), it.next().unwrap());
    readers.push(r1);
    readers.push(r2);
    w.queue(&with_fds(4, vec![w1, w2])).unwrap();
    w.flush().await.unwrap();
    let m1 = r.next_message().await.unwrap().unwrap();
    assert!(m1.fds().is_empty());
    let m2 = r.next_message().await.unwrap().unwrap();
    assert_eq!(m2.serial(), 2);
    check_pipe(&m2.fds()[0], &readers[0], b"a");
    let m3 = r.next_message().await.unwrap().unwrap();
    assert!(m3.fds().is_empty());
    let m4 = r.next_message().await.unwrap().unwrap();
    assert_eq!(m4.fds().len(), 2);
    check_pipe(&m4.fds()[0], &readers[1], b"b");
    check_pipe(&m4.fds()[1], &readers[2], b"c");
}

#[tokio::test]
async fn fd_message_split_over_reads_gets_its_fds() {
    let (a, b) = socketpair().unwrap();
    let (_, mut raw_w) = (Box::new(a) as BoxTransport).split();
    let (mut r, _) = raw_framed(Box::new(b));
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    let real = with_fds(9, vec![pw]);
    let bytes_real = real.encode().unwrap();
    let dup = real.fds()[0].try_clone().unwrap();
    let half = bytes_real.len() / 2;
    tr::send(&mut *raw_w, &bytes_real[..half], vec![dup])
        .await
        .unwrap();
    tokio::task::yield_now().await;
    tr::send(&mut *raw_w, &bytes_real[half..], Vec::new())
        .await
        .unwrap();
    let msg = r.next_message().await.unwrap().unwrap();
    check_pipe(&msg.fds()[0], &pr, b"split");
}

#[tokio::test]
async fn surplus_fds_fail_that_message_and_the_next_one_still_arrives() {
    let (a, b) = socketpair().unwrap();
    let (_, mut raw_w) = (Box::new(a) as BoxTransport).split();
    let (mut r, _) = raw_framed(Box::new(b));
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    tr::send(&mut *raw_w, &plain(1).encode().unwrap(), vec![pw])
        .await
        .unwrap();
    match r.next_message().await {
        Err(Error::SurplusFds { count: 1 }) => {}
        other => panic!("expected SurplusFds, got {other:?}"),
    }
    // The surplus fd was closed: the pipe's write end is gone everywhere.
    let mut b1 = [0u8; 1];
    assert_eq!(rustix::io::read(&pr, &mut b1).unwrap(), 0);
    tr::send(&mut *raw_w, &plain(2).encode().unwrap(), Vec::new())
        .await
        .unwrap();
    assert_eq!(r.next_message().await.unwrap().unwrap().serial(), 2);
}

#[tokio::test]
async fn missing_fds_fail_that_message() {
    let (a, b) = socketpair().unwrap();
    let (_, mut raw_w) = (Box::new(a) as BoxTransport).split();
    let (mut r, _) = raw_framed(Box::new(b));
    let (_pr, pw) = rustix::pipe::pipe().unwrap();
    let (_pr2, pw2) = rustix::pipe::pipe().unwrap();
    let m = with_fds(1, vec![pw, pw2]);
    let one = m.fds()[0].try_clone().unwrap();
    tr::send(&mut *raw_w, &m.encode().unwrap(), vec![one])
        .await
        .unwrap();
    match r.next_message().await {
        Err(Error::MissingFds {
            declared: 2,
            received: 1,
        }) => {}
        other => panic!("expected MissingFds, got {other:?}"),
    }
}

#[tokio::test]
async fn writer_refuses_fds_where_they_cannot_go() {
    let (a, _b) = socketpair().unwrap();
    let (_, w) = (Box::new(a) as BoxTransport).split();
    let mut fw = FramedWriter::new(w, false);
    let (_pr, pw) = rustix::pipe::pipe().unwrap();
    assert!(matches!(
        fw.queue(&with_fds(1, vec![pw])),
        Err(Error::FdsNotSupported)
    ));
}

#[tokio::test]
async fn memory_transport_moves_fds_and_reports_given_credentials() {
    let creds = fastbus_transport::Credentials::from_uid(77);
    let (a, b): (MemoryTransport, MemoryTransport) = memory_pair(None, Some(creds));
    assert_eq!(a.peer_credentials(), Some(creds));
    assert_eq!(b.peer_credentials(), None);
    let (_, mut w) = raw_framed(Box::new(a));
    let (mut r, _) = raw_framed(Box::new(b));
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    w.queue(&plain(1)).unwrap();
    w.queue(&with_fds(2, vec![pw])).unwrap();
    w.flush().await.unwrap();
    assert!(r.next_message().await.unwrap().unwrap().fds().is_empty());
    let m = r.next_message().await.unwrap().unwrap();
    check_pipe(&m.fds()[0], &pr, b"memory");
}

#[tokio::test]
async fn many_messages_flush_in_order_and_eof_is_clean() {
    let ((_, mut w), (mut r, _)) = pair();
    let writer = tokio::spawn(async move {
        for i in 1..=2000u32 {
            w.queue(&plain(i)).unwrap();
            if i % 100 == 0 {
                w.flush().await.unwrap();
            }
        }
        w.close().await.unwrap();
    });
    for i in 1..=2000u32 {
        assert_eq!(r.next_message().await.unwrap().unwrap().serial(), i);
    }
    assert!(r.next_message().await.unwrap().is_none());
    writer.await.unwrap();
}

#[tokio::test]
async fn garbage_bytes_are_a_wire_error_not_a_panic() {
    let (a, b) = socketpair().unwrap();
    let (_, mut raw_w) = (Box::new(a) as BoxTransport).split();
    let (mut r, _) = raw_framed(Box::new(b));
    tr::send(
        &mut *raw_w,
        b"this is not a D-Bus message at all",
        Vec::new(),
    )
    .await
    .unwrap();
    assert!(matches!(r.next_message().await, Err(Error::Wire(_))));
    let _ = raw_w.can_pass_fds();
}

#[tokio::test]
async fn stream_ending_inside_a_message_is_unexpected_eof() {
    let (a, b) = socketpair().unwrap();
    let (_, mut raw_w) = (Box::new(a) as BoxTransport).split();
    let (mut r, _) = raw_framed(Box::new(b));
    let bytes = plain(1).encode().unwrap();
    tr::send(&mut *raw_w, &bytes[..bytes.len() - 3], Vec::new())
        .await
        .unwrap();
    tr::shutdown(&mut *raw_w).await.unwrap();
    assert!(matches!(
        r.next_message().await,
        Err(Error::UnexpectedEof { .. })
    ));
}

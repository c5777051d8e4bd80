//! Unix fd passing through the framed reader and writer.

use std::os::fd::OwnedFd;

use fastbus_transport::transport::{self as tr, MemoryTransport};
use fastbus_transport::{
    BoxTransport, Error, FramedReader, FramedWriter, Transport, memory_pair, raw_framed, socketpair,
};
use fastbus_wire::{Fd, Message};

use crate::{framed_pair, raw_to_framed};

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

/// Writes `data` through `w` and reads it back from `r`.
fn check_pipe(w: &OwnedFd, r: &OwnedFd, data: &[u8]) {
    assert_eq!(rustix::io::write(w, data).unwrap(), data.len());
    let mut buf = vec![0u8; data.len()];
    assert_eq!(rustix::io::read(r, &mut buf).unwrap(), data.len());
    assert_eq!(buf, data);
}

#[tokio::test]
async fn pipe_write_end_round_trips_over_a_socketpair() {
    let ((_, mut w), (mut r, _)) = framed_pair();
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    w.send(&with_fds(1, vec![pw])).await.unwrap();
    let msg = r.next_message().await.unwrap().unwrap();
    assert_eq!(msg.unix_fds(), Some(1));
    assert_eq!(msg.fds().len(), 1);
    check_pipe(&msg.fds()[0], &pr, b"through the socket");
}

#[tokio::test]
async fn several_fd_messages_in_one_read_keep_their_own_fds() {
    let ((_, mut w), (mut r, _)) = framed_pair();
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
    let (mut raw_w, mut r) = raw_to_framed();
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
    let (mut raw_w, mut r) = raw_to_framed();
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
    let (mut raw_w, mut r) = raw_to_framed();
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
    let ((_, mut w), (mut r, _)) = framed_pair();
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
    let (mut raw_w, mut r) = raw_to_framed();
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
    let (mut raw_w, mut r) = raw_to_framed();
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

/// A signal of about `pad` bytes that declares `fds.len()` fds.
fn big_with_fds(serial: u32, fds: Vec<OwnedFd>, pad: usize) -> Message {
    let n = u32::try_from(fds.len()).unwrap();
    let idx: Vec<Fd> = (0..n).map(Fd).collect();
    Message::signal("/t", "org.example.T", "Big")
        .serial(serial)
        .body(&(idx, "p".repeat(pad)))
        .fds(fds)
        .build()
        .unwrap()
}

fn pipes(n: usize) -> (Vec<OwnedFd>, Vec<OwnedFd>) {
    (0..n).map(|_| rustix::pipe::pipe().unwrap()).unzip()
}

/// Every pipe's write end is closed everywhere: its read end sees end-of-file.
fn all_closed(readers: &[OwnedFd]) {
    for r in readers {
        let mut b = [0u8; 1];
        assert_eq!(
            rustix::io::read(r, &mut b).unwrap(),
            0,
            "a write end is still open"
        );
    }
}

/// CVE-2014-3533: one message's fds may come in several reads (here: two `sendmsg`s).
#[tokio::test]
async fn one_messages_fds_sent_in_two_sendmsgs_are_joined_in_order() {
    let (mut raw_w, mut r) = raw_to_framed();
    let (readers, writers) = pipes(2);
    let m = big_with_fds(5, writers, 1000);
    let bytes = m.encode().unwrap();
    let mut dups = m.fds().iter().map(|f| f.try_clone().unwrap());
    let (d0, d1) = (dups.next().unwrap(), dups.next().unwrap());
    drop(m);
    tr::send(&mut *raw_w, &bytes[..300], vec![d0])
        .await
        .unwrap();
    tr::send(&mut *raw_w, &bytes[300..], vec![d1])
        .await
        .unwrap();
    let got = r.next_message().await.unwrap().unwrap();
    assert_eq!(got.fds().len(), 2);
    check_pipe(&got.fds()[0], &readers[0], b"first");
    check_pipe(&got.fds()[1], &readers[1], b"second");
}

/// CVE-2014-3636: a per-message cap on received fds; the message fails, its fds are closed,
/// and the stream goes on.
#[tokio::test]
async fn message_over_the_per_message_fd_cap_fails_and_its_fds_are_closed() {
    let (mut raw_w, mut r) = raw_to_framed();
    r.set_max_message_fds(2);
    let (readers, writers) = pipes(3);
    let m = with_fds(1, writers);
    let dups: Vec<OwnedFd> = m.fds().iter().map(|f| f.try_clone().unwrap()).collect();
    let bytes = m.encode().unwrap();
    drop(m);
    tr::send(&mut *raw_w, &bytes, dups).await.unwrap();
    match r.next_message().await {
        Err(Error::TooManyFds { count: 3, limit: 2 }) => {}
        other => panic!("expected TooManyFds, got {other:?}"),
    }
    all_closed(&readers);
    tr::send(&mut *raw_w, &plain(2).encode().unwrap(), Vec::new())
        .await
        .unwrap();
    assert_eq!(r.next_message().await.unwrap().unwrap().serial(), 2);
}

/// CVE-2014-3636: a per-connection cap on fds held for messages that are not complete yet.
#[tokio::test]
async fn fds_in_flight_over_the_connection_cap_fail_the_connection_and_are_closed() {
    let (mut raw_w, mut r) = raw_to_framed();
    r.set_max_pending_fds(4);
    let (readers, writers) = pipes(6);
    let m = big_with_fds(1, writers, 10_000);
    let bytes = m.encode().unwrap();
    let mut dups: Vec<OwnedFd> = m.fds().iter().map(|f| f.try_clone().unwrap()).collect();
    drop(m);
    let second = dups.split_off(3);
    // Two pieces of a message that never completes, 3 fds each.
    tr::send(&mut *raw_w, &bytes[..100], dups).await.unwrap();
    tr::send(&mut *raw_w, &bytes[100..200], second)
        .await
        .unwrap();
    match r.next_message().await {
        Err(Error::TooManyFds { count: 6, limit: 4 }) => {}
        other => panic!("expected TooManyFds, got {other:?}"),
    }
    all_closed(&readers);
}

/// CVE-2014-3636, sending side: one `sendmsg` carries at most 253 fds, so a message with more
/// is refused before anything is queued.
#[tokio::test]
async fn writer_refuses_more_fds_than_one_sendmsg_carries() {
    let ((_, mut w), _) = framed_pair();
    let (_pr, pw) = rustix::pipe::pipe().unwrap();
    let writers: Vec<OwnedFd> = (0..254).map(|_| pw.try_clone().unwrap()).collect();
    assert!(matches!(
        w.queue(&with_fds(1, writers)),
        Err(Error::TooManyFds {
            count: 254,
            limit: 253
        })
    ));
    assert_eq!(w.queued_bytes(), 0);
}

/// dbus-broker v22 / CVE-2020-12049: MSG_CTRUNC fails the message it hit even when that
/// message declares no fds (the stream stays usable).
#[tokio::test]
async fn truncated_fds_on_a_message_declaring_none_still_fail_it() {
    let (a, mut b) = socketpair().unwrap();
    b.set_max_recv_fds(1);
    let (_, mut raw_w) = (Box::new(a) as BoxTransport).split();
    let (mut r, _) = raw_framed(Box::new(b));
    let (readers, writers) = pipes(3);
    tr::send(&mut *raw_w, &plain(1).encode().unwrap(), writers)
        .await
        .unwrap();
    let got = r.next_message().await;
    assert!(matches!(got, Err(Error::FdsTruncated)), "{got:?}");
    all_closed(&readers);
    tr::send(&mut *raw_w, &plain(2).encode().unwrap(), Vec::new())
        .await
        .unwrap();
    assert_eq!(r.next_message().await.unwrap().unwrap().serial(), 2);
}

#[tokio::test]
async fn writer_sends_everything_queued_in_one_write_per_fd_boundary() {
    let (a, b) = socketpair().unwrap();
    let (_, w) = (Box::new(a) as BoxTransport).split();
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut w = FramedWriter::new(
        Box::new(crate::CountingWriter {
            inner: w,
            writes: writes.clone(),
        }),
        true,
    );
    let (mut r, _) = raw_framed(Box::new(b));
    for i in 1..=50 {
        w.queue(&plain(i)).unwrap();
    }
    w.flush().await.unwrap();
    assert_eq!(writes.load(std::sync::atomic::Ordering::Relaxed), 1);
    // Plain messages, one with fds, more plain ones: the fds start the second write.
    let (readers, writers) = pipes(1);
    for i in 51..=60 {
        w.queue(&plain(i)).unwrap();
    }
    w.queue(&with_fds(61, writers)).unwrap();
    for i in 62..=70 {
        w.queue(&plain(i)).unwrap();
    }
    w.flush().await.unwrap();
    assert_eq!(writes.load(std::sync::atomic::Ordering::Relaxed), 3);
    for i in 1..=70 {
        let m = r.next_message().await.unwrap().unwrap();
        assert_eq!(m.serial(), i);
        assert_eq!(m.fds().len(), usize::from(i == 61), "message {i}");
        if i == 61 {
            check_pipe(&m.fds()[0], &readers[0], b"61");
        }
    }
}

#[tokio::test]
async fn socketpair_reports_peer_credentials_and_passes_fds_tcp_does_neither() {
    let (a, _b) = socketpair().unwrap();
    let me = fastbus_transport::Credentials::current_process();
    let c = a.peer_credentials().expect("SO_PEERCRED");
    assert_eq!((c.uid, c.gid, c.pid), (me.uid, me.gid, me.pid));
    assert!(a.can_pass_fds());
    let (_, w) = (Box::new(a) as BoxTransport).split();
    assert!(w.can_pass_fds());

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let s = tokio::net::TcpStream::connect(l.local_addr().unwrap())
        .await
        .unwrap();
    let t = fastbus_transport::TcpTransport::new(s);
    assert_eq!(t.peer_credentials(), None);
    assert!(!t.can_pass_fds());
    let (_, mut w) = (Box::new(t) as BoxTransport).split();
    let (_pr, pw) = rustix::pipe::pipe().unwrap();
    assert!(matches!(
        tr::send(&mut *w, b"x", vec![pw]).await,
        Err(Error::FdsNotSupported)
    ));
}

/// Echoes every message back; runs until the stream ends.
async fn echo(t: BoxTransport) {
    let (mut r, mut w) = raw_framed(t);
    while let Ok(Some(m)) = r.next_message().await {
        w.send(&m).await.unwrap();
    }
}

/// The reader half in one task and the writer half in another, at the same time.
async fn halves_in_two_tasks(client: BoxTransport, server: BoxTransport) {
    const N: u32 = 500;
    let server = tokio::spawn(echo(server));
    let (mut r, mut w) = raw_framed(client);
    let writer = tokio::spawn(async move {
        for i in 1..=N {
            w.send(&plain(i)).await.unwrap();
        }
        w
    });
    let reader = tokio::spawn(async move {
        for i in 1..=N {
            assert_eq!(r.next_message().await.unwrap().unwrap().serial(), i);
        }
    });
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        reader.await.unwrap();
        let mut w = writer.await.unwrap();
        w.close().await.unwrap();
        server.await.unwrap();
    })
    .await
    .expect("echo round trips finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halves_of_one_transport_work_from_two_tasks_on_unix_tcp_and_memory() {
    let (a, b) = socketpair().unwrap();
    halves_in_two_tasks(Box::new(a), Box::new(b)).await;

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = tokio::net::TcpStream::connect(l.local_addr().unwrap())
        .await
        .unwrap();
    let (s, _) = l.accept().await.unwrap();
    halves_in_two_tasks(
        Box::new(fastbus_transport::TcpTransport::new(c)),
        Box::new(fastbus_transport::TcpTransport::new(s)),
    )
    .await;

    let (a, b) = memory_pair(None, None);
    halves_in_two_tasks(Box::new(a), Box::new(b)).await;
}

/// The reader hands out slices of its read buffer (`split_to` + `freeze`), not copies:
/// messages that came in one read lie back to back in memory.
#[tokio::test]
async fn frames_are_slices_of_the_read_buffer_not_copies() {
    let ((_, mut w), (mut r, _)) = framed_pair();
    for i in 1..=3 {
        w.queue(&plain(i)).unwrap();
    }
    w.flush().await.unwrap();
    let a = r.next_frame().await.unwrap().unwrap();
    let b = r.next_frame().await.unwrap().unwrap();
    let c = r.next_frame().await.unwrap().unwrap();
    assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
    assert_eq!(b.as_ptr().wrapping_add(b.len()), c.as_ptr());
    // A decoded message keeps borrowing that buffer too: its body is inside the frame.
    let m = Message::decode(c.clone()).unwrap();
    let body = m.body_bytes();
    let range = c.as_ptr() as usize..c.as_ptr() as usize + c.len();
    assert!(range.contains(&(body.as_ptr() as usize)));
}

/// Replays chunks as reads: each `(bytes, fds)` arrives in one read (cut further when the
/// reader's buffer is smaller), its fds with the first piece, as Linux delivers them.
#[derive(Debug)]
struct Scripted {
    chunks: std::collections::VecDeque<(Vec<u8>, Vec<OwnedFd>)>,
}

impl fastbus_transport::TransportRead for Scripted {
    fn poll_recv(
        &mut self,
        _cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
        fds: &mut Vec<OwnedFd>,
    ) -> std::task::Poll<fastbus_transport::Result<fastbus_transport::Received>> {
        let Some((bytes, f)) = self.chunks.front_mut() else {
            return std::task::Poll::Ready(Ok(fastbus_transport::Received::default()));
        };
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        bytes.drain(..n);
        fds.append(f);
        if bytes.is_empty() {
            self.chunks.pop_front();
        }
        std::task::Poll::Ready(Ok(fastbus_transport::Received {
            bytes: n,
            fds_truncated: false,
        }))
    }
}

fn inode(fd: &OwnedFd) -> u64 {
    rustix::fs::fstat(fd).unwrap().st_ino
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

    /// CVE-2014-3533: whatever the read boundaries, and with several fd-carrying messages
    /// buffered at once, every message gets exactly its own fds, in order.
    #[test]
    fn fds_stay_with_their_message_whatever_the_read_boundaries(
        fd_counts in proptest::collection::vec(0usize..3, 1..12),
        cuts in proptest::collection::vec(1usize..400, 0..12),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // The stream, the inodes each message must get, and where fd-carrying messages start.
        let mut stream = Vec::new();
        let mut expect = Vec::new();
        let mut starts: Vec<(usize, Vec<OwnedFd>)> = Vec::new();
        let mut keep = Vec::new();
        for (i, &k) in fd_counts.iter().enumerate() {
            let (readers, writers) = pipes(k);
            expect.push(writers.iter().map(inode).collect::<Vec<_>>());
            let m = with_fds(i as u32 + 1, writers);
            let dups: Vec<OwnedFd> = m.fds().iter().map(|f| f.try_clone().unwrap()).collect();
            if !dups.is_empty() {
                starts.push((stream.len(), dups));
            }
            stream.extend(m.encode().unwrap());
            keep.push(readers);
        }
        // Random cuts, plus one before every fd-carrying message: a read never holds the fds
        // of two sendmsg calls.
        let mut points: Vec<usize> = cuts.iter().scan(0, |p, c| { *p += c; Some(*p) })
            .filter(|p| *p < stream.len()).collect();
        points.extend(starts.iter().map(|(at, _)| *at).filter(|at| *at > 0));
        points.sort_unstable();
        points.dedup();
        let mut chunks = std::collections::VecDeque::new();
        let mut prev = 0;
        let mut starts = starts.into_iter().peekable();
        for end in points.into_iter().chain([stream.len()]) {
            let mut fds = Vec::new();
            while let Some((at, _)) = starts.peek() {
                if *at >= end { break; }
                fds.extend(starts.next().unwrap().1);
            }
            chunks.push_back((stream[prev..end].to_vec(), fds));
            prev = end;
        }
        let mut r = FramedReader::new(Box::new(Scripted { chunks }));
        rt.block_on(async {
            for (i, want) in expect.iter().enumerate() {
                let m = r.next_message().await.unwrap().unwrap();
                proptest::prop_assert_eq!(m.serial(), i as u32 + 1);
                let got: Vec<u64> = m.fds().iter().map(inode).collect();
                proptest::prop_assert_eq!(&got, want, "message {}", i + 1);
            }
            proptest::prop_assert!(r.next_message().await.unwrap().is_none());
            Ok(())
        })?;
    }
}

/// A message that declares fds when none at all came (the reader's path without pending fds):
/// that message fails, the stream goes on; over the per-message cap it is `TooManyFds`.
#[tokio::test]
async fn a_message_declaring_fds_that_never_came_fails_alone() {
    let (mut raw_w, mut r) = raw_to_framed();
    let (_readers, writers) = pipes(2);
    // Its bytes only: the fds stay here.
    let declares_two = with_fds(1, writers).encode().unwrap();
    tr::send(&mut *raw_w, &declares_two, Vec::new())
        .await
        .unwrap();
    match r.next_message().await {
        Err(Error::MissingFds {
            declared: 2,
            received: 0,
        }) => {}
        other => panic!("expected MissingFds, got {other:?}"),
    }
    r.set_max_message_fds(1);
    tr::send(&mut *raw_w, &declares_two, Vec::new())
        .await
        .unwrap();
    match r.next_message().await {
        Err(Error::TooManyFds { count: 2, limit: 1 }) => {}
        other => panic!("expected TooManyFds, got {other:?}"),
    }
    tr::send(&mut *raw_w, &plain(3).encode().unwrap(), Vec::new())
        .await
        .unwrap();
    let got = r.next_message().await.unwrap().unwrap();
    assert_eq!(got.serial(), 3);
    assert!(got.fds().is_empty());
}

//! Read readiness: a Unix read that fills less than its buffer clears the readiness (one
//! `recvmsg` less per burst), except where the kernel ends a read early while more data is
//! queued; none of those cases may lose or stall the data behind them.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use fastbus_transport::transport as tr;
use fastbus_transport::{FramedReader, UnixTransport, raw_framed};
use fastbus_wire::{Fd, Message};

use crate::{framed_pair, raw_to_framed};

/// Generous: only a bug (a read waiting for readiness that never comes) takes this long.
const WAIT: Duration = Duration::from_secs(20);

fn signal(serial: u32, member: &str) -> Message {
    Message::signal("/t", "org.example.T", member)
        .serial(serial)
        .body(&"payload")
        .build()
        .unwrap()
}

async fn next(r: &mut FramedReader) -> Message {
    tokio::time::timeout(WAIT, r.next_message())
        .await
        .expect("a queued message is read without waiting for new data")
        .unwrap()
        .expect("a message, not the end of the stream")
}

/// Linux ends a `recvmsg` after data that carried fds, with the next write still queued: that
/// short read must not clear the readiness, or the queued write would wait for more data.
#[tokio::test]
async fn a_read_that_stops_after_fds_leaves_the_rest_readable() {
    let (mut w, mut r) = raw_to_framed();
    let (_pr, pw) = rustix::pipe::pipe().unwrap();
    let with_fd = Message::signal("/t", "org.example.T", "Fd")
        .serial(1)
        .body(&Fd(0))
        .fds(vec![pw])
        .build()
        .unwrap();
    let dup: Vec<OwnedFd> = with_fd
        .fds()
        .iter()
        .map(|f| f.try_clone().unwrap())
        .collect();
    tr::send(&mut *w, &with_fd.encode().unwrap(), dup)
        .await
        .unwrap();
    let mut rest = signal(2, "Two").encode().unwrap();
    rest.extend(signal(3, "Three").encode().unwrap());
    tr::send(&mut *w, &rest, Vec::new()).await.unwrap();
    // Everything is queued before the first read.
    let first = next(&mut r).await;
    assert_eq!((first.serial(), first.fds().len()), (1, 1));
    assert_eq!(next(&mut r).await.serial(), 2);
    assert_eq!(next(&mut r).await.serial(), 3);
}

/// With `SO_PASSCRED`, Linux never merges the writes of two processes into one read: the
/// read of the first write is short while the second is queued. Such a socket never clears
/// readiness on a short read.
#[tokio::test]
async fn with_so_passcred_writes_of_two_processes_are_both_read() {
    let Ok(cat) = which("cat") else {
        println!("SKIPPED: no `cat` to write from a second process");
        return;
    };
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    rustix::net::sockopt::set_socket_passcred(&ours, true).unwrap();
    // This process writes the first message, `cat` the second, before anything is read.
    (&theirs)
        .write_all(&signal(1, "Ours").encode().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("second");
    std::fs::write(&file, signal(2, "Theirs").encode().unwrap()).unwrap();
    let status = Command::new(cat)
        .arg(&file)
        .stdout(Stdio::from(OwnedFd::from(theirs.try_clone().unwrap())))
        .status()
        .unwrap();
    assert!(status.success());
    let (mut r, _) = raw_framed(Box::new(UnixTransport::from_std(ours).unwrap()));
    assert_eq!(next(&mut r).await.serial(), 1);
    assert_eq!(next(&mut r).await.serial(), 2);
    drop(theirs);
}

/// A short read clears readiness, and the reader still wakes for what comes later: many
/// round trips in which every read is short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_reads_still_wake_the_reader_for_later_data() {
    let ((mut ra, mut wa), (mut rb, mut wb)) = framed_pair();
    let echo = tokio::spawn(async move {
        while let Ok(Some(m)) = rb.next_message().await {
            wb.send(&m).await.unwrap();
        }
    });
    for i in 1..=200 {
        wa.send(&signal(i, "Ping")).await.unwrap();
        assert_eq!(next(&mut ra).await.serial(), i);
    }
    wa.close().await.unwrap();
    tokio::time::timeout(WAIT, echo).await.unwrap().unwrap();
    assert!(ra.next_message().await.unwrap().is_none());
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.exists())
        .ok_or(())
}

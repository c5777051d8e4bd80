//! The in-process API, fault knobs and robustness (security.md rows).

use fastbus_testbus::{Limits, TestBus};
use fastbus_transport::{ClientOptions, Credentials, client_handshake};
use fastbus_wire::{Endian, Message};

use crate::harness::{Client, error_name, member_is, pipe, within};

pub(crate) async fn framed_client(bus: &TestBus) -> Client {
    let (r, w) = bus.connect_framed().expect("framed");
    let mut c = Client::over(r, w);
    c.hello().await;
    c
}

#[tokio::test]
async fn memory_and_socket_clients_talk_to_each_other() {
    let bus = TestBus::start().await.expect("start");
    let mut mem = framed_client(&bus).await;
    let mut sock = Client::connect(&bus.address().expect("address")).await;
    let t = bus.connect_memory().expect("memory");
    let auth = within(
        "EXTERNAL over memory",
        client_handshake(t, &ClientOptions::default(), None, None),
    )
    .await
    .expect("EXTERNAL over memory");
    let mut authed = Client::over(auth.reader, auth.writer);
    authed.hello().await;
    mem.send(Message::signal("/a", "org.example.T", "Hi").destination(sock.name.as_str()))
        .await;
    let got = sock.recv_where(|m| member_is(m, "Hi")).await;
    assert_eq!(got.sender().map(|s| s.to_string()), Some(mem.name.clone()));
    // A call from the authenticated in-memory client to the framed one, answered.
    let s = authed
        .send(
            Message::method_call("/x", "Echo")
                .destination(mem.name.as_str())
                .body(&("ping",)),
        )
        .await;
    let call = mem.recv_where(|m| member_is(m, "Echo")).await;
    assert_eq!(
        call.sender().map(|s| s.to_string()),
        Some(authed.name.clone())
    );
    let arg: String = call.body::<&str>().expect("s").to_owned();
    mem.send(Message::method_return(&call).body(&(arg,))).await;
    let r = authed.recv_where(|m| m.reply_serial() == Some(s)).await;
    assert_eq!(r.body::<&str>().ok(), Some("ping"));
    let names = bus.unique_names();
    assert!(
        names.contains(&mem.name) && names.contains(&sock.name) && names.contains(&authed.name)
    );
}

#[tokio::test]
async fn unique_names_can_start_at_a_given_minor() {
    let bus = TestBus::builder()
        .memory_only()
        .first_unique_minor(4000)
        .start()
        .await
        .expect("start");
    assert!(bus.address().is_none());
    let c = framed_client(&bus).await;
    assert_eq!(c.name, ":1.4000");
}

#[tokio::test]
async fn shutdown_closes_every_connection() {
    let bus = TestBus::start().await.expect("start");
    let mut a = framed_client(&bus).await;
    let mut b = Client::connect(&bus.address().expect("address")).await;
    within("shutdown", bus.shutdown()).await;
    a.expect_closed().await;
    b.expect_closed().await;
}

#[tokio::test]
async fn dropping_a_connection_gives_its_callers_no_reply() {
    let bus = TestBus::start().await.expect("start");
    let mut a = framed_client(&bus).await;
    let mut b = framed_client(&bus).await;
    b.call_bus("RequestName", &("org.example.Victim", 0u32))
        .await;
    let s = a
        .send(Message::method_call("/x", "M").destination("org.example.Victim"))
        .await;
    b.recv_where(|m| member_is(m, "M")).await;
    assert!(bus.disconnect("org.example.Victim"));
    let r = a.recv_where(|m| m.reply_serial() == Some(s)).await;
    assert_eq!(error_name(&r), "org.freedesktop.DBus.Error.NoReply");
    b.expect_closed().await;
    assert!(!bus.disconnect("org.example.Victim"));
}

#[tokio::test]
async fn refused_connections_never_get_a_name() {
    let bus = TestBus::start().await.expect("start");
    bus.refuse_new_connections(true);
    let (mut r, _w) = bus.connect_framed().expect("framed");
    let got = within("a refused in-memory client sees the end", r.next_message()).await;
    assert!(matches!(got, Ok(None) | Err(_)), "{got:?}");
    let t = bus.connect_memory().expect("memory");
    let auth = within(
        "a refused in-memory client fails to authenticate",
        client_handshake(t, &ClientOptions::default(), None, None),
    )
    .await;
    assert!(auth.is_err());
    let addr = bus.address().expect("address");
    let addrs = fastbus_transport::address::parse_list(&addr).expect("address");
    let sock = within(
        "a refused socket client is closed",
        fastbus_transport::connect(&addrs, &ClientOptions::default(), None),
    )
    .await;
    assert!(sock.is_err());
    assert!(bus.unique_names().is_empty());
    bus.refuse_new_connections(false);
    let ok = framed_client(&bus).await;
    assert_eq!(
        bus.unique_names().as_slice(),
        std::slice::from_ref(&ok.name)
    );
}

#[tokio::test]
async fn a_slow_reader_is_disconnected_and_the_bus_goes_on() {
    let mut l = Limits::default();
    l.max_outgoing_bytes = 64 * 1024;
    let bus = TestBus::builder().limits(l).start().await.expect("start");
    let addr = bus.address().expect("address");
    let mut slow = Client::connect(&addr).await;
    slow.add_match("type='signal',member='Flood'").await;
    let slow_name = slow.name.clone();
    let mut w = Client::connect(&addr).await;
    w.add_match(&format!(
        "type='signal',member='NameOwnerChanged',arg0='{slow_name}'"
    ))
    .await;
    let mut sender = Client::connect(&addr).await;
    let payload = vec![7u8; 4096];
    for _ in 0..2000 {
        sender
            .send(Message::signal("/f", "org.example.T", "Flood").body(&(payload.as_slice(),)))
            .await;
        if !bus.unique_names().contains(&slow_name) {
            break;
        }
    }
    let gone = w.recv_where(|m| member_is(m, "NameOwnerChanged")).await;
    let (_, _, new): (&str, &str, &str) = gone.body().expect("sss");
    assert_eq!(new, "");
    assert_eq!(sender.bus_error("GetId", &()).await, "");
    drop(slow);
}

#[tokio::test]
async fn garbage_bytes_disconnect_only_their_sender() {
    let bus = TestBus::start().await.expect("start");
    let addr = bus.address().expect("address");
    let mut good = Client::connect(&addr).await;
    for garbage in [
        &b"not a message at all, definitely"[..],
        &[b'l', 1, 0, 1, 255, 255, 255, 255, 1, 0, 0, 0, 0, 0, 0, 0][..],
        &[0u8; 32][..],
    ] {
        let mut bad = Client::connect(&addr).await;
        bad.send_bytes(garbage, Vec::new()).await;
        bad.expect_closed().await;
        assert_eq!(good.bus_error("GetId", &()).await, "");
    }
}

#[tokio::test]
async fn big_endian_messages_are_relayed_intact() {
    let bus = TestBus::start().await.expect("start");
    let addr = bus.address().expect("address");
    let mut a = Client::connect(&addr).await;
    let mut b = Client::connect(&addr).await;
    let body = (0x0102_0304u32, "big-endian", vec![1i64, -2, 3]);
    a.send(
        Message::signal("/be", "org.example.T", "BE")
            .endian(Endian::Big)
            .destination(b.name.as_str())
            .body(&body),
    )
    .await;
    let got = b.recv_where(|m| member_is(m, "BE")).await;
    let back: (u32, &str, Vec<i64>) = got.body().expect("decode");
    assert_eq!(back, (body.0, body.1, body.2.clone()));
}

#[tokio::test]
async fn fds_are_relayed_between_unix_clients_that_negotiated_them() {
    use std::io::{Read, Write};
    let bus = TestBus::start().await.expect("start");
    let addr = bus.address().expect("address");
    let mut a = Client::connect(&addr).await;
    let mut b = Client::connect(&addr).await;
    let (mut rd, mut wr) = pipe();
    wr.write_all(b"through the bus").expect("write");
    drop(wr);
    let fd: std::os::fd::OwnedFd = rd.try_clone().expect("dup").into();
    let s = a.next_serial();
    let m = Message::signal("/fd", "org.example.T", "Fd")
        .destination(b.name.as_str())
        .body(&(fastbus_wire::Fd(0),))
        .unix_fds(1)
        .fds(vec![fd])
        .serial(s)
        .build()
        .expect("build");
    a.send_msg(&m).await;
    let got = b.recv_where(|m| member_is(m, "Fd")).await;
    assert_eq!(got.fds().len(), 1);
    let mut f = std::fs::File::from(got.fds()[0].try_clone().expect("dup"));
    let mut s = String::new();
    f.read_to_string(&mut s).expect("read");
    assert_eq!(s, "through the bus");
    let _ = rd.read(&mut [0u8; 1]);
}

#[tokio::test]
async fn too_many_fds_in_one_message_disconnect_the_sender() {
    let mut l = Limits::default();
    l.max_message_unix_fds = 2;
    let bus = TestBus::builder().limits(l).start().await.expect("start");
    let addr = bus.address().expect("address");
    let mut a = Client::connect(&addr).await;
    let b = Client::connect(&addr).await;
    let fds: Vec<std::os::fd::OwnedFd> = (0..3)
        .map(|_| std::fs::File::open("/dev/null").expect("open").into())
        .collect();
    let s = a.next_serial();
    let m = Message::signal("/fd", "org.example.T", "Fd")
        .destination(b.name.as_str())
        .unix_fds(3)
        .fds(fds)
        .serial(s)
        .build()
        .expect("build");
    a.send_msg(&m).await;
    a.expect_closed().await;
}

#[tokio::test]
async fn a_client_that_never_authenticates_is_dropped() {
    let mut l = Limits::default();
    l.auth_timeout = std::time::Duration::from_millis(200);
    let bus = TestBus::builder().limits(l).start().await.expect("start");
    let addr = bus.address().expect("address");
    let path = addr
        .split("path=")
        .nth(1)
        .and_then(|p| p.split(',').next())
        .expect("path")
        .to_owned();
    let mut s = within("connecting", tokio::net::UnixStream::connect(path))
        .await
        .expect("connect");
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 16];
    let n = within("the bus closes a silent connection", s.read(&mut buf))
        .await
        .unwrap_or(0);
    assert_eq!(n, 0, "the bus closes a silent connection");
    let _ok = Client::connect(&addr).await;
}

#[tokio::test]
async fn tcp_clients_authenticate_with_cookie_and_have_no_pid() {
    let bus = TestBus::builder()
        .listen("tcp:host=127.0.0.1,port=0")
        .expect("addr")
        .start()
        .await
        .expect("start");
    let mut c = Client::connect(&bus.address().expect("address")).await;
    let name = c.name.clone();
    assert_eq!(
        c.bus_error("GetConnectionUnixProcessID", &(name.as_str(),))
            .await,
        "org.freedesktop.DBus.Error.UnixProcessIdUnknown"
    );
}

#[tokio::test]
async fn in_memory_credentials_are_what_the_test_says() {
    let bus = TestBus::builder()
        .memory_only()
        .start()
        .await
        .expect("start");
    let (r, w) = bus
        .connect_framed_as(Some(Credentials::from_uid(4242)))
        .expect("framed");
    let mut c = Client::over(r, w);
    c.hello().await;
    let name = c.name.clone();
    let r = c.call_bus("GetConnectionUnixUser", &(name.as_str(),)).await;
    assert_eq!(r.body::<u32>().ok(), Some(4242));
    assert_eq!(
        c.bus_error("GetConnectionUnixProcessID", &(name.as_str(),))
            .await,
        "org.freedesktop.DBus.Error.UnixProcessIdUnknown"
    );
    let r = c
        .call(
            Message::method_call("/org/freedesktop/DBus", "BecomeMonitor")
                .interface("org.freedesktop.DBus.Monitoring")
                .destination("org.freedesktop.DBus")
                .body(&(Vec::<&str>::new(), 0u32)),
        )
        .await;
    if fastbus_transport::Credentials::current_process().uid != Some(4242) {
        assert_eq!(error_name(&r), "org.freedesktop.DBus.Error.AccessDenied");
    }
}

/// CVE-2014-3639: clients beyond `max_incomplete_connections` wait (in the
/// backlog) instead of being dropped, and get in once a slot frees up.
#[tokio::test]
async fn clients_beyond_the_incomplete_limit_wait_for_a_slot() {
    let mut l = Limits::default();
    l.max_incomplete_connections = 1;
    let bus = TestBus::builder().limits(l).start().await.expect("start");
    let addr = bus.address().expect("address");
    // Takes the only slot, synchronously, and never authenticates.
    let silent = bus.connect_memory().expect("memory");
    let waiting = tokio::spawn(async move { Client::connect(&addr).await });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    // (Split first: an unsplit in-memory transport does not signal its end when dropped.)
    drop(silent.split());
    let c = within("the waiting client gets in", waiting)
        .await
        .expect("join");
    assert!(bus.unique_names().contains(&c.name));
}

/// CVE-2014-3639 as a slow-loris: silent sockets take every slot; the auth
/// timeout frees them and a real client gets in.
#[tokio::test]
async fn silent_sockets_time_out_and_free_their_slots() {
    let mut l = Limits::default();
    l.max_incomplete_connections = 2;
    l.auth_timeout = std::time::Duration::from_millis(100);
    let bus = TestBus::builder().limits(l).start().await.expect("start");
    let addr = bus.address().expect("address");
    let path = addr
        .split("path=")
        .nth(1)
        .and_then(|p| p.split(',').next())
        .expect("path")
        .to_owned();
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(
            within("connecting", tokio::net::UnixStream::connect(&path))
                .await
                .expect("connect"),
        );
    }
    let c = Client::connect(&addr).await;
    assert!(bus.unique_names().contains(&c.name));
    drop(silent);
}

/// Shutdown does not wait for clients that are still authenticating.
#[tokio::test]
async fn shutdown_does_not_wait_for_authentication() {
    let bus = TestBus::start().await.expect("start");
    let _silent = bus.connect_memory().expect("memory");
    let addr = bus.address().expect("address");
    let path = addr
        .split("path=")
        .nth(1)
        .and_then(|p| p.split(',').next())
        .expect("path")
        .to_owned();
    let _sock = within("connecting", tokio::net::UnixStream::connect(&path))
        .await
        .expect("connect");
    within("shutdown", bus.shutdown()).await;
}

/// Dropping the handle closes every connection too.
#[tokio::test]
async fn dropping_the_bus_disconnects_its_clients() {
    let bus = TestBus::start().await.expect("start");
    let mut a = framed_client(&bus).await;
    let mut b = Client::connect(&bus.address().expect("address")).await;
    drop(bus);
    a.expect_closed().await;
    b.expect_closed().await;
}

/// Bad auth: only that client is disconnected.
#[tokio::test]
async fn bad_authentication_disconnects_only_that_client() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bus = TestBus::start().await.expect("start");
    let addr = bus.address().expect("address");
    let mut good = Client::connect(&addr).await;
    let path = addr
        .split("path=")
        .nth(1)
        .and_then(|p| p.split(',').next())
        .expect("path")
        .to_owned();
    for junk in [
        &b"\0AUTH EXTERNAL 6e6f7420612075696400\r\nBEGIN\r\n"[..],
        &b"\0\xff\xfe binary junk\r\n"[..],
        &b"\0DATA\r\nDATA\r\nDATA\r\nERROR\r\nBEGIN\r\n"[..],
        &[b'\0'; 1][..],
    ] {
        let mut s = within("connecting", tokio::net::UnixStream::connect(&path))
            .await
            .expect("connect");
        let _ = s.write_all(junk).await;
        let _ = s.write_all(&[b'x'; 20000]).await;
        let mut buf = vec![0u8; 4096];
        // The bus answers what it can, then closes.
        loop {
            match within("the bus closes a client with bad auth", s.read(&mut buf)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        assert_eq!(good.bus_error("GetId", &()).await, "");
    }
    assert_eq!(bus.unique_names(), vec![good.name.clone()]);
}

/// A slow reader is disconnected and the reason goes to the log.
#[test]
fn the_slow_reader_disconnect_is_logged() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let log = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || log.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            let mut l = Limits::default();
            l.max_outgoing_bytes = 64 * 1024;
            let bus = TestBus::builder()
                .memory_only()
                .limits(l)
                .start()
                .await
                .expect("start");
            let mut slow = framed_client(&bus).await;
            slow.add_match("type='signal',member='Flood'").await;
            let slow_name = slow.name.clone();
            let mut sender = framed_client(&bus).await;
            let payload = vec![7u8; 4096];
            for _ in 0..2000 {
                sender
                    .send(
                        Message::signal("/f", "org.example.T", "Flood")
                            .body(&(payload.as_slice(),)),
                    )
                    .await;
                if !bus.unique_names().contains(&slow_name) {
                    break;
                }
            }
            assert!(!bus.unique_names().contains(&slow_name));
            assert_eq!(sender.bus_error("GetId", &()).await, "");
            drop(slow);
        });
    });
    let text = String::from_utf8_lossy(&buf.0.lock().expect("log")).into_owned();
    assert!(
        text.contains("slow reader") && text.contains("exceeds the limit"),
        "{text}"
    );
}

/// No input makes the bus panic or stop serving others: mutated messages
/// from one client, a healthy client checks the bus after each.
#[test]
fn mutated_messages_never_break_the_bus() {
    use proptest::prelude::*;
    let cases = std::env::var("FASTBUS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bus = rt
        .block_on(TestBus::builder().memory_only().start())
        .expect("start");
    let good = std::cell::RefCell::new(Some(rt.block_on(framed_client(&bus))));
    let base = Message::method_call("/org/freedesktop/DBus", "RequestName")
        .interface("org.freedesktop.DBus")
        .destination("org.freedesktop.DBus")
        .serial(2)
        .body(&("org.example.Fuzz", 4u32))
        .build()
        .expect("build")
        .encode()
        .expect("encode");
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let strategy = proptest::collection::vec((0..base.len(), any::<u8>()), 1..8);
    runner
        .run(&strategy, |edits| {
            rt.block_on(async {
                let (r, w) = bus.connect_framed().expect("framed");
                let mut c = Client::over(r, w);
                c.hello().await;
                let mut bytes = base.clone();
                for (at, b) in &edits {
                    bytes[*at] = *b;
                }
                c.send_bytes(&bytes, Vec::new()).await;
                // Whatever the bus made of it, it still answers everyone.
                let mut g = good.take().expect("the healthy client");
                assert_eq!(g.bus_error("GetId", &()).await, "");
                good.replace(Some(g));
                drop(c);
            });
            Ok(())
        })
        .expect("no input breaks the bus");
}

/// dbus-broker v19 (integer overflow in quota accounting): limits near the
/// u32 and u64 edges are accepted and enforced with saturating arithmetic,
/// nothing panics, and the counts behave as the limit says.
#[test]
fn limits_near_integer_edges_saturate() {
    use proptest::prelude::*;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let edge = prop_oneof![
        0..4u64,
        Just(u64::from(u32::MAX) - 1),
        Just(u64::from(u32::MAX)),
        Just(u64::from(u32::MAX) + 1),
        Just(u64::MAX - 1),
        Just(u64::MAX),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(edge.clone(), edge.clone(), edge),
            |(names, rules, timeout)| {
                let mut l = Limits::default();
                for (n, v) in [
                    ("max_names_per_connection", names),
                    ("max_match_rules_per_connection", rules),
                    ("max_replies_per_connection", rules),
                    ("max_message_unix_fds", names),
                    ("max_incoming_unix_fds", names),
                    ("max_outgoing_unix_fds", rules),
                    ("pending_fd_timeout", timeout),
                    ("max_outgoing_bytes", u64::MAX),
                    ("max_completed_connections", u64::MAX),
                    ("max_incomplete_connections", u64::MAX),
                    ("max_connections_per_user", u64::MAX),
                    ("max_message_size", u64::MAX),
                ] {
                    assert!(l.set_by_name(n, v), "{n}");
                }
                // Huge timeouts are fine; zero would refuse every client.
                assert!(l.set_by_name("auth_timeout", timeout.max(10_000)));
                rt.block_on(async {
                    let bus = TestBus::builder()
                        .memory_only()
                        .limits(l)
                        .start()
                        .await
                        .expect("start");
                    // Through the real handshake (the auth timeout is used there).
                    let t = bus.connect_memory().expect("memory");
                    let auth = within(
                        "EXTERNAL with an edge-of-range auth timeout",
                        client_handshake(t, &ClientOptions::default(), None, None),
                    )
                    .await
                    .expect("auth");
                    let mut c = Client::over(auth.reader, auth.writer);
                    c.hello().await;
                    let mut got_names = 0u64;
                    for i in 0..3 {
                        let e = c
                            .bus_error("RequestName", &(format!("org.example.N{i}").as_str(), 0u32))
                            .await;
                        if e.is_empty() {
                            got_names += 1;
                        } else {
                            assert_eq!(e, "org.freedesktop.DBus.Error.LimitsExceeded");
                        }
                    }
                    // The unique name counts toward max_names_per_connection.
                    assert_eq!(
                        got_names,
                        names.saturating_sub(1).min(3),
                        "names (limit {names})"
                    );
                    let mut got_rules = 0u64;
                    for i in 0..3 {
                        let e = c
                            .bus_error("AddMatch", &(format!("member='M{i}'").as_str(),))
                            .await;
                        if e.is_empty() {
                            got_rules += 1;
                        } else {
                            assert_eq!(e, "org.freedesktop.DBus.Error.LimitsExceeded");
                        }
                    }
                    assert_eq!(got_rules, rules.min(3), "match rules (limit {rules})");
                    within("shutdown", bus.shutdown()).await;
                });
                Ok(())
            },
        )
        .expect("limits at the edges");
}

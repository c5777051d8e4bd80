//! The in-process API, fault knobs and robustness (security.md rows).

use fastbus_testbus::{Limits, TestBus};
use fastbus_transport::{ClientOptions, Credentials, client_handshake};
use fastbus_wire::{Endian, Message};

use crate::harness::{Client, error_name, member_is};

async fn framed_client(bus: &TestBus) -> Client {
    let (r, w) = bus.connect_framed().expect("framed");
    let mut c = Client {
        r,
        w,
        serial: 0,
        name: String::new(),
        queue: Default::default(),
    };
    c.hello().await;
    c
}

#[tokio::test]
async fn memory_and_socket_clients_talk_to_each_other() {
    let bus = TestBus::start().await.expect("start");
    let mut mem = framed_client(&bus).await;
    let mut sock = Client::connect(&bus.address().expect("address")).await;
    let t = bus.connect_memory().expect("memory");
    let auth = client_handshake(t, &ClientOptions::default(), None, None)
        .await
        .expect("EXTERNAL over memory");
    let mut authed = Client {
        r: auth.reader,
        w: auth.writer,
        serial: 0,
        name: String::new(),
        queue: Default::default(),
    };
    authed.hello().await;
    mem.send(Message::signal("/a", "org.example.T", "Hi").destination(sock.name.as_str()))
        .await;
    let got = sock.recv_where(|m| member_is(m, "Hi")).await;
    assert_eq!(got.sender().map(|s| s.to_string()), Some(mem.name.clone()));
    let r = authed
        .call(Message::method_call("/x", "Echo").destination(mem.name.as_str()))
        .await;
    let _ = r;
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
    bus.shutdown().await;
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
    assert!(r.next_message().await.map(|m| m.is_none()).unwrap_or(true));
    bus.refuse_new_connections(false);
    let _ok = framed_client(&bus).await;
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
        bad.w.queue_bytes(garbage, Vec::new()).expect("queue");
        bad.w.flush().await.expect("flush");
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
    let (mut rd, mut wr) = std::io::pipe().expect("pipe");
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
    let mut s = tokio::net::UnixStream::connect(path)
        .await
        .expect("connect");
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("closed in time")
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
    let mut c = Client {
        r,
        w,
        serial: 0,
        name: String::new(),
        queue: Default::default(),
    };
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

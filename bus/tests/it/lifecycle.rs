//! Disconnecting: by us, by the peer, pending calls, dropping the last handle.

use fastbus::{DisconnectReason, Error, Fault, MatchRule, Message, MessageBus};
use fastbus_wire::Flags;

use crate::common::{IFACE, PATH, run, test_call, within};

#[tokio::test]
async fn disconnect_fails_pending_calls_at_once() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let pending = {
            let bus = bus.clone();
            let m = test_call(&dest, "Sleep")
                .body(&(60_000u32,))
                .build()
                .unwrap();
            tokio::spawn(async move { bus.call(m).await })
        };
        // Make sure the call is out before disconnecting.
        let _: String = within(bus.call_method(&dest, PATH, IFACE, "Echo", &("x",)))
            .await
            .unwrap();
        bus.disconnect().await;
        let r = within(pending).await.unwrap();
        assert!(
            matches!(r, Err(Error::Disconnected(DisconnectReason::ByUs))),
            "{r:?}"
        );
        assert!(!bus.is_connected());
        assert!(matches!(
            within(bus.wait_for_disconnect()).await,
            DisconnectReason::ByUs
        ));
        // Nothing more can be sent.
        let m = test_call(&dest, "Echo").body(&("y",)).build().unwrap();
        assert!(matches!(bus.call(m).await, Err(Error::Disconnected(_))));
    })
    .await;
}

#[tokio::test]
async fn peer_going_away_fails_pending_calls_and_ends_streams() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let mut stream = within(bus.subscribe(MatchRule::parse("type='signal'").unwrap()))
            .await
            .unwrap();
        let pending = {
            let bus = bus.clone();
            let m = test_call(&dest, "Sleep")
                .body(&(60_000u32,))
                .build()
                .unwrap();
            tokio::spawn(async move { bus.call(m).await })
        };
        let _: String = within(bus.call_method(&dest, PATH, IFACE, "Echo", &("x",)))
            .await
            .unwrap();
        env.stop().await;
        let r = within(pending).await.unwrap();
        assert!(matches!(r, Err(Error::Disconnected(_))), "{r:?}");
        let how = within(bus.wait_for_disconnect()).await;
        assert!(
            matches!(how, DisconnectReason::ByPeer | DisconnectReason::Error(_)),
            "{how:?}"
        );
        // Drain whatever arrived (NameAcquired...), then the end.
        while let Some(_item) = within(stream.next()).await {}
        assert!(!bus.is_connected());
    })
    .await;
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_connection() {
    run(|env| async move {
        let watcher = env.connect().await;
        let bus = env.connect().await;
        let name = bus.unique_name().unwrap().to_owned();
        let rule = MatchRule::parse(&format!(
            "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='{name}'"
        ))
        .unwrap();
        let mut changes = within(watcher.subscribe(rule)).await.unwrap();
        let clone = bus.clone();
        drop(bus);
        // Still open: a clone is alive.
        let _: Vec<String> = within(clone.call_method(
            fastbus::DBUS_NAME,
            fastbus::DBUS_PATH,
            fastbus::DBUS_INTERFACE,
            "ListNames",
            &(),
        ))
        .await
        .unwrap();
        drop(clone);
        let m = within(changes.next()).await.unwrap().unwrap();
        let (n, old, new): (&str, &str, &str) = m.body().unwrap();
        assert_eq!((n, old, new), (name.as_str(), name.as_str(), ""));
    })
    .await;
}

#[tokio::test]
async fn bytes_that_can_never_be_a_message_end_the_connection_with_an_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    theirs.set_nonblocking(true).unwrap();
    let mut theirs = tokio::net::UnixStream::from_std(theirs).unwrap();
    let t = fastbus_transport::UnixTransport::from_std(ours).unwrap();
    let (r, w) = fastbus_transport::raw_framed(Box::new(t));
    let bus = MessageBus::builder()
        .framed(r, w)
        .peer_to_peer(true)
        .connect()
        .await
        .unwrap();
    let mut stream = within(bus.subscribe(MatchRule::parse("type='signal'").unwrap()))
        .await
        .unwrap();
    let pending = {
        let bus = bus.clone();
        let m = Message::method_call("/a", "Never").build().unwrap();
        tokio::spawn(async move { bus.call(m).await })
    };
    // Make sure the call is out: the peer reads it (it is answered with garbage).
    let mut buf = [0u8; 16];
    within(theirs.read_exact(&mut buf)).await.unwrap();
    within(theirs.write_all(b"not a D-Bus message at all"))
        .await
        .unwrap();
    let how = within(bus.wait_for_disconnect()).await;
    let DisconnectReason::Error(e) = &how else {
        panic!("expected an error, got {how:?}");
    };
    assert_eq!(e.fault(), Fault::Peer, "{e}");
    let r = within(pending).await.unwrap();
    assert!(
        matches!(&r, Err(Error::Disconnected(DisconnectReason::Error(_)))),
        "{r:?}"
    );
    assert!(within(stream.next()).await.is_none());
    assert!(!bus.is_connected());
}

/// Sends `n` Echo calls with a 64 KiB argument and no reply expected: more than a socket
/// buffer holds, so part of them is still queued in the connection afterwards.
fn flood(bus: &MessageBus, dest: &str, n: usize) {
    let big = "x".repeat(64 * 1024);
    for _ in 0..n {
        bus.send(
            test_call(dest, "Echo")
                .flags(Flags::NO_REPLY_EXPECTED)
                .body(&(big.as_str(),))
                .build()
                .unwrap(),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn queued_messages_are_sent_before_the_connection_closes() {
    run(|env| async move {
        let (svc_bus, svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let mut seen = svc.seen.subscribe();
        // Dropping the last handle...
        let bus = env.connect().await;
        flood(&bus, &dest, 64);
        drop(bus);
        within(seen.wait_for(|n| *n >= 64)).await.unwrap();
        // ...and disconnect(), which returns once the queue is out and the socket shut down.
        let bus = env.connect().await;
        flood(&bus, &dest, 64);
        within(bus.disconnect()).await;
        assert!(!bus.is_connected());
        within(seen.wait_for(|n| *n >= 128)).await.unwrap();
        assert_eq!(svc.calls.load(std::sync::atomic::Ordering::Relaxed), 128);
    })
    .await;
}

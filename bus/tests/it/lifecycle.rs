//! Disconnecting: by us, by the peer, pending calls, dropping the last handle.

use fastbus::{DisconnectReason, Error, MatchRule};

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

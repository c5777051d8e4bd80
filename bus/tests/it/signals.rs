//! Signal subscriptions: delivery, AddMatch/RemoveMatch bookkeeping, overflow, senders given
//! as well-known names, and streams ending with the connection.

use std::time::Duration;

use fastbus::{
    DBUS_INTERFACE, DBUS_NAME, DBUS_PATH, HandlerResult, MatchRule, Message, MessageBus,
    RequestNameFlags,
};
use tokio::sync::mpsc;

use crate::common::{IFACE, PATH, run, within};

fn tick_rule() -> MatchRule {
    MatchRule::parse(&format!("type='signal',interface='{IFACE}',member='Tick'")).unwrap()
}

async fn burst(bus: &MessageBus, dest: &str, n: u32) {
    within(bus.call_method::<_, ()>(dest, PATH, IFACE, "Burst", &(n,)))
        .await
        .unwrap();
}

async fn round_trip(bus: &MessageBus) {
    let _: String = within(bus.call_method(DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "GetId", &()))
        .await
        .unwrap();
}

#[tokio::test]
async fn add_match_once_per_rule_and_remove_match_after_the_last_subscriber() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let svc = svc_bus.unique_name().unwrap().to_owned();
        let client = env.connect().await;
        let me = client.unique_name().unwrap().to_owned();
        // A monitor sees the client's calls to the bus.
        let monitor = env.connect().await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        monitor.add_message_handler(move |m: &Message| {
            let member = m
                .member()
                .map(|x| x.as_str().to_owned())
                .unwrap_or_default();
            if m.sender().is_some_and(|s| s.as_str() == me)
                && (member == "AddMatch" || member == "RemoveMatch")
            {
                let rule = m.body::<&str>().unwrap_or_default().to_owned();
                let _ = tx.send((member, rule));
            }
            // A monitor must never send anything: mark every copy handled, so that no
            // UnknownObject reply goes out for the calls it sees.
            HandlerResult::Handled
        });
        let rules = vec![format!("type='method_call',interface='{DBUS_INTERFACE}'")];
        within(monitor.call_method::<_, ()>(
            DBUS_NAME,
            DBUS_PATH,
            "org.freedesktop.DBus.Monitoring",
            "BecomeMonitor",
            &(rules, 0u32),
        ))
        .await
        .unwrap();

        let mut s1 = within(client.subscribe(tick_rule())).await.unwrap();
        let mut s2 = within(client.subscribe(tick_rule())).await.unwrap();
        burst(&client, &svc, 1).await;
        for s in [&mut s1, &mut s2] {
            let m = within(s.next()).await.unwrap().unwrap();
            assert_eq!(m.body::<u32>().unwrap(), 0);
            assert_eq!(m.sender().unwrap().as_str(), svc);
        }
        drop(s1);
        round_trip(&client).await;
        drop(s2);
        round_trip(&client).await;
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.push(within(rx.recv()).await.unwrap());
        }
        let printed = tick_rule().to_string();
        assert_eq!(
            seen,
            [
                ("AddMatch".to_owned(), printed.clone()),
                ("RemoveMatch".to_owned(), printed)
            ]
        );
        // Nothing more after one more round trip.
        round_trip(&client).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(rx.try_recv().is_err());
    })
    .await;
}

#[tokio::test]
async fn a_full_queue_drops_new_signals_and_says_so_then_the_stream_ends() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let svc = svc_bus.unique_name().unwrap().to_owned();
        let client = env
            .builder()
            .signal_queue_capacity(2)
            .connect()
            .await
            .unwrap();
        let mut s = within(client.subscribe(tick_rule())).await.unwrap();
        // Burst replies after emitting, so all 10 signals are in when the call returns.
        burst(&client, &svc, 10).await;
        assert_eq!(
            within(s.next())
                .await
                .unwrap()
                .unwrap()
                .body::<u32>()
                .unwrap(),
            0
        );
        assert_eq!(
            within(s.next())
                .await
                .unwrap()
                .unwrap()
                .body::<u32>()
                .unwrap(),
            1
        );
        let lagged = within(s.next()).await.unwrap().unwrap_err();
        assert_eq!(lagged.dropped, 8);
        // The connection was not stalled: it still answers.
        round_trip(&client).await;
        client.disconnect().await;
        assert!(
            within(s.next()).await.is_none(),
            "stream ends with the connection"
        );
    })
    .await;
}

#[tokio::test]
async fn sender_given_as_a_well_known_name_matches_its_owner_only() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let svc = svc_bus.unique_name().unwrap().to_owned();
        within(svc_bus.request_name("org.fastbus.Sender", RequestNameFlags::NONE))
            .await
            .unwrap();
        let other = env.connect().await;
        let client = env.connect().await;
        let rule = MatchRule::parse(&format!(
            "type='signal',sender='org.fastbus.Sender',interface='{IFACE}',member='Tick'"
        ))
        .unwrap();
        let mut s = within(client.subscribe(rule)).await.unwrap();
        // The same signal from someone else must not match.
        other
            .send(
                Message::signal(PATH, IFACE, "Tick")
                    .body(&(99u32,))
                    .build()
                    .unwrap(),
            )
            .unwrap();
        round_trip(&other).await;
        burst(&client, &svc, 1).await;
        let m = within(s.next()).await.unwrap().unwrap();
        assert_eq!(m.body::<u32>().unwrap(), 0);
        assert_eq!(m.sender().unwrap().as_str(), svc);
    })
    .await;
}

//! Signal subscriptions: delivery, AddMatch/RemoveMatch bookkeeping, overflow, senders given
//! as well-known names, and streams ending with the connection.

use fastbus::{
    DBUS_INTERFACE, DBUS_NAME, DBUS_PATH, HandlerResult, MatchRule, Message, MessageBus,
    RequestNameFlags,
};
use tokio::sync::mpsc;

use crate::common::{IFACE, PATH, run, scripted_bus, within};

fn tick_rule() -> MatchRule {
    MatchRule::parse(&format!("type='signal',interface='{IFACE}',member='Tick'")).unwrap()
}

async fn burst(bus: &MessageBus, dest: &str, n: u32) {
    within(bus.call_method::<_, ()>(dest, PATH, IFACE, "Burst", &(n,)))
        .await
        .unwrap();
}

/// The next signal of `s`: its `u32` argument and its sender.
async fn next(s: &mut fastbus::SignalStream) -> (u32, String) {
    let m = within(s.next()).await.unwrap().unwrap();
    (
        m.body::<u32>().unwrap(),
        m.sender().unwrap().as_str().to_owned(),
    )
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
                && matches!(member.as_str(), "AddMatch" | "RemoveMatch" | "GetId")
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
        // The monitor sees the client's calls in the order the bus got them; the last GetId
        // marks the end, so nothing else (no second AddMatch, no early RemoveMatch) came.
        let mut seen = Vec::new();
        while seen.len() < 4 {
            seen.push(within(rx.recv()).await.unwrap());
        }
        let printed = tick_rule().to_string();
        let get_id = ("GetId".to_owned(), String::new());
        assert_eq!(
            seen,
            [
                ("AddMatch".to_owned(), printed.clone()),
                get_id.clone(),
                ("RemoveMatch".to_owned(), printed),
                get_id
            ]
        );
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
async fn sender_given_as_a_well_known_name_matches_its_current_owner_only() {
    // CVE-2024-34397: a rule naming a well-known sender must not accept a signal from another
    // connection, even when that signal reaches us through a broader rule.
    run(|env| async move {
        let name = "org.fastbus.Sender";
        let (svc_bus, _svc) = env.service().await;
        let svc = svc_bus.unique_name().unwrap().to_owned();
        within(svc_bus.request_name(name, RequestNameFlags::NONE))
            .await
            .unwrap();
        let (other, _other_svc) = env.service().await;
        let other_name = other.unique_name().unwrap().to_owned();
        let client = env.connect().await;
        let mut broad = within(client.subscribe(tick_rule())).await.unwrap();
        let rule = MatchRule::parse(&format!(
            "type='signal',sender='{name}',interface='{IFACE}',member='Tick'"
        ))
        .unwrap();
        let mut owned = within(client.subscribe(rule)).await.unwrap();
        let tick = |n: u32| {
            Message::signal(PATH, IFACE, "Tick")
                .body(&(n,))
                .build()
                .unwrap()
        };
        // Another connection's Tick reaches the client (the broad rule), but not `owned`.
        other.send(tick(99)).unwrap();
        round_trip(&other).await;
        burst(&client, &svc, 1).await;
        assert_eq!(next(&mut broad).await, (99, other_name.clone()));
        assert_eq!(next(&mut broad).await, (0, svc.clone()));
        assert_eq!(next(&mut owned).await, (0, svc.clone()));
        // The name changes hands: now only the new owner's signals match.
        within(svc_bus.release_name(name)).await.unwrap();
        within(other.request_name(name, RequestNameFlags::NONE))
            .await
            .unwrap();
        burst(&client, &svc, 1).await;
        other.send(tick(5)).unwrap();
        round_trip(&other).await;
        assert_eq!(next(&mut broad).await, (0, svc.clone()));
        assert_eq!(next(&mut broad).await, (5, other_name.clone()));
        // The old owner's Tick came first and was not delivered.
        assert_eq!(next(&mut owned).await, (5, other_name));
    })
    .await;
}

#[tokio::test]
async fn a_signal_right_behind_the_add_match_reply_is_not_lost() {
    // The subscription exists before AddMatch is sent, so a signal the bus routes right after
    // adding the rule (here in the same write as the reply) reaches the stream.
    let (bus, mut from_client, mut to_client) = scripted_bus().await;
    let sub = tokio::spawn({
        let bus = bus.clone();
        async move { bus.subscribe(tick_rule()).await }
    });
    let add = within(from_client.next_message()).await.unwrap().unwrap();
    assert_eq!(add.member().unwrap().as_str(), "AddMatch");
    assert_eq!(add.body::<&str>().unwrap(), tick_rule().to_string());
    let reply = Message::method_return(&add)
        .sender(DBUS_NAME)
        .serial(2)
        .build()
        .unwrap();
    let signal = Message::signal(PATH, IFACE, "Tick")
        .sender(":1.9")
        .serial(3)
        .body(&(42u32,))
        .build()
        .unwrap();
    to_client.queue(&reply).unwrap();
    to_client.queue(&signal).unwrap();
    within(to_client.flush()).await.unwrap();
    let mut stream = within(sub).await.unwrap().unwrap();
    let m = within(stream.next()).await.unwrap().unwrap();
    assert_eq!(m.body::<u32>().unwrap(), 42);
}

#[tokio::test]
async fn a_refused_add_match_fails_every_subscriber_of_the_rule() {
    let (bus, mut from_client, mut to_client) = scripted_bus().await;
    let script = async {
        let add = within(from_client.next_message()).await.unwrap().unwrap();
        assert_eq!(add.member().unwrap().as_str(), "AddMatch");
        let refusal = Message::error(
            &add,
            "org.freedesktop.DBus.Error.LimitsExceeded",
            "too many rules",
        )
        .sender(DBUS_NAME)
        .serial(2)
        .build()
        .unwrap();
        to_client.queue(&refusal).unwrap();
        within(to_client.flush()).await.unwrap();
    };
    // `join!` polls in order: both subscribers are registered before the bus answers.
    let (first, second, ()) = tokio::join!(
        bus.subscribe(tick_rule()),
        bus.subscribe(tick_rule()),
        script
    );
    for r in [first, second] {
        let e = r.unwrap_err();
        assert_eq!(
            e.error_name(),
            Some("org.freedesktop.DBus.Error.LimitsExceeded"),
            "{e}"
        );
    }
    // One AddMatch only, and no RemoveMatch for a rule the bus never added: the next thing
    // the bus hears is this call.
    let call = tokio::spawn({
        let bus = bus.clone();
        async move {
            bus.call(
                Message::method_call("/marker", "Marker")
                    .destination("org.fastbus.Marker")
                    .build()
                    .unwrap(),
            )
            .await
        }
    });
    let next = within(from_client.next_message()).await.unwrap().unwrap();
    assert_eq!(next.member().unwrap().as_str(), "Marker");
    let reply = Message::method_return(&next).serial(3).build().unwrap();
    to_client.queue(&reply).unwrap();
    within(to_client.flush()).await.unwrap();
    within(call).await.unwrap().unwrap();
}

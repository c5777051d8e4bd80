//! conformance/testbus.md, point by point, run against testbus and dbus-daemon.

use fastbus_wire::{Flags, Message, MessageType, Value};

use crate::both;
use crate::harness::{Client, Daemon, Kind, bus_call, error_name, member_is};

const DBUS: &str = "org.freedesktop.DBus";
const E: &str = "org.freedesktop.DBus.Error.";

fn sig(path: &str, member: &str) -> fastbus_wire::MessageBuilder {
    Message::signal(path, "org.example.Test", member)
}

// 1. Hello must come first.
async fn message_to_a_peer_before_hello_disconnects(d: Daemon) {
    let other = d.client().await;
    let mut c = Client::connect_raw(&d.address).await;
    c.send(sig("/a", "S").destination(other.name.as_str()))
        .await;
    c.expect_closed().await;
}
both!(
    hello_first_peer_message_disconnects,
    message_to_a_peer_before_hello_disconnects
);

async fn bus_call_before_hello_is_access_denied_and_kept(d: Daemon) {
    let mut c = Client::connect_raw(&d.address).await;
    let r = c.call(bus_call("ListNames")).await;
    assert_eq!(error_name(&r), format!("{E}AccessDenied"));
    c.hello().await;
    assert!(c.name.starts_with(':'));
}
both!(
    hello_first_bus_call_access_denied,
    bus_call_before_hello_is_access_denied_and_kept
);

async fn second_hello_fails(d: Daemon) {
    let mut c = d.client().await;
    assert_eq!(c.bus_error("Hello", &()).await, format!("{E}Failed"));
}
both!(hello_twice_fails, second_hello_fails);

async fn hello_on_any_path(d: Daemon) {
    let mut c = Client::connect_raw(&d.address).await;
    let r = c
        .call(
            Message::method_call("/some/where", "Hello")
                .interface(DBUS)
                .destination(DBUS),
        )
        .await;
    assert_eq!(error_name(&r), "");
}
both!(hello_accepted_on_any_path, hello_on_any_path);

// 2. Unique names.
async fn unique_names_have_the_form_and_are_distinct(d: Daemon) {
    let a = d.client().await;
    let b = d.client().await;
    for n in [&a.name, &b.name] {
        let rest = n.strip_prefix(":").expect("starts with :");
        let (maj, min) = rest.split_once('.').expect("major.minor");
        assert!(
            maj.parse::<u64>().is_ok() && min.parse::<u64>().is_ok(),
            "{n}"
        );
    }
    assert_ne!(a.name, b.name);
}
both!(
    unique_name_form,
    unique_names_have_the_form_and_are_distinct
);

// 3. Order after Hello.
async fn hello_reply_then_name_owner_changed_then_name_acquired(d: Daemon) {
    let mut watcher = d.client().await;
    watcher
        .add_match("type='signal',member='NameOwnerChanged'")
        .await;
    let mut c = Client::connect_raw(&d.address).await;
    let s = c.send(bus_call("Hello")).await;
    let first = c.recv().await;
    assert_eq!(first.reply_serial(), Some(s));
    let name: String = first.body::<&str>().expect("name").to_owned();
    let second = c.recv().await;
    assert!(member_is(&second, "NameAcquired"));
    assert_eq!(second.body::<&str>().ok(), Some(name.as_str()));
    let noc = watcher
        .recv_where(|m| {
            member_is(m, "NameOwnerChanged")
                && m.body::<(&str, &str, &str)>().is_ok_and(|b| b.0 == name)
        })
        .await;
    let (n, old, new): (&str, &str, &str) = noc.body().expect("sss");
    assert_eq!((n, old, new), (name.as_str(), "", name.as_str()));
}
both!(
    order_after_hello,
    hello_reply_then_name_owner_changed_then_name_acquired
);

// 4. SENDER stamping and header filtering.
async fn sender_is_stamped_and_unknown_fields_removed(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    let s = a.next_serial();
    let m = sig("/a", "S")
        .destination(b.name.as_str())
        .sender(":1.999999")
        .unknown_field(100, Value::Str("secret".into()))
        .serial(s)
        .build()
        .expect("build");
    a.send_msg(&m).await;
    let got = b.recv_where(|m| member_is(m, "S")).await;
    assert_eq!(got.sender().map(|s| s.to_string()), Some(a.name.clone()));
    assert!(got.unknown_fields().is_empty());
    let r = b.call_bus("GetId", &()).await;
    assert_eq!(r.sender().map(|s| s.to_string()).as_deref(), Some(DBUS));
    let acq = {
        let mut c = Client::connect_raw(&d.address).await;
        c.send(bus_call("Hello")).await;
        c.recv().await;
        c.recv().await
    };
    assert_eq!(acq.sender().map(|s| s.to_string()).as_deref(), Some(DBUS));
    assert_eq!(
        acq.path().map(|s| s.to_string()).as_deref(),
        Some("/org/freedesktop/DBus")
    );
    assert_eq!(
        acq.interface().map(|s| s.to_string()).as_deref(),
        Some(DBUS)
    );
}
both!(
    sender_stamping,
    sender_is_stamped_and_unknown_fields_removed
);

// 5. Local path or interface → disconnect.
async fn local_path_disconnects(d: Daemon) {
    let mut bystander = d.client().await;
    // The codec refuses to build these, so patch the bytes of a look-alike.
    for (path, iface, from, to) in [
        (
            "/org/freedesktop/DBus/LocaX",
            "org.example.X",
            "/org/freedesktop/DBus/LocaX",
            "/org/freedesktop/DBus/Local",
        ),
        (
            "/a",
            "org.freedesktop.DBus.LocaX",
            "org.freedesktop.DBus.LocaX",
            "org.freedesktop.DBus.Local",
        ),
    ] {
        let mut c = d.client().await;
        let s = c.next_serial();
        let m = Message::signal(path, iface, "S")
            .serial(s)
            .build()
            .expect("build");
        let mut bytes = m.encode().expect("encode");
        let at = bytes
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .expect("field");
        bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
        c.send_bytes(&bytes, Vec::new()).await;
        c.expect_closed().await;
    }
    assert_eq!(bystander.bus_error("GetId", &()).await, "");
}
both!(local_path_or_interface_disconnects, local_path_disconnects);

// 6. RequestName.
async fn request_name_codes_and_errors(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    let code = |m: Message| m.body::<u32>().expect("u");
    assert_eq!(
        code(a.call_bus("RequestName", &("org.example.N", 0u32)).await),
        1
    );
    assert_eq!(
        code(a.call_bus("RequestName", &("org.example.N", 0u32)).await),
        4
    );
    assert_eq!(
        code(b.call_bus("RequestName", &("org.example.N", 4u32)).await),
        3
    );
    assert_eq!(
        code(b.call_bus("RequestName", &("org.example.N", 0u32)).await),
        2
    );
    // B is queued; asking again with DO_NOT_QUEUE removes it from the queue.
    assert_eq!(
        code(b.call_bus("RequestName", &("org.example.N", 4u32)).await),
        3
    );
    let q = a.call_bus("ListQueuedOwners", &("org.example.N",)).await;
    assert_eq!(q.body::<Vec<&str>>().expect("as"), [a.name.as_str()]);
    // Replacement needs ALLOW_REPLACEMENT on the owner and REPLACE_EXISTING on the caller.
    assert_eq!(
        code(b.call_bus("RequestName", &("org.example.N", 2u32)).await),
        2
    );
    assert_eq!(
        code(a.call_bus("RequestName", &("org.example.N", 1u32)).await),
        4
    );
    assert_eq!(
        code(b.call_bus("RequestName", &("org.example.N", 2u32)).await),
        1
    );
    let q = a.call_bus("ListQueuedOwners", &("org.example.N",)).await;
    assert_eq!(
        q.body::<Vec<&str>>().expect("as"),
        [b.name.as_str(), a.name.as_str()]
    );
    for bad in ["", "nodots", ":1.5", "org.freedesktop.DBus", "a..b", "1a.b"] {
        assert_eq!(
            a.bus_error("RequestName", &(bad, 0u32)).await,
            format!("{E}InvalidArgs"),
            "{bad:?}"
        );
    }
}
both!(request_name, request_name_codes_and_errors);

// 7. Signal order on an ownership change.
async fn name_lost_owner_changed_acquired_then_reply(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    a.add_match("type='signal',member='NameOwnerChanged',arg0='org.example.O'")
        .await;
    b.add_match("type='signal',member='NameOwnerChanged',arg0='org.example.O'")
        .await;
    assert_eq!(
        a.call_bus("RequestName", &("org.example.O", 1u32))
            .await
            .body::<u32>()
            .ok(),
        Some(1)
    );
    a.drain().await;
    b.drain().await;
    let s = b
        .send(bus_call("RequestName").body(&("org.example.O", 2u32)))
        .await;
    let mut seen = Vec::new();
    loop {
        let m = b.recv().await;
        let done = m.reply_serial() == Some(s);
        seen.push(
            m.member()
                .map(|x| x.to_string())
                .unwrap_or_else(|| "reply".into()),
        );
        if done {
            break;
        }
    }
    assert_eq!(seen, ["NameOwnerChanged", "NameAcquired", "reply"]);
    let on_a: Vec<String> = a
        .drain()
        .await
        .iter()
        .filter_map(|m| m.member().map(|x| x.to_string()))
        .collect();
    assert_eq!(on_a, ["NameLost", "NameOwnerChanged"]);
}
both!(
    ownership_signal_order,
    name_lost_owner_changed_acquired_then_reply
);

// 8. ReleaseName.
async fn release_name_codes(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    let code = |m: Message| m.body::<u32>().expect("u");
    assert_eq!(
        code(a.call_bus("ReleaseName", &("org.example.R",)).await),
        2
    );
    a.call_bus("RequestName", &("org.example.R", 0u32)).await;
    assert_eq!(
        code(b.call_bus("ReleaseName", &("org.example.R",)).await),
        3
    );
    assert_eq!(
        code(b.call_bus("RequestName", &("org.example.R", 0u32)).await),
        2
    );
    assert_eq!(
        code(b.call_bus("ReleaseName", &("org.example.R",)).await),
        1
    );
    let q = a.call_bus("ListQueuedOwners", &("org.example.R",)).await;
    assert_eq!(q.body::<Vec<&str>>().expect("as"), [a.name.as_str()]);
    assert_eq!(
        a.bus_error("ReleaseName", &(":1.1",)).await,
        format!("{E}InvalidArgs")
    );
    assert_eq!(
        a.bus_error("ReleaseName", &(DBUS,)).await,
        format!("{E}InvalidArgs")
    );
    assert_eq!(
        code(a.call_bus("ReleaseName", &("org.example.R",)).await),
        1
    );
    assert_eq!(
        code(a.call_bus("ReleaseName", &("org.example.R",)).await),
        2
    );
}
both!(release_name, release_name_codes);

// 9. Disconnect: names move on, unique name goes.
async fn names_move_to_the_queue_on_disconnect(d: Daemon) {
    let mut w = d.client().await;
    w.add_match("type='signal',member='NameOwnerChanged'").await;
    let mut a = d.client().await;
    let mut b = d.client().await;
    a.call_bus("RequestName", &("org.example.D", 0u32)).await;
    a.call_bus("RequestName", &("org.example.E", 0u32)).await;
    b.call_bus("RequestName", &("org.example.D", 0u32)).await;
    let a_name = a.name.clone();
    w.drain().await;
    drop(a);
    let acq = b.recv_where(|m| member_is(m, "NameAcquired")).await;
    assert_eq!(acq.body::<&str>().ok(), Some("org.example.D"));
    let mut changes = Vec::new();
    while changes.len() < 3 {
        let m = w.recv_where(|m| member_is(m, "NameOwnerChanged")).await;
        let (n, o, nw): (&str, &str, &str) = m.body().expect("sss");
        changes.push((n.to_owned(), o.to_owned(), nw.to_owned()));
    }
    changes.sort();
    let mut want = vec![
        (a_name.clone(), a_name.clone(), String::new()),
        ("org.example.D".to_owned(), a_name.clone(), b.name.clone()),
        ("org.example.E".to_owned(), a_name.clone(), String::new()),
    ];
    want.sort();
    assert_eq!(changes, want);
}
both!(
    disconnect_moves_names,
    names_move_to_the_queue_on_disconnect
);

// 10–13. ListNames, ListQueuedOwners, GetNameOwner, NameHasOwner.
async fn name_queries(d: Daemon) {
    let mut a = d.client().await;
    a.call_bus("RequestName", &("org.example.Q", 0u32)).await;
    let names = a.call_bus("ListNames", &()).await;
    let names: Vec<&str> = names.body().expect("as");
    assert_eq!(names.first().copied(), Some(DBUS));
    assert!(names.contains(&"org.example.Q") && names.contains(&a.name.as_str()));
    let act = a.call_bus("ListActivatableNames", &()).await;
    assert!(act.body::<Vec<&str>>().expect("as").contains(&DBUS));
    let q = a.call_bus("ListQueuedOwners", &(DBUS,)).await;
    assert_eq!(q.body::<Vec<&str>>().expect("as"), [DBUS]);
    assert_eq!(
        a.bus_error("ListQueuedOwners", &("org.example.None",))
            .await,
        format!("{E}NameHasNoOwner")
    );
    let o = a.call_bus("GetNameOwner", &("org.example.Q",)).await;
    assert_eq!(o.body::<&str>().ok(), Some(a.name.as_str()));
    let o = a.call_bus("GetNameOwner", &(DBUS,)).await;
    assert_eq!(o.body::<&str>().ok(), Some(DBUS));
    assert_eq!(
        a.bus_error("GetNameOwner", &("org.example.None",)).await,
        format!("{E}NameHasNoOwner")
    );
    for (n, want) in [
        ("org.example.Q", true),
        (DBUS, true),
        ("org.example.None", false),
    ] {
        let r = a.call_bus("NameHasOwner", &(n,)).await;
        assert_eq!(r.body::<bool>().ok(), Some(want), "{n}");
    }
    let own = a.name.clone();
    let r = a.call_bus("NameHasOwner", &(own.as_str(),)).await;
    assert_eq!(r.body::<bool>().ok(), Some(true));
}
both!(name_queries_answer, name_queries);

// 14. Unicast to a missing name.
async fn missing_destination_errors(d: Daemon) {
    let mut a = d.client().await;
    let r = a
        .call(
            Message::method_call("/a", "M")
                .destination("org.example.Missing")
                .flags(Flags::NO_AUTO_START),
        )
        .await;
    assert_eq!(error_name(&r), format!("{E}NameHasNoOwner"));
    let r = a
        .call(Message::method_call("/a", "M").destination("org.example.Missing"))
        .await;
    assert_eq!(error_name(&r), format!("{E}ServiceUnknown"));
    assert_eq!(
        r.destination().map(|x| x.to_string()),
        Some(a.name.clone()),
        "errors go to the caller"
    );
    let r = a
        .call(
            Message::method_call("/a", "M")
                .destination(":1.999999")
                .flags(Flags::NO_AUTO_START),
        )
        .await;
    assert_eq!(error_name(&r), format!("{E}NameHasNoOwner"));
    assert_eq!(
        a.bus_error("StartServiceByName", &("org.example.Missing", 0u32))
            .await,
        format!("{E}ServiceUnknown")
    );
}
both!(missing_destination, missing_destination_errors);

// 15. Driver method errors.
async fn driver_errors(d: Daemon) {
    let mut a = d.client().await;
    assert_eq!(
        a.bus_error("NoSuchMethod", &()).await,
        format!("{E}UnknownMethod")
    );
    let r = a
        .call(
            Message::method_call("/org/freedesktop/DBus", "X")
                .interface("org.example.Nope")
                .destination(DBUS),
        )
        .await;
    assert_eq!(error_name(&r), format!("{E}UnknownInterface"));
    assert_eq!(
        a.bus_error("GetNameOwner", &(1u32,)).await,
        format!("{E}InvalidArgs")
    );
    let r = a
        .call(
            Message::method_call("/elsewhere", "Get")
                .interface("org.freedesktop.DBus.Properties")
                .destination(DBUS)
                .body(&(DBUS, "Features")),
        )
        .await;
    assert_eq!(error_name(&r), format!("{E}UnknownInterface"));
    let r = a
        .call(
            Message::method_call("/elsewhere", "UpdateActivationEnvironment")
                .interface(DBUS)
                .destination(DBUS)
                .body(&(std::collections::HashMap::<String, String>::new(),)),
        )
        .await;
    assert_eq!(error_name(&r), format!("{E}AccessDenied"));
    let r = a
        .call(
            Message::method_call("/elsewhere", "GetId")
                .interface(DBUS)
                .destination(DBUS),
        )
        .await;
    assert_eq!(error_name(&r), "", "older methods work on any path");
}
both!(driver_method_errors, driver_errors);

// 16–17. Standard interfaces; no destination.
async fn standard_interfaces(d: Daemon) {
    let mut a = d.client().await;
    let props = |m: &str| {
        Message::method_call("/org/freedesktop/DBus", m)
            .interface("org.freedesktop.DBus.Properties")
            .destination(DBUS)
    };
    let r = a.call(props("Get").body(&(DBUS, "Features"))).await;
    let v: Value = r.body().expect("v");
    let Value::Array(arr) = v else {
        panic!("as expected: {v:?}")
    };
    assert!(arr.items().contains(&Value::Str("HeaderFiltering".into())));
    let r = a.call(props("Get").body(&(DBUS, "Interfaces"))).await;
    let Value::Array(arr) = r.body::<Value>().expect("v") else {
        panic!("as")
    };
    assert!(
        arr.items()
            .contains(&Value::Str("org.freedesktop.DBus.Monitoring".into()))
    );
    let r = a.call(props("GetAll").body(&(DBUS,))).await;
    assert_eq!(r.signature().as_str(), "a{sv}");
    let r = a
        .call(props("Set").body(&(DBUS, "Features", Value::U32(1))))
        .await;
    assert_eq!(error_name(&r), format!("{E}PropertyReadOnly"));
    let r = a
        .call(
            Message::method_call("/org/freedesktop/DBus", "Introspect")
                .interface("org.freedesktop.DBus.Introspectable")
                .destination(DBUS),
        )
        .await;
    let xml: &str = r.body().expect("s");
    assert!(
        xml.contains("<interface name=\"org.freedesktop.DBus\">") && xml.contains("RequestName")
    );
    let r = a
        .call(
            Message::method_call("/org/freedesktop/DBus", "Ping")
                .interface("org.freedesktop.DBus.Peer")
                .destination(DBUS),
        )
        .await;
    assert_eq!(r.message_type(), MessageType::METHOD_RETURN);
    // 17: a Peer call without destination is answered by the bus.
    let r = a
        .call(Message::method_call("/", "Ping").interface("org.freedesktop.DBus.Peer"))
        .await;
    assert_eq!(r.message_type(), MessageType::METHOD_RETURN);
    if std::path::Path::new("/etc/machine-id").exists() {
        let r = a
            .call(
                Message::method_call("/org/freedesktop/DBus", "GetMachineId")
                    .interface("org.freedesktop.DBus.Peer")
                    .destination(DBUS),
            )
            .await;
        let id: &str = r.body().expect("s");
        assert_eq!(id.len(), 32);
    }
}
both!(standard_interfaces_on_the_bus, standard_interfaces);

// 18. Broadcast by rules; unicast regardless of rules.
async fn broadcast_and_unicast(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    let mut c = d.client().await;
    b.add_match("type='signal',interface='org.example.Test',member='Yes'")
        .await;
    c.add_match("type='signal',member='Other'").await;
    a.send(sig("/p", "Yes")).await;
    a.send(sig("/p", "Direct").destination(c.name.as_str()))
        .await;
    a.send(sig("/p", "Direct").destination(b.name.as_str()))
        .await;
    a.drain().await;
    let got_b: Vec<String> = b
        .drain()
        .await
        .iter()
        .filter_map(|m| m.member().map(|x| x.to_string()))
        .collect();
    let got_c: Vec<String> = c
        .drain()
        .await
        .iter()
        .filter_map(|m| m.member().map(|x| x.to_string()))
        .collect();
    assert_eq!(got_b, ["Yes", "Direct"]);
    assert_eq!(got_c, ["Direct"]);
}
both!(broadcast_by_rules_unicast_regardless, broadcast_and_unicast);

// 19. NoReply when the callee disconnects.
async fn no_reply_on_callee_disconnect(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    let s = a
        .send(
            Message::method_call("/x", "Slow")
                .interface("org.example.Test")
                .destination(b.name.as_str()),
        )
        .await;
    a.send(
        Message::method_call("/x", "Quiet")
            .destination(b.name.as_str())
            .flags(Flags::NO_REPLY_EXPECTED),
    )
    .await;
    b.recv_where(|m| member_is(m, "Quiet")).await;
    drop(b);
    let r = a.recv_where(|m| m.reply_serial() == Some(s)).await;
    assert_eq!(error_name(&r), format!("{E}NoReply"));
    let rest = a.drain().await;
    assert!(
        rest.iter().all(|m| m.message_type() == MessageType::SIGNAL),
        "{rest:?}"
    );
}
both!(
    no_reply_when_callee_disconnects,
    no_reply_on_callee_disconnect
);

// 20. Replies nobody asked for are dropped (testbus; dbus-daemon's session policy lets them through).
#[tokio::test]
async fn unrequested_replies_are_dropped() {
    let d = Daemon::start(Kind::TestBus).await.expect("testbus");
    let mut a = d.client().await;
    let mut b = d.client().await;
    a.send(
        Message::builder(MessageType::METHOD_RETURN)
            .reply_serial(77)
            .destination(b.name.as_str()),
    )
    .await;
    a.send(
        Message::builder(MessageType::ERROR)
            .error_name("org.example.E")
            .reply_serial(78)
            .destination(b.name.as_str()),
    )
    .await;
    a.drain().await;
    assert!(b.drain().await.is_empty());
    // A requested reply goes through, once.
    let s = b
        .send(Message::method_call("/x", "M").destination(a.name.as_str()))
        .await;
    let call = a.recv_where(|m| member_is(m, "M")).await;
    a.send(Message::method_return(&call)).await;
    a.send(Message::method_return(&call)).await;
    let got = b.drain().await;
    assert_eq!(
        got.iter().filter(|m| m.reply_serial() == Some(s)).count(),
        1
    );
}

// 21. Limits.
async fn limits_exceeded(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    for n in ["org.example.L1", "org.example.L2"] {
        assert_eq!(a.bus_error("RequestName", &(n, 0u32)).await, "");
    }
    assert_eq!(
        a.bus_error("RequestName", &("org.example.L3", 0u32)).await,
        format!("{E}LimitsExceeded")
    );
    for i in 0..2 {
        a.add_match(&format!("member='M{i}'")).await;
    }
    assert_eq!(
        a.bus_error("AddMatch", &("member='M9'",)).await,
        format!("{E}LimitsExceeded")
    );
    for _ in 0..2 {
        a.send(Message::method_call("/x", "Call").destination(b.name.as_str()))
            .await;
    }
    let r = a
        .call(Message::method_call("/x", "Call").destination(b.name.as_str()))
        .await;
    assert_eq!(error_name(&r), format!("{E}LimitsExceeded"));
    b.drain().await;
}
both!(
    limits_are_enforced,
    limits_exceeded,
    &[
        ("max_names_per_connection", 3),
        ("max_match_rules_per_connection", 2),
        ("max_replies_per_connection", 2)
    ]
);

// 22–23. Match rule grammar through AddMatch.
async fn match_rule_grammar(d: Daemon) {
    let mut a = d.client().await;
    for ok in [
        "",
        "type='signal'",
        "type='signal', member='X'",
        "arg0='a\\'",
        "eavesdrop='true'",
        "arg63='x'",
        "arg3path='/a/'",
        "arg0namespace='com'",
    ] {
        assert_eq!(a.bus_error("AddMatch", &(ok,)).await, "", "{ok:?}");
    }
    for bad in [
        "typ='signal'",
        "member='A',member='B'",
        "arg64='x'",
        "arg='x'",
        "arg0x='x'",
        "arg1namespace='a'",
        "arg0namespace=''",
        "arg0namespace='a.'",
        "path_namespace='/a/'",
        "sender='1bad'",
        "interface='nodot'",
        "member='a.b'",
        "path='x'",
        "type='bogus'",
        "type",
        "member='open",
        "eavesdrop='yes'",
        "path='/a',path_namespace='/b'",
    ] {
        assert_eq!(
            a.bus_error("AddMatch", &(bad,)).await,
            format!("{E}MatchRuleInvalid"),
            "{bad:?}"
        );
    }
    let long = format!("member='{}'", "a".repeat(1100));
    assert_eq!(
        a.bus_error("AddMatch", &(long.as_str(),)).await,
        format!("{E}LimitsExceeded")
    );
}
both!(match_rule_grammar_through_add_match, match_rule_grammar);

// 24. Semantics through the bus.
async fn match_semantics(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    b.add_match("type='signal',path_namespace='/a',arg0='x'")
        .await;
    b.add_match("type='signal',interface='org.example.Test',member='P',arg1path='/p/'")
        .await;
    a.send(sig("/a", "S").body(&("x",))).await;
    a.send(sig("/a/b", "S").body(&("x",))).await;
    a.send(sig("/ab", "S").body(&("x",))).await;
    a.send(sig("/a", "S").body(&("y",))).await;
    a.send(sig("/a", "S").body(&(fastbus_wire::ObjectPath::new("/x").expect("p"),)))
        .await;
    a.send(sig("/z", "P").body(&("q", fastbus_wire::ObjectPath::new("/p/q").expect("p"))))
        .await;
    a.send(sig("/z", "P").body(&("q", "/q"))).await;
    a.drain().await;
    let got: Vec<String> = b
        .drain()
        .await
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m.path().map(|p| p.to_string()).unwrap_or_default(),
                m.member().map(|x| x.to_string()).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(got, ["/a:S", "/a/b:S", "/z:P"]);
}
both!(match_semantics_through_the_bus, match_semantics);

// 25. RemoveMatch (CVE-2006-6107).
async fn remove_match_rules(d: Daemon) {
    let mut a = d.client().await;
    let mut b = d.client().await;
    let mut s = d.client().await;
    a.add_match("type='signal',member='R'").await;
    a.add_match("member='R',type='signal'").await;
    assert_eq!(
        b.bus_error("RemoveMatch", &("type='signal',member='R'",))
            .await,
        format!("{E}MatchRuleNotFound")
    );
    assert_eq!(
        a.bus_error("RemoveMatch", &("member='R', type='signal'",))
            .await,
        ""
    );
    s.send(sig("/r", "R")).await;
    s.drain().await;
    assert_eq!(
        a.drain().await.iter().filter(|m| member_is(m, "R")).count(),
        1,
        "one instance left"
    );
    assert_eq!(
        a.bus_error("RemoveMatch", &("type='signal',member='R'",))
            .await,
        ""
    );
    assert_eq!(
        a.bus_error("RemoveMatch", &("type='signal',member='R'",))
            .await,
        format!("{E}MatchRuleNotFound")
    );
    assert_eq!(
        a.bus_error("RemoveMatch", &("bogus",)).await,
        format!("{E}MatchRuleInvalid")
    );
}
both!(remove_match, remove_match_rules);

// 26. sender='well.known' by ownership.
async fn sender_rule_by_ownership(d: Daemon) {
    let mut owner = d.client().await;
    let mut other = d.client().await;
    let mut w = d.client().await;
    owner
        .call_bus("RequestName", &("org.example.Owner", 0u32))
        .await;
    w.add_match("type='signal',sender='org.example.Owner',member='T'")
        .await;
    other.send(sig("/t", "T")).await;
    owner.send(sig("/t", "T")).await;
    other.drain().await;
    owner.drain().await;
    let got: Vec<String> = w
        .drain()
        .await
        .iter()
        .filter(|m| member_is(m, "T"))
        .filter_map(|m| m.sender().map(|s| s.to_string()))
        .collect();
    assert_eq!(got, [owner.name.clone()]);
}
both!(sender_rule_matches_by_ownership, sender_rule_by_ownership);

// 27–29. Credentials and identity.
async fn credentials(d: Daemon) {
    let mut a = d.client().await;
    a.call_bus("RequestName", &("org.example.C", 0u32)).await;
    let me = a.name.clone();
    let uid = fastbus_transport::Credentials::current_process()
        .uid
        .expect("uid");
    for n in [me.as_str(), "org.example.C"] {
        let r = a.call_bus("GetConnectionUnixUser", &(n,)).await;
        assert_eq!(r.body::<u32>().ok(), Some(uid));
        let r = a.call_bus("GetConnectionUnixProcessID", &(n,)).await;
        assert_eq!(r.body::<u32>().ok(), Some(std::process::id()));
    }
    assert_eq!(
        a.bus_error("GetConnectionUnixUser", &("org.example.None",))
            .await,
        format!("{E}NameHasNoOwner")
    );
    assert_eq!(
        a.bus_error("GetConnectionUnixProcessID", &(":1.99999",))
            .await,
        format!("{E}NameHasNoOwner")
    );
    let r = a
        .call_bus("GetConnectionCredentials", &(me.as_str(),))
        .await;
    let creds: std::collections::HashMap<&str, Value> = r.body().expect("a{sv}");
    assert_eq!(creds.get("UnixUserID"), Some(&Value::U32(uid)));
    assert_eq!(
        creds.get("ProcessID"),
        Some(&Value::U32(std::process::id()))
    );
    assert_eq!(
        a.bus_error("GetAdtAuditSessionData", &(me.as_str(),)).await,
        format!("{E}AdtAuditDataUnknown")
    );
    assert_eq!(
        a.bus_error("GetConnectionSELinuxSecurityContext", &(me.as_str(),))
            .await,
        format!("{E}SELinuxSecurityContextUnknown")
    );
    let r = a.call_bus("GetId", &()).await;
    let id: &str = r.body().expect("s");
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    let guid = d.address.split("guid=").nth(1).unwrap_or_default();
    assert_ne!(id, guid, "GetId is the bus id, not the address guid");
}
both!(credentials_and_identity, credentials);

// 30. BecomeMonitor, and CVE-2023-34969.
async fn monitor(d: Daemon) {
    let mut w = d.client().await;
    w.add_match("type='signal',member='NameOwnerChanged'").await;
    let mut m = d.client().await;
    let mname = m.name.clone();
    m.call_bus("RequestName", &("org.example.Mon", 0u32)).await;
    w.drain().await;
    let become_monitor = |flags: u32| {
        Message::method_call("/org/freedesktop/DBus", "BecomeMonitor")
            .interface("org.freedesktop.DBus.Monitoring")
            .destination(DBUS)
            .body(&(vec!["eavesdrop='true'"], flags))
    };
    let r = m.call(become_monitor(1)).await;
    assert_eq!(error_name(&r), format!("{E}InvalidArgs"));
    let r = m.call(become_monitor(0)).await;
    assert_eq!(error_name(&r), "");
    let mut lost = Vec::new();
    while lost.len() < 2 {
        let x = w.recv_where(|x| member_is(x, "NameOwnerChanged")).await;
        let (n, o, nw): (&str, &str, &str) = x.body().expect("sss");
        assert_eq!((o, nw), (mname.as_str(), ""));
        lost.push(n.to_owned());
    }
    lost.sort();
    assert_eq!(lost, [mname.clone(), "org.example.Mon".to_owned()]);
    // The monitor sees a call between two others.
    let mut a = d.client().await;
    let b = d.client().await;
    a.send(Message::method_call("/m", "Watched").destination(b.name.as_str()))
        .await;
    let seen = m.recv_where(|x| member_is(x, "Watched")).await;
    assert_eq!(seen.sender().map(|s| s.to_string()), Some(a.name.clone()));
    // CVE-2023-34969: unreplyable messages with a monitor attached.
    a.send(
        Message::method_call("/m", "X")
            .destination("org.example.Missing")
            .flags(Flags::NO_REPLY_EXPECTED),
    )
    .await;
    a.send(
        Message::builder(MessageType::METHOD_RETURN)
            .reply_serial(5)
            .destination(b.name.as_str()),
    )
    .await;
    a.send(
        Message::builder(MessageType::ERROR)
            .error_name("org.example.E")
            .reply_serial(6)
            .destination("org.example.Missing"),
    )
    .await;
    assert_eq!(a.bus_error("GetId", &()).await, "", "the bus survives");
    // A monitor that sends anything is disconnected.
    m.send(sig("/m", "Speak")).await;
    m.expect_closed().await;
    assert_eq!(a.bus_error("GetId", &()).await, "");
}
both!(become_monitor, monitor);

// Issue 6 point 2: every driver method answers as dbus-daemon does, including
// the ones that only give errors on this kind of system.
async fn every_driver_method(d: Daemon) {
    let mut a = d.client().await;
    let props = |m: &str| {
        Message::method_call("/org/freedesktop/DBus", m)
            .interface("org.freedesktop.DBus.Properties")
            .destination(DBUS)
    };
    let mut env = std::collections::HashMap::new();
    env.insert("FASTBUS_TEST", "1");
    let got = vec![
        (
            "UpdateActivationEnvironment",
            a.bus_error("UpdateActivationEnvironment", &(env,)).await,
        ),
        ("ReloadConfig", a.bus_error("ReloadConfig", &()).await),
        (
            "SELinux of the bus",
            a.bus_error("GetConnectionSELinuxSecurityContext", &(DBUS,))
                .await,
        ),
        (
            "SELinux of a missing name",
            a.bus_error(
                "GetConnectionSELinuxSecurityContext",
                &("org.example.None",),
            )
            .await,
        ),
        (
            "audit data of the bus",
            a.bus_error("GetAdtAuditSessionData", &(DBUS,)).await,
        ),
        (
            "audit data of a missing name",
            a.bus_error("GetAdtAuditSessionData", &("org.example.None",))
                .await,
        ),
        (
            "StartServiceByName of the bus",
            a.bus_error("StartServiceByName", &(DBUS, 0u32)).await,
        ),
        (
            "Get of a missing property",
            error_name(&a.call(props("Get").body(&(DBUS, "Nope"))).await),
        ),
        (
            "GetAll of a missing interface",
            error_name(&a.call(props("GetAll").body(&("org.example.Nope",))).await),
        ),
        (
            "GetAll of Monitoring",
            error_name(
                &a.call(props("GetAll").body(&("org.freedesktop.DBus.Monitoring",)))
                    .await,
            ),
        ),
    ];
    let want = [
        ("UpdateActivationEnvironment", String::new()),
        ("ReloadConfig", String::new()),
        (
            "SELinux of the bus",
            format!("{E}SELinuxSecurityContextUnknown"),
        ),
        ("SELinux of a missing name", format!("{E}NameHasNoOwner")),
        ("audit data of the bus", format!("{E}AdtAuditDataUnknown")),
        ("audit data of a missing name", format!("{E}NameHasNoOwner")),
        (
            "StartServiceByName of the bus",
            format!("{E}ServiceUnknown"),
        ),
        ("Get of a missing property", format!("{E}UnknownProperty")),
        (
            "GetAll of a missing interface",
            format!("{E}UnknownInterface"),
        ),
        ("GetAll of Monitoring", String::new()),
    ];
    let got: Vec<(&str, String)> = got;
    assert_eq!(got, want);
    // Without .service files even an owned name is unknown to StartServiceByName.
    a.call_bus("RequestName", &("org.example.Running", 0u32))
        .await;
    assert_eq!(
        a.bus_error("StartServiceByName", &("org.example.Running", 0u32))
            .await,
        format!("{E}ServiceUnknown")
    );
    let r = a.call_bus("GetConnectionCredentials", &(DBUS,)).await;
    let creds: std::collections::HashMap<&str, Value> = r.body().expect("a{sv}");
    assert!(
        creds.contains_key("UnixUserID") && creds.contains_key("ProcessID"),
        "{creds:?}"
    );
    let r = a
        .call(
            Message::method_call("/", "Introspect")
                .interface("org.freedesktop.DBus.Introspectable")
                .destination(DBUS),
        )
        .await;
    let xml: &str = r.body().expect("s");
    assert!(
        xml.contains("<node name=\"org/freedesktop/DBus\"/>"),
        "{xml}"
    );
    // The unknown methods of the other interfaces.
    let r = a
        .call(
            Message::method_call("/org/freedesktop/DBus", "Nope")
                .interface("org.freedesktop.DBus.Peer")
                .destination(DBUS),
        )
        .await;
    assert_eq!(error_name(&r), format!("{E}UnknownMethod"));
}
both!(every_driver_method_answers, every_driver_method);

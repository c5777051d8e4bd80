//! The export registry: routing, standard replies, introspection, order per object.

use std::sync::Arc;

use fastbus::{Error, Interface, Message, MessageBus, MethodResult, async_trait};
use fastbus_wire::Flags;
use fastbus_wire::introspection as intro;
use fastbus_wire::names::InterfaceName;

use crate::common::{IFACE, PATH, TestService, run, test_call, within};

async fn error_name(bus: &MessageBus, m: Message) -> String {
    within(bus.call(m))
        .await
        .unwrap_err()
        .error_name()
        .unwrap_or("not an error reply")
        .to_owned()
}

#[tokio::test]
async fn calls_are_routed_by_path_interface_and_member() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        // Without INTERFACE: the one interface that has the member.
        let m = Message::method_call(PATH, "Echo")
            .destination(&dest)
            .body(&("no interface",))
            .build()
            .unwrap();
        let r = within(bus.call(m)).await.unwrap().unwrap();
        assert_eq!(r.body::<&str>().unwrap(), "no interface");
        let unknown = |path: &str, iface: Option<&str>, member: &str| {
            let mut b = Message::method_call(path, member).destination(&dest);
            if let Some(i) = iface {
                b = b.interface(i);
            }
            b.build().unwrap()
        };
        assert_eq!(
            error_name(&bus, unknown("/nowhere", Some(IFACE), "Echo")).await,
            "org.freedesktop.DBus.Error.UnknownObject"
        );
        assert_eq!(
            error_name(&bus, unknown(PATH, Some("org.fastbus.Other"), "Echo")).await,
            "org.freedesktop.DBus.Error.UnknownInterface"
        );
        assert_eq!(
            error_name(&bus, unknown(PATH, Some(IFACE), "Nope")).await,
            "org.freedesktop.DBus.Error.UnknownMethod"
        );
        assert_eq!(
            error_name(&bus, unknown(PATH, None, "Nope")).await,
            "org.freedesktop.DBus.Error.UnknownMethod"
        );
        // Two interfaces with the member: an interface-less call is ambiguous.
        #[derive(Debug)]
        struct Other;
        #[async_trait]
        impl Interface for Other {
            fn name(&self) -> &str {
                "org.fastbus.Other"
            }
            fn introspect(&self) -> intro::Interface<'static> {
                intro::Interface::new(InterfaceName::new("org.fastbus.Other").unwrap())
            }
            fn has_method(&self, m: &str) -> bool {
                m == "Echo"
            }
            async fn call(&self, _: &MessageBus, call: &Message) -> MethodResult {
                Ok(Some(
                    Message::method_return(call)
                        .body(&("other",))
                        .build()
                        .unwrap(),
                ))
            }
        }
        svc_bus.export(PATH, Arc::new(Other)).unwrap();
        assert!(matches!(
            svc_bus.export(PATH, Arc::new(Other)),
            Err(Error::AlreadyExported { .. })
        ));
        assert_eq!(
            error_name(&bus, unknown(PATH, None, "Echo")).await,
            "org.freedesktop.DBus.Error.UnknownMethod"
        );
        let r: String = within(bus.call_method(&dest, PATH, "org.fastbus.Other", "Echo", &()))
            .await
            .unwrap();
        assert_eq!(r, "other");
        assert_eq!(svc_bus.exported(PATH).len(), 2);
        // Unexport one interface, then the whole object.
        assert!(svc_bus.unexport(PATH, Some("org.fastbus.Other")));
        assert_eq!(
            error_name(&bus, unknown(PATH, Some("org.fastbus.Other"), "Echo")).await,
            "org.freedesktop.DBus.Error.UnknownInterface"
        );
        assert!(svc_bus.unexport(PATH, None));
        assert!(!svc_bus.unexport(PATH, None));
        assert_eq!(
            error_name(&bus, unknown(PATH, Some(IFACE), "Echo")).await,
            "org.freedesktop.DBus.Error.UnknownObject"
        );
        // Invalid names are refused at export.
        assert!(matches!(
            svc_bus.export("not/a/path", Arc::new(TestService::default())),
            Err(Error::Wire(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn peer_and_introspectable_are_answered_by_the_bus() {
    run(|env| async move {
        let svc_bus = env.connect().await;
        svc_bus
            .export("/org/fastbus/a/b", Arc::new(TestService::default()))
            .unwrap();
        svc_bus
            .export("/org/fastbus/c", Arc::new(TestService::default()))
            .unwrap();
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        within(bus.call_method::<_, ()>(
            &dest,
            "/anywhere",
            "org.freedesktop.DBus.Peer",
            "Ping",
            &(),
        ))
        .await
        .unwrap();
        let id = within(bus.call_method::<_, String>(
            &dest,
            "/",
            "org.freedesktop.DBus.Peer",
            "GetMachineId",
            &(),
        ))
        .await;
        match id {
            Ok(id) => assert_eq!(id.len(), 32, "{id}"),
            Err(e) => assert_eq!(e.error_name(), Some("org.freedesktop.DBus.Error.Failed")),
        }
        let node = within(bus.introspect(&dest, "/org/fastbus/a/b"))
            .await
            .unwrap();
        let test = node.interface(IFACE).expect("the exported interface");
        assert!(test.method("Echo").is_some());
        assert!(
            node.interface("org.freedesktop.DBus.Introspectable")
                .is_some()
        );
        assert!(node.interface("org.freedesktop.DBus.Peer").is_some());
        assert!(node.nodes.is_empty());
        let parent = within(bus.introspect(&dest, "/org/fastbus")).await.unwrap();
        let kids: Vec<_> = parent
            .nodes
            .iter()
            .filter_map(|n| n.name.as_deref())
            .collect();
        assert_eq!(kids, ["a", "c"]);
        assert!(parent.interface(IFACE).is_none());
        let root = within(bus.introspect(&dest, "/")).await.unwrap();
        assert!(root.node("org").is_some());
        let e = within(bus.introspect(&dest, "/elsewhere"))
            .await
            .unwrap_err();
        assert_eq!(
            e.error_name(),
            Some("org.freedesktop.DBus.Error.UnknownObject")
        );
        // The bus daemon itself.
        let daemon = within(bus.introspect("org.freedesktop.DBus", "/org/freedesktop/DBus"))
            .await
            .unwrap();
        assert!(daemon.interface("org.freedesktop.DBus").is_some());
    })
    .await;
}

#[tokio::test]
async fn calls_to_one_object_are_handled_in_arrival_order() {
    run(|env| async move {
        let (svc_bus, svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        // Even numbers wait inside the method; odd ones do not. In order means 0..40 anyway.
        for i in 0..40u32 {
            bus.send(
                test_call(&dest, "Record")
                    .flags(Flags::NO_REPLY_EXPECTED)
                    .body(&(i,))
                    .build()
                    .unwrap(),
            )
            .unwrap();
        }
        let log: Vec<u32> = within(bus.call_method(&dest, PATH, IFACE, "Log", &()))
            .await
            .unwrap();
        assert_eq!(log, (0..40).collect::<Vec<_>>());
        assert_eq!(*svc.log.lock().unwrap(), log);
    })
    .await;
}

/// An interface with a `Ping` method of its own (clashes with `org.freedesktop.DBus.Peer`).
#[derive(Debug)]
struct Pinger;

#[async_trait]
impl Interface for Pinger {
    fn name(&self) -> &str {
        "org.fastbus.Pinger"
    }
    fn introspect(&self) -> intro::Interface<'static> {
        intro::Interface::new(InterfaceName::new("org.fastbus.Pinger").unwrap())
    }
    fn has_method(&self, m: &str) -> bool {
        m == "Ping"
    }
    async fn call(&self, _: &MessageBus, call: &Message) -> MethodResult {
        Ok(Some(
            Message::method_return(call)
                .body(&("pong",))
                .build()
                .unwrap(),
        ))
    }
}

#[tokio::test]
async fn a_call_without_interface_is_refused_when_a_standard_interface_also_has_the_member() {
    // CVE-2008-0595: a missing INTERFACE is never guessed at.
    run(|env| async move {
        let svc_bus = env.connect().await;
        svc_bus.export(PATH, Arc::new(Pinger)).unwrap();
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let call = |path: &str, iface: Option<&str>, member: &str| {
            let mut b = Message::method_call(path, member).destination(&dest);
            if let Some(i) = iface {
                b = b.interface(i);
            }
            b.build().unwrap()
        };
        // Ping without INTERFACE at PATH: both Pinger and Peer have it.
        let e = within(bus.call(call(PATH, None, "Ping")))
            .await
            .unwrap_err();
        assert_eq!(
            e.error_name(),
            Some("org.freedesktop.DBus.Error.UnknownMethod")
        );
        let text = e.dbus_error().unwrap().text().to_owned();
        assert!(
            text.contains("org.fastbus.Pinger") && text.contains("org.freedesktop.DBus.Peer"),
            "{text}"
        );
        // Named, each answers.
        let r = within(bus.call(call(PATH, Some("org.fastbus.Pinger"), "Ping")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.body::<&str>().unwrap(), "pong");
        let r = within(bus.call(call(PATH, Some("org.freedesktop.DBus.Peer"), "Ping")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.signature().as_str(), "");
        // Elsewhere only Peer has Ping; and Introspect without INTERFACE is unambiguous.
        within(bus.call(call("/elsewhere", None, "Ping")))
            .await
            .unwrap();
        let r = within(bus.call(call(PATH, None, "Introspect")))
            .await
            .unwrap()
            .unwrap();
        assert!(r.body::<&str>().unwrap().contains("org.fastbus.Pinger"));
    })
    .await;
}

#[tokio::test]
async fn panics_in_handlers_and_methods_become_error_replies() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        svc_bus.add_message_handler(|m| {
            if m.member().is_some_and(|x| x.as_str() == "HandlerPanic") {
                panic!("the handler gave up");
            }
            fastbus::HandlerResult::NotHandled
        });
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        for (member, expect) in [
            ("HandlerPanic", "the handler gave up"),
            ("Panic", "Panic was called"),
            ("PanicLater", "PanicLater was called"),
        ] {
            let e = within(bus.call(test_call(&dest, member).build().unwrap()))
                .await
                .unwrap_err();
            assert_eq!(e.error_name(), Some("org.freedesktop.DBus.Error.Failed"));
            let text = e.dbus_error().unwrap().text();
            assert!(text.contains("panicked") && text.contains(expect), "{text}");
        }
        // The connection and the object go on (PanicLater ran on the object's task).
        let r: String = within(bus.call_method(&dest, PATH, IFACE, "Echo", &("still here",)))
            .await
            .unwrap();
        assert_eq!(r, "still here");
        assert!(svc_bus.is_connected());
    })
    .await;
}

#[tokio::test]
async fn a_path_of_several_mib_is_answered_without_a_crash() {
    // CVE-2019-6454: sd-bus put the incoming path in a stack buffer sized by it.
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        // 2 MiB (debug builds validate it byte by byte on both sides: keep the test quick).
        let long = format!("{PATH}{}", "/a".repeat(1024 * 1024));
        for (iface, member) in [
            (Some(IFACE), "Echo"),
            (None, "Echo"),
            (None, "Introspect"),
            (Some("org.freedesktop.DBus.Introspectable"), "Introspect"),
        ] {
            let mut b = Message::method_call(&long, member).destination(&dest);
            if let Some(i) = iface {
                b = b.interface(i);
            }
            let e = within(bus.call(b.build().unwrap())).await.unwrap_err();
            assert_eq!(
                e.error_name(),
                Some("org.freedesktop.DBus.Error.UnknownObject"),
                "{e}"
            );
            // The error text names the path, cut short.
            assert!(e.dbus_error().unwrap().text().len() < 1024);
        }
        // Ping is answered on any path, however long.
        let ping = Message::method_call(&long, "Ping")
            .interface("org.freedesktop.DBus.Peer")
            .destination(&dest)
            .build()
            .unwrap();
        within(bus.call(ping)).await.unwrap();
        let r: String = within(bus.call_method(&dest, PATH, IFACE, "Echo", &("fine",)))
            .await
            .unwrap();
        assert_eq!(r, "fine");
    })
    .await;
}

#[tokio::test]
async fn a_waiting_method_keeps_its_request_after_the_caller_leaves() {
    // CVE-2020-1712: the request must outlive an asynchronous step even if its sender is gone.
    run(|env| async move {
        let (svc_bus, svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let caller = env.connect().await;
        let pending = {
            let caller = caller.clone();
            let m = test_call(&dest, "Hold")
                .body(&("the request",))
                .build()
                .unwrap();
            tokio::spawn(async move { caller.call(m).await })
        };
        within(svc.holding.notified()).await;
        caller.disconnect().await;
        assert!(matches!(
            within(pending).await.unwrap(),
            Err(Error::Disconnected(_))
        ));
        svc.release();
        within(svc.held_done.notified()).await;
        assert_eq!(*svc.held.lock().unwrap(), ["the request"]);
        // The service is unharmed by replying to someone who left.
        let other = env.connect().await;
        let r: String = within(other.call_method(&dest, PATH, IFACE, "Echo", &("ok",)))
            .await
            .unwrap();
        assert_eq!(r, "ok");
        assert!(svc_bus.is_connected());
    })
    .await;
}

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

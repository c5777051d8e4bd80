//! Connecting, `call`, `send`, `call_method`, error replies, timeouts, message handlers.

use std::time::Duration;

use fastbus::{DBUS_INTERFACE, DBUS_NAME, DBUS_PATH, Error, Fault, HandlerResult, Message};
use fastbus_wire::{Flags, MessageType};

use crate::common::{IFACE, PATH, run, test_call, within};

#[tokio::test]
async fn connect_says_hello_and_lists_names() {
    run(|env| async move {
        let bus = env.connect().await;
        let me = bus
            .unique_name()
            .expect("a unique name after Hello")
            .to_owned();
        assert!(me.starts_with(':'), "{me}");
        assert!(bus.is_connected());
        let names: Vec<String> =
            within(bus.call_method(DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "ListNames", &()))
                .await
                .unwrap();
        assert!(names.contains(&me), "{names:?} lacks {me}");
        assert!(names.iter().any(|n| n == DBUS_NAME));
        let a = bus.next_serial();
        assert!(bus.next_serial() > a);
    })
    .await;
}

#[tokio::test]
async fn call_returns_the_reply_or_none_when_no_reply_is_expected() {
    run(|env| async move {
        let (svc_bus, svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let reply = within(bus.call(test_call(&dest, "Echo").body(&("ping",)).build().unwrap()))
            .await
            .unwrap()
            .expect("a method call gets a reply");
        assert_eq!(reply.message_type(), MessageType::METHOD_RETURN);
        assert_eq!(reply.body::<&str>().unwrap(), "ping");
        // NO_REPLY_EXPECTED: sent, no reply awaited.
        let none = bus
            .call(
                test_call(&dest, "Record")
                    .flags(Flags::NO_REPLY_EXPECTED)
                    .body(&(1u32,))
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(none.is_none());
        // A signal is not a call.
        let sig = Message::signal(PATH, IFACE, "Tick")
            .body(&(0u32,))
            .build()
            .unwrap();
        assert!(bus.call(sig).await.unwrap().is_none());
        // `send` gives a serial; the service saw the NO_REPLY call (Log is ordered after it).
        let serial = bus
            .send(test_call(&dest, "Record").body(&(3u32,)).build().unwrap())
            .unwrap();
        assert_ne!(serial, 0);
        let log: Vec<u32> = within(bus.call_method(&dest, PATH, IFACE, "Log", &()))
            .await
            .unwrap();
        assert_eq!(log, [1, 3]);
        assert_eq!(svc.calls.load(std::sync::atomic::Ordering::Relaxed), 4);
    })
    .await;
}

#[tokio::test]
async fn error_replies_carry_name_text_and_message() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let e = within(bus.call(test_call(&dest, "Fail").build().unwrap()))
            .await
            .unwrap_err();
        assert_eq!(e.fault(), Fault::Peer);
        let d = e.dbus_error().expect("an error reply");
        assert_eq!(d.name(), "org.fastbus.Error.AsAsked");
        assert_eq!(d.text(), "failing as asked");
        assert_eq!(d.reply().unwrap().message_type(), MessageType::ERROR);
        // From the bus itself: nobody owns the name.
        let e = within(bus.call_method::<_, String>(
            "org.fastbus.NobodyHere",
            PATH,
            IFACE,
            "Echo",
            &("x",),
        ))
        .await
        .unwrap_err();
        assert_eq!(
            e.error_name(),
            Some("org.freedesktop.DBus.Error.ServiceUnknown")
        );
        // A reply of the wrong type for call_method is the peer's fault, with the reply kept.
        let e = within(bus.call_method::<_, u32>(&dest, PATH, IFACE, "Echo", &("x",)))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::ReplyBody { reply, .. } if reply.body::<&str>().unwrap() == "x")
        );
        assert_eq!(e.fault(), Fault::Peer);
    })
    .await;
}

#[tokio::test]
async fn calls_time_out_with_their_own_error_and_the_connection_goes_on() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let slow = test_call(&dest, "Sleep").body(&(3000u32,)).build().unwrap();
        let e = within(bus.call_with_timeout(slow, Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { timeout } if timeout == Duration::from_millis(50)));
        // The default timeout comes from the builder.
        let short = env
            .builder()
            .default_timeout(Duration::from_millis(50))
            .connect()
            .await
            .unwrap();
        let slow = test_call(&dest, "Sleep").body(&(3000u32,)).build().unwrap();
        assert!(matches!(
            within(short.call(slow)).await,
            Err(Error::Timeout { .. })
        ));
        let r: String = within(bus.call_method(&dest, PATH, IFACE, "Echo", &("after",)))
            .await
            .unwrap();
        assert_eq!(r, "after");
    })
    .await;
}

#[tokio::test]
async fn message_handlers_reply_or_mark_handled_and_can_be_removed() {
    run(|env| async move {
        let server = env.connect().await;
        let dest = server.unique_name().unwrap().to_owned();
        let replier = server.add_message_handler(|m| {
            if m.member().is_some_and(|x| x.as_str() == "Hi") {
                HandlerResult::Reply(Message::method_return(m).body(&("hello",)).build().unwrap())
            } else {
                HandlerResult::NotHandled
            }
        });
        let swallower = server.add_message_handler(|m| {
            if m.member().is_some_and(|x| x.as_str() == "Swallow") {
                HandlerResult::Handled
            } else {
                HandlerResult::NotHandled
            }
        });
        let client = env.connect().await;
        let r: String = within(client.call_method(&dest, "/any", "org.x.Y", "Hi", &()))
            .await
            .unwrap();
        assert_eq!(r, "hello");
        // Handled without a reply: no UnknownObject either, so the call times out.
        let m = test_call(&dest, "Swallow").build().unwrap();
        assert!(matches!(
            within(client.call_with_timeout(m, Duration::from_millis(100))).await,
            Err(Error::Timeout { .. })
        ));
        assert!(server.remove_message_handler(replier));
        assert!(server.remove_message_handler(swallower));
        assert!(!server.remove_message_handler(swallower));
        let e = within(client.call_method::<_, String>(&dest, "/any", "org.x.Y", "Hi", &()))
            .await
            .unwrap_err();
        assert_eq!(
            e.error_name(),
            Some("org.freedesktop.DBus.Error.UnknownObject")
        );
    })
    .await;
}

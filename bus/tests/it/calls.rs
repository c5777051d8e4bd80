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
        // `Hold` answers only when released, so no reply can beat a timeout; calls to one
        // object run one at a time, so a second `Hold` waits behind the first.
        let (svc_bus, svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let hold = |s: &str| test_call(&dest, "Hold").body(&(s,)).build().unwrap();
        // A call with the default (25 s) timeout is pending while a 50 ms one expires.
        let long = {
            let bus = bus.clone();
            let m = hold("a");
            tokio::spawn(async move { bus.call(m).await })
        };
        within(svc.holding.notified()).await;
        let e = within(bus.call_with_timeout(hold("b"), Duration::from_millis(50)))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout { timeout } if timeout == Duration::from_millis(50)));
        assert_eq!(e.fault(), Fault::Library);
        svc.release();
        let r = within(long).await.unwrap().unwrap().unwrap();
        assert_eq!(r.message_type(), MessageType::METHOD_RETURN);
        // "b" runs now; its late reply is dropped.
        within(svc.holding.notified()).await;
        svc.release();
        svc.wait_held(2).await;
        // The default timeout comes from the builder.
        let short = env
            .builder()
            .default_timeout(Duration::from_millis(50))
            .connect()
            .await
            .unwrap();
        assert!(matches!(
            within(short.call(hold("c"))).await,
            Err(Error::Timeout { .. })
        ));
        within(svc.holding.notified()).await;
        svc.release();
        svc.wait_held(3).await;
        assert_eq!(*svc.held.lock().unwrap(), ["a", "b", "c"]);
        for b in [&bus, &short] {
            let r: String = within(b.call_method(&dest, PATH, IFACE, "Echo", &("after",)))
                .await
                .unwrap();
            assert_eq!(r, "after");
        }
    })
    .await;
}

#[tokio::test]
async fn a_dropped_call_is_forgotten_and_its_late_reply_dropped() {
    run(|env| async move {
        let (svc_bus, svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let hold = test_call(&dest, "Hold")
            .body(&("dropped",))
            .build()
            .unwrap();
        // The call is sent on its first poll; the caller then stops waiting.
        let dropped = tokio::time::timeout(Duration::from_millis(50), bus.call(hold)).await;
        assert!(dropped.is_err(), "Hold cannot answer before it is released");
        within(svc.holding.notified()).await;
        svc.release();
        svc.wait_held(1).await;
        // The late reply finds nobody waiting; the connection goes on.
        for s in ["after", "again"] {
            let r: String = within(bus.call_method(&dest, PATH, IFACE, "Echo", &(s,)))
                .await
                .unwrap();
            assert_eq!(r, s);
        }
        assert!(bus.is_connected());
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

/// Set in the child process of [`connect_by_bus_type_finds_the_bus_in_the_environment`].
const BUS_TYPE_CHILD: &str = "FASTBUS_IT_BUS_TYPE_CHILD";

#[tokio::test]
async fn connect_by_bus_type_finds_the_bus_in_the_environment() {
    use fastbus::{BusType, MessageBus};
    if let Some(kind) = std::env::var_os(BUS_TYPE_CHILD) {
        // The child: its environment names the test's private daemon (never the machine's).
        let bus_type = if kind == "system" {
            BusType::System
        } else {
            BusType::Session
        };
        let bus = within(MessageBus::connect(bus_type)).await.unwrap();
        let me = bus.unique_name().unwrap().to_owned();
        let names: Vec<String> =
            within(bus.call_method(DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "ListNames", &()))
                .await
                .unwrap();
        assert!(names.contains(&me));
        return;
    }
    // The environment of this process is shared by every test thread; a child process gets
    // its own.
    let Some(env) = crate::common::start_daemon() else {
        return;
    };
    for (kind, var, other) in [
        (
            "session",
            "DBUS_SESSION_BUS_ADDRESS",
            "DBUS_SYSTEM_BUS_ADDRESS",
        ),
        (
            "system",
            "DBUS_SYSTEM_BUS_ADDRESS",
            "DBUS_SESSION_BUS_ADDRESS",
        ),
    ] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "calls::connect_by_bus_type_finds_the_bus_in_the_environment",
                "--test-threads=1",
            ])
            .env(BUS_TYPE_CHILD, kind)
            .env(var, env.address())
            // Unreachable, so that a mix-up fails instead of finding a real bus.
            .env(other, "unix:path=/nonexistent/fastbus-test")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{kind}: {text}");
        assert!(
            text.contains("1 passed"),
            "{kind}: the child ran nothing: {text}"
        );
    }
}

/// EXTERNAL, counting how often the connection used it.
#[derive(Debug)]
struct CountingExternal(
    fastbus_transport::auth::External,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
);

impl fastbus_transport::auth::Authenticator for CountingExternal {
    fn mechanism(&self) -> &str {
        self.0.mechanism()
    }
    fn initial_response(&mut self) -> Option<Vec<u8>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.initial_response()
    }
    fn challenge(&mut self, data: &[u8]) -> fastbus_transport::auth::ChallengeResponse {
        self.0.challenge(data)
    }
}

/// A mechanism no bus offers.
#[derive(Debug)]
struct Unheard;

impl fastbus_transport::auth::Authenticator for Unheard {
    fn mechanism(&self) -> &str {
        "X-FASTBUS-UNHEARD-OF"
    }
    fn initial_response(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn challenge(&mut self, _: &[u8]) -> fastbus_transport::auth::ChallengeResponse {
        fastbus_transport::auth::ChallengeResponse::Cancel
    }
}

#[tokio::test]
async fn the_builder_uses_the_authenticator_it_is_given() {
    run(|env| async move {
        let used = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&used);
        let bus = within(
            env.builder()
                .authenticator(move || {
                    Box::new(CountingExternal(
                        fastbus_transport::auth::External::new(),
                        std::sync::Arc::clone(&counter),
                    ))
                })
                .connect(),
        )
        .await
        .unwrap();
        assert_eq!(used.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert!(bus.unique_name().is_some());
        let e = within(env.builder().authenticator(|| Box::new(Unheard)).connect())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Transport(_)), "{e}");
    })
    .await;
}

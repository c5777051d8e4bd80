//! `request_name` / `release_name` and their reply codes.

use fastbus::{Error, Fault, ReleaseNameReply, RequestNameFlags, RequestNameReply};

use crate::common::{run, within};

#[tokio::test]
async fn request_and_release_names() {
    run(|env| async move {
        let a = env.connect().await;
        let b = env.connect().await;
        let name = "org.fastbus.Names";
        let none = RequestNameFlags::NONE;
        assert_eq!(
            within(a.request_name(name, none)).await.unwrap(),
            RequestNameReply::PrimaryOwner
        );
        assert_eq!(
            within(a.request_name(name, none)).await.unwrap(),
            RequestNameReply::AlreadyOwner
        );
        assert_eq!(
            within(b.request_name(name, RequestNameFlags::DO_NOT_QUEUE))
                .await
                .unwrap(),
            RequestNameReply::Exists
        );
        assert_eq!(
            within(b.request_name(name, none)).await.unwrap(),
            RequestNameReply::InQueue
        );
        assert_eq!(
            within(a.release_name(name)).await.unwrap(),
            ReleaseNameReply::Released
        );
        // b was queued, so it owns the name now; a does not.
        assert_eq!(
            within(a.release_name(name)).await.unwrap(),
            ReleaseNameReply::NotOwner
        );
        assert_eq!(
            within(b.release_name(name)).await.unwrap(),
            ReleaseNameReply::Released
        );
        assert_eq!(
            within(b.release_name("org.fastbus.NeverOwned"))
                .await
                .unwrap(),
            ReleaseNameReply::NonExistent
        );
        // Replacement: a allows it, b asks for it.
        a.request_name(name, RequestNameFlags::ALLOW_REPLACEMENT)
            .await
            .unwrap();
        assert_eq!(
            within(b.request_name(name, RequestNameFlags::REPLACE_EXISTING))
                .await
                .unwrap(),
            RequestNameReply::PrimaryOwner
        );
        // Invalid names never reach the bus.
        for bad in ["nodots", ":1.5", "a..b", ""] {
            let e = a.request_name(bad, none).await.unwrap_err();
            assert!(matches!(e, Error::Wire(_)), "{bad}: {e}");
            assert_eq!(e.fault(), Fault::Caller);
        }
        assert!(matches!(a.release_name("x").await, Err(Error::Wire(_))));
    })
    .await;
}

#[tokio::test]
async fn flags_and_codes_on_the_wire_and_invalid_names_never_sent() {
    use fastbus::Message;
    let (bus, mut from_bus_client, mut to_client) = crate::common::scripted_bus().await;
    // Invalid names: refused here, nothing reaches the bus.
    for bad in ["nodots", ":1.5", "a..b", "", "org.1x.Y"] {
        assert!(matches!(
            bus.request_name(bad, RequestNameFlags::NONE).await,
            Err(Error::Wire(_))
        ));
        assert!(matches!(bus.release_name(bad).await, Err(Error::Wire(_))));
    }
    assert!(matches!(
        bus.introspect("not a name", "/").await,
        Err(Error::Wire(_))
    ));
    // The flags as the specification numbers them; the answer's code as a Rust value, and
    // a code the specification does not define is the peer's fault.
    for (code, expect) in [(3u32, Some(RequestNameReply::Exists)), (9, None)] {
        let call = tokio::spawn({
            let bus = bus.clone();
            async move {
                bus.request_name(
                    "org.fastbus.Wire",
                    RequestNameFlags::ALLOW_REPLACEMENT | RequestNameFlags::DO_NOT_QUEUE,
                )
                .await
            }
        });
        let m = within(from_bus_client.next_message())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.member().unwrap().as_str(), "RequestName");
        assert_eq!(
            m.body::<(&str, u32)>().unwrap(),
            ("org.fastbus.Wire", 1 | 4)
        );
        let reply = Message::method_return(&m)
            .sender(fastbus::DBUS_NAME)
            .serial(m.serial() + 100)
            .body(&(code,))
            .build()
            .unwrap();
        to_client.queue(&reply).unwrap();
        within(to_client.flush()).await.unwrap();
        let r = within(call).await.unwrap();
        match expect {
            Some(e) => assert_eq!(r.unwrap(), e),
            None => {
                let e = r.unwrap_err();
                assert!(matches!(e, Error::Protocol(_)), "{e}");
                assert_eq!(e.fault(), Fault::Peer);
            }
        }
    }
}

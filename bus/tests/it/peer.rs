//! Peer-to-peer mode over a socketpair: no bus, no Hello.

use std::sync::Arc;

use fastbus::{Error, MatchRule, Message, MessageBus, RequestNameFlags};
use fastbus_transport::{raw_framed, socketpair};

use crate::common::{IFACE, PATH, TestService, within};

async fn pair() -> (MessageBus, MessageBus) {
    let (a, b) = socketpair().unwrap();
    let (ra, wa) = raw_framed(Box::new(a));
    let (rb, wb) = raw_framed(Box::new(b));
    let a = MessageBus::builder()
        .framed(ra, wa)
        .peer_to_peer(true)
        .connect()
        .await
        .unwrap();
    let b = MessageBus::builder()
        .framed(rb, wb)
        .peer_to_peer(true)
        .connect()
        .await
        .unwrap();
    (a, b)
}

#[tokio::test]
async fn calls_and_signals_work_without_a_bus() {
    let (client, server) = pair().await;
    assert_eq!(client.unique_name(), None);
    server
        .export(PATH, Arc::new(TestService::default()))
        .unwrap();
    let m = Message::method_call(PATH, "Echo")
        .interface(IFACE)
        .body(&("p2p",))
        .build()
        .unwrap();
    let r = within(client.call(m)).await.unwrap().unwrap();
    assert_eq!(r.body::<&str>().unwrap(), "p2p");
    // Subscriptions filter locally, with no AddMatch to send.
    let mut s = within(client.subscribe(
        MatchRule::parse(&format!("type='signal',interface='{IFACE}',member='Tick'")).unwrap(),
    ))
    .await
    .unwrap();
    let m = Message::method_call(PATH, "Burst")
        .interface(IFACE)
        .body(&(2u32,))
        .build()
        .unwrap();
    within(client.call(m)).await.unwrap();
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
    // Bus-only operations say so.
    assert!(matches!(
        client
            .request_name("org.fastbus.P2p", RequestNameFlags::NONE)
            .await,
        Err(Error::NotABus(_))
    ));
    // The server side hangs up: the client sees it.
    drop(server);
    assert!(matches!(
        within(client.wait_for_disconnect()).await,
        fastbus::DisconnectReason::ByPeer
    ));
    assert!(within(s.next()).await.is_none());
}

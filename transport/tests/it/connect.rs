//! Listeners and clients of every transport, authenticated end to end.

use std::sync::Arc;

use fastbus_transport::auth::{
    ClientMechanism, ClientOptions, CookieSha1, Identity, Keyring, Mechanism,
};
use fastbus_transport::{Address, AddressKind, AuthError, Error, Listener, connect};

use crate::auth_server::config;
use crate::hello;

/// Accepts one connection, authenticates it, reads one message and answers it.
async fn serve_one(mut l: Listener, cfg: fastbus_transport::ServerConfig) -> Identity {
    let inc = l.accept().await.unwrap();
    let mut conn = inc.authenticate(Arc::new(cfg)).await.unwrap();
    let call = conn.reader.next_message().await.unwrap().unwrap();
    let reply = fastbus_wire::Message::method_return(&call)
        .serial(1)
        .body(&":1.1")
        .build()
        .unwrap();
    conn.writer.send(&reply).await.unwrap();
    conn.identity
}

async fn round_trip(bind: &str, mechs: &[Mechanism], opts: ClientOptions) -> (Identity, bool) {
    let l = Listener::bind(&Address::parse(bind).unwrap())
        .await
        .unwrap();
    let addr = l.address().clone();
    let server = tokio::spawn(serve_one(l, config(mechs)));
    let hello_bytes = crate::encoded(&hello(1));
    let mut c = connect(&[addr], &opts, Some(&hello_bytes)).await.unwrap();
    let reply = c.reader.next_message().await.unwrap().unwrap();
    assert_eq!(reply.reply_serial(), Some(1));
    assert_eq!(reply.body::<&str>().unwrap(), ":1.1");
    (server.await.unwrap(), c.unix_fd)
}

#[tokio::test]
async fn unix_path_dir_tmpdir_and_abstract_listeners() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("s");
    let uid = crate::my_uid();
    for bind in [
        format!("unix:path={}", path.display()),
        format!("unix:dir={}", tmp.path().display()),
        format!("unix:tmpdir={}", tmp.path().display()),
        format!("unix:abstract=fastbus-test-{}", std::process::id()),
    ] {
        let (id, fds) = round_trip(&bind, &[Mechanism::External], ClientOptions::default()).await;
        assert_eq!(id, Identity::Uid(uid), "{bind}");
        assert!(fds, "{bind}: unix fds agreed");
    }
    assert!(!path.exists(), "socket file removed with the listener");
}

#[tokio::test]
async fn tcp_listener_with_anonymous() {
    let opts = ClientOptions {
        mechanisms: vec![ClientMechanism::Anonymous],
        ..Default::default()
    };
    let (id, fds) = round_trip("tcp:host=127.0.0.1,port=0", &[Mechanism::Anonymous], opts).await;
    assert_eq!(id, Identity::Anonymous);
    assert!(!fds);
}

#[tokio::test]
async fn nonce_tcp_listener_checks_the_nonce() {
    let opts = ClientOptions {
        mechanisms: vec![ClientMechanism::Anonymous],
        ..Default::default()
    };
    let (id, _) = round_trip(
        "nonce-tcp:host=127.0.0.1,port=0",
        &[Mechanism::Anonymous],
        opts,
    )
    .await;
    assert_eq!(id, Identity::Anonymous);

    // A client that does not know the nonce is dropped.
    let mut l = Listener::bind(&Address::parse("nonce-tcp:host=127.0.0.1,port=0").unwrap())
        .await
        .unwrap();
    let AddressKind::NonceTcp { tcp, .. } = l.address().kind.clone() else {
        panic!("nonce-tcp")
    };
    let server = tokio::spawn(async move {
        l.accept()
            .await
            .unwrap()
            .authenticate(Arc::new(config(&[Mechanism::Anonymous])))
            .await
    });
    let bad = Address::new(AddressKind::Tcp(tcp));
    let opts = ClientOptions {
        mechanisms: vec![ClientMechanism::Anonymous],
        ..Default::default()
    };
    assert!(connect(&[bad], &opts, None).await.is_err());
    assert!(matches!(server.await.unwrap(), Err(Error::BadNonce)));
}

#[tokio::test]
async fn cookie_sha1_over_tcp_with_a_private_keyring() {
    let tmp = tempfile::tempdir().unwrap();
    let keyring = Keyring::new(tmp.path().join("keyrings"));
    let mut cfg = config(&[Mechanism::CookieSha1]);
    cfg.keyring = Some(keyring.clone());
    let mut l = Listener::bind(&Address::parse("tcp:host=127.0.0.1,port=0").unwrap())
        .await
        .unwrap();
    let addr = l.address().clone();
    let cfg2 = cfg.clone();
    let server =
        tokio::spawn(async move { l.accept().await.unwrap().authenticate(Arc::new(cfg2)).await });
    let uid = crate::my_uid().to_string();
    let k = keyring.clone();
    let u = uid.clone();
    let opts = ClientOptions {
        mechanisms: vec![ClientMechanism::Custom(Arc::new(move || {
            Box::new(CookieSha1::with(u.clone(), k.clone()))
        }))],
        ..Default::default()
    };
    connect(&[addr], &opts, None).await.unwrap();
    let conn = server.await.unwrap().unwrap();
    assert_eq!(conn.identity, Identity::Uid(crate::my_uid()));
    assert_eq!(conn.mechanism, Mechanism::CookieSha1);
}

#[tokio::test]
async fn cookie_sha1_refuses_other_identities_and_unknown_cookie_ids() {
    use crate::auth_server::Conv;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&[Mechanism::CookieSha1]);
    cfg.keyring = Some(Keyring::new(tmp.path().join("k")));
    // CVE-2019-12749: another user's name is refused before the keyring is touched.
    let mut c = Conv::unix(cfg.clone()).await;
    let other = (crate::my_uid() + 1).to_string();
    c.send(format!("\0AUTH DBUS_COOKIE_SHA1 {}\r\n", crate::hex(&other)).as_bytes())
        .await;
    assert_eq!(c.line().await.unwrap(), "REJECTED DBUS_COOKIE_SHA1");

    // A client whose keyring lacks the cookie answers ERROR; the server rejects.
    let mut c = Conv::unix(cfg).await;
    c.send(
        format!(
            "\0AUTH DBUS_COOKIE_SHA1 {}\r\n",
            crate::hex(&crate::my_uid().to_string())
        )
        .as_bytes(),
    )
    .await;
    let data = c.line().await.unwrap();
    assert!(data.starts_with("DATA "), "{data}");
    let empty = tempfile::tempdir().unwrap();
    let mut mech = CookieSha1::with("me", Keyring::new(empty.path()));
    let challenge = fastbus_hex_decode(&data[5..]);
    let resp = fastbus_transport::auth::Authenticator::challenge(&mut mech, &challenge);
    assert!(
        matches!(resp, fastbus_transport::auth::ChallengeResponse::Error(ref e) if e.contains("cookie ID"))
    );
    c.send(b"ERROR \"no cookie\"\r\n").await;
    assert_eq!(c.line().await.unwrap(), "REJECTED DBUS_COOKIE_SHA1");

    // A wrong hash is rejected too.
    c.send(
        format!(
            "AUTH DBUS_COOKIE_SHA1 {}\r\n",
            crate::hex(&crate::my_uid().to_string())
        )
        .as_bytes(),
    )
    .await;
    assert!(c.line().await.unwrap().starts_with("DATA "));
    c.send(format!("DATA {}\r\n", crate::hex("abcd 0000")).as_bytes())
        .await;
    assert_eq!(c.line().await.unwrap(), "REJECTED DBUS_COOKIE_SHA1");
}

fn fastbus_hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn address_list_is_tried_in_order_and_every_failure_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Listener::bind(
        &Address::parse(&format!("unix:path={}", tmp.path().join("ok").display())).unwrap(),
    )
    .await
    .unwrap();
    let good = l.address().clone();
    let server = tokio::spawn(serve_one(l, config(&[Mechanism::External])));
    let list = fastbus_transport::address::parse_list(&format!(
        "unix:path={};launchd:env=X;{}",
        tmp.path().join("missing").display(),
        good
    ))
    .unwrap();
    let hello_bytes = crate::encoded(&hello(1));
    let mut c = connect(&list, &ClientOptions::default(), Some(&hello_bytes))
        .await
        .unwrap();
    assert!(c.reader.next_message().await.unwrap().is_some());
    server.await.unwrap();

    let bad = fastbus_transport::address::parse_list(&format!(
        "unix:path={};unix:dir=/tmp",
        tmp.path().join("missing").display()
    ))
    .unwrap();
    match connect(&bad, &ClientOptions::default(), None).await {
        Err(Error::ConnectFailed(list)) => {
            assert_eq!(list.len(), 2);
            assert!(matches!(list[0].1, Error::Io { .. }));
            assert!(matches!(list[1].1, Error::Unsupported(_)));
        }
        other => panic!("expected ConnectFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn guid_in_the_address_must_match_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Listener::bind(
        &Address::parse(&format!("unix:path={}", tmp.path().join("g").display())).unwrap(),
    )
    .await
    .unwrap();
    let mut addr = l.address().clone();
    addr.guid = fastbus_transport::Guid::parse(&"f".repeat(32));
    let server = tokio::spawn(async move {
        let _ = l
            .accept()
            .await
            .unwrap()
            .authenticate(Arc::new(config(&[Mechanism::External])))
            .await;
    });
    match connect(&[addr], &ClientOptions::default(), None).await {
        Err(Error::ConnectFailed(list)) => {
            assert!(matches!(
                list[0].1,
                Error::Auth(AuthError::GuidMismatch { .. })
            ));
        }
        other => panic!("expected a guid mismatch, got {other:?}"),
    }
    server.await.unwrap();
}

#[tokio::test]
async fn memory_listener_with_caller_credentials() {
    let (mut l, connector) = Listener::memory(None);
    let server = tokio::spawn(async move {
        let inc = l.accept().await.unwrap();
        assert_eq!(inc.peer_credentials().and_then(|c| c.uid), Some(31337));
        inc.authenticate(Arc::new(config(&[Mechanism::External])))
            .await
            .unwrap()
            .identity
    });
    let t = connector
        .connect(Some(fastbus_transport::Credentials::from_uid(31337)))
        .unwrap();
    let opts = ClientOptions {
        mechanisms: vec![ClientMechanism::Custom(Arc::new(|| {
            Box::new(fastbus_transport::auth::External::with_uid(Some(31337)))
        }))],
        ..Default::default()
    };
    let c = fastbus_transport::client_handshake(Box::new(t), &opts, None, None)
        .await
        .unwrap();
    assert!(c.unix_fd);
    assert_eq!(server.await.unwrap(), Identity::Uid(31337));
}

/// CVE-2014-3639: a cap on connections still authenticating. New clients wait (they are not
/// dropped), and a slow client frees its slot when the auth timeout fires.
#[tokio::test]
async fn listener_caps_incomplete_connections_and_the_auth_timeout_frees_the_slot() {
    use std::time::Duration;
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Listener::bind(
        &Address::parse(&format!("unix:path={}", tmp.path().join("cap").display())).unwrap(),
    )
    .await
    .unwrap();
    l.set_max_incomplete(1);
    let addr = l.address().clone();
    let mut cfg = config(&[Mechanism::External]);
    cfg.timeout = Duration::from_millis(300);
    let cfg = Arc::new(cfg);

    // A slow-loris client: connects, sends one byte, then nothing.
    let mut slow = fastbus_transport::connect_transport(&addr)
        .await
        .unwrap()
        .split()
        .1;
    fastbus_transport::transport::send(&mut *slow, b"\0", Vec::new())
        .await
        .unwrap();
    let first = l.accept().await.unwrap();
    let stuck = tokio::spawn(first.authenticate(Arc::clone(&cfg)));

    // A well-behaved client connects while the slot is taken.
    let good = tokio::spawn(async move {
        connect(&[addr], &ClientOptions::default(), None)
            .await
            .map(|c| c.guid)
    });
    // The listener does not take it while the slow one holds the slot. (If this were broken
    // the accept would finish at once; when it works, waiting a little proves nothing wrong.)
    assert!(
        tokio::time::timeout(Duration::from_millis(100), l.accept())
            .await
            .is_err(),
        "a second connection was accepted while the only slot was taken"
    );
    // The slow client times out, its slot is freed, the good client gets in.
    let second = tokio::time::timeout(Duration::from_secs(20), l.accept())
        .await
        .expect("the slot is freed by the auth timeout")
        .unwrap();
    assert!(matches!(
        stuck.await.unwrap(),
        Err(Error::Auth(AuthError::Timeout(_)))
    ));
    let conn = second.authenticate(Arc::clone(&cfg)).await.unwrap();
    assert_eq!(conn.identity, Identity::Uid(crate::my_uid()));
    assert!(good.await.unwrap().is_ok());
    drop(slow);
}

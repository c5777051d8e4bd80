//! Every conversation of `conformance/auth.md` ("Auth conversations to test")
//! against our server side, over real sockets.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use fastbus_transport::auth::{Identity, Mechanism, ServerConfig};
use fastbus_transport::transport::{self as tr, TransportRead, TransportWrite};
use fastbus_transport::{
    AuthError, BoxTransport, Error, Guid, ServerConnection, memory_pair, server_handshake,
    socketpair,
};
use tokio::task::JoinHandle;

use crate::{encoded, hello, hex, my_uid};

const GUID: &str = "00112233445566778899aabbccddeeff";

pub(crate) fn config(mechs: &[Mechanism]) -> ServerConfig {
    let mut c = ServerConfig::new(Guid::parse(GUID).unwrap());
    c.mechanisms = mechs.to_vec();
    c
}

/// A raw client talking to our server.
pub(crate) struct Conv {
    r: Box<dyn TransportRead>,
    w: Box<dyn TransportWrite>,
    buf: BytesMut,
    server: JoinHandle<fastbus_transport::Result<ServerConnection>>,
}

impl Conv {
    async fn with(client: BoxTransport, server: BoxTransport, cfg: ServerConfig) -> Conv {
        let server = tokio::spawn(server_handshake(server, Arc::new(cfg), None));
        let (r, w) = client.split();
        Conv {
            r,
            w,
            buf: BytesMut::new(),
            server,
        }
    }

    pub(crate) async fn unix(cfg: ServerConfig) -> Conv {
        let (c, s) = socketpair().unwrap();
        Conv::with(Box::new(c), Box::new(s), cfg).await
    }

    async fn tcp(cfg: ServerConfig) -> Conv {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let c = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        Conv::with(
            Box::new(fastbus_transport::TcpTransport::new(c)),
            Box::new(fastbus_transport::TcpTransport::new(s)),
            cfg,
        )
        .await
    }

    pub(crate) async fn send(&mut self, b: &[u8]) {
        tr::send(&mut *self.w, b, Vec::new()).await.unwrap();
    }

    /// Sends, ignoring errors (the server may already be gone).
    async fn try_send(&mut self, b: &[u8]) -> bool {
        tr::send(&mut *self.w, b, Vec::new()).await.is_ok()
    }

    async fn send_fds(&mut self, b: &[u8], fds: Vec<OwnedFd>) {
        tr::send(&mut *self.w, b, fds).await.unwrap();
    }

    /// The next line from the server, or `None` when it closed the connection.
    pub(crate) async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let l = self.buf.split_to(i + 1);
                return Some(String::from_utf8(l.to_vec()).unwrap().trim_end().to_owned());
            }
            let mut tmp = [0u8; 4096];
            let mut fds = Vec::new();
            match tr::recv(&mut *self.r, &mut tmp, &mut fds).await {
                Ok(got) if got.bytes > 0 => self.buf.extend_from_slice(&tmp[..got.bytes]),
                _ => return None,
            }
        }
    }

    /// Asserts the server closes the connection and returns its error.
    pub(crate) async fn expect_disconnect(mut self) -> Error {
        assert_eq!(self.line().await, None, "server should have disconnected");
        match self.server.await.unwrap() {
            Ok(_) => panic!("server handshake should have failed"),
            Err(e) => e,
        }
    }

    pub(crate) async fn finish(self) -> ServerConnection {
        self.server.await.unwrap().unwrap()
    }
}

fn own_external() -> String {
    format!("AUTH EXTERNAL {}\r\n", hex(&my_uid().to_string()))
}

fn auth_err(e: Error) -> AuthError {
    match e {
        Error::Auth(a) => a,
        other => panic!("expected an auth error, got {other}"),
    }
}

#[tokio::test]
async fn bare_auth_gets_the_same_rejected_list_every_time() {
    let mut c = Conv::unix(config(&[Mechanism::External, Mechanism::Anonymous])).await;
    c.send(b"\0AUTH\r\n").await;
    assert_eq!(c.line().await.unwrap(), "REJECTED EXTERNAL ANONYMOUS");
    c.send(b"AUTH\r\n").await;
    assert_eq!(c.line().await.unwrap(), "REJECTED EXTERNAL ANONYMOUS");
}

#[tokio::test]
async fn external_with_own_uid_then_begin_and_message_in_one_write() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(format!("\0{}", own_external()).as_bytes()).await;
    let ok = c.line().await.unwrap();
    let guid = ok.strip_prefix("OK ").unwrap();
    assert_eq!(guid.len(), 32);
    assert!(
        guid.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    let mut begin = b"BEGIN\r\n".to_vec();
    begin.extend(encoded(&hello(7)));
    c.send(&begin).await;
    let mut conn = c.finish().await;
    assert_eq!(conn.identity, Identity::Uid(my_uid()));
    let msg = conn.reader.next_message().await.unwrap().unwrap();
    assert_eq!(msg.serial(), 7);
    assert_eq!(msg.member().unwrap().as_str(), "Hello");
}

#[tokio::test]
async fn external_without_identity_gets_data_challenge() {
    for answer in [
        "DATA\r\n".to_owned(),
        format!("DATA {}\r\n", hex(&my_uid().to_string())),
    ] {
        let mut c = Conv::unix(config(&[Mechanism::External])).await;
        c.send(b"\0AUTH EXTERNAL\r\n").await;
        assert_eq!(c.line().await.unwrap(), "DATA");
        c.send(answer.as_bytes()).await;
        assert_eq!(c.line().await.unwrap(), format!("OK {GUID}"));
        c.send(b"BEGIN\r\n").await;
        assert_eq!(c.finish().await.identity, Identity::Uid(my_uid()));
    }
}

#[tokio::test]
async fn external_with_other_uid_is_rejected_and_client_can_retry() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    let other = my_uid().wrapping_add(1);
    c.send(format!("\0AUTH EXTERNAL {}\r\n", hex(&other.to_string())).as_bytes())
        .await;
    assert_eq!(c.line().await.unwrap(), "REJECTED EXTERNAL");
    c.send(own_external().as_bytes()).await;
    assert!(c.line().await.unwrap().starts_with("OK "));
    c.send(b"BEGIN\r\n").await;
    c.finish().await;
}

#[tokio::test]
async fn six_rejections_disconnect() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0").await;
    for i in 0..6 {
        assert!(c.try_send(b"AUTH NOPE\r\n").await || i == 5);
        assert_eq!(
            c.line().await.unwrap(),
            "REJECTED EXTERNAL",
            "rejection {i}"
        );
    }
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::TooManyRejections { limit: 6 }
    );
}

#[tokio::test]
async fn unknown_commands_get_error_and_keep_the_state() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0FOOBAR\r\nEXTENSION_X\r\n").await;
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    c.send(own_external().as_bytes()).await;
    assert!(c.line().await.unwrap().starts_with("OK "));
}

#[tokio::test]
async fn bad_hex_gets_error_never_a_crash() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0AUTH EXTERNAL zz\r\n").await;
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    c.send(b"AUTH EXTERNAL\r\nDATA 3\r\n").await;
    assert_eq!(c.line().await.unwrap(), "DATA");
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    c.send(b"DATA\r\n").await;
    assert!(c.line().await.unwrap().starts_with("OK "));
}

#[tokio::test]
async fn unknown_mechanism_is_rejected() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0AUTH KERBEROS_V4\r\n").await;
    assert_eq!(c.line().await.unwrap(), "REJECTED EXTERNAL");
}

#[tokio::test]
async fn cancel_rejects_and_client_must_authenticate_again() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0AUTH EXTERNAL\r\n").await;
    assert_eq!(c.line().await.unwrap(), "DATA");
    c.send(b"CANCEL\r\n").await;
    assert_eq!(c.line().await.unwrap(), "REJECTED EXTERNAL");
    c.send(own_external().as_bytes()).await;
    assert!(c.line().await.unwrap().starts_with("OK "));
    c.send(b"CANCEL\r\n").await;
    assert_eq!(c.line().await.unwrap(), "REJECTED EXTERNAL");
    // Not authenticated any more: BEGIN now is BEGIN before OK.
    c.send(b"BEGIN\r\n").await;
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::BeginBeforeOk
    );
}

#[tokio::test]
async fn begin_before_ok_disconnects() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0BEGIN\r\n").await;
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::BeginBeforeOk
    );
}

#[tokio::test]
async fn negotiate_unix_fd_only_after_ok_and_only_where_fds_pass() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0NEGOTIATE_UNIX_FD\r\n").await;
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    c.send(own_external().as_bytes()).await;
    assert!(c.line().await.unwrap().starts_with("OK "));
    c.send(b"NEGOTIATE_UNIX_FD\r\n").await;
    assert_eq!(c.line().await.unwrap(), "AGREE_UNIX_FD");
    c.send(b"BEGIN\r\n").await;
    assert!(c.finish().await.unix_fd);

    let mut c = Conv::tcp(config(&[Mechanism::Anonymous])).await;
    c.send(b"\0AUTH ANONYMOUS\r\n").await;
    assert!(c.line().await.unwrap().starts_with("OK "));
    c.send(b"NEGOTIATE_UNIX_FD\r\n").await;
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    c.send(b"BEGIN\r\n").await;
    let conn = c.finish().await;
    assert!(!conn.unix_fd);
    assert_eq!(conn.identity, Identity::Anonymous);
}

#[tokio::test]
async fn in_memory_transport_agrees_to_fds_since_it_moves_them() {
    // The in-memory pair carries fds (issue 4), so it agrees; credentials come from the creator.
    let (a, b) = memory_pair(Some(fastbus_transport::Credentials::from_uid(4242)), None);
    let mut c = Conv::with(Box::new(a), Box::new(b), config(&[Mechanism::External])).await;
    c.send(
        format!(
            "\0AUTH EXTERNAL {}\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n",
            hex("4242")
        )
        .as_bytes(),
    )
    .await;
    assert!(c.line().await.unwrap().starts_with("OK "));
    assert_eq!(c.line().await.unwrap(), "AGREE_UNIX_FD");
    let conn = c.finish().await;
    assert_eq!(conn.identity, Identity::Uid(4242));
}

#[tokio::test]
async fn first_byte_not_nul_disconnects() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"AUTH\r\n").await;
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::FirstByteNotNul
    );
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\n").await;
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::FirstByteNotNul
    );
}

#[tokio::test]
async fn nul_inside_a_line_gets_error() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0AUTH\0EXTERNAL\r\n").await;
    assert!(c.line().await.unwrap().starts_with("ERROR"));
}

#[tokio::test]
async fn newline_without_cr_and_empty_lines_never_panic() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(b"\0\n").await;
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    c.send(b"AUTH EXTERNAL 31\n").await;
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    c.send(b"\r\n").await;
    assert!(c.line().await.unwrap().starts_with("ERROR"));
    c.send(own_external().as_bytes()).await;
    assert!(c.line().await.unwrap().starts_with("OK "));
}

#[tokio::test]
async fn line_over_16_kib_disconnects_and_cap_is_configurable() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    let mut big = vec![0u8];
    big.extend(std::iter::repeat_n(b'A', 16 * 1024 + 1));
    let _ = c.try_send(&big).await;
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::LineTooLong { limit: 16 * 1024 }
    );

    let mut cfg = config(&[Mechanism::External]);
    cfg.max_line = 100;
    let mut c = Conv::unix(cfg).await;
    c.send(b"\0").await;
    let _ = c.try_send(&[b'A'; 101]).await;
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::LineTooLong { limit: 100 }
    );
}

#[tokio::test]
async fn slow_client_hits_the_auth_timeout_and_is_dropped() {
    let mut cfg = config(&[Mechanism::External]);
    cfg.timeout = Duration::from_millis(300);
    let mut c = Conv::unix(cfg).await;
    c.send(b"\0").await;
    // One byte at a time with pauses; the server must give up on its own.
    let mut closed = false;
    for _ in 0..200 {
        if !c.try_send(b"A").await {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if c.server.is_finished() {
            closed = true;
            break;
        }
    }
    assert!(closed, "the auth timeout never fired");
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::Timeout(Duration::from_millis(300))
    );
}

#[tokio::test]
async fn fds_sent_during_auth_disconnect_and_are_closed() {
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send_fds(b"\0AUTH", vec![pw]).await;
    assert_eq!(
        auth_err(c.expect_disconnect().await),
        AuthError::FdsDuringAuth
    );
    // Our copy of the write end went with sendmsg; if the server had kept its copy,
    // this read would block instead of seeing end-of-file.
    let mut b = [0u8; 1];
    assert_eq!(rustix::io::read(&pr, &mut b).unwrap(), 0);
}

#[tokio::test]
async fn client_rejects_bad_guid_from_a_real_socket_and_cancels_unexpected_data() {
    use fastbus_transport::auth::{ClientMechanism, ClientOptions};
    for (reply, expect_cancel) in [
        ("OK 0123456789abcdef0123456789abcde\r\n", false),
        ("DATA 00\r\n", true),
    ] {
        let (c, s) = socketpair().unwrap();
        let opts = ClientOptions {
            mechanisms: vec![ClientMechanism::External],
            pipeline: false,
            ..Default::default()
        };
        let client = tokio::spawn(async move {
            fastbus_transport::client_handshake(Box::new(c), &opts, None, None).await
        });
        let (mut r, mut w) = (Box::new(s) as BoxTransport).split();
        let mut buf = [0u8; 1024];
        let got = tr::recv(&mut *r, &mut buf, &mut Vec::new()).await.unwrap();
        assert!(buf[..got.bytes].starts_with(b"\0AUTH EXTERNAL "));
        tr::send(&mut *w, reply.as_bytes(), Vec::new())
            .await
            .unwrap();
        if expect_cancel {
            let got = tr::recv(&mut *r, &mut buf, &mut Vec::new()).await.unwrap();
            assert_eq!(&buf[..got.bytes], b"CANCEL\r\n");
            tr::send(&mut *w, b"REJECTED EXTERNAL\r\n", Vec::new())
                .await
                .unwrap();
            assert!(matches!(
                client.await.unwrap(),
                Err(Error::Auth(AuthError::Rejected { .. }))
            ));
        } else {
            assert!(matches!(
                client.await.unwrap(),
                Err(Error::Auth(AuthError::BadGuid(_)))
            ));
        }
    }
}

#[tokio::test]
async fn client_pipelines_auth_negotiate_begin_and_first_message_in_one_write() {
    use fastbus_transport::auth::ClientOptions;
    let (c, s) = socketpair().unwrap();
    let writes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = crate::CountingTransport {
        inner: Box::new(c),
        writes: Arc::clone(&writes),
    };
    let hello_bytes = encoded(&hello(1));
    let first = hello_bytes.clone();
    let client = tokio::spawn(async move {
        fastbus_transport::client_handshake(
            Box::new(counted),
            &ClientOptions::default(),
            None,
            Some(&first),
        )
        .await
    });
    let mut expect = format!("\0{}NEGOTIATE_UNIX_FD\r\nBEGIN\r\n", own_external()).into_bytes();
    expect.extend_from_slice(&hello_bytes);
    // Everything arrives before the server has said anything.
    let (mut r, mut w) = (Box::new(s) as BoxTransport).split();
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < expect.len() {
        let n = tr::recv(&mut *r, &mut buf[got..], &mut Vec::new())
            .await
            .unwrap();
        assert!(n.bytes > 0, "client closed early");
        got += n.bytes;
    }
    assert_eq!(&buf[..got], &expect[..]);
    tr::send(
        &mut *w,
        format!("OK {GUID}\r\nAGREE_UNIX_FD\r\n").as_bytes(),
        Vec::new(),
    )
    .await
    .unwrap();
    let conn = client.await.unwrap().unwrap();
    assert!(conn.unix_fd);
    assert_eq!(conn.guid.as_str(), GUID);
    assert_eq!(
        writes.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "AUTH, NEGOTIATE_UNIX_FD, BEGIN and the first message go out in one write"
    );
}

/// A client may send `BEGIN` and, right behind it, a first message carrying fds; the kernel can
/// hand both to the server's last auth read. The fds belong to that message, not to the auth.
#[tokio::test]
async fn fds_of_the_first_message_right_after_begin_reach_that_message() {
    let (pr, pw) = rustix::pipe::pipe().unwrap();
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    c.send(format!("\0{}NEGOTIATE_UNIX_FD\r\n", own_external()).as_bytes())
        .await;
    assert!(c.line().await.unwrap().starts_with("OK "));
    assert_eq!(c.line().await.unwrap(), "AGREE_UNIX_FD");
    let msg = fastbus_wire::Message::signal("/t", "org.example.T", "Fd")
        .serial(3)
        .body(&fastbus_wire::Fd(0))
        .fds(vec![pw])
        .build()
        .unwrap();
    let mut bytes = b"BEGIN\r\n".to_vec();
    bytes.extend(encoded(&msg));
    let dup = msg.fds()[0].try_clone().unwrap();
    drop(msg);
    c.send_fds(&bytes, vec![dup]).await;
    let mut conn = c.finish().await;
    let got = conn.reader.next_message().await.unwrap().unwrap();
    assert_eq!(got.serial(), 3);
    assert_eq!(got.fds().len(), 1);
    assert_eq!(rustix::io::write(&got.fds()[0], b"x").unwrap(), 1);
    let mut b = [0u8; 1];
    assert_eq!(rustix::io::read(&pr, &mut b).unwrap(), 1);
}

/// sd-bus and dbus-broker clients pipeline everything, with an empty EXTERNAL identity answered
/// by an empty DATA (auth.md, client-side facts).
#[tokio::test]
async fn sd_bus_style_pipelined_handshake_with_empty_data() {
    let mut c = Conv::unix(config(&[Mechanism::External])).await;
    let mut all = b"\0AUTH EXTERNAL\r\nDATA\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n".to_vec();
    all.extend(encoded(&hello(1)));
    c.send(&all).await;
    assert_eq!(c.line().await.unwrap(), "DATA");
    assert_eq!(c.line().await.unwrap(), format!("OK {GUID}"));
    assert_eq!(c.line().await.unwrap(), "AGREE_UNIX_FD");
    let mut conn = c.finish().await;
    assert!(conn.unix_fd);
    assert_eq!(conn.identity, Identity::Uid(my_uid()));
    assert_eq!(
        conn.reader.next_message().await.unwrap().unwrap().serial(),
        1
    );
}

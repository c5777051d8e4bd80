//! Runs the SASL state machines of [`crate::auth`] over a transport: the
//! only async part of authentication, which just moves bytes.
//!
//! On success the transport is split and wrapped in a framed reader and
//! writer; bytes that followed `BEGIN` become the first message bytes.

use std::sync::Arc;

use bytes::BytesMut;

use crate::auth::{ClientAuth, ClientOptions, Guid, Identity, Mechanism, ServerAuth, ServerConfig};
use crate::creds::Credentials;
use crate::error::{AuthError, Error, Result};
use crate::framed::{FramedReader, FramedWriter};
use crate::transport::{BoxTransport, TransportRead, recv, send};

/// Size of one read while authenticating.
const AUTH_READ: usize = 4096;

/// A client connection that finished authentication.
#[derive(Debug)]
pub struct ClientConnection {
    /// Incoming messages.
    pub reader: FramedReader,
    /// Outgoing messages.
    pub writer: FramedWriter,
    /// The server's guid.
    pub guid: Guid,
    /// Whether Unix fds may be sent and received.
    pub unix_fd: bool,
    /// The server's credentials, where the transport knows them.
    pub peer_credentials: Option<Credentials>,
}

/// A server-side connection that finished authentication.
#[derive(Debug)]
pub struct ServerConnection {
    /// Incoming messages (starting with any bytes that followed `BEGIN`).
    pub reader: FramedReader,
    /// Outgoing messages.
    pub writer: FramedWriter,
    /// Who the client authenticated as.
    pub identity: Identity,
    /// The mechanism that succeeded.
    pub mechanism: Mechanism,
    /// Whether Unix fds may be sent and received.
    pub unix_fd: bool,
    /// The client's credentials, where the transport knows them.
    pub peer_credentials: Option<Credentials>,
}

/// Fds that came in while authenticating: `(fds, truncated)`.
type AuthFds = (Vec<std::os::fd::OwnedFd>, bool);

/// One receive during authentication, appended to `input`. Fds that came
/// with it are returned: they are a protocol violation unless this read also
/// finished the conversation and carried message bytes after it.
async fn auth_recv(r: &mut dyn TransportRead, input: &mut BytesMut) -> Result<AuthFds> {
    let mut tmp = [0u8; AUTH_READ];
    let mut fds = Vec::new();
    let got = recv(r, &mut tmp, &mut fds).await?;
    if got.bytes == 0 {
        return Err(Error::UnexpectedEof {
            context: "authenticating",
        });
    }
    input.extend_from_slice(&tmp[..got.bytes]);
    Ok((fds, got.fds_truncated))
}

/// Decides about fds that arrived in the read whose lines were just fed.
///
/// Linux ends a read after the data that carried fds, so fds in the read
/// that finished authentication belong to the message bytes after `BEGIN`
/// (a peer that sends `BEGIN` and its first fd-carrying message back to back):
/// they are kept for the framed reader. Anywhere else they are a protocol
/// violation (dbus-broker: "no extension shall pass FDs during
/// authentication"), and dropping them closes them.
fn check_auth_fds(got: AuthFds, finished: bool, leftover: &BytesMut) -> Result<AuthFds> {
    let (fds, truncated) = got;
    if fds.is_empty() && !truncated {
        return Ok((fds, false));
    }
    if finished && !leftover.is_empty() {
        return Ok((fds, truncated));
    }
    drop(fds);
    Err(AuthError::FdsDuringAuth.into())
}

/// Authenticates as a client over `transport`.
///
/// `first_message` (usually the encoded `Hello` call) is sent in the same
/// write as `BEGIN`; with EXTERNAL pipelining that is the very first write.
///
/// # Errors
/// [`Error::Auth`] when authentication fails or times out; I/O errors.
pub async fn client_handshake(
    transport: BoxTransport,
    opts: &ClientOptions,
    expected_guid: Option<Guid>,
    first_message: Option<&[u8]>,
) -> Result<ClientConnection> {
    let peer = transport.peer_credentials();
    let mut auth = ClientAuth::new(
        opts,
        transport.can_pass_fds(),
        peer.is_some(),
        expected_guid,
    );
    let (mut r, mut w) = transport.split();
    let timeout = opts.timeout;
    let run = async {
        let mut out = Vec::new();
        auth.start(&mut out)?;
        let mut first_sent = false;
        if auth.is_pipelined() {
            if let Some(m) = first_message {
                out.extend_from_slice(m);
                first_sent = true;
            }
        }
        send(&mut *w, &out, Vec::new()).await?;
        out.clear();
        let mut input = BytesMut::new();
        loop {
            let got = auth_recv(&mut *r, &mut input).await?;
            let step = auth.feed(&mut input, &mut out);
            let fds = check_auth_fds(got, matches!(step, Ok(Some(_))), &input)?;
            if let Ok(Some(_)) = step {
                if !first_sent {
                    if let Some(m) = first_message {
                        out.extend_from_slice(m);
                    }
                }
            }
            if !out.is_empty() {
                send(&mut *w, &out, Vec::new()).await?;
                out.clear();
            }
            if let Some(outcome) = step? {
                return Ok::<_, Error>((outcome, input, fds));
            }
        }
    };
    let (outcome, leftover, (fds, truncated)) = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| Error::Auth(AuthError::Timeout(timeout)))??;
    Ok(ClientConnection {
        reader: FramedReader::with_buffer_and_fds(r, leftover, fds, truncated),
        writer: FramedWriter::new(w, outcome.unix_fd),
        guid: outcome.guid,
        unix_fd: outcome.unix_fd,
        peer_credentials: peer,
    })
}

/// Authenticates a client that connected to us, within `config.timeout`.
///
/// `nonce`: for `nonce-tcp:` listeners, the 16 bytes the client must send first.
///
/// # Errors
/// [`Error::Auth`] (the caller must drop the connection), [`Error::BadNonce`], I/O errors.
pub async fn server_handshake(
    transport: BoxTransport,
    config: Arc<ServerConfig>,
    nonce: Option<[u8; 16]>,
) -> Result<ServerConnection> {
    let peer = transport.peer_credentials();
    let mut auth = ServerAuth::new(Arc::clone(&config), peer, transport.can_pass_fds());
    auth.defer_keyring();
    let (mut r, mut w) = transport.split();
    let run = async {
        let mut input = BytesMut::new();
        if let Some(nonce) = nonce {
            while input.len() < nonce.len() {
                let got = auth_recv(&mut *r, &mut input).await?;
                check_auth_fds(got, false, &input)?;
            }
            let got = input.split_to(nonce.len());
            if !crate::auth::constant_time_eq(&got, &nonce) {
                return Err(Error::BadNonce);
            }
        }
        let mut out = Vec::new();
        let mut got: AuthFds = (Vec::new(), false);
        loop {
            let mut step = auth.feed(&mut input, &mut out);
            // DBUS_COOKIE_SHA1 reads and writes the keyring and may wait for another
            // process's lock on it: that blocking work runs off the runtime's threads.
            while let Some(job) = auth.take_keyring_job() {
                let found = tokio::task::spawn_blocking(job).await.unwrap_or_else(|e| {
                    Err(Error::io(
                        "reading the DBUS_COOKIE_SHA1 keyring",
                        std::io::Error::other(e.to_string()),
                    ))
                });
                step = auth
                    .cookie_found(found, &mut out)
                    .and_then(|()| auth.feed(&mut input, &mut out));
            }
            let fds = check_auth_fds(got, matches!(step, Ok(Some(_))), &input)?;
            if !out.is_empty() {
                send(&mut *w, &out, Vec::new()).await?;
                out.clear();
            }
            if let Some(outcome) = step? {
                return Ok((outcome, input, fds));
            }
            got = auth_recv(&mut *r, &mut input).await?;
        }
    };
    let (outcome, leftover, (fds, truncated)) =
        tokio::time::timeout(config.timeout, run)
            .await
            .map_err(|_| Error::Auth(AuthError::Timeout(config.timeout)))??;
    Ok(ServerConnection {
        reader: FramedReader::with_buffer_and_fds(r, leftover, fds, truncated),
        writer: FramedWriter::new(w, outcome.unix_fd),
        identity: outcome.identity,
        mechanism: outcome.mechanism,
        unix_fd: outcome.unix_fd,
        peer_credentials: peer,
    })
}

/// Splits a transport without authenticating (peer-to-peer tests, benchmarks).
pub fn raw_framed(transport: BoxTransport) -> (FramedReader, FramedWriter) {
    let fds = transport.can_pass_fds();
    let (r, w) = transport.split();
    (FramedReader::new(r), FramedWriter::new(w, fds))
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::os::unix::fs::DirBuilderExt;
    use std::time::Duration;

    use super::*;
    use crate::auth::{ClientMechanism, CookieSha1, Keyring};
    use crate::transport::socketpair;

    /// Fails the test instead of hanging it.
    async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
        match tokio::time::timeout(Duration::from_secs(60), f).await {
            Ok(v) => v,
            Err(_) => panic!("timed out: {what}"),
        }
    }

    /// A `current_thread` runtime has one thread: while the server waits for
    /// another process's keyring lock, a task on that thread must still run
    /// (here: the task that plays the other process and lets go of the lock).
    #[tokio::test(flavor = "current_thread")]
    async fn cookie_sha1_keyring_lock_wait_does_not_block_the_runtime() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keyrings");
        std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        let lock = dir.join("org_freedesktop_general.lock");
        std::fs::write(&lock, "held by another process").unwrap();
        let mut keyring = Keyring::new(&dir);
        // About 30 s before the lock would be broken as stale: the server waits for it.
        keyring.stale_lock_attempts = 2000;
        let own = rustix::process::geteuid().as_raw();
        let mut cfg = ServerConfig::new(Guid::parse("0123456789abcdef0123456789abcdef").unwrap());
        cfg.mechanisms = vec![Mechanism::CookieSha1];
        cfg.keyring = Some(keyring.clone());
        cfg.timeout = Duration::from_secs(60);
        let (a, b) = socketpair().unwrap();
        let server = tokio::spawn(server_handshake(Box::new(b), Arc::new(cfg), None));
        let client = tokio::spawn(async move {
            let k = keyring.clone();
            let opts = ClientOptions {
                mechanisms: vec![ClientMechanism::Custom(Arc::new(move || {
                    Box::new(CookieSha1::with(own.to_string(), k.clone()))
                }))],
                timeout: Duration::from_secs(60),
                ..Default::default()
            };
            client_handshake(Box::new(a), &opts, None, None).await
        });
        // Let the server read AUTH and start waiting; then, as the other process, let go.
        tokio::time::sleep(Duration::from_millis(50)).await;
        std::fs::remove_file(&lock).expect(
            "the other process's lock is still there: the server waited for it off the runtime",
        );
        let conn = bounded("the server handshake", server)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(conn.identity, Identity::Uid(own));
        assert_eq!(conn.mechanism, Mechanism::CookieSha1);
        bounded("the client handshake", client)
            .await
            .unwrap()
            .unwrap();
        assert!(!lock.exists(), "the server let go of its own lock");
        assert!(dir.join("org_freedesktop_general").exists(), "cookie saved");
    }
}

//! Connecting to an address (list) and listening on one.
//!
//! A client tries the entries of an address list in order and reports every
//! failure if none connects. A [`Listener`] accepts Unix (path, abstract,
//! `dir=`, `tmpdir=`, `runtime=yes`), TCP and nonce-TCP connections, or
//! in-memory ones; each accepted connection is an [`Incoming`] to authenticate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::address::{Address, AddressKind, BusType, TcpAddress, TcpFamily};
use crate::auth::{ClientOptions, ServerConfig, hex_encode, random_bytes};
use crate::creds::Credentials;
use crate::error::{Error, Result};
use crate::handshake::{ClientConnection, ServerConnection, client_handshake, server_handshake};
use crate::transport::{
    BoxTransport, MemoryConnector, MemoryListener, TcpTransport, UnixTransport,
};

fn host_of(t: &TcpAddress) -> &str {
    t.host.as_deref().unwrap_or("localhost")
}

async fn resolve(host: &str, port: u16, family: Option<TcpFamily>) -> Result<Vec<SocketAddr>> {
    let all = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::io("resolving host", e))?;
    let list: Vec<SocketAddr> = all
        .filter(|a| match family {
            Some(TcpFamily::Ipv4) => a.is_ipv4(),
            Some(TcpFamily::Ipv6) => a.is_ipv6(),
            None => true,
        })
        .collect();
    if list.is_empty() {
        return Err(Error::io(
            "resolving host",
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no address for {host}"),
            ),
        ));
    }
    Ok(list)
}

async fn tcp_connect(t: &TcpAddress) -> Result<tokio::net::TcpStream> {
    let port = t
        .port
        .ok_or_else(|| Error::address(format!("{t:?}"), "tcp: needs port="))?;
    let mut last = None;
    for a in resolve(host_of(t), port, t.family).await? {
        match tokio::net::TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(Error::io(
        "connecting over TCP",
        last.unwrap_or_else(|| std::io::Error::other("no address")),
    ))
}

/// Opens the transport an address names (no authentication yet). For
/// `nonce-tcp:` the nonce from `noncefile=` is sent first.
///
/// # Errors
/// [`Error::Unsupported`] for listen-only and unknown transports; I/O errors.
pub async fn connect_transport(addr: &Address) -> Result<BoxTransport> {
    match &addr.kind {
        AddressKind::UnixPath(p) => Ok(Box::new(UnixTransport::connect_path(p).await?)),
        AddressKind::UnixAbstract(n) => Ok(Box::new(UnixTransport::connect_abstract(n).await?)),
        AddressKind::Tcp(t) => Ok(Box::new(TcpTransport::new(tcp_connect(t).await?))),
        AddressKind::NonceTcp { tcp, noncefile } => {
            use tokio::io::AsyncWriteExt;
            let file = noncefile
                .as_ref()
                .ok_or_else(|| Error::address(addr.to_string(), "nonce-tcp: needs noncefile="))?;
            let nonce = std::fs::read(file).map_err(|e| Error::io("reading noncefile", e))?;
            if nonce.len() != 16 {
                return Err(Error::address(
                    addr.to_string(),
                    "noncefile must hold 16 bytes",
                ));
            }
            let mut s = tcp_connect(tcp).await?;
            s.write_all(&nonce)
                .await
                .map_err(|e| Error::io("sending the nonce", e))?;
            Ok(Box::new(TcpTransport::new(s)))
        }
        _ => Err(Error::Unsupported(format!("cannot connect to {addr}"))),
    }
}

/// Connects to the first entry of `addrs` that works, and authenticates.
/// `first_message` goes out with `BEGIN` (see [`client_handshake`]).
///
/// # Errors
/// [`Error::ConnectFailed`] with every entry's error when none connects.
pub async fn connect(
    addrs: &[Address],
    opts: &ClientOptions,
    first_message: Option<&[u8]>,
) -> Result<ClientConnection> {
    let mut failures = Vec::new();
    for a in addrs {
        let attempt = async {
            let t = connect_transport(a).await?;
            client_handshake(t, opts, a.guid.clone(), first_message).await
        };
        match attempt.await {
            Ok(c) => return Ok(c),
            Err(e) => failures.push((a.to_string(), e)),
        }
    }
    Err(Error::ConnectFailed(failures))
}

/// Connects to the session or system bus (see [`BusType::address`]).
///
/// # Errors
/// As [`BusType::address`] and [`connect`].
pub async fn connect_bus(
    bus: BusType,
    opts: &ClientOptions,
    first_message: Option<&[u8]>,
) -> Result<ClientConnection> {
    connect(&bus.address()?, opts, first_message).await
}

/// A connection accepted by a [`Listener`], not yet authenticated.
///
/// While it exists it holds one of the listener's slots for incomplete
/// connections (see [`Listener::set_max_incomplete`]); the slot is freed when
/// [`Incoming::authenticate`] returns, or when it is dropped.
#[derive(Debug)]
pub struct Incoming {
    transport: BoxTransport,
    nonce: Option<[u8; 16]>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl Incoming {
    /// The peer's credentials (Unix: SO_PEERCRED; in-memory: what the connector said).
    pub fn peer_credentials(&self) -> Option<Credentials> {
        self.transport.peer_credentials()
    }

    /// Runs the server side of authentication (and the nonce check for `nonce-tcp:`).
    ///
    /// # Errors
    /// As [`server_handshake`].
    pub async fn authenticate(self, config: Arc<ServerConfig>) -> Result<ServerConnection> {
        let Incoming {
            transport,
            nonce,
            _slot: slot,
        } = self;
        let r = server_handshake(transport, config, nonce).await;
        drop(slot);
        r
    }

    /// The raw transport, for callers that run their own handshake (and then
    /// their own count of incomplete connections: the slot is freed here).
    pub fn into_transport(self) -> (BoxTransport, Option<[u8; 16]>) {
        (self.transport, self.nonce)
    }
}

#[derive(Debug)]
enum Inner {
    Unix(UnixListener),
    Tcp(TcpListener),
    Memory(MemoryListener),
}

/// Accepts connections for a server or a bus daemon.
#[derive(Debug)]
pub struct Listener {
    inner: Inner,
    address: Address,
    nonce: Option<[u8; 16]>,
    /// Files to remove when the listener goes away (socket path, noncefile and its dir).
    cleanup: Vec<PathBuf>,
    /// Slots for connections still authenticating, when capped.
    incomplete: Option<Arc<Semaphore>>,
}

fn random_name(prefix: &str) -> Result<String> {
    let mut b = [0u8; 8];
    random_bytes(&mut b).map_err(|e| Error::io("random name", e))?;
    Ok(format!("{prefix}{}", hex_encode(&b)))
}

fn bind_unix(path: &Path) -> Result<UnixListener> {
    UnixListener::bind(path).map_err(|e| Error::io("binding unix socket", e))
}

impl Listener {
    /// Listens on `addr`. The connectable address is [`Listener::address`]
    /// (for `dir=`/`tmpdir=`/`runtime=yes` the chosen path, for `port=0` the chosen port).
    ///
    /// # Errors
    /// [`Error::Unsupported`] for transports we cannot listen on; I/O errors.
    pub async fn bind(addr: &Address) -> Result<Listener> {
        let mut cleanup = Vec::new();
        let mut nonce = None;
        let (inner, kind) = match &addr.kind {
            AddressKind::UnixPath(p) => {
                let l = bind_unix(p)?;
                cleanup.push(p.clone());
                (Inner::Unix(l), AddressKind::UnixPath(p.clone()))
            }
            AddressKind::UnixAbstract(n) => {
                let a = crate::transport::unix_abstract_addr(n)?;
                let std = std::os::unix::net::UnixListener::bind_addr(&a)
                    .map_err(|e| Error::io("binding abstract socket", e))?;
                std.set_nonblocking(true)
                    .map_err(|e| Error::io("setting non-blocking", e))?;
                let l = UnixListener::from_std(std)
                    .map_err(|e| Error::io("registering listener", e))?;
                (Inner::Unix(l), AddressKind::UnixAbstract(n.clone()))
            }
            AddressKind::UnixDir(d) | AddressKind::UnixTmpdir(d) => {
                let p = d.join(random_name("dbus-")?);
                let l = bind_unix(&p)?;
                cleanup.push(p.clone());
                (Inner::Unix(l), AddressKind::UnixPath(p))
            }
            AddressKind::UnixRuntime => {
                let p = runtime_socket(crate::creds::is_setuid(), |k| std::env::var_os(k))?;
                let l = bind_unix(&p)?;
                cleanup.push(p.clone());
                (Inner::Unix(l), AddressKind::UnixPath(p))
            }
            AddressKind::Tcp(t) | AddressKind::NonceTcp { tcp: t, .. } => {
                let bind_host = t.bind.as_deref().unwrap_or(host_of(t));
                let mut last = None;
                let mut bound = None;
                for a in resolve(bind_host, t.port.unwrap_or(0), t.family).await? {
                    match TcpListener::bind(a).await {
                        Ok(l) => {
                            bound = Some(l);
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                let l = bound.ok_or_else(|| {
                    Error::io(
                        "binding TCP",
                        last.unwrap_or_else(|| std::io::Error::other("no address")),
                    )
                })?;
                let local = l.local_addr().map_err(|e| Error::io("local address", e))?;
                let tcp = TcpAddress {
                    host: Some(host_of(t).to_owned()),
                    bind: None,
                    port: Some(local.port()),
                    family: Some(if local.is_ipv4() {
                        TcpFamily::Ipv4
                    } else {
                        TcpFamily::Ipv6
                    }),
                };
                if matches!(addr.kind, AddressKind::Tcp(_)) {
                    (Inner::Tcp(l), AddressKind::Tcp(tcp))
                } else {
                    let (file, dir, n) = write_noncefile()?;
                    cleanup.push(file.clone());
                    cleanup.push(dir);
                    nonce = Some(n);
                    (
                        Inner::Tcp(l),
                        AddressKind::NonceTcp {
                            tcp,
                            noncefile: Some(file),
                        },
                    )
                }
            }
            _ => return Err(Error::Unsupported(format!("cannot listen on {addr}"))),
        };
        Ok(Listener {
            inner,
            address: Address {
                kind,
                guid: addr.guid.clone(),
            },
            nonce,
            cleanup,
            incomplete: None,
        })
    }

    /// An in-memory listener; clients connect through the returned connector.
    /// `server_creds` is what clients see as their peer's credentials.
    pub fn memory(server_creds: Option<Credentials>) -> (Listener, MemoryConnector) {
        let (l, c) = MemoryListener::new(server_creds);
        let address = Address::new(AddressKind::Other {
            transport: "memory".into(),
            params: Vec::new(),
        });
        (
            Listener {
                inner: Inner::Memory(l),
                address,
                nonce: None,
                cleanup: Vec::new(),
                incomplete: None,
            },
            c,
        )
    }

    /// The address clients connect to (without a guid unless the bind address had one).
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Lets at most `max` accepted connections authenticate at once: while
    /// that many [`Incoming`]s are alive, [`Listener::accept`] waits, and new
    /// clients wait in the kernel's backlog instead of being dropped (what
    /// dbus-daemon's `max_incomplete_connections` does since CVE-2014-3639).
    /// With the auth timeout ([`ServerConfig::timeout`]) a slow client holds a
    /// slot for a bounded time. `max` of 0 is taken as 1.
    pub fn set_max_incomplete(&mut self, max: usize) {
        self.incomplete = Some(Arc::new(Semaphore::new(max.max(1))));
    }

    /// Waits for the next connection (first for a free slot, when capped).
    ///
    /// # Errors
    /// I/O errors of `accept`; for in-memory listeners, when every connector is gone.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn accept(&mut self) -> Result<Incoming> {
        let slot =
            match &self.incomplete {
                Some(sem) => Some(Arc::clone(sem).acquire_owned().await.map_err(|_| {
                    Error::UnexpectedEof {
                        context: "waiting for a free connection slot",
                    }
                })?),
                None => None,
            };
        let transport: BoxTransport = match &mut self.inner {
            Inner::Unix(l) => {
                let (s, _) = l
                    .accept()
                    .await
                    .map_err(|e| Error::io("accepting unix connection", e))?;
                Box::new(UnixTransport::new(s))
            }
            Inner::Tcp(l) => {
                let (s, _) = l
                    .accept()
                    .await
                    .map_err(|e| Error::io("accepting TCP connection", e))?;
                Box::new(TcpTransport::new(s))
            }
            Inner::Memory(l) => match l.accept().await {
                Some(t) => Box::new(t),
                None => {
                    return Err(Error::UnexpectedEof {
                        context: "accepting in-memory connections",
                    });
                }
            },
        };
        Ok(Incoming {
            transport,
            nonce: self.nonce,
            _slot: slot,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        for p in &self.cleanup {
            if p.is_dir() {
                let _ = std::fs::remove_dir(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// Where `unix:runtime=yes` listens: `$XDG_RUNTIME_DIR/bus`. A setuid process
/// never reads the environment (CVE-2012-3524), so it gets an error.
fn runtime_socket(
    setuid: bool,
    getenv: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<PathBuf> {
    let dir = if setuid {
        None
    } else {
        getenv("XDG_RUNTIME_DIR").filter(|d| !d.is_empty())
    };
    let dir = dir.ok_or_else(|| {
        Error::Environment("unix:runtime=yes needs XDG_RUNTIME_DIR (and no setuid)".into())
    })?;
    Ok(PathBuf::from(dir).join("bus"))
}

/// Makes a private directory under the temp dir with a 16-byte noncefile in it.
fn write_noncefile() -> Result<(PathBuf, PathBuf, [u8; 16])> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = std::env::temp_dir().join(random_name("dbus-nonce-")?);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::io("creating nonce dir", e))?;
    let file = dir.join("nonce");
    let mut nonce = [0u8; 16];
    random_bytes(&mut nonce).map_err(|e| Error::io("making nonce", e))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .map_err(|e| Error::io("writing noncefile", e))?;
    f.write_all(&nonce)
        .map_err(|e| Error::io("writing noncefile", e))?;
    Ok((file, dir, nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_listener_uses_xdg_runtime_dir_unless_setuid() {
        let env = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/run/user/7".into());
        assert_eq!(
            runtime_socket(false, env).unwrap(),
            PathBuf::from("/run/user/7/bus")
        );
        assert!(matches!(
            runtime_socket(true, env),
            Err(Error::Environment(_))
        ));
        assert!(matches!(
            runtime_socket(false, |_| None),
            Err(Error::Environment(_))
        ));
    }

    #[tokio::test]
    async fn nonce_tcp_without_noncefile_is_a_clear_error() {
        let a = Address::parse("nonce-tcp:host=127.0.0.1,port=1").unwrap();
        assert!(matches!(
            connect_transport(&a).await,
            Err(Error::Address { .. })
        ));
    }

    #[tokio::test]
    async fn listen_only_and_unknown_addresses_cannot_be_connected() {
        for a in ["unix:dir=/tmp", "unix:runtime=yes", "launchd:env=X"] {
            let a = Address::parse(a).unwrap();
            assert!(
                matches!(connect_transport(&a).await, Err(Error::Unsupported(_))),
                "{a}"
            );
        }
    }
}

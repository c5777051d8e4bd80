//! D-Bus addresses: parsing and printing of address lists, and finding the
//! session and system bus.
//!
//! Follows the specification's "Server Addresses" section
//! (<https://dbus.freedesktop.org/doc/dbus-specification.html#addresses>).
//! This module opens no sockets; see [`crate::connect`] and [`crate::Listener`].
//!
//! ```text
//! list   = entry *( ";" entry )
//! entry  = transport ":" [ key "=" value *( "," key "=" value ) ]
//! value  = optionally-escaped bytes: [-0-9A-Za-z_/.\*] as is, others as %XX
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::str::FromStr;

use crate::auth::Guid;
use crate::error::{Error, Result};

/// Address family of a `tcp:` or `nonce-tcp:` address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpFamily {
    /// `family=ipv4`
    Ipv4,
    /// `family=ipv6`
    Ipv6,
}

/// The fields shared by `tcp:` and `nonce-tcp:` addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TcpAddress {
    /// `host=`: the name or address to connect to or listen on (default `localhost`).
    pub host: Option<String>,
    /// `bind=`: listening side only, the interface to bind.
    pub bind: Option<String>,
    /// `port=`: the port; `0` on the listening side means "pick one".
    pub port: Option<u16>,
    /// `family=`: restrict to IPv4 or IPv6.
    pub family: Option<TcpFamily>,
}

/// Which kind of endpoint an [`Address`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressKind {
    /// `unix:path=`: a socket in the file system.
    UnixPath(PathBuf),
    /// `unix:abstract=`: a Linux abstract socket name (without the leading NUL).
    UnixAbstract(Vec<u8>),
    /// `unix:dir=` (listening only): a new socket in this directory.
    UnixDir(PathBuf),
    /// `unix:tmpdir=` (listening only): like `dir=`; may use an abstract socket elsewhere.
    UnixTmpdir(PathBuf),
    /// `unix:runtime=yes` (listening only): `$XDG_RUNTIME_DIR/bus`.
    UnixRuntime,
    /// `tcp:`
    Tcp(TcpAddress),
    /// `nonce-tcp:`, with `noncefile=` (required when connecting).
    NonceTcp {
        /// Host, port, family.
        tcp: TcpAddress,
        /// `noncefile=`: the file holding the 16-byte nonce.
        noncefile: Option<PathBuf>,
    },
    /// Any other transport (`launchd:`, `systemd:`, `unixexec:`, `autolaunch:`...):
    /// kept so it prints back, but this crate cannot connect to it.
    Other {
        /// The transport name before the colon.
        transport: String,
        /// Its key/value pairs, unescaped.
        params: Vec<(String, Vec<u8>)>,
    },
}

/// One entry of a D-Bus address list: an endpoint plus an optional server guid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The endpoint.
    pub kind: AddressKind,
    /// `guid=`: the server's identity; a client checks it against the `OK` line.
    pub guid: Option<Guid>,
}

impl Address {
    /// An address with no guid.
    pub fn new(kind: AddressKind) -> Self {
        Address { kind, guid: None }
    }

    /// `unix:path=<path>`.
    pub fn unix_path(path: impl Into<PathBuf>) -> Self {
        Address::new(AddressKind::UnixPath(path.into()))
    }

    /// Parses a single address (no `;`).
    ///
    /// # Errors
    /// [`Error::Address`] when the text breaks the grammar or a transport's rules.
    pub fn parse(s: &str) -> Result<Self> {
        let list = parse_list(s)?;
        match <[Address; 1]>::try_from(list) {
            Ok([a]) => Ok(a),
            Err(_) => Err(Error::address(s, "expected exactly one address")),
        }
    }

    /// True for the listening-only forms (`unix:dir=`, `tmpdir=`, `runtime=yes`).
    pub fn is_listen_only(&self) -> bool {
        matches!(
            self.kind,
            AddressKind::UnixDir(_) | AddressKind::UnixTmpdir(_) | AddressKind::UnixRuntime
        )
    }
}

impl FromStr for Address {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Address::parse(s)
    }
}

/// Parses a `;`-separated address list. Empty entries (a trailing `;`) are skipped.
///
/// # Errors
/// [`Error::Address`] naming the first bad entry; an empty list is an error too.
pub fn parse_list(s: &str) -> Result<Vec<Address>> {
    let mut out = Vec::new();
    for entry in s.split(';') {
        if entry.is_empty() {
            continue;
        }
        out.push(parse_entry(entry)?);
    }
    if out.is_empty() {
        return Err(Error::address(s, "empty address"));
    }
    Ok(out)
}

/// Prints an address list back, `;`-separated.
pub fn format_list(list: &[Address]) -> String {
    let parts: Vec<String> = list.iter().map(Address::to_string).collect();
    parts.join(";")
}

fn parse_entry(entry: &str) -> Result<Address> {
    let (transport, rest) = entry
        .split_once(':')
        .ok_or_else(|| Error::address(entry, "missing ':' after transport"))?;
    if transport.is_empty() {
        return Err(Error::address(entry, "empty transport name"));
    }
    let mut params: Vec<(String, Vec<u8>)> = Vec::new();
    if !rest.is_empty() {
        for pair in rest.split(',') {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| Error::address(entry, format!("'{pair}' is not key=value")))?;
            if k.is_empty() {
                return Err(Error::address(entry, "empty key"));
            }
            if params.iter().any(|(pk, _)| pk == k) {
                return Err(Error::address(entry, format!("key '{k}' given twice")));
            }
            params.push((
                k.to_owned(),
                unescape(v).map_err(|r| Error::address(entry, r))?,
            ));
        }
    }
    let mut p = Params { entry, params };
    let guid = match p.take("guid") {
        Some(g) => {
            let g = p.utf8("guid", g)?;
            Some(
                Guid::parse(&g)
                    .ok_or_else(|| Error::address(entry, "guid must be 32 hex digits"))?,
            )
        }
        None => None,
    };
    let kind = match transport {
        "unix" => {
            let path = p.take("path");
            let abs = p.take("abstract");
            let dir = p.take("dir");
            let tmpdir = p.take("tmpdir");
            let runtime = p.take("runtime");
            let given = [&path, &abs, &dir, &tmpdir, &runtime]
                .iter()
                .filter(|x| x.is_some())
                .count();
            if given != 1 {
                return Err(Error::address(
                    entry,
                    "unix: needs exactly one of path=, abstract=, dir=, tmpdir=, runtime=",
                ));
            }
            if let Some(v) = path {
                AddressKind::UnixPath(bytes_path(v))
            } else if let Some(v) = abs {
                AddressKind::UnixAbstract(v)
            } else if let Some(v) = dir {
                AddressKind::UnixDir(bytes_path(v))
            } else if let Some(v) = tmpdir {
                AddressKind::UnixTmpdir(bytes_path(v))
            } else if runtime.as_deref() == Some(b"yes") {
                AddressKind::UnixRuntime
            } else {
                return Err(Error::address(entry, "runtime= must be 'yes'"));
            }
        }
        "tcp" | "nonce-tcp" => {
            let mut tcp = TcpAddress::default();
            if let Some(h) = p.take("host") {
                tcp.host = Some(p.utf8("host", h)?);
            }
            if let Some(b) = p.take("bind") {
                tcp.bind = Some(p.utf8("bind", b)?);
            }
            if let Some(port) = p.take("port") {
                let s = p.utf8("port", port)?;
                tcp.port = Some(
                    s.parse::<u16>()
                        .map_err(|_| Error::address(entry, format!("bad port '{s}'")))?,
                );
            }
            if let Some(fam) = p.take("family") {
                tcp.family = Some(match fam.as_slice() {
                    b"ipv4" => TcpFamily::Ipv4,
                    b"ipv6" => TcpFamily::Ipv6,
                    _ => return Err(Error::address(entry, "family must be ipv4 or ipv6")),
                });
            }
            if transport == "tcp" {
                AddressKind::Tcp(tcp)
            } else {
                let noncefile = p.take("noncefile").map(bytes_path);
                AddressKind::NonceTcp { tcp, noncefile }
            }
        }
        other => {
            return Ok(Address {
                kind: AddressKind::Other {
                    transport: other.to_owned(),
                    params: p.params,
                },
                guid,
            });
        }
    };
    if let Some((k, _)) = p.params.first() {
        return Err(Error::address(
            entry,
            format!("unknown key '{k}' for {transport}:"),
        ));
    }
    Ok(Address { kind, guid })
}

struct Params<'a> {
    entry: &'a str,
    params: Vec<(String, Vec<u8>)>,
}

impl Params<'_> {
    fn take(&mut self, key: &str) -> Option<Vec<u8>> {
        let i = self.params.iter().position(|(k, _)| k == key)?;
        Some(self.params.remove(i).1)
    }
    fn utf8(&self, key: &str, v: Vec<u8>) -> Result<String> {
        String::from_utf8(v).map_err(|_| Error::address(self.entry, format!("{key}= is not UTF-8")))
    }
}

fn bytes_path(v: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(v))
}

fn is_unescaped(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'.' | b'\\' | b'*')
}

/// Percent-escapes bytes for an address value.
pub fn escape(value: &[u8]) -> String {
    let mut s = String::with_capacity(value.len());
    for &b in value {
        if is_unescaped(b) {
            s.push(char::from(b));
        } else {
            s.push('%');
            s.push(char::from(crate::auth::HEX[usize::from(b >> 4)]));
            s.push(char::from(crate::auth::HEX[usize::from(b & 15)]));
        }
    }
    s
}

/// Undoes percent-escaping.
///
/// # Errors
/// A description when a `%` is not followed by two hex digits or a byte is not allowed unescaped.
pub fn unescape(value: &str) -> std::result::Result<Vec<u8>, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| crate::auth::hex_val(*c));
            let lo = bytes.get(i + 2).and_then(|c| crate::auth::hex_val(*c));
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(format!("bad %-escape at byte {i}")),
            }
            i += 3;
        } else if is_unescaped(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(format!("byte {b:#04x} at {i} must be %-escaped"));
        }
    }
    Ok(out)
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<(&str, Vec<u8>)> = Vec::new();
        let transport: &str = match &self.kind {
            AddressKind::UnixPath(p) => {
                parts.push(("path", p.as_os_str().as_bytes().to_vec()));
                "unix"
            }
            AddressKind::UnixAbstract(n) => {
                parts.push(("abstract", n.clone()));
                "unix"
            }
            AddressKind::UnixDir(p) => {
                parts.push(("dir", p.as_os_str().as_bytes().to_vec()));
                "unix"
            }
            AddressKind::UnixTmpdir(p) => {
                parts.push(("tmpdir", p.as_os_str().as_bytes().to_vec()));
                "unix"
            }
            AddressKind::UnixRuntime => {
                parts.push(("runtime", b"yes".to_vec()));
                "unix"
            }
            AddressKind::Tcp(t) => {
                tcp_parts(t, &mut parts);
                "tcp"
            }
            AddressKind::NonceTcp { tcp, noncefile } => {
                tcp_parts(tcp, &mut parts);
                if let Some(n) = noncefile {
                    parts.push(("noncefile", n.as_os_str().as_bytes().to_vec()));
                }
                "nonce-tcp"
            }
            AddressKind::Other { transport, params } => {
                for (k, v) in params {
                    parts.push((k.as_str(), v.clone()));
                }
                transport.as_str()
            }
        };
        if let Some(g) = &self.guid {
            parts.push(("guid", g.as_str().as_bytes().to_vec()));
        }
        write!(f, "{transport}:")?;
        for (i, (k, v)) in parts.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={}", escape(v))?;
        }
        Ok(())
    }
}

fn tcp_parts(t: &TcpAddress, parts: &mut Vec<(&str, Vec<u8>)>) {
    if let Some(h) = &t.host {
        parts.push(("host", h.as_bytes().to_vec()));
    }
    if let Some(b) = &t.bind {
        parts.push(("bind", b.as_bytes().to_vec()));
    }
    if let Some(p) = t.port {
        parts.push(("port", p.to_string().into_bytes()));
    }
    match t.family {
        Some(TcpFamily::Ipv4) => parts.push(("family", b"ipv4".to_vec())),
        Some(TcpFamily::Ipv6) => parts.push(("family", b"ipv6".to_vec())),
        None => {}
    }
}

/// Which well-known bus to find (like dbus-fast's `BusType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusType {
    /// The per-login-session bus.
    Session,
    /// The system-wide bus.
    System,
}

/// Where the system bus listens when `DBUS_SYSTEM_BUS_ADDRESS` is not set.
pub const DEFAULT_SYSTEM_BUS_ADDRESS: &str = "unix:path=/var/run/dbus/system_bus_socket";

impl BusType {
    /// The address list of this bus, from the process environment.
    ///
    /// Session: `DBUS_SESSION_BUS_ADDRESS`, else `unix:path=$XDG_RUNTIME_DIR/bus`.
    /// System: `DBUS_SYSTEM_BUS_ADDRESS`, else [`DEFAULT_SYSTEM_BUS_ADDRESS`].
    /// A setuid or setgid process never reads the environment (CVE-2012-3524):
    /// it gets the system default, and an error for the session bus.
    ///
    /// # Errors
    /// [`Error::Environment`] when no address can be found; [`Error::Address`]
    /// when the variable does not parse.
    pub fn address(self) -> Result<Vec<Address>> {
        self.address_from(crate::creds::is_setuid(), |k| std::env::var_os(k))
    }

    /// Like [`BusType::address`] with the environment and the setuid test given
    /// by the caller (for tests and sandboxes).
    ///
    /// # Errors
    /// As for [`BusType::address`].
    pub fn address_from(
        self,
        setuid: bool,
        getenv: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Vec<Address>> {
        let env = |k: &str| {
            if setuid {
                None
            } else {
                getenv(k).filter(|v| !v.is_empty())
            }
        };
        match self {
            BusType::System => match env("DBUS_SYSTEM_BUS_ADDRESS") {
                Some(v) => parse_list(&os_to_string(&v, "DBUS_SYSTEM_BUS_ADDRESS")?),
                None => parse_list(DEFAULT_SYSTEM_BUS_ADDRESS),
            },
            BusType::Session => {
                if setuid {
                    return Err(Error::Environment(
                        "refusing to read the session bus address from the environment of a \
                         setuid process"
                            .into(),
                    ));
                }
                if let Some(v) = env("DBUS_SESSION_BUS_ADDRESS") {
                    return parse_list(&os_to_string(&v, "DBUS_SESSION_BUS_ADDRESS")?);
                }
                match env("XDG_RUNTIME_DIR") {
                    Some(dir) => Ok(vec![Address::unix_path(PathBuf::from(dir).join("bus"))]),
                    None => Err(Error::Environment(
                        "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set".into(),
                    )),
                }
            }
        }
    }
}

fn os_to_string(v: &OsStr, name: &str) -> Result<String> {
    v.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Environment(format!("{name} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_unix_path_with_escapes() {
        let a =
            Address::parse("unix:path=/tmp/a%20b,guid=0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(a.kind, AddressKind::UnixPath(PathBuf::from("/tmp/a b")));
        assert_eq!(
            a.guid.as_ref().unwrap().as_str(),
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            a.to_string(),
            "unix:path=/tmp/a%20b,guid=0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn parses_list_in_order_and_skips_empty_entries() {
        let l = parse_list("unix:abstract=foo;tcp:host=127.0.0.1,port=4000,family=ipv4;").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].kind, AddressKind::UnixAbstract(b"foo".to_vec()));
        assert_eq!(
            l[1].kind,
            AddressKind::Tcp(TcpAddress {
                host: Some("127.0.0.1".into()),
                bind: None,
                port: Some(4000),
                family: Some(TcpFamily::Ipv4)
            })
        );
        assert_eq!(
            format_list(&l),
            "unix:abstract=foo;tcp:host=127.0.0.1,port=4000,family=ipv4"
        );
    }

    #[test]
    fn parses_listen_only_forms() {
        assert_eq!(
            Address::parse("unix:dir=/run/x").unwrap().kind,
            AddressKind::UnixDir("/run/x".into())
        );
        assert_eq!(
            Address::parse("unix:tmpdir=/tmp").unwrap().kind,
            AddressKind::UnixTmpdir("/tmp".into())
        );
        let r = Address::parse("unix:runtime=yes").unwrap();
        assert!(r.is_listen_only());
        assert_eq!(r.to_string(), "unix:runtime=yes");
        assert!(Address::parse("unix:runtime=no").is_err());
    }

    #[test]
    fn parses_nonce_tcp() {
        let a = Address::parse("nonce-tcp:host=localhost,port=1,noncefile=/tmp/n").unwrap();
        match a.kind {
            AddressKind::NonceTcp { tcp, noncefile } => {
                assert_eq!(tcp.port, Some(1));
                assert_eq!(noncefile, Some(PathBuf::from("/tmp/n")));
            }
            other => panic!("wrong kind {other:?}"),
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "unix",
            ":path=/x",
            "unix:path",
            "unix:path=/a,path=/b",
            "unix:path=/a,abstract=b",
            "unix:",
            "unix:path=/a%2",
            "unix:path=/a%zz",
            "unix:path=a b",
            "unix:path=/a,frob=1",
            "tcp:port=70000",
            "tcp:family=ipx",
            "unix:path=/a,guid=xyz",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn keeps_unknown_transports_for_printing() {
        let a = Address::parse("launchd:env=DBUS_LAUNCHD_SESSION_BUS_SOCKET").unwrap();
        assert_eq!(a.to_string(), "launchd:env=DBUS_LAUNCHD_SESSION_BUS_SOCKET");
    }

    #[test]
    fn escape_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_eq!(unescape(&escape(&all)).unwrap(), all);
    }

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn session_bus_from_environment_then_runtime_dir() {
        let a = BusType::Session
            .address_from(false, env(&[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/s")]))
            .unwrap();
        assert_eq!(a[0].kind, AddressKind::UnixPath("/s".into()));
        let a = BusType::Session
            .address_from(false, env(&[("XDG_RUNTIME_DIR", "/run/user/5")]))
            .unwrap();
        assert_eq!(a[0].kind, AddressKind::UnixPath("/run/user/5/bus".into()));
        assert!(BusType::Session.address_from(false, env(&[])).is_err());
    }

    #[test]
    fn system_bus_default_and_override() {
        let a = BusType::System.address_from(false, env(&[])).unwrap();
        assert_eq!(
            a[0].kind,
            AddressKind::UnixPath("/var/run/dbus/system_bus_socket".into())
        );
        let a = BusType::System
            .address_from(false, env(&[("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/x")]))
            .unwrap();
        assert_eq!(a[0].kind, AddressKind::UnixPath("/x".into()));
    }

    fn arb_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::prelude::any::<u8>(), 1..24)
    }

    fn arb_tcp() -> impl proptest::strategy::Strategy<Value = TcpAddress> {
        use proptest::prelude::*;
        (
            proptest::option::of("[a-z0-9.:-]{1,12}"),
            proptest::option::of("[a-z0-9.*]{1,12}"),
            proptest::option::of(any::<u16>()),
            proptest::option::of(prop_oneof![Just(TcpFamily::Ipv4), Just(TcpFamily::Ipv6)]),
        )
            .prop_map(|(host, bind, port, family)| TcpAddress {
                host,
                bind,
                port,
                family,
            })
    }

    fn arb_address() -> impl proptest::strategy::Strategy<Value = Address> {
        use proptest::prelude::*;
        let path = || arb_bytes().prop_map(|b| PathBuf::from(OsString::from_vec(b)));
        let kind = prop_oneof![
            path().prop_map(AddressKind::UnixPath),
            arb_bytes().prop_map(AddressKind::UnixAbstract),
            path().prop_map(AddressKind::UnixDir),
            path().prop_map(AddressKind::UnixTmpdir),
            Just(AddressKind::UnixRuntime),
            arb_tcp().prop_map(AddressKind::Tcp),
            (arb_tcp(), proptest::option::of(path()))
                .prop_map(|(tcp, noncefile)| AddressKind::NonceTcp { tcp, noncefile }),
            (
                "[a-z][a-z-]{0,8}",
                proptest::collection::vec(("[a-z]{1,6}", arb_bytes()), 0..3)
            )
                .prop_filter("known transports parse into their own kinds", |(t, p)| {
                    !matches!(t.as_str(), "unix" | "tcp" | "nonce-tcp")
                        && p.iter().all(|(k, _)| k != "guid")
                        && p.iter()
                            .enumerate()
                            .all(|(i, (k, _))| p[..i].iter().all(|(k2, _)| k2 != k))
                })
                .prop_map(|(transport, params)| AddressKind::Other { transport, params }),
        ];
        let guid = proptest::option::of(
            any::<[u8; 16]>()
                .prop_map(|b| Guid::parse(&crate::auth::hex_encode(&b)).expect("32 hex digits")),
        );
        (kind, guid).prop_map(|(kind, guid)| Address { kind, guid })
    }

    proptest::proptest! {
        #[test]
        fn every_address_prints_and_parses_back_to_itself(
            list in proptest::collection::vec(arb_address(), 1..4)
        ) {
            let text = format_list(&list);
            proptest::prop_assert_eq!(parse_list(&text).unwrap(), list, "{}", text);
        }
    }

    #[test]
    fn setuid_process_never_reads_the_environment() {
        let evil = [
            ("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/evil"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/evil"),
        ];
        let a = BusType::System.address_from(true, env(&evil)).unwrap();
        assert_eq!(
            a[0].kind,
            AddressKind::UnixPath("/var/run/dbus/system_bus_socket".into())
        );
        assert!(matches!(
            BusType::Session.address_from(true, env(&evil)),
            Err(Error::Environment(_))
        ));
    }
}

//! The server side of the SASL conversation, as a state machine with no I/O.
//!
//! ```text
//!            NUL          AUTH ok             BEGIN
//! ExpectNul ─────> ExpectAuth ───────> ExpectBegin ─────> Authenticated
//!                   │  ▲   AUTH needs data  ▲  │ CANCEL/ERROR → REJECTED
//!                   ▼  │ CANCEL/ERROR       │  ▼
//!                  ExpectData ──DATA ok─────┘ ExpectAuth
//! BEGIN before OK, a line over the cap, the Nth rejection → disconnect.
//! ```
//!
//! The rules and the conversations tested come from `conformance/auth.md`
//! (libdbus `dbus-auth.c`, dbus-broker and sd-bus behaviour).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use super::cookie::{COOKIE_CONTEXT, Keyring, own_user, sha1_hex};
use super::{Guid, Line, hex_decode, hex_encode, random_bytes, split_command, take_line};
use crate::creds::Credentials;
use crate::error::AuthError;

/// A mechanism the server may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mechanism {
    /// `EXTERNAL`: the uid claimed must equal the socket's peer uid.
    External,
    /// `DBUS_COOKIE_SHA1`: only for the server's own user (CVE-2019-12749).
    CookieSha1,
    /// `ANONYMOUS`: anyone; message buses should not offer it.
    Anonymous,
}

impl Mechanism {
    /// The name used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::External => "EXTERNAL",
            Mechanism::CookieSha1 => "DBUS_COOKIE_SHA1",
            Mechanism::Anonymous => "ANONYMOUS",
        }
    }

    fn from_name(name: &[u8]) -> Option<Mechanism> {
        match name {
            b"EXTERNAL" => Some(Mechanism::External),
            b"DBUS_COOKIE_SHA1" => Some(Mechanism::CookieSha1),
            b"ANONYMOUS" => Some(Mechanism::Anonymous),
            _ => None,
        }
    }
}

/// How a server authenticates its clients.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The guid sent in `OK`.
    pub guid: Guid,
    /// Mechanisms offered, in this order (the `REJECTED` list never changes).
    pub mechanisms: Vec<Mechanism>,
    /// Cap on one line and on buffered unterminated input (default 16 KiB).
    pub max_line: usize,
    /// The connection is dropped when the client is rejected this many times (default 6).
    pub max_rejections: u32,
    /// The whole conversation must finish within this time (default 30 s, as dbus-daemon).
    pub timeout: Duration,
    /// When set, only these uids may authenticate (EXTERNAL and DBUS_COOKIE_SHA1).
    pub allowed_uids: Option<Vec<u32>>,
    /// The keyring for DBUS_COOKIE_SHA1; `None` = `~/.dbus-keyrings` of the server's user.
    pub keyring: Option<Keyring>,
    /// The server's own uid (DBUS_COOKIE_SHA1 authenticates nobody else). Defaults to the effective uid.
    pub own_uid: u32,
}

impl ServerConfig {
    /// EXTERNAL only, dbus-daemon's limits.
    pub fn new(guid: Guid) -> Self {
        ServerConfig {
            guid,
            mechanisms: vec![Mechanism::External],
            max_line: super::DEFAULT_MAX_LINE,
            max_rejections: 6,
            timeout: Duration::from_secs(30),
            allowed_uids: None,
            keyring: None,
            own_uid: rustix::process::geteuid().as_raw(),
        }
    }
}

/// Who the client authenticated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// A Unix user.
    Uid(u32),
    /// ANONYMOUS: nobody in particular.
    Anonymous,
}

/// The result of a successful server-side conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOutcome {
    /// Who the client is.
    pub identity: Identity,
    /// Whether `NEGOTIATE_UNIX_FD` was agreed.
    pub unix_fd: bool,
    /// The mechanism that succeeded.
    pub mechanism: Mechanism,
}

/// Where the server conversation is; named after what it expects next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerState {
    /// The client's first byte, which must be NUL.
    ExpectNul,
    /// An `AUTH` command.
    ExpectAuth,
    /// `DATA` for the mechanism in progress.
    ExpectData,
    /// `BEGIN` (or `NEGOTIATE_UNIX_FD`, `CANCEL`).
    ExpectBegin,
    /// Done; the rest of the input is the message stream.
    Authenticated,
    /// The connection must be dropped.
    Failed,
}

#[derive(Debug)]
enum Pending {
    External,
    Cookie {
        server_challenge: String,
        cookie: String,
    },
}

/// The server side of one SASL conversation.
///
/// Feed it what arrived with [`ServerAuth::feed`]; write out whatever it
/// appends to `out` before acting on its result.
///
/// The one exception to "no I/O": for DBUS_COOKIE_SHA1, `feed` reads (and may
/// create or rewrite) the keyring, which can sleep the thread for about half a
/// second while another process holds its lock ([`Keyring::server_cookie`]).
/// [`crate::server_handshake`] does not let that happen on the async runtime:
/// it hands the keyring work to tokio's blocking pool.
#[derive(Debug)]
pub struct ServerAuth {
    config: Arc<ServerConfig>,
    peer: Option<Credentials>,
    can_pass_fds: bool,
    state: ServerState,
    pending: Option<Pending>,
    ok: Option<(Identity, Mechanism)>,
    unix_fd: bool,
    rejections: u32,
    rejected_line: String,
    /// Leave DBUS_COOKIE_SHA1 keyring access (blocking) to the caller.
    defer_keyring: bool,
    /// A keyring whose cookie the caller should fetch ([`ServerAuth::take_keyring_job`]).
    keyring_wanted: Option<Keyring>,
    /// No line is handled until [`ServerAuth::cookie_found`] is called.
    awaiting_cookie: bool,
}

impl ServerAuth {
    /// Starts a conversation with a peer whose transport reports `peer`
    /// credentials and may (`can_pass_fds`) carry Unix fds.
    pub fn new(config: Arc<ServerConfig>, peer: Option<Credentials>, can_pass_fds: bool) -> Self {
        let names: Vec<&str> = config.mechanisms.iter().map(|m| m.name()).collect();
        let rejected_line = format!("REJECTED {}\r\n", names.join(" "));
        ServerAuth {
            config,
            peer,
            can_pass_fds,
            state: ServerState::ExpectNul,
            pending: None,
            ok: None,
            unix_fd: false,
            rejections: 0,
            rejected_line,
            defer_keyring: false,
            keyring_wanted: None,
            awaiting_cookie: false,
        }
    }

    /// From now on `feed` does not read the DBUS_COOKIE_SHA1 keyring itself
    /// (file I/O that may wait for another process's lock): when it needs a
    /// cookie it returns `Ok(None)` and [`ServerAuth::take_keyring_job`] gives
    /// the blocking work to run elsewhere; its result goes to
    /// [`ServerAuth::cookie_found`], after which `feed` goes on.
    pub(crate) fn defer_keyring(&mut self) {
        self.defer_keyring = true;
    }

    /// The keyring lookup `feed` is waiting for, once: run it off the async
    /// runtime and pass its result to [`ServerAuth::cookie_found`].
    pub(crate) fn take_keyring_job(
        &mut self,
    ) -> Option<impl FnOnce() -> crate::Result<(u32, String)> + Send + 'static> {
        let keyring = self.keyring_wanted.take()?;
        Some(move || keyring.server_cookie(COOKIE_CONTEXT))
    }

    /// Continues DBUS_COOKIE_SHA1 with the keyring's answer (`(id, secret)`),
    /// appending the challenge (or a rejection) to `out`. Call `feed` next for
    /// the lines that arrived meanwhile.
    ///
    /// # Errors
    /// As `feed`: an [`AuthError`] means "disconnect" (after writing `out`).
    pub(crate) fn cookie_found(
        &mut self,
        found: crate::Result<(u32, String)>,
        out: &mut Vec<u8>,
    ) -> Result<(), AuthError> {
        if !self.awaiting_cookie {
            return Err(AuthError::Protocol("no keyring lookup in progress".into()));
        }
        self.awaiting_cookie = false;
        let r = match found {
            Ok((id, cookie)) => self.cookie_challenge(id, cookie, out),
            Err(_) => self.reject(out),
        };
        if r.is_err() {
            self.state = ServerState::Failed;
        }
        r
    }

    /// What the conversation expects next.
    pub fn state(&self) -> &ServerState {
        &self.state
    }

    /// Consumes every complete line of `input`, appending replies to `out`.
    ///
    /// Returns `Ok(Some(_))` after `BEGIN`: `input` then holds the first bytes
    /// of the message stream. `Ok(None)`: need more input.
    ///
    /// # Errors
    /// An [`AuthError`] means "disconnect" (after writing `out`).
    ///
    /// # Panics
    /// Never, whatever the input.
    pub fn feed(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<ServerOutcome>, AuthError> {
        let r = self.feed_inner(input, out);
        if r.is_err() {
            self.state = ServerState::Failed;
        }
        r
    }

    fn feed_inner(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<ServerOutcome>, AuthError> {
        loop {
            if self.awaiting_cookie {
                // The rest waits for the keyring (deferred mode).
                return Ok(None);
            }
            match self.state {
                ServerState::Authenticated | ServerState::Failed => {
                    return Err(AuthError::Finished);
                }
                ServerState::ExpectNul => {
                    let Some(&first) = input.first() else {
                        return Ok(None);
                    };
                    if first != 0 {
                        return Err(AuthError::FirstByteNotNul);
                    }
                    let _ = input.split_to(1);
                    self.state = ServerState::ExpectAuth;
                }
                _ => {}
            }
            let line = match take_line(input, self.config.max_line)? {
                Line::Incomplete => return Ok(None),
                Line::NoCr => {
                    out.extend_from_slice(b"ERROR \"Line not terminated by CRLF\"\r\n");
                    continue;
                }
                Line::Ok(line) => line,
            };
            if let Some(outcome) = self.line(&line, out)? {
                return Ok(Some(outcome));
            }
        }
    }

    fn reject(&mut self, out: &mut Vec<u8>) -> Result<(), AuthError> {
        self.pending = None;
        self.ok = None;
        self.unix_fd = false;
        self.state = ServerState::ExpectAuth;
        out.extend_from_slice(self.rejected_line.as_bytes());
        self.rejections = self.rejections.saturating_add(1);
        if self.rejections >= self.config.max_rejections {
            return Err(AuthError::TooManyRejections {
                limit: self.config.max_rejections,
            });
        }
        Ok(())
    }

    fn accept(&mut self, identity: Identity, mech: Mechanism, out: &mut Vec<u8>) {
        self.pending = None;
        self.ok = Some((identity, mech));
        self.state = ServerState::ExpectBegin;
        out.extend_from_slice(format!("OK {}\r\n", self.config.guid).as_bytes());
    }

    fn uid_allowed(&self, uid: u32) -> bool {
        self.config
            .allowed_uids
            .as_ref()
            .is_none_or(|l| l.contains(&uid))
    }

    /// EXTERNAL: `claimed` is the decoded authorization identity; empty = "whoever the socket says".
    fn external(&mut self, claimed: &[u8], out: &mut Vec<u8>) -> Result<(), AuthError> {
        let Some(peer_uid) = self.peer.and_then(|c| c.uid) else {
            return self.reject(out);
        };
        let ok = if claimed.is_empty() {
            true
        } else {
            // Only plain ASCII decimal, no sign, no leading junk ("silly" identities are refused).
            claimed.len() <= 10
                && claimed.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(claimed)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    == Some(peer_uid)
        };
        if ok && self.uid_allowed(peer_uid) {
            self.accept(Identity::Uid(peer_uid), Mechanism::External, out);
            Ok(())
        } else {
            self.reject(out)
        }
    }

    fn cookie_start(&mut self, user: &[u8], out: &mut Vec<u8>) -> Result<(), AuthError> {
        let own = self.config.own_uid;
        let (uid, name) = own_user(own);
        let is_own = user == own.to_string().as_bytes()
            || name.as_deref().is_some_and(|n| n.as_bytes() == user);
        // CVE-2019-12749: never authenticate anybody but our own user with our keyring.
        if !is_own || uid != own || !self.uid_allowed(own) {
            return self.reject(out);
        }
        if let Some(peer_uid) = self.peer.and_then(|c| c.uid) {
            if peer_uid != own {
                return self.reject(out);
            }
        }
        let keyring = match &self.config.keyring {
            Some(k) => k.clone(),
            None => match Keyring::default_for_uid(own) {
                Some(k) => k,
                None => return self.reject(out),
            },
        };
        if self.defer_keyring {
            self.keyring_wanted = Some(keyring);
            self.awaiting_cookie = true;
            return Ok(());
        }
        match keyring.server_cookie(COOKIE_CONTEXT) {
            Ok((id, cookie)) => self.cookie_challenge(id, cookie, out),
            Err(_) => self.reject(out),
        }
    }

    /// Sends the DBUS_COOKIE_SHA1 challenge for cookie `id`.
    fn cookie_challenge(
        &mut self,
        id: u32,
        cookie: String,
        out: &mut Vec<u8>,
    ) -> Result<(), AuthError> {
        let mut ch = [0u8; 16];
        if random_bytes(&mut ch).is_err() {
            return self.reject(out);
        }
        let server_challenge = hex_encode(&ch);
        let data = format!("{COOKIE_CONTEXT} {id} {server_challenge}");
        out.extend_from_slice(format!("DATA {}\r\n", hex_encode(data.as_bytes())).as_bytes());
        self.pending = Some(Pending::Cookie {
            server_challenge,
            cookie,
        });
        self.state = ServerState::ExpectData;
        Ok(())
    }

    fn cookie_check(
        &mut self,
        server_challenge: &str,
        cookie: &str,
        data: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), AuthError> {
        let text = std::str::from_utf8(data).unwrap_or("");
        let ok = match text.split_once(' ') {
            Some((client_challenge, hash)) if !client_challenge.is_empty() => {
                let expect = sha1_hex(&format!("{server_challenge}:{client_challenge}:{cookie}"));
                constant_time_eq(expect.as_bytes(), hash.as_bytes())
            }
            _ => false,
        };
        if ok {
            self.accept(
                Identity::Uid(self.config.own_uid),
                Mechanism::CookieSha1,
                out,
            );
            Ok(())
        } else {
            self.reject(out)
        }
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Result<Option<ServerOutcome>, AuthError> {
        if !line.iter().all(|&b| b.is_ascii() && b != 0) {
            out.extend_from_slice(b"ERROR \"Command contained non-ASCII or NUL\"\r\n");
            return Ok(None);
        }
        let (cmd, arg) = split_command(line);
        match (cmd, &self.state) {
            (b"BEGIN", ServerState::ExpectBegin) => {
                let Some((identity, mechanism)) = self.ok else {
                    return Err(AuthError::BeginBeforeOk);
                };
                self.state = ServerState::Authenticated;
                return Ok(Some(ServerOutcome {
                    identity,
                    unix_fd: self.unix_fd,
                    mechanism,
                }));
            }
            (b"BEGIN", _) => return Err(AuthError::BeginBeforeOk),
            (b"AUTH", ServerState::ExpectAuth) => self.auth(arg, out)?,
            (b"DATA", ServerState::ExpectData) => {
                let Some(data) = hex_decode(arg.unwrap_or(b"")) else {
                    out.extend_from_slice(b"ERROR \"Invalid hex encoding\"\r\n");
                    return Ok(None);
                };
                match self.pending.take() {
                    Some(Pending::External) => self.external(&data, out)?,
                    Some(Pending::Cookie {
                        server_challenge,
                        cookie,
                    }) => {
                        self.cookie_check(&server_challenge, &cookie, &data, out)?;
                    }
                    None => self.reject(out)?,
                }
            }
            (b"CANCEL", ServerState::ExpectData | ServerState::ExpectBegin)
            | (
                b"ERROR",
                ServerState::ExpectAuth | ServerState::ExpectData | ServerState::ExpectBegin,
            ) => {
                self.reject(out)?;
            }
            (b"NEGOTIATE_UNIX_FD", ServerState::ExpectBegin) if self.can_pass_fds => {
                self.unix_fd = true;
                out.extend_from_slice(b"AGREE_UNIX_FD\r\n");
            }
            (b"NEGOTIATE_UNIX_FD", _) => {
                out.extend_from_slice(b"ERROR \"Unix fd passing not possible here\"\r\n");
            }
            (b"AUTH" | b"DATA" | b"CANCEL", _) => {
                out.extend_from_slice(b"ERROR \"Command not valid in this state\"\r\n");
            }
            _ => out.extend_from_slice(b"ERROR \"Unknown command\"\r\n"),
        }
        Ok(None)
    }

    fn auth(&mut self, arg: Option<&[u8]>, out: &mut Vec<u8>) -> Result<(), AuthError> {
        let Some(arg) = arg.filter(|a| !a.is_empty()) else {
            return self.reject(out);
        };
        let (mech, initial) = split_command(arg);
        let initial = match initial {
            Some(hex) => match hex_decode(hex) {
                Some(d) => Some(d),
                None => {
                    out.extend_from_slice(b"ERROR \"Invalid hex encoding\"\r\n");
                    return Ok(());
                }
            },
            None => None,
        };
        let Some(mech) = Mechanism::from_name(mech).filter(|m| self.config.mechanisms.contains(m))
        else {
            return self.reject(out);
        };
        match (mech, initial) {
            (Mechanism::External, Some(claimed)) => self.external(&claimed, out),
            (Mechanism::External, None) => {
                // libdbus: an empty challenge; the client answers with its identity or empty DATA.
                self.pending = Some(Pending::External);
                self.state = ServerState::ExpectData;
                out.extend_from_slice(b"DATA\r\n");
                Ok(())
            }
            (Mechanism::Anonymous, trace) => {
                // RFC 4505: an optional trace of at most 255 characters of UTF-8.
                if trace
                    .as_ref()
                    .is_some_and(|t| t.len() > 255 || std::str::from_utf8(t).is_err())
                {
                    return self.reject(out);
                }
                self.accept(Identity::Anonymous, Mechanism::Anonymous, out);
                Ok(())
            }
            (Mechanism::CookieSha1, Some(user)) => self.cookie_start(&user, out),
            (Mechanism::CookieSha1, None) => self.reject(out),
        }
    }
}

/// Compares secrets without an early exit (the time does not tell where they differ).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(mechs: &[Mechanism], uid: Option<u32>, fds: bool) -> ServerAuth {
        let mut c = ServerConfig::new(Guid::parse("0123456789abcdef0123456789abcdef").unwrap());
        c.mechanisms = mechs.to_vec();
        ServerAuth::new(Arc::new(c), uid.map(Credentials::from_uid), fds)
    }

    fn run(
        s: &mut ServerAuth,
        input: &[u8],
    ) -> (Result<Option<ServerOutcome>, AuthError>, String, BytesMut) {
        let mut inp = BytesMut::from(input);
        let mut out = Vec::new();
        let r = s.feed(&mut inp, &mut out);
        (r, String::from_utf8(out).unwrap(), inp)
    }

    #[test]
    fn external_with_own_uid_then_begin_hands_on_extra_bytes() {
        let mut s = server(&[Mechanism::External], Some(1000), true);
        let (r, out, rest) = run(
            &mut s,
            b"\0AUTH EXTERNAL 31303030\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\nl\x01\0\x01",
        );
        let o = r.unwrap().unwrap();
        assert_eq!(o.identity, Identity::Uid(1000));
        assert!(o.unix_fd);
        assert_eq!(
            out,
            "OK 0123456789abcdef0123456789abcdef\r\nAGREE_UNIX_FD\r\n"
        );
        assert_eq!(&rest[..], b"l\x01\0\x01");
    }

    #[test]
    fn bytes_split_anywhere_give_the_same_result() {
        let all = b"\0AUTH EXTERNAL 31303030\r\nBEGIN\r\nXY";
        for cut in 0..all.len() {
            let mut s = server(&[Mechanism::External], Some(1000), false);
            let mut inp = BytesMut::from(&all[..cut]);
            let mut out = Vec::new();
            let first = s.feed(&mut inp, &mut out).unwrap();
            let o = match first {
                Some(o) => {
                    inp.extend_from_slice(&all[cut..]);
                    o
                }
                None => {
                    inp.extend_from_slice(&all[cut..]);
                    s.feed(&mut inp, &mut out).unwrap().unwrap()
                }
            };
            assert_eq!(o.identity, Identity::Uid(1000));
            assert_eq!(&inp[..], b"XY", "cut at {cut}");
        }
    }

    #[test]
    fn rejection_list_is_stable_and_sixth_rejection_disconnects() {
        let mut s = server(&[Mechanism::External, Mechanism::Anonymous], Some(1), false);
        let (r, out, _) = run(&mut s, b"\0AUTH\r\n");
        assert!(r.unwrap().is_none());
        assert_eq!(out, "REJECTED EXTERNAL ANONYMOUS\r\n");
        for _ in 0..4 {
            let (r, out, _) = run(&mut s, b"AUTH\r\n");
            assert!(r.unwrap().is_none());
            assert_eq!(out, "REJECTED EXTERNAL ANONYMOUS\r\n");
        }
        let (r, out, _) = run(&mut s, b"AUTH KERBEROS_V4\r\n");
        assert_eq!(out, "REJECTED EXTERNAL ANONYMOUS\r\n");
        assert_eq!(r, Err(AuthError::TooManyRejections { limit: 6 }));
    }

    #[test]
    fn begin_before_ok_disconnects() {
        let mut s = server(&[Mechanism::External], Some(1), false);
        assert_eq!(run(&mut s, b"\0BEGIN\r\n").0, Err(AuthError::BeginBeforeOk));
        let mut s = server(&[Mechanism::External], Some(1), false);
        assert_eq!(
            run(&mut s, b"\0AUTH EXTERNAL\r\nBEGIN\r\n").0,
            Err(AuthError::BeginBeforeOk)
        );
    }

    #[test]
    fn anonymous_only_when_offered() {
        let mut s = server(&[Mechanism::External], None, false);
        let (_, out, _) = run(&mut s, b"\0AUTH ANONYMOUS\r\n");
        assert_eq!(out, "REJECTED EXTERNAL\r\n");
        let mut s = server(&[Mechanism::Anonymous], None, false);
        let (_, out, _) = run(&mut s, b"\0AUTH ANONYMOUS 74657374\r\n");
        assert!(out.starts_with("OK "));
    }

    #[test]
    fn external_without_credentials_is_rejected() {
        let mut s = server(&[Mechanism::External], None, false);
        let (_, out, _) = run(&mut s, b"\0AUTH EXTERNAL 30\r\n");
        assert!(out.starts_with("REJECTED"));
    }

    #[test]
    fn silly_external_identities_are_rejected() {
        for id in ["+1000", " 1000", "01000x", "99999999999", "-1"] {
            let mut s = server(&[Mechanism::External], Some(1000), false);
            let line = format!("\0AUTH EXTERNAL {}\r\n", hex_encode(id.as_bytes()));
            let (_, out, _) = run(&mut s, line.as_bytes());
            assert!(out.starts_with("REJECTED"), "{id}: {out}");
        }
    }

    /// CVE-2019-12749: DBUS_COOKIE_SHA1 authenticates the server's own user and nobody else,
    /// whatever name is claimed and whoever the socket says is on the other end.
    #[test]
    fn cookie_sha1_server_authenticates_only_its_own_uid() {
        let tmp = tempfile::tempdir().unwrap();
        let own = rustix::process::geteuid().as_raw();
        let make = |peer: Option<u32>| {
            let mut c = ServerConfig::new(Guid::parse("0123456789abcdef0123456789abcdef").unwrap());
            c.mechanisms = vec![Mechanism::CookieSha1];
            c.keyring = Some(Keyring::new(tmp.path().join("k")));
            ServerAuth::new(Arc::new(c), peer.map(Credentials::from_uid), false)
        };
        let other = own.wrapping_add(1);
        let line = |uid: u32| {
            format!(
                "\0AUTH DBUS_COOKIE_SHA1 {}\r\n",
                hex_encode(uid.to_string().as_bytes())
            )
        };
        // Another identity is refused before the keyring is even created.
        let (_, out, _) = run(&mut make(None), line(other).as_bytes());
        assert_eq!(out, "REJECTED DBUS_COOKIE_SHA1\r\n");
        assert!(!tmp.path().join("k").exists());
        // Our identity claimed over a socket whose peer is someone else: refused too.
        let (_, out, _) = run(&mut make(Some(other)), line(own).as_bytes());
        assert_eq!(out, "REJECTED DBUS_COOKIE_SHA1\r\n");
        // Our identity from ourselves: a challenge, and the right answer is accepted.
        let mut s = make(Some(own));
        let (_, out, _) = run(&mut s, line(own).as_bytes());
        let hex = out.strip_prefix("DATA ").unwrap().trim_end();
        let challenge = String::from_utf8(hex_decode(hex.as_bytes()).unwrap()).unwrap();
        let mut client =
            super::super::CookieSha1::with(own.to_string(), Keyring::new(tmp.path().join("k")));
        let super::super::ChallengeResponse::Data(answer) =
            super::super::Authenticator::challenge(&mut client, challenge.as_bytes())
        else {
            panic!("the client finds the cookie")
        };
        let (r, out, _) = run(
            &mut s,
            format!("DATA {}\r\nBEGIN\r\n", hex_encode(&answer)).as_bytes(),
        );
        assert!(out.starts_with("OK "), "{out}");
        let o = r.unwrap().unwrap();
        assert_eq!(
            (o.identity, o.mechanism),
            (Identity::Uid(own), Mechanism::CookieSha1)
        );
    }

    /// Deferred keyring access (what `server_handshake` uses): `feed` stops at
    /// `AUTH DBUS_COOKIE_SHA1` until the caller hands in the keyring's answer,
    /// and lines that came meanwhile wait.
    #[test]
    fn deferred_cookie_lookup_holds_later_lines_until_the_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let own = rustix::process::geteuid().as_raw();
        let make = || {
            let mut c = ServerConfig::new(Guid::parse("0123456789abcdef0123456789abcdef").unwrap());
            c.mechanisms = vec![Mechanism::CookieSha1];
            c.keyring = Some(Keyring::new(tmp.path().join("k")));
            let mut s = ServerAuth::new(Arc::new(c), Some(Credentials::from_uid(own)), false);
            s.defer_keyring();
            s
        };
        let mut out = Vec::new();
        assert!(
            make().cookie_found(Ok((1, "x".into())), &mut out).is_err(),
            "no lookup asked for"
        );
        let mut s = make();
        let auth = format!(
            "AUTH DBUS_COOKIE_SHA1 {}\r\n",
            hex_encode(own.to_string().as_bytes())
        );
        let (r, out, rest) = run(&mut s, format!("\0{auth}CANCEL\r\n").as_bytes());
        assert_eq!(r, Ok(None));
        assert_eq!(out, "", "nothing before the keyring answers");
        assert_eq!(&rest[..], b"CANCEL\r\n", "the next line waits");
        assert!(
            !tmp.path().join("k").exists(),
            "feed did not touch the keyring"
        );
        let job = s.take_keyring_job().expect("a lookup to run");
        assert!(s.take_keyring_job().is_none(), "handed out once");
        let (r, out, _) = run(&mut s, b"CANCEL\r\n");
        assert_eq!((r, out.as_str()), (Ok(None), ""), "still waiting");
        let mut out = Vec::new();
        s.cookie_found(job(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("DATA "), "{out}");
        assert!(tmp.path().join("k").exists(), "the job made the keyring");
        let (r, out, _) = run(&mut s, b"CANCEL\r\n");
        assert_eq!(
            (r, out.as_str()),
            (Ok(None), "REJECTED DBUS_COOKIE_SHA1\r\n")
        );
        // A failed lookup rejects, as a keyring error does in blocking mode.
        let (r, _, _) = run(&mut s, auth.as_bytes());
        assert_eq!(r, Ok(None));
        let mut out = Vec::new();
        let bad = Err(crate::Error::Keyring {
            path: tmp.path().into(),
            reason: "test".into(),
        });
        s.cookie_found(bad, &mut out).unwrap();
        assert_eq!(out, b"REJECTED DBUS_COOKIE_SHA1\r\n");
        assert_eq!(s.state(), &ServerState::ExpectAuth);
    }

    #[test]
    fn anonymous_trace_must_be_short_utf8() {
        let mut s = server(&[Mechanism::Anonymous], None, false);
        let long = hex_encode(&[b'a'; 256]);
        let (_, out, _) = run(&mut s, format!("\0AUTH ANONYMOUS {long}\r\n").as_bytes());
        assert!(out.starts_with("REJECTED"), "{out}");
        let (_, out, _) = run(&mut s, b"AUTH ANONYMOUS ff\r\n");
        assert!(out.starts_with("REJECTED"), "{out}");
    }

    #[test]
    fn line_cap_is_enforced_while_unterminated() {
        let mut s = server(&[Mechanism::External], Some(1), false);
        let mut big = vec![0u8];
        big.extend(std::iter::repeat_n(b'A', 16 * 1024 + 1));
        assert_eq!(
            run(&mut s, &big).0,
            Err(AuthError::LineTooLong { limit: 16 * 1024 })
        );
    }
}

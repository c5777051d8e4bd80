//! The client side of the SASL conversation, as a state machine with no I/O.
//!
//! ```text
//!  start ── "\0AUTH <mech> <hex>" ──> ExpectOk ──OK──> ExpectAgreeUnixFd ──> Authenticated
//!                                      │  ▲  DATA → DATA/CANCEL/ERROR       (sends BEGIN)
//!                            REJECTED  ▼  │ next mechanism
//!                                   ExpectRejected
//! ```
//!
//! With pipelining (EXTERNAL first, as sd-bus does) `AUTH`,
//! `NEGOTIATE_UNIX_FD` and `BEGIN` go out in the first write.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use bytes::BytesMut;

use super::cookie::CookieSha1;
use super::{Guid, Line, hex_decode, hex_encode, split_command, take_line};
use crate::error::AuthError;

/// What a mechanism answers to a server challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeResponse {
    /// Send `DATA <hex>`.
    Data(Vec<u8>),
    /// The mechanism did not expect data: send `CANCEL`.
    Cancel,
    /// The mechanism failed: send `ERROR "<text>"`.
    Error(String),
}

/// A client-side SASL mechanism; implement it to add your own (like dbus-fast's `auth=`).
pub trait Authenticator: Send + fmt::Debug {
    /// The mechanism name sent in `AUTH`.
    fn mechanism(&self) -> &str;
    /// The initial response sent with `AUTH` (hex-encoded by the caller), if any.
    fn initial_response(&mut self) -> Option<Vec<u8>>;
    /// Answers a `DATA` challenge from the server (already hex-decoded).
    fn challenge(&mut self, data: &[u8]) -> ChallengeResponse;
}

/// EXTERNAL: proves the identity given by the socket's credentials.
#[derive(Debug, Clone)]
pub struct External {
    uid: Option<u32>,
}

impl External {
    /// Claims our effective uid (`AUTH EXTERNAL hex("1000")`).
    pub fn new() -> Self {
        External {
            uid: Some(rustix::process::geteuid().as_raw()),
        }
    }

    /// Claims `uid`, or nothing (`None`: "whoever the credentials say").
    pub fn with_uid(uid: Option<u32>) -> Self {
        External { uid }
    }
}

impl Default for External {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticator for External {
    fn mechanism(&self) -> &str {
        "EXTERNAL"
    }
    fn initial_response(&mut self) -> Option<Vec<u8>> {
        Some(
            self.uid
                .map(|u| u.to_string().into_bytes())
                .unwrap_or_default(),
        )
    }
    fn challenge(&mut self, data: &[u8]) -> ChallengeResponse {
        // With no claimed uid the server asks with an empty challenge; an empty
        // answer means "whoever the socket credentials say". Anything else is unexpected.
        if self.uid.is_none() && data.is_empty() {
            ChallengeResponse::Data(Vec::new())
        } else {
            ChallengeResponse::Cancel
        }
    }
}

/// ANONYMOUS (RFC 4505) with an optional trace string.
#[derive(Debug, Clone)]
pub struct Anonymous {
    /// Sent as the initial response; at most 255 characters.
    pub trace: String,
}

impl Default for Anonymous {
    fn default() -> Self {
        Anonymous {
            trace: "fastbus".into(),
        }
    }
}

impl Authenticator for Anonymous {
    fn mechanism(&self) -> &str {
        "ANONYMOUS"
    }
    fn initial_response(&mut self) -> Option<Vec<u8>> {
        Some(self.trace.as_bytes().to_vec())
    }
    fn challenge(&mut self, _data: &[u8]) -> ChallengeResponse {
        ChallengeResponse::Cancel
    }
}

/// A mechanism the client may try; a fresh [`Authenticator`] is made for each connection attempt.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientMechanism {
    /// [`External`] with our effective uid.
    External,
    /// [`CookieSha1`] with `~/.dbus-keyrings`.
    CookieSha1,
    /// [`Anonymous`] with an empty trace.
    Anonymous,
    /// A user-supplied mechanism, built by this function for every attempt.
    Custom(Arc<dyn Fn() -> Box<dyn Authenticator> + Send + Sync>),
}

impl fmt::Debug for ClientMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientMechanism::External => f.write_str("External"),
            ClientMechanism::CookieSha1 => f.write_str("CookieSha1"),
            ClientMechanism::Anonymous => f.write_str("Anonymous"),
            ClientMechanism::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl ClientMechanism {
    fn build(&self) -> Box<dyn Authenticator> {
        match self {
            ClientMechanism::External => Box::new(External::new()),
            ClientMechanism::CookieSha1 => Box::new(CookieSha1::new()),
            ClientMechanism::Anonymous => Box::new(Anonymous::default()),
            ClientMechanism::Custom(f) => f(),
        }
    }
}

/// How a client authenticates.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Mechanisms to try, in order (default: EXTERNAL, DBUS_COOKIE_SHA1, ANONYMOUS, as libdbus).
    pub mechanisms: Vec<ClientMechanism>,
    /// Ask for Unix fd passing (only sent where the transport can pass fds).
    pub negotiate_unix_fd: bool,
    /// Send `AUTH EXTERNAL`, `NEGOTIATE_UNIX_FD` and `BEGIN` in one write when EXTERNAL
    /// is tried first on a transport with credentials (default true).
    pub pipeline: bool,
    /// Cap on one line from the server (default 16 KiB).
    pub max_line: usize,
    /// The whole conversation must finish within this time (default 30 s).
    pub timeout: std::time::Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            mechanisms: vec![
                ClientMechanism::External,
                ClientMechanism::CookieSha1,
                ClientMechanism::Anonymous,
            ],
            negotiate_unix_fd: true,
            pipeline: true,
            max_line: super::DEFAULT_MAX_LINE,
            timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// The result of a successful client-side conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOutcome {
    /// The server's guid from `OK`.
    pub guid: Guid,
    /// Whether the server agreed to Unix fd passing.
    pub unix_fd: bool,
}

/// Where the client conversation is; named after what it expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientState {
    /// [`ClientAuth::start`] has not been called.
    Start,
    /// `OK`, `DATA`, `REJECTED` or `ERROR` after an `AUTH` or `DATA`.
    ExpectOk,
    /// `REJECTED` after we sent `CANCEL` or `ERROR`.
    ExpectRejected,
    /// `AGREE_UNIX_FD` or `ERROR` after `NEGOTIATE_UNIX_FD`.
    ExpectAgreeUnixFd,
    /// Done: `BEGIN` was sent.
    Authenticated,
    /// Gave up.
    Failed,
}

/// The client side of one SASL conversation.
#[derive(Debug)]
pub struct ClientAuth {
    mechs: VecDeque<Box<dyn Authenticator>>,
    current: Option<Box<dyn Authenticator>>,
    state: ClientState,
    want_fds: bool,
    pipelined: bool,
    expected_guid: Option<Guid>,
    guid: Option<Guid>,
    max_line: usize,
}

impl ClientAuth {
    /// A conversation trying `opts.mechanisms`. `can_pass_fds` and `has_credentials`
    /// describe the transport; `expected_guid` comes from the address (`guid=`).
    pub fn new(
        opts: &ClientOptions,
        can_pass_fds: bool,
        has_credentials: bool,
        expected_guid: Option<Guid>,
    ) -> Self {
        let mechs: VecDeque<_> = opts.mechanisms.iter().map(ClientMechanism::build).collect();
        Self::with_authenticators(
            mechs.into(),
            opts,
            can_pass_fds,
            has_credentials,
            expected_guid,
        )
    }

    /// Like [`ClientAuth::new`] with ready-made authenticators.
    pub fn with_authenticators(
        mechs: Vec<Box<dyn Authenticator>>,
        opts: &ClientOptions,
        can_pass_fds: bool,
        has_credentials: bool,
        expected_guid: Option<Guid>,
    ) -> Self {
        let pipelined = opts.pipeline
            && has_credentials
            && mechs.first().is_some_and(|m| m.mechanism() == "EXTERNAL");
        ClientAuth {
            mechs: mechs.into(),
            current: None,
            state: ClientState::Start,
            want_fds: opts.negotiate_unix_fd && can_pass_fds,
            pipelined,
            expected_guid,
            guid: None,
            max_line: opts.max_line,
        }
    }

    /// What the conversation expects next.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Whether `BEGIN` went out in the first write.
    pub fn is_pipelined(&self) -> bool {
        self.pipelined
    }

    /// Writes the opening: the NUL byte and the first `AUTH` (plus
    /// `NEGOTIATE_UNIX_FD` and `BEGIN` when pipelined).
    ///
    /// # Errors
    /// [`AuthError::Rejected`] when there is no mechanism to try.
    pub fn start(&mut self, out: &mut Vec<u8>) -> Result<(), AuthError> {
        out.push(0);
        self.next_mechanism(&[], out)?;
        if self.pipelined {
            if self.want_fds {
                out.extend_from_slice(b"NEGOTIATE_UNIX_FD\r\n");
            }
            out.extend_from_slice(b"BEGIN\r\n");
        }
        Ok(())
    }

    fn next_mechanism(&mut self, offered: &[String], out: &mut Vec<u8>) -> Result<(), AuthError> {
        while let Some(mut m) = self.mechs.pop_front() {
            if !offered.is_empty() && !offered.iter().any(|o| o == m.mechanism()) {
                continue;
            }
            out.extend_from_slice(b"AUTH ");
            out.extend_from_slice(m.mechanism().as_bytes());
            if let Some(init) = m.initial_response().filter(|i| !i.is_empty()) {
                out.push(b' ');
                out.extend_from_slice(hex_encode(&init).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
            self.current = Some(m);
            self.state = ClientState::ExpectOk;
            return Ok(());
        }
        self.state = ClientState::Failed;
        Err(AuthError::Rejected {
            offered: offered.to_vec(),
        })
    }

    /// Consumes complete lines of `input`, appending what to send to `out`.
    /// `Ok(Some(_))` once authenticated (`BEGIN` is in `out`, or was sent
    /// pipelined); `input` then holds the first bytes of the message stream.
    ///
    /// # Errors
    /// An [`AuthError`] means the conversation failed (write `out` first: it may hold `CANCEL`).
    pub fn feed(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<ClientOutcome>, AuthError> {
        let r = self.feed_inner(input, out);
        if r.is_err() {
            self.state = ClientState::Failed;
        }
        r
    }

    fn feed_inner(
        &mut self,
        input: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<Option<ClientOutcome>, AuthError> {
        loop {
            if matches!(
                self.state,
                ClientState::Authenticated | ClientState::Failed | ClientState::Start
            ) {
                return Err(AuthError::Finished);
            }
            let line = match take_line(input, self.max_line)? {
                Line::Incomplete => return Ok(None),
                Line::NoCr => {
                    return Err(AuthError::Protocol("line not terminated by CRLF".into()));
                }
                Line::Ok(l) => l,
            };
            let (cmd, arg) = split_command(&line);
            match (cmd, self.state) {
                (b"OK", ClientState::ExpectOk) => {
                    let text = String::from_utf8_lossy(arg.unwrap_or(b"")).into_owned();
                    let guid = Guid::parse(&text).ok_or(AuthError::BadGuid(text))?;
                    if let Some(exp) = &self.expected_guid {
                        if *exp != guid {
                            return Err(AuthError::GuidMismatch {
                                expected: exp.to_string(),
                                got: guid.to_string(),
                            });
                        }
                    }
                    self.guid = Some(guid);
                    if self.want_fds {
                        if !self.pipelined {
                            out.extend_from_slice(b"NEGOTIATE_UNIX_FD\r\n");
                        }
                        self.state = ClientState::ExpectAgreeUnixFd;
                    } else {
                        return Ok(Some(self.finish(false, out)));
                    }
                }
                (b"AGREE_UNIX_FD", ClientState::ExpectAgreeUnixFd) => {
                    return Ok(Some(self.finish(true, out)));
                }
                (b"ERROR", ClientState::ExpectAgreeUnixFd) => {
                    return Ok(Some(self.finish(false, out)));
                }
                (b"REJECTED", ClientState::ExpectOk | ClientState::ExpectRejected) => {
                    if self.pipelined {
                        return Err(AuthError::Rejected {
                            offered: words(arg),
                        });
                    }
                    self.next_mechanism(&words(arg), out)?;
                }
                (b"DATA", ClientState::ExpectOk) if !self.pipelined => {
                    let Some(data) = hex_decode(arg.unwrap_or(b"")) else {
                        out.extend_from_slice(b"ERROR \"Invalid hex encoding\"\r\n");
                        self.state = ClientState::ExpectRejected;
                        continue;
                    };
                    let resp = match &mut self.current {
                        Some(m) => m.challenge(&data),
                        None => ChallengeResponse::Cancel,
                    };
                    match resp {
                        ChallengeResponse::Data(d) => {
                            out.extend_from_slice(
                                format!("DATA {}\r\n", hex_encode(&d)).as_bytes(),
                            );
                        }
                        ChallengeResponse::Cancel => {
                            out.extend_from_slice(b"CANCEL\r\n");
                            self.state = ClientState::ExpectRejected;
                        }
                        ChallengeResponse::Error(e) => {
                            let clean: String = e
                                .chars()
                                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                                .filter(|c| *c != '"')
                                .collect();
                            out.extend_from_slice(format!("ERROR \"{clean}\"\r\n").as_bytes());
                            self.state = ClientState::ExpectRejected;
                        }
                    }
                }
                (b"ERROR", ClientState::ExpectOk) if !self.pipelined => {
                    out.extend_from_slice(b"CANCEL\r\n");
                    self.state = ClientState::ExpectRejected;
                }
                _ => {
                    return Err(AuthError::Protocol(format!(
                        "unexpected {:?} from server while in {:?}",
                        String::from_utf8_lossy(&line),
                        self.state
                    )));
                }
            }
        }
    }

    fn finish(&mut self, unix_fd: bool, out: &mut Vec<u8>) -> ClientOutcome {
        if !self.pipelined {
            out.extend_from_slice(b"BEGIN\r\n");
        }
        self.state = ClientState::Authenticated;
        let guid = self.guid.clone().unwrap_or_else(|| Guid(String::new()));
        ClientOutcome { guid, unix_fd }
    }
}

fn words(arg: Option<&[u8]>) -> Vec<String> {
    String::from_utf8_lossy(arg.unwrap_or(b""))
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "0123456789abcdef0123456789abcdef";

    fn client(mechs: Vec<ClientMechanism>, fds: bool, creds: bool) -> ClientAuth {
        let opts = ClientOptions {
            mechanisms: mechs,
            ..ClientOptions::default()
        };
        ClientAuth::new(&opts, fds, creds, None)
    }

    fn feed(c: &mut ClientAuth, s: &str) -> (Result<Option<ClientOutcome>, AuthError>, String) {
        let mut inp = BytesMut::from(s.as_bytes());
        let mut out = Vec::new();
        let r = c.feed(&mut inp, &mut out);
        (r, String::from_utf8(out).unwrap())
    }

    #[test]
    fn external_pipelines_auth_negotiate_and_begin() {
        let mut c = client(vec![ClientMechanism::External], true, true);
        let mut out = Vec::new();
        c.start(&mut out).unwrap();
        let uid = rustix::process::geteuid().as_raw().to_string();
        let expect = format!(
            "\0AUTH EXTERNAL {}\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\n",
            hex_encode(uid.as_bytes())
        );
        assert_eq!(out, expect.as_bytes());
        let (r, out) = feed(&mut c, &format!("OK {GUID}\r\nAGREE_UNIX_FD\r\n"));
        let o = r.unwrap().unwrap();
        assert!(o.unix_fd);
        assert_eq!(o.guid.as_str(), GUID);
        assert_eq!(out, "");
    }

    #[test]
    fn aborts_on_guid_of_31_or_33_hex_digits() {
        for g in ["a".repeat(31), "a".repeat(33)] {
            let mut c = client(vec![ClientMechanism::Anonymous], false, false);
            c.start(&mut Vec::new()).unwrap();
            let (r, _) = feed(&mut c, &format!("OK {g}\r\n"));
            assert!(matches!(r, Err(AuthError::BadGuid(_))));
        }
    }

    #[test]
    fn checks_guid_from_address() {
        let opts = ClientOptions {
            mechanisms: vec![ClientMechanism::Anonymous],
            ..Default::default()
        };
        let mut c = ClientAuth::new(&opts, false, false, Guid::parse(&"b".repeat(32)));
        c.start(&mut Vec::new()).unwrap();
        let (r, _) = feed(&mut c, &format!("OK {GUID}\r\n"));
        assert!(matches!(r, Err(AuthError::GuidMismatch { .. })));
    }

    #[test]
    fn sends_cancel_on_unexpected_data_then_tries_next_mechanism() {
        let mut c = client(
            vec![ClientMechanism::External, ClientMechanism::Anonymous],
            false,
            false,
        );
        let mut out = Vec::new();
        c.start(&mut out).unwrap();
        assert!(!c.is_pipelined());
        let (r, out) = feed(&mut c, "DATA\r\n");
        assert!(r.unwrap().is_none());
        assert_eq!(out, "CANCEL\r\n");
        let (r, out) = feed(&mut c, "REJECTED EXTERNAL ANONYMOUS\r\n");
        assert!(r.unwrap().is_none());
        assert_eq!(out, "AUTH ANONYMOUS 66617374627573\r\n");
        let (r, out) = feed(&mut c, &format!("OK {GUID}\r\n"));
        assert!(!r.unwrap().unwrap().unix_fd);
        assert_eq!(out, "BEGIN\r\n");
    }

    #[test]
    fn skips_mechanisms_the_server_does_not_offer_and_fails_when_none_left() {
        let mut c = client(
            vec![ClientMechanism::External, ClientMechanism::Anonymous],
            false,
            false,
        );
        c.start(&mut Vec::new()).unwrap();
        let (r, _) = feed(&mut c, "REJECTED DBUS_COOKIE_SHA1\r\n");
        assert_eq!(
            r,
            Err(AuthError::Rejected {
                offered: vec!["DBUS_COOKIE_SHA1".into()]
            })
        );
    }

    #[test]
    fn negotiates_fds_after_ok_when_not_pipelined() {
        let opts = ClientOptions {
            pipeline: false,
            mechanisms: vec![ClientMechanism::External],
            ..Default::default()
        };
        let mut c = ClientAuth::new(&opts, true, true, None);
        c.start(&mut Vec::new()).unwrap();
        let (r, out) = feed(&mut c, &format!("OK {GUID}\r\n"));
        assert!(r.unwrap().is_none());
        assert_eq!(out, "NEGOTIATE_UNIX_FD\r\n");
        let (r, out) = feed(&mut c, "ERROR\r\n");
        assert!(!r.unwrap().unwrap().unix_fd);
        assert_eq!(out, "BEGIN\r\n");
    }

    /// A mechanism of the user's own: answers the server's challenge "ping" with "pong".
    #[derive(Debug)]
    struct PingPong;

    impl Authenticator for PingPong {
        fn mechanism(&self) -> &str {
            "EXTENSION_PINGPONG"
        }
        fn initial_response(&mut self) -> Option<Vec<u8>> {
            None
        }
        fn challenge(&mut self, data: &[u8]) -> ChallengeResponse {
            if data == b"ping" {
                ChallengeResponse::Data(b"pong".to_vec())
            } else {
                ChallengeResponse::Error("want \"ping\"".into())
            }
        }
    }

    #[test]
    fn user_authenticator_answers_challenges() {
        let opts = ClientOptions::default();
        let mut c =
            ClientAuth::with_authenticators(vec![Box::new(PingPong)], &opts, false, false, None);
        let mut out = Vec::new();
        c.start(&mut out).unwrap();
        assert_eq!(out, b"\0AUTH EXTENSION_PINGPONG\r\n");
        let (r, out) = feed(&mut c, &format!("DATA {}\r\n", hex_encode(b"ping")));
        assert!(r.unwrap().is_none());
        assert_eq!(out, format!("DATA {}\r\n", hex_encode(b"pong")));
        let (r, out) = feed(&mut c, &format!("OK {GUID}\r\n"));
        assert_eq!(r.unwrap().unwrap().guid.as_str(), GUID);
        assert_eq!(out, "BEGIN\r\n");

        // A failing mechanism sends ERROR (quotes removed) and waits for REJECTED.
        let mut c =
            ClientAuth::with_authenticators(vec![Box::new(PingPong)], &opts, false, false, None);
        c.start(&mut Vec::new()).unwrap();
        let (r, out) = feed(&mut c, "DATA 00\r\n");
        assert!(r.unwrap().is_none());
        assert_eq!(out, "ERROR \"want ping\"\r\n");
        assert_eq!(c.state(), ClientState::ExpectRejected);
    }

    /// CVE-2026-15588 on the client side: a server line over the cap ends the conversation.
    #[test]
    fn server_line_over_the_cap_fails_the_client() {
        let opts = ClientOptions {
            mechanisms: vec![ClientMechanism::Anonymous],
            max_line: 64,
            ..Default::default()
        };
        let mut c = ClientAuth::new(&opts, false, false, None);
        c.start(&mut Vec::new()).unwrap();
        let (r, _) = feed(&mut c, &"A".repeat(65));
        assert_eq!(r, Err(AuthError::LineTooLong { limit: 64 }));
    }

    #[test]
    fn pipelined_client_gives_up_when_rejected() {
        let mut c = client(vec![ClientMechanism::External], true, true);
        c.start(&mut Vec::new()).unwrap();
        assert!(c.is_pipelined());
        let (r, _) = feed(&mut c, "REJECTED EXTERNAL\r\n");
        assert!(matches!(r, Err(AuthError::Rejected { .. })));
    }

    #[test]
    fn lone_newline_from_server_is_an_error_not_a_panic() {
        let mut c = client(vec![ClientMechanism::External], false, false);
        c.start(&mut Vec::new()).unwrap();
        assert!(feed(&mut c, "\n").0.is_err());
    }
}

//! SASL authentication as used by D-Bus: client and server state machines.
//!
//! No I/O here: each side is fed the bytes that arrived and appends the bytes
//! to send to an output buffer; [`crate::handshake`] moves those bytes over a
//! transport. See the specification's "Authentication Protocol" section
//! (<https://dbus.freedesktop.org/doc/dbus-specification.html#auth-protocol>).

mod client;
mod cookie;
mod server;

pub use client::{
    Anonymous, Authenticator, ChallengeResponse, ClientAuth, ClientMechanism, ClientOptions,
    ClientOutcome, ClientState, External,
};
pub use cookie::{CookieSha1, Keyring};
pub(crate) use server::constant_time_eq;
pub use server::{Identity, Mechanism, ServerAuth, ServerConfig, ServerOutcome, ServerState};

use std::fmt;

/// Lower-case hex digits.
pub(crate) const HEX: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex encoding (the spec requires lower case).
pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// The value of one hex digit (either case).
pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Hex decoding; `None` on odd length or a non-hex digit.
pub(crate) fn hex_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some(hex_val(p[0])? << 4 | hex_val(p[1])?))
        .collect()
}

/// Fills `buf` with random bytes from the kernel (`getrandom(2)`).
pub(crate) fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A server's globally unique id: exactly 32 lower-case hex digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Guid(String);

impl Guid {
    /// Parses a guid: exactly 32 hex digits (stored lower-case).
    pub fn parse(s: &str) -> Option<Guid> {
        if s.len() == 32 && s.bytes().all(|c| c.is_ascii_hexdigit()) {
            Some(Guid(s.to_ascii_lowercase()))
        } else {
            None
        }
    }

    /// A new random guid.
    ///
    /// # Errors
    /// When the kernel's random source fails.
    pub fn generate() -> std::io::Result<Guid> {
        let mut b = [0u8; 16];
        random_bytes(&mut b)?;
        Ok(Guid(hex_encode(&b)))
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({})", self.0)
    }
}

/// Default cap on one auth line (and on buffered auth input), as dbus-daemon and dbus-broker.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024;

/// Outcome of looking for one line in the input buffer.
pub(crate) enum Line {
    /// No complete line yet.
    Incomplete,
    /// A line ending in `\r\n`, without it.
    Ok(bytes::Bytes),
    /// A line ending in a bare `\n` (not allowed).
    NoCr,
}

/// Cuts one line off `input`. Errors when the line (or the unterminated rest)
/// is longer than `max`.
pub(crate) fn take_line(
    input: &mut bytes::BytesMut,
    max: usize,
) -> Result<Line, crate::error::AuthError> {
    match input.iter().position(|&b| b == b'\n') {
        None => {
            if input.len() > max {
                Err(crate::error::AuthError::LineTooLong { limit: max })
            } else {
                Ok(Line::Incomplete)
            }
        }
        Some(i) => {
            if i > max {
                return Err(crate::error::AuthError::LineTooLong { limit: max });
            }
            let mut line = input.split_to(i + 1).freeze();
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
                Ok(Line::Ok(line))
            } else {
                Ok(Line::NoCr)
            }
        }
    }
}

/// Splits a line into its command and argument (the text after the first space).
pub(crate) fn split_command(line: &[u8]) -> (&[u8], Option<&[u8]>) {
    match line.iter().position(|&b| b == b' ') {
        Some(i) => (&line[..i], Some(&line[i + 1..])),
        None => (line, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects_bad_digits() {
        assert_eq!(hex_encode(b"1000"), "31303030");
        assert_eq!(hex_decode(b"31303030").unwrap(), b"1000");
        assert_eq!(hex_decode(b"ABcd").unwrap(), vec![0xab, 0xcd]);
        assert!(hex_decode(b"zz").is_none());
        assert!(hex_decode(b"abc").is_none());
    }

    #[test]
    fn guid_must_be_32_hex_digits() {
        assert!(Guid::parse(&"a".repeat(32)).is_some());
        assert!(Guid::parse(&"a".repeat(31)).is_none());
        assert!(Guid::parse(&"a".repeat(33)).is_none());
        assert!(Guid::parse(&"g".repeat(32)).is_none());
        let g = Guid::generate().unwrap();
        assert_eq!(Guid::parse(g.as_str()), Some(g));
    }

    #[test]
    fn take_line_handles_lone_newline_and_cap() {
        let mut b = bytes::BytesMut::from(&b"\nAB\r\nrest"[..]);
        assert!(matches!(take_line(&mut b, 100), Ok(Line::NoCr)));
        assert!(matches!(take_line(&mut b, 100), Ok(Line::Ok(l)) if &l[..] == b"AB"));
        assert!(matches!(take_line(&mut b, 100), Ok(Line::Incomplete)));
        assert_eq!(&b[..], b"rest");
        let mut long = bytes::BytesMut::from(&vec![b'A'; 101][..]);
        assert!(take_line(&mut long, 100).is_err());
    }
}

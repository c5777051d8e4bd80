//! [`Message`]: the header, its builders, encoding, validating decode, and the framing function
//! [`frame_len`].
//!
//! ```text
//!  0      1      2      3      4..8        8..12     12..16          16..
//! +------+------+------+------+-----------+---------+---------------+---------------+--------+
//! |endian| type |flags |  1   | body len  | serial  | fields length | fields a(yv)  | pad to |
//! | l/B  |      |      |      |           |  != 0   |   (bytes)     |               |   8    |
//! +------+------+------+------+-----------+---------+---------------+---------------+--------+
//! then the body, whose types the SIGNATURE field names, aligned from the message start.
//! ```
//!
//! Specification: "Message Format" and "Header Fields"
//! (<https://dbus.freedesktop.org/doc/dbus-specification.html#message-protocol-messages>).

use std::fmt;
use std::ops::Range;
#[cfg(unix)]
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
#[cfg(unix)]
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::codec::{Decode, Decoder, Encode, Encoder, Endian, Fd, MAX_ARRAY_LEN};
use crate::error::{Error, ErrorKind, Result};
use crate::names::{
    self, BusName, ErrorName, InterfaceName, MemberName, ObjectPath, check_bus_name,
    check_error_name, check_interface, check_member, check_object_path,
};
use crate::signature::{Signature, check_signature_bytes};
use crate::value::{Value, decode_value, encode_value, skip_value};
use crate::value_ref::ValueRef;

/// The largest message the specification allows: header, padding and body (128 MiB).
pub const MAX_MESSAGE_LEN: usize = 1 << 27;
/// The size of the fixed part of the header, before the field array.
pub const FIXED_HEADER_LEN: usize = 16;

/// The reserved path that must never be sent.
pub const LOCAL_PATH: &str = "/org/freedesktop/DBus/Local";
/// The reserved interface that must never be sent.
pub const LOCAL_INTERFACE: &str = "org.freedesktop.DBus.Local";

/// A message type code. An open set: unknown codes (5..=255) are well-formed messages that a
/// receiver ignores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageType(pub u8);

impl MessageType {
    /// A method call.
    pub const METHOD_CALL: Self = Self(1);
    /// A method reply with returned data.
    pub const METHOD_RETURN: Self = Self(2);
    /// An error reply.
    pub const ERROR: Self = Self(3);
    /// A signal emission.
    pub const SIGNAL: Self = Self(4);

    /// The name used in JSON and logs (`method_call`, ...), or `None` for an unknown type.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::METHOD_CALL => "method_call",
            Self::METHOD_RETURN => "method_return",
            Self::ERROR => "error",
            Self::SIGNAL => "signal",
            _ => return None,
        })
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "type {}", self.0),
        }
    }
}

/// Header flags. Unknown bits are kept as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No flags.
    pub const EMPTY: Self = Self(0);
    /// The caller does not want a reply.
    pub const NO_REPLY_EXPECTED: Self = Self(1);
    /// The bus must not start a service to deliver this message.
    pub const NO_AUTO_START: Self = Self(2);
    /// The caller is prepared to wait for interactive authorization.
    pub const ALLOW_INTERACTIVE_AUTHORIZATION: Self = Self(4);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

/// A header field code. An open set: unknown codes are accepted and kept (a bus removes them
/// before relaying).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeaderField(pub u8);

impl HeaderField {
    /// The object path (`o`).
    pub const PATH: Self = Self(1);
    /// The interface (`s`).
    pub const INTERFACE: Self = Self(2);
    /// The member (`s`).
    pub const MEMBER: Self = Self(3);
    /// The error name (`s`).
    pub const ERROR_NAME: Self = Self(4);
    /// The serial this message replies to (`u`).
    pub const REPLY_SERIAL: Self = Self(5);
    /// The connection this message is for (`s`).
    pub const DESTINATION: Self = Self(6);
    /// The sending connection, set by the bus (`s`).
    pub const SENDER: Self = Self(7);
    /// The body signature (`g`).
    pub const SIGNATURE: Self = Self(8);
    /// The number of file descriptors that travel with the message (`u`).
    pub const UNIX_FDS: Self = Self(9);

    const fn expected_type(self) -> Option<u8> {
        Some(match self.0 {
            1 => b'o',
            2 | 3 | 4 | 6 | 7 => b's',
            5 | 9 => b'u',
            8 => b'g',
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self.0 {
            1 => "PATH",
            2 => "INTERFACE",
            3 => "MEMBER",
            4 => "ERROR_NAME",
            5 => "REPLY_SERIAL",
            6 => "DESTINATION",
            7 => "SENDER",
            8 => "SIGNATURE",
            9 => "UNIX_FDS",
            _ => "unknown",
        }
    }
}

/// The fixed 16 bytes of a header.
#[derive(Clone, Copy, Debug)]
struct Fixed {
    endian: Endian,
    msg_type: MessageType,
    flags: Flags,
    body_len: usize,
    serial: u32,
    fields_len: usize,
    total: usize,
}

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// Check the fixed header in `buf`. `Ok(None)` when fewer than 16 bytes are there and what is
/// there is not already invalid.
fn parse_fixed(buf: &[u8]) -> Result<Option<Fixed>> {
    let Some(&marker) = buf.first() else {
        return Ok(None);
    };
    let Some(endian) = Endian::from_marker(marker) else {
        return Err(Error::at(ErrorKind::BadByteOrder, 0)
            .detail(format!("byte order marker 0x{marker:02x}")));
    };
    if buf.get(1) == Some(&0) {
        return Err(Error::at(ErrorKind::BadMessageType, 1));
    }
    if let Some(&v) = buf.get(3).filter(|&&v| v != 1) {
        return Err(Error::at(ErrorKind::BadProtocolVersion, 3).detail(format!("version {v}")));
    }
    if buf.len() < FIXED_HEADER_LEN {
        return Ok(None);
    }
    let word = |at: usize| {
        let b = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        if endian == Endian::Big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let (body_len, serial, fields_len) = (word(4) as usize, word(8), word(12) as usize);
    if body_len > MAX_MESSAGE_LEN {
        return Err(Error::at(ErrorKind::InsaneBodyLength, 4).detail(format!("{body_len} bytes")));
    }
    if fields_len > MAX_MESSAGE_LEN {
        return Err(
            Error::at(ErrorKind::InsaneFieldsArrayLength, 12).detail(format!("{fields_len} bytes"))
        );
    }
    if serial == 0 {
        return Err(Error::at(ErrorKind::BadSerial, 8));
    }
    // Both lengths are at most 2^27, so this sum cannot overflow a usize of 32 bits or more.
    let total = round8(FIXED_HEADER_LEN + fields_len) + body_len;
    if total > MAX_MESSAGE_LEN {
        return Err(Error::at(ErrorKind::MessageTooLong, 4).detail(format!("{total} bytes")));
    }
    Ok(Some(Fixed {
        endian,
        msg_type: MessageType(buf[1]),
        flags: Flags(buf[2]),
        body_len,
        serial,
        fields_len,
        total,
    }))
}

/// [`parse_fixed`] of a buffer that holds exactly one message, in two 8-byte loads: `None`
/// for anything it refuses (which [`parse_fixed`] then explains), else the same answer.
#[inline(always)]
fn fixed_of_whole(buf: &[u8]) -> Option<Fixed> {
    let (w0, w1) = (word64(buf, 0)?, word64(buf, 8)?);
    let endian = Endian::from_marker(w0 as u8)?;
    let (msg_type, flags, version) = ((w0 >> 8) as u8, (w0 >> 16) as u8, (w0 >> 24) as u8);
    let word = |v: u64| {
        let v = v as u32;
        if endian == Endian::Big {
            v.swap_bytes()
        } else {
            v
        }
    };
    let (body_len, serial, fields_len) =
        (word(w0 >> 32) as usize, word(w1), word(w1 >> 32) as usize);
    if msg_type == 0
        || version != 1
        || serial == 0
        || body_len > MAX_MESSAGE_LEN
        || fields_len > MAX_MESSAGE_LEN
    {
        return None;
    }
    let total = round8(FIXED_HEADER_LEN + fields_len) + body_len;
    (total <= MAX_MESSAGE_LEN && total == buf.len()).then_some(Fixed {
        endian,
        msg_type: MessageType(msg_type),
        flags: Flags(flags),
        body_len,
        serial,
        fields_len,
        total,
    })
}

/// Framing for a byte stream: how long is the message that `buf` starts with?
///
/// - `Ok(None)`: not enough bytes to know yet (fewer than 16); read more.
/// - `Ok(Some(n))`: the message is `n` bytes long (`n` may exceed `buf.len()`: read more).
/// - `Err(_)`: these bytes can never start a valid message; drop the connection.
///
/// Every limit is checked on the fixed header, before anything is allocated.
///
/// # Errors
/// A bad byte order, message type 0, protocol version other than 1, serial 0, or lengths past
/// the 128 MiB limit.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>> {
    Ok(parse_fixed(buf)?.map(|f| f.total))
}

/// Whether two signatures are the same: for the common lengths of up to 8 codes, without a
/// call to `memcmp` (byte by byte under 4, else two 4-byte compares that may overlap).
#[inline(always)]
fn signature_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(s.get(at..at + 4)?.try_into().ok()?))
    };
    match n {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=8 => word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4),
        _ => a == b,
    }
}

/// The error for a buffer of `len` bytes holding a message that the header says is `total`.
#[cold]
#[inline(never)]
fn length_error(len: usize, total: usize) -> Error {
    let (kind, at) = if len < total {
        (ErrorKind::NotEnoughData, len)
    } else {
        (ErrorKind::TooMuchData, total)
    };
    Error::at(kind, at).detail(format!("the header says the message is {total} bytes"))
}

/// The little-endian word of the 8 bytes of `b` at `at`.
#[inline(always)]
fn word64(b: &[u8], at: usize) -> Option<u64> {
    let w: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(w))
}

/// Whether the padding from `header_end` to the next multiple of 8 is zeros: one load of the
/// 8-byte word it ends (the header is at least 16 bytes, so that word is inside it).
#[inline(always)]
fn padding_is_zero(raw: &[u8], header_end: usize) -> bool {
    let pad = header_end.wrapping_neg() & 7;
    pad == 0 || word64(raw, header_end + pad - 8).is_some_and(|w| w >> ((8 - pad) * 8) == 0)
}

/// [`HeaderField::expected_type`] as a table for the codes up to 9, one load per field; `0x100`,
/// which no byte equals, for code 0 (invalid).
const FIELD_TYPES: [u16; 10] = {
    let mut t = [0x100; 10];
    let mut code = 1;
    while code < 10 {
        if let Some(c) = HeaderField(code as u8).expected_type() {
            t[code] = c as u16;
        }
        code += 1;
    }
    t
};

/// The header fields of the common shape, as [`read_known_fields_into`] reads them.
#[derive(Clone, Copy, Debug, PartialEq)]
struct KnownFields {
    spans: [Option<Span>; 9],
    reply_serial: Option<u32>,
    unix_fds: Option<u32>,
    /// Bit `code` is set for each field present.
    seen: u32,
}

impl KnownFields {
    /// No field read yet.
    const NONE: Self = Self {
        spans: [None; 9],
        reply_serial: None,
        unix_fds: None,
        seen: 0,
    };

    /// Whether the fields that the message type needs are present and neither PATH nor
    /// INTERFACE is the reserved local one: exactly what [`Message::check_required`] accepts.
    #[inline(always)]
    fn has_required(&self, msg_type: MessageType, raw: &[u8]) -> bool {
        const fn bit(f: HeaderField) -> u32 {
            1 << f.0
        }
        let need = match msg_type {
            MessageType::METHOD_CALL => bit(HeaderField::PATH) | bit(HeaderField::MEMBER),
            MessageType::SIGNAL => {
                bit(HeaderField::PATH) | bit(HeaderField::MEMBER) | bit(HeaderField::INTERFACE)
            }
            MessageType::ERROR => bit(HeaderField::ERROR_NAME) | bit(HeaderField::REPLY_SERIAL),
            MessageType::METHOD_RETURN => bit(HeaderField::REPLY_SERIAL),
            _ => 0,
        };
        // Compared only when the lengths match.
        let is = |code: HeaderField, reserved: &str| {
            self.spans[usize::from(code.0)].is_some_and(|(start, len)| {
                len as usize == reserved.len()
                    && raw.get(start as usize..(start + len) as usize) == Some(reserved.as_bytes())
            })
        };
        self.seen & need == need
            && !is(HeaderField::PATH, LOCAL_PATH)
            && !is(HeaderField::INTERFACE, LOCAL_INTERFACE)
    }
}

/// Read the header fields (bytes 16 to `header_end` of the message `raw`, in the byte order
/// `big`) into `f` (which holds no field yet) when they have the common shape: known codes only,
/// each once, each variant holding its field's type. One pass over the bytes, every rule
/// checked (names by their fast checks); `None` for anything else, valid or not, and then the
/// general reader ([`Message::read_fields`]) decides. So this accepts only what that reader
/// accepts, with the same result (a test checks both on mutated headers). Each field starts
/// with one 8-byte load (code, variant signature, and the value's first word): `raw` must hold
/// the message up to its body, which starts at `header_end` rounded up to 8, as a whole message
/// does. Into `f`, not returned, because the caller builds the message from it in place.
#[inline(always)]
fn read_known_fields_into(
    raw: &[u8],
    header_end: usize,
    big: bool,
    f: &mut KnownFields,
) -> Option<()> {
    if header_end - FIXED_HEADER_LEN > MAX_ARRAY_LEN {
        // The fields are an array: past 64 MiB the general reader refuses it at its length.
        return None;
    }
    let h = raw.get(..header_end)?;
    let mut pos = FIXED_HEADER_LEN;
    while pos < header_end {
        let pad = pos.wrapping_neg() & 7;
        if pad != 0 {
            // The padding is the last `pad` bytes of the word before the field (`pos` > 16).
            let w = word64(raw, pos + pad - 8)?;
            if w >> ((8 - pad) * 8) != 0 {
                return None;
            }
            pos += pad;
        }
        // Code, variant signature length 1, its type code, NUL; then the value's first word.
        let w = word64(raw, pos)?;
        if w & 0xff00_ff00 != 0x0000_0100 {
            return None;
        }
        let (code, t) = (w as u8, (w >> 16) as u8);
        if *FIELD_TYPES.get(usize::from(code))? != u16::from(t) || f.seen & (1 << code) != 0 {
            return None;
        }
        f.seen |= 1 << code;
        let v = (w >> 32) as u32;
        let v = if big { v.swap_bytes() } else { v };
        match t {
            b'u' => {
                if pos + 8 > header_end {
                    return None;
                }
                if code == HeaderField::REPLY_SERIAL.0 {
                    if v == 0 {
                        return None;
                    }
                    f.reply_serial = Some(v);
                } else {
                    f.unix_fds = Some(v);
                }
                pos += 8;
            }
            b'g' => {
                let len = (w >> 32) as u8;
                let start = pos + 5;
                let end = start + usize::from(len);
                // The signature, its NUL inside the fields; no NUL inside (which the check
                // refuses as it refuses every byte that is not a type code).
                let (Some(sig), Some(0)) = (h.get(start..end), h.get(end)) else {
                    return None;
                };
                // A signature of basic types only, the common case, is valid as it stands (a
                // length byte cannot exceed the 255-byte limit).
                if !crate::signature::is_basic_only(sig) {
                    check_signature_bytes(sig).ok()?;
                }
                f.spans[8] = Some((start as u32, u32::from(len)));
                pos = end + 1;
            }
            _ => {
                let start = pos + 8;
                let end = start.checked_add(v as usize)?;
                let (Some(s), Some(0)) = (h.get(start..end), h.get(end)) else {
                    return None;
                };
                // The grammars admit only ASCII without NUL: UTF-8 is checked too.
                let valid = match HeaderField(code) {
                    HeaderField::PATH => names::is_object_path(s),
                    HeaderField::INTERFACE | HeaderField::ERROR_NAME => names::is_dotted_name(s),
                    HeaderField::MEMBER => names::is_member(s),
                    _ => names::is_bus_name_lenient(s),
                };
                if !valid {
                    return None;
                }
                f.spans[usize::from(code)] = Some((start as u32, v));
                pos = end + 1;
            }
        }
    }
    Some(())
}

/// A D-Bus message: header fields, body bytes (in the message's byte order) and, on Unix, the
/// file descriptors that travel with it.
///
/// Header strings and the body are slices of the bytes the message was decoded from: decoding
/// copies nothing. Body arguments are decoded on demand with [`Message::body`] (typed, borrowing
/// `&str`/`&[u8]`) or [`Message::body_values`] (dynamic).
#[derive(Clone)]
pub struct Message {
    endian: Endian,
    msg_type: MessageType,
    flags: Flags,
    serial: u32,
    /// Backing bytes of the string fields and, unless `own_body` holds it, of the body: for a
    /// decoded message the message itself, for a built one the builder's buffer (one reference
    /// count for both).
    strings: Bytes,
    /// Where each string field lies in `strings`, indexed by field code.
    spans: [Option<Span>; 9],
    reply_serial: Option<u32>,
    unix_fds: Option<u32>,
    unknown_fields: Vec<(HeaderField, Value)>,
    /// Where the body lies in `strings`, unless `own_body` holds it.
    body_span: Span,
    /// The body, once a replaced string field moved the strings to a buffer of their own.
    own_body: Option<Bytes>,
    /// The body was checked against the signature by [`Message::decode`]'s validating walk,
    /// so reading it need not check padding and NULs inside strings again.
    body_checked: bool,
    #[cfg(unix)]
    fds: Option<Arc<[OwnedFd]>>,
}

/// A string field's place in [`Message::strings`]: start and length.
type Span = (u32, u32);

/// The first capacity of a [`MessageBuilder`]'s buffer, which holds the string fields and the
/// body: enough for the names and the body of most messages (a `PropertiesChanged` signal with
/// a few properties), so they cost one allocation; bigger bodies grow it.
const BUILDER_CAPACITY: usize = 512;

/// The string fields, in the order they are written.
const STRING_FIELDS: [HeaderField; 7] = [
    HeaderField::PATH,
    HeaderField::INTERFACE,
    HeaderField::MEMBER,
    HeaderField::ERROR_NAME,
    HeaderField::DESTINATION,
    HeaderField::SENDER,
    HeaderField::SIGNATURE,
];

/// A validator of one kind of name.
type NameCheck = fn(&str) -> Result<()>;

fn text(b: &[u8]) -> &str {
    crate::codec::utf8(b).unwrap_or_default()
}

impl Message {
    fn empty(msg_type: MessageType) -> Self {
        Self {
            endian: Endian::NATIVE,
            msg_type,
            flags: Flags::EMPTY,
            serial: 0,
            strings: Bytes::new(),
            spans: [None; 9],
            reply_serial: None,
            unix_fds: None,
            unknown_fields: Vec::new(),
            body_span: (0, 0),
            own_body: None,
            body_checked: false,
            #[cfg(unix)]
            fds: None,
        }
    }

    /// Start a method call to `member` on the object at `path`.
    pub fn method_call(path: impl AsRef<str>, member: impl AsRef<str>) -> MessageBuilder {
        MessageBuilder::new(MessageType::METHOD_CALL)
            .path(path)
            .member(member)
    }

    /// Start a signal `interface.member` emitted by the object at `path`.
    pub fn signal(
        path: impl AsRef<str>,
        interface: impl AsRef<str>,
        member: impl AsRef<str>,
    ) -> MessageBuilder {
        MessageBuilder::new(MessageType::SIGNAL)
            .path(path)
            .interface(interface)
            .member(member)
    }

    /// Start the return of `call`: REPLY_SERIAL is its serial, DESTINATION its sender.
    pub fn method_return(call: &Message) -> MessageBuilder {
        MessageBuilder::reply_to(MessageType::METHOD_RETURN, call)
    }

    /// Start an error reply to `call` with the error `name` and a human-readable `text` (the
    /// body is that one string, as every D-Bus implementation sends it).
    pub fn error(call: &Message, name: impl AsRef<str>, text: &str) -> MessageBuilder {
        let b = MessageBuilder::reply_to(MessageType::ERROR, call);
        let name = name.as_ref();
        b.error_name(name).body(&(text,))
    }

    /// Start a message of any type, with no fields set (for tests and tools).
    pub fn builder(msg_type: MessageType) -> MessageBuilder {
        MessageBuilder::new(msg_type)
    }

    /// Decode one whole message from `bytes` (which must hold exactly one message), validating
    /// every rule: the header, every field, and the body against its signature.
    ///
    /// # Errors
    /// What was wrong and at which byte offset.
    pub fn decode(bytes: Bytes) -> Result<Message> {
        let fixed = match fixed_of_whole(&bytes) {
            Some(fixed) => fixed,
            None => {
                // Something is wrong (or unusual) in the fixed header: checked rule by rule.
                let Some(fixed) = parse_fixed(&bytes)? else {
                    return Err(Error::at(ErrorKind::NotEnoughData, bytes.len())
                        .detail("fewer than 16 bytes of fixed header"));
                };
                if bytes.len() != fixed.total {
                    return Err(length_error(bytes.len(), fixed.total));
                }
                fixed
            }
        };
        let header_end = FIXED_HEADER_LEN + fixed.fields_len;
        let big = fixed.endian == Endian::Big;
        // The common case in one pass: known fields of the expected types, then every later
        // check by the cheapest test that decides it. Anything it does not take, valid or not,
        // goes to the general path, which checks the same rules one by one and says what is
        // wrong (a test holds both to the same answers).
        let mut f = KnownFields::NONE;
        let known = read_known_fields_into(&bytes, header_end, big, &mut f).is_some();
        if known {
            let body_start = round8(header_end);
            let sig = f.spans[8].map_or(&[][..], |(start, len)| {
                bytes
                    .get(start as usize..(start + len) as usize)
                    .unwrap_or_default()
            });
            if padding_is_zero(&bytes, header_end)
                && f.has_required(fixed.msg_type, &bytes)
                && (f.spans[8].is_some() || fixed.body_len == 0)
                && crate::validate::body_is_valid(
                    bytes.get(body_start..).unwrap_or_default(),
                    sig,
                    big,
                )
            {
                return Ok(Message {
                    endian: fixed.endian,
                    msg_type: fixed.msg_type,
                    flags: fixed.flags,
                    serial: fixed.serial,
                    // The string fields and the body borrow from the whole message.
                    body_span: (body_start as u32, (bytes.len() - body_start) as u32),
                    own_body: None,
                    strings: bytes,
                    spans: f.spans,
                    reply_serial: f.reply_serial,
                    unix_fds: f.unix_fds,
                    unknown_fields: Vec::new(),
                    body_checked: true,
                    #[cfg(unix)]
                    fds: None,
                });
            }
        }
        Self::decode_general(bytes, fixed, known.then_some(f))
    }

    /// [`Message::decode`] of everything its one-pass path does not take: each rule checked in
    /// turn, the first one broken reported with its offset. `known`: the header fields as
    /// [`read_known_fields_into`] read them, or `None` when it refused them.
    #[inline(never)]
    fn decode_general(bytes: Bytes, fixed: Fixed, known: Option<KnownFields>) -> Result<Message> {
        let mut msg = Message::empty(fixed.msg_type);
        msg.endian = fixed.endian;
        msg.flags = fixed.flags;
        msg.serial = fixed.serial;
        let header_end = FIXED_HEADER_LEN + fixed.fields_len;
        match known {
            Some(f) => {
                msg.spans = f.spans;
                msg.reply_serial = f.reply_serial;
                msg.unix_fds = f.unix_fds;
            }
            // An unknown field, an unusual variant, or something invalid: the general reader
            // accepts exactly what is valid and says what is wrong and where.
            None => msg.read_fields(&bytes, header_end)?,
        }
        let body_start = round8(header_end);
        if let Some(i) = bytes[header_end..body_start].iter().position(|&b| b != 0) {
            return Err(Error::at(ErrorKind::PaddingNotNul, header_end + i)
                .detail("padding after the header fields"));
        }
        msg.body_span = (body_start as u32, (bytes.len() - body_start) as u32);
        msg.strings = bytes;
        msg.check_required()?;
        if msg.spans[8].is_none() && fixed.body_len > 0 {
            return Err(Error::at(ErrorKind::BodyWithoutSignature, 4));
        }
        msg.validate_body(body_start)?;
        msg.body_checked = true;
        Ok(msg)
    }

    fn read_fields(&mut self, raw: &[u8], header_end: usize) -> Result<()> {
        let base = raw.as_ptr() as usize;
        let span_of = |s: &[u8]| Some(((s.as_ptr() as usize - base) as u32, s.len() as u32));
        // No fd travels with a header field: a `h` in an unknown field is kept as it is.
        let mut dec = Decoder::new(&raw[..header_end], self.endian, u32::MAX);
        dec.set_pos(12);
        let end = dec.array_start(8)?;
        let mut seen = 0u16;
        dec.array_elements(end, |d, _| {
            d.align(8)?;
            let at = d.pos();
            let code = HeaderField(d.u8()?);
            if code.0 == 0 {
                return Err(Error::at(ErrorKind::HeaderFieldCode, at));
            }
            // The common case: the variant holds the field's expected type (length 1, code, NUL).
            let sig = match (code.expected_type(), d.peek(3)) {
                (Some(t), Some(&[1, c, 0])) if c == t => {
                    d.skip(3);
                    &raw[at + 2..at + 3]
                }
                _ => d.variant_signature()?,
            };
            let Some(expected) = code.expected_type() else {
                let v = decode_value(d, sig, &mut 0)
                    .map_err(|e| e.within(format_args!("unknown header field {}", code.0)))?;
                self.unknown_fields.push((code, v));
                return Ok(());
            };
            let what = code.name();
            if sig != [expected] {
                return Err(
                    Error::at(ErrorKind::HeaderFieldHasWrongType, at).detail(format!(
                        "{what} has type {:?}, expected {:?}",
                        text(sig),
                        expected as char
                    )),
                );
            }
            if seen & (1 << code.0) != 0 {
                return Err(Error::at(ErrorKind::HeaderFieldAppearsTwice, at).detail(what));
            }
            seen |= 1 << code.0;
            let value_at = d.pos();
            let named = |s: &[u8], check: fn(&[u8]) -> Result<()>| {
                check(s).map_err(|e| {
                    // Only on failure: say "not UTF-8" when that is the deeper problem.
                    let e = match std::str::from_utf8(s) {
                        Err(u) => Error::at(ErrorKind::BadUtf8, value_at + 4 + u.valid_up_to()),
                        Ok(_) => e.relative_to(value_at),
                    };
                    e.within(format_args!("{what} field"))
                })
            };
            match code {
                HeaderField::SIGNATURE => {
                    let sig = d.signature_bytes()?;
                    check_signature_bytes(sig).map_err(|e| e.relative_to(value_at + 1))?;
                    self.spans[8] = span_of(sig);
                }
                HeaderField::REPLY_SERIAL => {
                    let serial = d.u32()?;
                    if serial == 0 {
                        return Err(Error::at(ErrorKind::BadSerial, value_at).detail(what));
                    }
                    self.reply_serial = Some(serial);
                }
                HeaderField::UNIX_FDS => self.unix_fds = Some(d.u32()?),
                _ => {
                    // The name grammars admit only ASCII without NUL, so checking them is
                    // checking UTF-8 too.
                    let s = d.string_bytes()?;
                    let check = match code {
                        HeaderField::PATH => names::object_path_bytes,
                        HeaderField::INTERFACE => names::interface_bytes,
                        HeaderField::MEMBER => names::member_bytes,
                        HeaderField::ERROR_NAME => names::error_name_bytes,
                        _ => names::bus_name_lenient_bytes,
                    };
                    named(s, check)?;
                    self.spans[code.0 as usize] = span_of(s);
                }
            }
            Ok(())
        })
        .map_err(|e| e.within("header fields"))
    }

    fn check_required(&self) -> Result<()> {
        let missing = |kind| Err(Error::new(kind).detail(format!("in a {}", self.msg_type)));
        let has = |code: HeaderField| self.spans[usize::from(code.0)].is_some();
        let t = self.msg_type;
        if matches!(t, MessageType::METHOD_CALL | MessageType::SIGNAL) {
            if !has(HeaderField::PATH) {
                return missing(ErrorKind::MissingPath);
            }
            if !has(HeaderField::MEMBER) {
                return missing(ErrorKind::MissingMember);
            }
        }
        if t == MessageType::SIGNAL && !has(HeaderField::INTERFACE) {
            return missing(ErrorKind::MissingInterface);
        }
        if t == MessageType::ERROR && !has(HeaderField::ERROR_NAME) {
            return missing(ErrorKind::MissingErrorName);
        }
        if matches!(t, MessageType::METHOD_RETURN | MessageType::ERROR)
            && self.reply_serial.is_none()
        {
            return missing(ErrorKind::MissingReplySerial);
        }
        // Compared only when the lengths match.
        let is = |code: HeaderField, reserved: &str| {
            self.spans[usize::from(code.0)].is_some_and(|(_, len)| len as usize == reserved.len())
                && self.field_bytes(code) == Some(reserved.as_bytes())
        };
        if is(HeaderField::PATH, LOCAL_PATH) {
            return Err(Error::new(ErrorKind::UsesLocalPath));
        }
        if is(HeaderField::INTERFACE, LOCAL_INTERFACE) {
            return Err(Error::new(ErrorKind::UsesLocalInterface));
        }
        Ok(())
    }

    /// A decoder of the body; one that skips the checks already made when the body was
    /// validated by [`Message::decode`].
    #[inline]
    fn body_decoder(&self) -> Decoder<'_> {
        let dec = Decoder::new(self.body_bytes(), self.endian, self.unix_fds.unwrap_or(0));
        if self.body_checked {
            dec.checked()
        } else {
            dec
        }
    }

    fn validate_body(&self, body_start: usize) -> Result<()> {
        let sig = self.signature_bytes();
        if crate::validate::body_is_valid(self.body_bytes(), sig, self.endian == Endian::Big) {
            return Ok(());
        }
        // Invalid: the general walk says what is wrong and where.
        let mut dec = Decoder::new(self.body_bytes(), self.endian, self.unix_fds.unwrap_or(0))
            .with_base(body_start);
        let mut i = 0;
        let mut arg = 0;
        while i < sig.len() {
            skip_value(&mut dec, sig, &mut i)
                .map_err(|e| e.within(format_args!("body arg {arg}")))?;
            arg += 1;
        }
        dec.finish()
            .map_err(|e| e.detail("bytes after the last body argument"))
    }

    /// Encode the whole message, appending it to `out`.
    ///
    /// # Errors
    /// When the serial is 0, a header value cannot be encoded, or the message would exceed
    /// 128 MiB. `out` is left as it was.
    pub fn encode_into(&self, out: &mut BytesMut) -> Result<()> {
        self.write_header_into(out, self.body_bytes().len())?;
        out.extend_from_slice(self.body_bytes());
        Ok(())
    }

    /// Encode everything but the body (the header and its padding), appending it to `out`; the
    /// body ([`Message::body_bytes`]) follows it on the wire. For vectored writes that do not
    /// copy large bodies.
    ///
    /// # Errors
    /// As [`Message::encode_into`].
    pub fn encode_header_into(&self, out: &mut BytesMut) -> Result<()> {
        self.write_header_into(out, 0)
    }

    /// [`Message::encode_header_into`], first making room for `then` more bytes after the
    /// header (the body, for [`Message::encode_into`]): one allocation for the whole message
    /// instead of one for the header and another when the body is appended.
    fn write_header_into(&self, out: &mut BytesMut, then: usize) -> Result<()> {
        if self.serial == 0 {
            return Err(Error::new(ErrorKind::MissingSerial));
        }
        let origin = out.len();
        if self.unknown_fields.is_empty() {
            // The common case: sizes known in advance, one resize, bytes written in place.
            let len = self.header_len();
            if len + self.body_bytes().len() > MAX_MESSAGE_LEN {
                return Err(Error::new(ErrorKind::MessageTooLong));
            }
            if out.capacity() == 0 {
                // A fresh buffer: allocating it is cheaper than growing an empty one.
                *out = BytesMut::with_capacity(len + then);
            } else {
                out.reserve(len + then);
            }
            out.resize(origin + len, 0);
            self.write_known_header(&mut out[origin..]);
            return Ok(());
        }
        let mut enc = Encoder::append_to(std::mem::take(out), self.endian);
        let r = self.write_header(&mut enc);
        *out = enc.into_inner();
        if r.is_err() {
            out.truncate(origin);
        } else if out.len() - origin + self.body_bytes().len() > MAX_MESSAGE_LEN {
            out.truncate(origin);
            return Err(Error::new(ErrorKind::MessageTooLong));
        }
        r
    }

    /// The length of the header with its padding, when it has no unknown fields: the fixed
    /// 16 bytes, then each field 8-aligned: code, variant signature (3 bytes), value.
    fn header_len(&self) -> usize {
        let mut pos = FIXED_HEADER_LEN;
        for code in STRING_FIELDS {
            if let Some((_, len)) = self.spans[usize::from(code.0)] {
                pos = round8(pos) + 4;
                pos += if code == HeaderField::SIGNATURE {
                    len as usize + 2
                } else {
                    4 + len as usize + 1
                };
            }
        }
        for v in [self.reply_serial, self.unix_fds] {
            if v.is_some() {
                pos = round8(pos) + 8;
            }
        }
        round8(pos)
    }

    /// Write the header (no unknown fields) into `b`, which is exactly [`Message::header_len`]
    /// zero bytes (so padding is already written).
    fn write_known_header(&self, b: &mut [u8]) {
        let big = self.endian == Endian::Big;
        let put32 = |b: &mut [u8], at: usize, v: u32| {
            let w = if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            if let Some(dst) = b.get_mut(at..at + 4) {
                dst.copy_from_slice(&w);
            }
        };
        let put = |b: &mut [u8], at: usize, s: &[u8]| {
            if let Some(dst) = b.get_mut(at..at + s.len()) {
                dst.copy_from_slice(s);
            }
        };
        put(
            b,
            0,
            &[self.endian.marker(), self.msg_type.0, self.flags.0, 1],
        );
        // The body fits in 32 bits: the caller checked the message is under 128 MiB.
        put32(b, 4, self.body_bytes().len() as u32);
        put32(b, 8, self.serial);
        let mut pos = FIXED_HEADER_LEN;
        for code in STRING_FIELDS {
            if let Some(s) = self.field_bytes(code) {
                pos = round8(pos);
                let t = code.expected_type().unwrap_or(b's');
                put(b, pos, &[code.0, 1, t, 0]);
                pos += 4;
                if code == HeaderField::SIGNATURE {
                    put(b, pos, &[s.len() as u8]);
                    put(b, pos + 1, s);
                    pos += s.len() + 2;
                } else {
                    put32(b, pos, s.len() as u32);
                    put(b, pos + 4, s);
                    pos += 4 + s.len() + 1;
                }
            }
        }
        for (code, v) in [
            (HeaderField::REPLY_SERIAL, self.reply_serial),
            (HeaderField::UNIX_FDS, self.unix_fds),
        ] {
            if let Some(v) = v {
                pos = round8(pos);
                put(b, pos, &[code.0, 1, b'u', 0]);
                put32(b, pos + 4, v);
                pos += 8;
            }
        }
        put32(b, 12, (pos - FIXED_HEADER_LEN) as u32);
    }

    fn write_header(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_u8(self.endian.marker());
        enc.put_u8(self.msg_type.0);
        enc.put_u8(self.flags.0);
        enc.put_u8(1);
        let body_len = u32::try_from(self.body_bytes().len())
            .map_err(|_| Error::new(ErrorKind::MessageTooLong))?;
        enc.put_u32(body_len);
        enc.put_u32(self.serial);
        enc.array(8, |enc| {
            for code in STRING_FIELDS {
                if let Some(s) = self.field_bytes(code) {
                    enc.align(8);
                    enc.put_u8(code.0);
                    enc.put_signature_bytes(&[code.expected_type().unwrap_or(b's')]);
                    if code == HeaderField::SIGNATURE {
                        enc.put_signature_bytes(s);
                    } else {
                        enc.put_u32(s.len() as u32);
                        enc.put_bytes(s);
                        enc.put_u8(0);
                    }
                }
            }
            for (code, v) in [
                (HeaderField::REPLY_SERIAL, self.reply_serial),
                (HeaderField::UNIX_FDS, self.unix_fds),
            ] {
                if let Some(v) = v {
                    enc.align(8);
                    enc.put_u8(code.0);
                    enc.put_signature_bytes(b"u");
                    enc.put_u32(v);
                }
            }
            for (code, v) in &self.unknown_fields {
                enc.align(8);
                enc.put_u8(code.0);
                v.encode(enc)?;
            }
            Ok(())
        })?;
        enc.align(8);
        Ok(())
    }

    /// Encode the whole message into a new buffer.
    ///
    /// # Errors
    /// As [`Message::encode_into`].
    pub fn encode(&self) -> Result<Vec<u8>> {
        // `encode_into` allocates room for header and body at once.
        let mut out = BytesMut::new();
        self.encode_into(&mut out)?;
        Ok(out.into())
    }

    #[inline]
    fn field_bytes(&self, code: HeaderField) -> Option<&[u8]> {
        let (start, len) = self.spans.get(code.0 as usize).copied().flatten()?;
        self.strings.get(start as usize..(start + len) as usize)
    }

    /// The text of a string header field.
    fn field(&self, code: HeaderField) -> Option<&str> {
        self.field_bytes(code).map(text)
    }

    #[inline]
    fn signature_bytes(&self) -> &[u8] {
        self.field_bytes(HeaderField::SIGNATURE).unwrap_or_default()
    }

    /// Replace one string field. The string fields are copied into a new buffer (a header's
    /// worth of bytes), so replacing fields again and again does not grow the message; the
    /// body stays where it is (its own slice of the old buffer from then on, which keeps that
    /// buffer's old header alive too).
    fn set_field(&mut self, code: HeaderField, value: Option<&str>) {
        if self.own_body.is_none() {
            // The body stays where it is; the strings move.
            let (start, len) = self.body_span;
            self.own_body = Some(self.strings.slice(start as usize..(start + len) as usize));
        }
        let mut strings = BytesMut::with_capacity(256);
        let mut spans = [None; 9];
        for c in STRING_FIELDS {
            let v = if c == code {
                value.map(str::as_bytes)
            } else {
                self.field_bytes(c)
            };
            if let Some(v) = v {
                spans[c.0 as usize] = Some((strings.len() as u32, v.len() as u32));
                strings.extend_from_slice(v);
            }
        }
        self.strings = strings.freeze();
        self.spans = spans;
    }

    /// The byte order of the header and body.
    pub fn endian(&self) -> Endian {
        self.endian
    }

    /// The message type (unknown types are kept as their code).
    pub fn message_type(&self) -> MessageType {
        self.msg_type
    }

    /// The header flags.
    pub fn flags(&self) -> Flags {
        self.flags
    }

    /// Replace the header flags.
    pub fn set_flags(&mut self, flags: Flags) {
        self.flags = flags;
    }

    /// The serial (0 until one is assigned for sending).
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Set the serial; a connection does this just before sending.
    pub fn set_serial(&mut self, serial: u32) {
        self.serial = serial;
    }

    /// The PATH field.
    pub fn path(&self) -> Option<ObjectPath<'_>> {
        self.field(HeaderField::PATH).map(ObjectPath::from_checked)
    }

    /// The INTERFACE field.
    pub fn interface(&self) -> Option<InterfaceName<'_>> {
        self.field(HeaderField::INTERFACE)
            .map(InterfaceName::from_checked)
    }

    /// The MEMBER field.
    pub fn member(&self) -> Option<MemberName<'_>> {
        self.field(HeaderField::MEMBER)
            .map(MemberName::from_checked)
    }

    /// The ERROR_NAME field.
    pub fn error_name(&self) -> Option<ErrorName<'_>> {
        self.field(HeaderField::ERROR_NAME)
            .map(ErrorName::from_checked)
    }

    /// The REPLY_SERIAL field.
    pub fn reply_serial(&self) -> Option<u32> {
        self.reply_serial
    }

    /// The DESTINATION field.
    pub fn destination(&self) -> Option<BusName<'_>> {
        self.field(HeaderField::DESTINATION)
            .map(BusName::from_checked)
    }

    /// Set or clear the DESTINATION field.
    pub fn set_destination(&mut self, name: Option<&BusName<'_>>) {
        self.set_field(HeaderField::DESTINATION, name.map(|n| n.as_str()));
    }

    /// The SENDER field.
    pub fn sender(&self) -> Option<BusName<'_>> {
        self.field(HeaderField::SENDER).map(BusName::from_checked)
    }

    /// Set or clear the SENDER field (a bus stamps it on every message it relays).
    pub fn set_sender(&mut self, name: Option<&BusName<'_>>) {
        self.set_field(HeaderField::SENDER, name.map(|n| n.as_str()));
    }

    /// The body signature (empty when the SIGNATURE field is absent).
    pub fn signature(&self) -> Signature<'_> {
        Signature::from_checked(text(self.signature_bytes()))
    }

    /// The UNIX_FDS field: how many file descriptors travel with the message.
    pub fn unix_fds(&self) -> Option<u32> {
        self.unix_fds
    }

    /// Header fields with codes this library does not know, in the order they came.
    pub fn unknown_fields(&self) -> &[(HeaderField, Value)] {
        &self.unknown_fields
    }

    /// Remove the header fields this library does not know, as a bus must before relaying.
    pub fn strip_unknown_fields(&mut self) {
        self.unknown_fields.clear();
    }

    /// The body bytes, in the message's byte order.
    #[inline]
    pub fn body_bytes(&self) -> &[u8] {
        match &self.own_body {
            Some(b) => b,
            None => {
                let (start, len) = self.body_span;
                let (start, len) = (start as usize, len as usize);
                self.strings.get(start..start + len).unwrap_or_default()
            }
        }
    }

    /// Decode the body as `T`, borrowing strings and byte arrays from the message where `T`
    /// does. `T` is the argument list: a tuple `(A, B, ...)` for several arguments (its parentheses
    /// are not part of the body signature), a single type for one, `()` for none.
    ///
    /// # Errors
    /// [`ErrorKind::SignatureMismatch`] when the body signature is not `T`'s; any decode error.
    pub fn body<'a, T: Decode<'a>>(&'a self) -> Result<T> {
        let sig = self.signature_bytes();
        let want = const { T::SIGNATURE.as_bytes() };
        let one_struct = const { crate::signature::is_one_struct(T::SIGNATURE.as_bytes()) };
        let same = signature_eq;
        // `T` is a tuple standing for the argument list, not a struct on the wire.
        let argument_list = if same(want, sig) {
            false
        } else if one_struct && same(&want[1..want.len() - 1], sig) {
            true
        } else {
            return Err(Error::new(ErrorKind::SignatureMismatch).detail(format!(
                "the body is {:?}, the requested type is {:?}",
                text(sig),
                T::SIGNATURE.as_str()
            )));
        };
        let mut dec = self.body_decoder();
        if argument_list {
            dec = dec.for_argument_list();
        }
        let v = T::decode(&mut dec)?;
        dec.finish()?;
        Ok(v)
    }

    /// Decode the body as dynamic values, one per argument.
    ///
    /// # Errors
    /// Any decode error (the body was validated when the message was decoded, so only `h`
    /// indexes past UNIX_FDS fail here).
    pub fn body_values(&self) -> Result<Vec<Value>> {
        let mut dec = self.body_decoder();
        let v = Value::decode_all(&mut dec, &self.signature())?;
        dec.finish()?;
        Ok(v)
    }

    /// Decode the body as dynamic values that borrow from the message ([`ValueRef`]), one per
    /// argument: strings and arrays of numbers are not copied.
    ///
    /// # Errors
    /// As [`Message::body_values`].
    pub fn body_value_refs(&self) -> Result<Vec<ValueRef<'_>>> {
        let mut dec = self.body_decoder();
        let v = crate::value_ref::decode_all_bytes(&mut dec, self.signature_bytes())?;
        dec.finish()?;
        Ok(v)
    }

    /// For an error reply: its text (the first body argument, when it is a string).
    pub fn error_text(&self) -> Option<&str> {
        if !self.signature_bytes().starts_with(b"s") {
            return None;
        }
        let mut dec = Decoder::new(self.body_bytes(), self.endian, 0);
        <&str>::decode(&mut dec).ok()
    }

    /// Whether the sender wants a reply: a method call without NO_REPLY_EXPECTED.
    pub fn expects_reply(&self) -> bool {
        self.msg_type == MessageType::METHOD_CALL && !self.flags.contains(Flags::NO_REPLY_EXPECTED)
    }

    /// The file descriptors that travel with this message.
    #[cfg(unix)]
    pub fn fds(&self) -> &[OwnedFd] {
        self.fds.as_deref().unwrap_or_default()
    }

    /// Attach received file descriptors (the transport does this); the UNIX_FDS field is left
    /// as it is, so the caller can compare the two.
    #[cfg(unix)]
    pub fn set_fds(&mut self, fds: Vec<OwnedFd>) {
        self.fds = if fds.is_empty() {
            None
        } else {
            Some(fds.into())
        };
    }

    /// The file descriptor a `h` value refers to.
    ///
    /// # Errors
    /// [`ErrorKind::FdIndexOutOfRange`] when the message carries no such descriptor (what
    /// libdbus reports as `org.freedesktop.DBus.Error.InconsistentMessage`).
    #[cfg(unix)]
    pub fn fd(&self, index: Fd) -> Result<BorrowedFd<'_>> {
        self.fds()
            .get(index.0 as usize)
            .map(AsFd::as_fd)
            .ok_or_else(|| {
                Error::new(ErrorKind::FdIndexOutOfRange).detail(format!(
                    "index {}, but {} file descriptors arrived",
                    index.0,
                    self.fds().len()
                ))
            })
    }
}

impl PartialEq for Message {
    /// Equal headers and body bytes (file descriptors are compared by count).
    fn eq(&self, o: &Self) -> bool {
        #[cfg(unix)]
        let fds_equal = self.fds().len() == o.fds().len();
        #[cfg(not(unix))]
        let fds_equal = true;
        self.endian == o.endian
            && self.msg_type == o.msg_type
            && self.flags == o.flags
            && self.serial == o.serial
            && STRING_FIELDS[..6]
                .iter()
                .all(|&c| self.field(c) == o.field(c))
            && self.reply_serial == o.reply_serial
            && self.signature_bytes() == o.signature_bytes()
            && self.unix_fds == o.unix_fds
            && self.unknown_fields == o.unknown_fields
            && self.body_bytes() == o.body_bytes()
            && fds_equal
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Message");
        d.field("type", &format_args!("{}", self.msg_type))
            .field("endian", &self.endian)
            .field("flags", &self.flags.0)
            .field("serial", &self.serial);
        for (name, code) in [
            ("path", HeaderField::PATH),
            ("interface", HeaderField::INTERFACE),
            ("member", HeaderField::MEMBER),
            ("error_name", HeaderField::ERROR_NAME),
            ("destination", HeaderField::DESTINATION),
            ("sender", HeaderField::SENDER),
        ] {
            if let Some(s) = self.field(code) {
                d.field(name, &s);
            }
        }
        if let Some(r) = self.reply_serial {
            d.field("reply_serial", &r);
        }
        d.field("signature", &self.signature().as_str())
            .field("body_len", &self.body_bytes().len());
        if let Some(n) = self.unix_fds {
            d.field("unix_fds", &n);
        }
        if !self.unknown_fields.is_empty() {
            d.field("unknown_fields", &self.unknown_fields);
        }
        d.finish()
    }
}

/// Builds a [`Message`]. Names are validated as they are set; the first problem is reported by
/// [`MessageBuilder::build`].
///
/// Set the byte order ([`MessageBuilder::endian`]) before the body: the body is encoded when it
/// is given.
#[derive(Debug)]
pub struct MessageBuilder {
    msg: Message,
    /// The string fields and the body, in the order they were set: `msg.spans` and `body`
    /// point into it until `build` freezes it. One buffer, so a message costs one allocation
    /// for all of them (and one reference count when it is dropped).
    buf: BytesMut,
    /// Where the body lies in `buf`.
    body: Range<usize>,
    error: Option<Error>,
}

impl MessageBuilder {
    fn new(msg_type: MessageType) -> Self {
        Self {
            msg: Message::empty(msg_type),
            // Room for the names and a small body: most messages need no second allocation.
            buf: BytesMut::with_capacity(BUILDER_CAPACITY),
            body: 0..0,
            error: None,
        }
    }

    fn reply_to(msg_type: MessageType, call: &Message) -> Self {
        let mut b = Self::new(msg_type);
        b.msg.reply_serial = Some(call.serial);
        if call.serial == 0 {
            b.error =
                Some(Error::new(ErrorKind::BadSerial).detail("replying to a call with serial 0"));
        }
        if let Some(sender) = call.field_bytes(HeaderField::SENDER) {
            b.put_field(HeaderField::DESTINATION, sender);
        }
        b
    }

    fn fail(&mut self, e: Error) {
        self.error.get_or_insert(e);
    }

    fn put_field(&mut self, code: HeaderField, value: &[u8]) {
        self.msg.spans[code.0 as usize] = Some((self.buf.len() as u32, value.len() as u32));
        self.buf.extend_from_slice(value);
    }

    fn string_field(&mut self, code: HeaderField, value: &str, check: NameCheck) {
        match check(value) {
            Ok(()) => self.put_field(code, value.as_bytes()),
            Err(e) => self.fail(e.within(format_args!("{} field", code.name()))),
        }
    }

    fn signature(&self) -> Signature<'_> {
        let sig = self.msg.spans[8]
            .and_then(|(start, len)| self.buf.get(start as usize..(start + len) as usize));
        Signature::from_checked(text(sig.unwrap_or_default()))
    }

    /// Set PATH.
    pub fn path(mut self, path: impl AsRef<str>) -> Self {
        self.string_field(HeaderField::PATH, path.as_ref(), check_object_path);
        self
    }

    /// Set INTERFACE.
    pub fn interface(mut self, interface: impl AsRef<str>) -> Self {
        self.string_field(HeaderField::INTERFACE, interface.as_ref(), check_interface);
        self
    }

    /// Set MEMBER.
    pub fn member(mut self, member: impl AsRef<str>) -> Self {
        self.string_field(HeaderField::MEMBER, member.as_ref(), check_member);
        self
    }

    /// Set ERROR_NAME.
    pub fn error_name(mut self, name: impl AsRef<str>) -> Self {
        self.string_field(HeaderField::ERROR_NAME, name.as_ref(), check_error_name);
        self
    }

    /// Set DESTINATION.
    pub fn destination(mut self, name: impl AsRef<str>) -> Self {
        self.string_field(HeaderField::DESTINATION, name.as_ref(), check_bus_name);
        self
    }

    /// Set SENDER (a bus sets this; clients normally do not).
    pub fn sender(mut self, name: impl AsRef<str>) -> Self {
        self.string_field(HeaderField::SENDER, name.as_ref(), check_bus_name);
        self
    }

    /// Set REPLY_SERIAL.
    pub fn reply_serial(mut self, serial: u32) -> Self {
        self.msg.reply_serial = Some(serial);
        self
    }

    /// Set UNIX_FDS without attaching descriptors (for tools that describe messages; a
    /// connection refuses to send a message whose descriptors are missing).
    pub fn unix_fds(mut self, count: u32) -> Self {
        self.msg.unix_fds = Some(count);
        self
    }

    /// Set the header flags.
    pub fn flags(mut self, flags: Flags) -> Self {
        self.msg.flags = flags;
        self
    }

    /// Set the serial (a connection normally assigns it when sending).
    pub fn serial(mut self, serial: u32) -> Self {
        self.msg.serial = serial;
        self
    }

    /// Set the byte order. A body given already (as [`Message::error`] gives one) is encoded
    /// again in the new order.
    pub fn endian(mut self, endian: Endian) -> Self {
        if endian != self.msg.endian && !self.body.is_empty() {
            let body = self.buf.get(self.body.clone()).unwrap_or_default();
            let mut dec = Decoder::new(body, self.msg.endian, u32::MAX);
            let values = Value::decode_all(&mut dec, &self.signature());
            let mut enc = self.body_encoder(endian);
            let r = values.and_then(|values| Value::encode_all(&mut enc, &values));
            self.finish_body(enc, r);
        }
        self.msg.endian = endian;
        self
    }

    /// Add a header field with a code this library does not know (for tests of peers).
    pub fn unknown_field(mut self, code: u8, value: Value) -> Self {
        match HeaderField(code).expected_type() {
            None if code != 0 => self.msg.unknown_fields.push((HeaderField(code), value)),
            _ => self.fail(Error::new(ErrorKind::HeaderFieldCode).detail(format!("code {code}"))),
        }
        self
    }

    /// Encode `args` as the body: a tuple for several arguments (the tuple's parentheses are not
    /// part of the signature), a single value for one, `()` for none. A single struct argument is
    /// written as a one-element tuple: `&((1, 2),)`.
    pub fn body<T: Encode + ?Sized>(mut self, args: &T) -> Self {
        let full = T::SIGNATURE.as_bytes();
        let (sig, argument_list) = match full {
            [b'(', inner @ .., b')']
                if const { crate::signature::is_one_struct(T::SIGNATURE.as_bytes()) } =>
            {
                (inner, true)
            }
            _ => (full, false),
        };
        if let Err(e) = check_signature_bytes(sig) {
            self.fail(e.within("body signature"));
            return self;
        }
        let mut enc = self.body_encoder(self.msg.endian);
        if argument_list {
            enc = enc.for_argument_list();
        }
        let r = args.encode(&mut enc);
        if self.finish_body(enc, r) {
            self.set_signature(sig);
        }
        self
    }

    /// Encode dynamic values as the body, one argument each.
    pub fn body_values(mut self, args: &[Value]) -> Self {
        let sig = Value::signature_of(args);
        if let Err(e) = check_signature_bytes(sig.as_bytes()) {
            self.fail(e.within("body signature"));
            return self;
        }
        let mut enc = self.body_encoder(self.msg.endian);
        let mut r = Ok(());
        let bytes = sig.as_bytes();
        let mut i = 0;
        for v in args {
            let end = crate::value::type_end(bytes, i);
            r = r.and_then(|()| encode_value(&mut enc, v, &bytes[i..end]));
            i = end;
        }
        if self.finish_body(enc, r) {
            self.set_signature(bytes);
        }
        self
    }

    /// An encoder that writes a body at the end of the builder's buffer (alignment counts from
    /// there); [`MessageBuilder::finish_body`] takes the buffer back.
    fn body_encoder(&mut self, endian: Endian) -> Encoder {
        Encoder::append_to(std::mem::take(&mut self.buf), endian)
    }

    /// Take back the buffer from `enc`: on success what it wrote is the body (a body set before
    /// stays in the buffer, unused); on failure it is cut off and the error kept. Whether it
    /// succeeded.
    fn finish_body(&mut self, enc: Encoder, r: Result<()>) -> bool {
        let body_len = enc.len();
        self.buf = enc.into_inner();
        let start = self.buf.len() - body_len;
        match r {
            Ok(()) => {
                self.body = start..self.buf.len();
                true
            }
            Err(e) => {
                self.buf.truncate(start);
                self.fail(e.within("body"));
                false
            }
        }
    }

    fn set_signature(&mut self, sig: &[u8]) {
        match sig {
            [] => self.msg.spans[8] = None,
            _ => self.put_field(HeaderField::SIGNATURE, sig),
        }
    }

    /// Attach file descriptors; UNIX_FDS is set to their number.
    #[cfg(unix)]
    pub fn fds(mut self, fds: Vec<OwnedFd>) -> Self {
        self.msg.unix_fds = (!fds.is_empty()).then_some(fds.len() as u32);
        self.msg.set_fds(fds);
        self
    }

    /// Finish the message.
    ///
    /// # Errors
    /// The first invalid name or body given, message type 0 (INVALID), or a required field that
    /// is missing.
    pub fn build(mut self) -> Result<Message> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.msg.msg_type.0 == 0 {
            return Err(Error::new(ErrorKind::BadMessageType));
        }
        // Both fit in 32 bits: the builder refuses bodies past 128 MiB.
        self.msg.body_span = (self.body.start as u32, self.body.len() as u32);
        self.msg.strings = self.buf.freeze();
        self.msg.check_required()?;
        Ok(self.msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn call() -> Message {
        Message::method_call("/org/example/Obj", "Frob")
            .interface("org.example.Iface")
            .destination("org.example.Service")
            .serial(7)
            .body(&("hi", 42u32, true))
            .build()
            .unwrap()
    }

    /// The builder keeps names and body in one buffer: fields set before and after the body,
    /// a body replaced, re-encoded for another byte order, or bigger than the first capacity,
    /// all come out as set; a body that fails to encode leaves the error for `build`.
    #[test]
    fn builder_fields_and_body_in_any_order() {
        let long = "x".repeat(3 * BUILDER_CAPACITY);
        for endian in [Endian::Little, Endian::Big] {
            for text in ["second", long.as_str()] {
                let msg = Message::method_call("/a", "M")
                    .body(&("first", 1u32))
                    .destination("org.example.Dest")
                    .endian(endian)
                    .interface("org.example.I")
                    .body(&(text, vec![1u8, 2, 3]))
                    .endian(Endian::Little)
                    .endian(endian)
                    .serial(9)
                    .build()
                    .unwrap();
                let back = Message::decode(Bytes::from(msg.encode().unwrap())).unwrap();
                assert_eq!(back, msg);
                assert_eq!(back.endian(), endian);
                assert_eq!(back.path().unwrap().as_str(), "/a");
                assert_eq!(back.member().unwrap().as_str(), "M");
                assert_eq!(back.destination().unwrap().as_str(), "org.example.Dest");
                assert_eq!(back.interface().unwrap().as_str(), "org.example.I");
                assert_eq!(back.signature().as_str(), "say");
                let (s, v): (&str, Vec<u8>) = back.body().unwrap();
                assert_eq!((s, v), (text, vec![1, 2, 3]));
            }
            let e = Message::method_call("/a", "M")
                .endian(endian)
                .body(&("nul\0inside",))
                .interface("org.example.I")
                .serial(1)
                .build()
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::StringContainsNul);
        }
    }

    /// The borrowed dynamic body reads what the owned one reads, in both byte orders; its
    /// values encode back to the same body bytes; a handle past UNIX_FDS fails as it does for
    /// the owned values.
    #[test]
    fn body_value_refs_read_what_body_values_read() {
        use crate::codec::{Encoder, Fd};
        for endian in [Endian::Little, Endian::Big] {
            let msg = Message::method_call("/a", "M")
                .endian(endian)
                .serial(3)
                .body(&(
                    "x",
                    vec![1i64, 2],
                    HashMap::from([("k", Value::U32(1))]),
                    vec![9u8, 8],
                ))
                .build()
                .unwrap();
            let msg = Message::decode(Bytes::from(msg.encode().unwrap())).unwrap();
            let refs = msg.body_value_refs().unwrap();
            let owned: Vec<Value> = refs.iter().map(ValueRef::to_value).collect();
            assert_eq!(owned, msg.body_values().unwrap());
            assert_eq!(ValueRef::signature_of(&refs), msg.signature());
            assert_eq!(refs[3].as_bytes(), Some(&[9u8, 8][..]));
            let mut enc = Encoder::new(endian);
            ValueRef::encode_all(&mut enc, &refs).unwrap();
            assert_eq!(&enc.into_inner()[..], msg.body_bytes());
            let sig = msg.signature();
            let mut dec = Decoder::new(msg.body_bytes(), endian, 0);
            assert_eq!(ValueRef::decode_all(&mut dec, &sig).unwrap(), refs);
            // A handle index past the (absent) UNIX_FDS: valid structure, refused when read.
            let fd = Message::method_call("/a", "M")
                .endian(endian)
                .serial(4)
                .body(&Fd(2))
                .build()
                .unwrap();
            let fd = Message::decode(Bytes::from(fd.encode().unwrap())).unwrap();
            let e = fd.body_value_refs().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::FdIndexOutOfRange);
            assert_eq!(
                fd.body_values().unwrap_err().kind(),
                ErrorKind::FdIndexOutOfRange
            );
        }
    }

    /// `encode_into` makes room for header and body at once: appending to an empty or a full
    /// buffer grows it once, to exactly the bytes written (a growth for the body after the
    /// header would leave spare capacity: `BytesMut` at least doubles when it grows again).
    #[test]
    fn encode_into_grows_the_buffer_once_for_header_and_body() {
        let big = vec![7u8; 1000];
        for msg in [
            call(),
            Message::method_call("/a", "M")
                .serial(1)
                .body(&("x", big.as_slice()))
                .build()
                .unwrap(),
        ] {
            let whole = msg.encode().unwrap();
            let mut out = BytesMut::new();
            msg.encode_into(&mut out).unwrap();
            assert_eq!(&out[..], &whole[..]);
            assert_eq!(out.capacity(), whole.len());
            let mut out = BytesMut::from(&b"0123456789"[..]);
            let before = out.capacity();
            msg.encode_into(&mut out).unwrap();
            assert_eq!(&out[10..], &whole[..]);
            assert!(
                out.capacity() <= (before + whole.len()).max(2 * before),
                "{}",
                out.capacity()
            );
            // The header alone reserves nothing for the body.
            let mut out = BytesMut::new();
            msg.encode_header_into(&mut out).unwrap();
            assert_eq!(out.len(), whole.len() - msg.body_bytes().len());
        }
    }

    #[test]
    fn method_call_round_trips_in_both_orders() {
        for endian in [Endian::Little, Endian::Big] {
            let msg = Message::method_call("/a", "M")
                .endian(endian)
                .serial(3)
                .body(&(
                    "x",
                    vec![1i64, 2],
                    HashMap::from([("k".to_owned(), Value::U32(1))]),
                ))
                .build()
                .unwrap();
            assert_eq!(msg.signature().as_str(), "saxa{sv}");
            let bytes = msg.encode().unwrap();
            assert_eq!(frame_len(&bytes).unwrap(), Some(bytes.len()));
            let back = Message::decode(Bytes::from(bytes)).unwrap();
            assert_eq!(back, msg);
            let (s, xs, m): (&str, Vec<i64>, HashMap<&str, Value>) = back.body().unwrap();
            assert_eq!((s, xs, m["k"].clone()), ("x", vec![1, 2], Value::U32(1)));
        }
    }

    /// A decoded or built message keeps its strings and body in one buffer; replacing a string
    /// field moves the strings to a new one and leaves the body (and the other fields) as they
    /// were, however many times it is done.
    #[test]
    fn replacing_string_fields_keeps_the_body() {
        let built = call();
        let decoded = Message::decode(Bytes::from(built.encode().unwrap())).unwrap();
        for mut m in [built, decoded] {
            let body = m.body_bytes().to_vec();
            for sender in [":1.5", ":1.77", ":1.5"] {
                m.set_sender(Some(&BusName::new(sender).unwrap()));
                m.set_destination(None);
                assert_eq!(m.body_bytes(), body);
                assert_eq!(m.sender().unwrap(), sender);
                assert_eq!(m.destination(), None);
                assert_eq!(m.member().unwrap(), "Frob");
                let back = Message::decode(Bytes::from(m.encode().unwrap())).unwrap();
                assert_eq!(back, m);
                assert_eq!(back.body::<(&str, u32, bool)>().unwrap(), ("hi", 42, true));
            }
        }
    }

    #[test]
    fn reply_answers_the_call() {
        let mut c = call();
        c.set_sender(Some(&BusName::new(":1.5").unwrap()));
        let r = Message::method_return(&c)
            .serial(1)
            .body(&"ok")
            .build()
            .unwrap();
        assert_eq!(r.reply_serial(), Some(7));
        assert_eq!(r.destination().unwrap(), ":1.5");
        let e = Message::error(&c, "org.example.Error.Nope", "no such thing")
            .serial(2)
            .build()
            .unwrap();
        assert_eq!(e.error_name().unwrap(), "org.example.Error.Nope");
        assert_eq!(e.error_text(), Some("no such thing"));
    }

    #[test]
    fn typed_body_accepts_tuple_or_single_struct() {
        let m = call();
        let (s, n, b): (String, u32, bool) = m.body().unwrap();
        assert_eq!((s.as_str(), n, b), ("hi", 42, true));
        assert_eq!(
            m.body::<(String, u32)>().unwrap_err().kind(),
            ErrorKind::SignatureMismatch
        );
        let single = Message::method_call("/a", "M")
            .serial(1)
            .body(&((1i32, 2i32),))
            .build()
            .unwrap();
        assert_eq!(single.signature().as_str(), "(ii)");
        assert_eq!(single.body::<((i32, i32),)>().unwrap(), ((1, 2),));
    }

    #[test]
    fn builder_reports_the_first_bad_name() {
        let e = Message::method_call("/a", "M")
            .interface("nodots")
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadInterface);
        assert!(e.to_string().contains("INTERFACE field"), "{e}");
    }

    #[test]
    fn header_written_in_place_equals_the_encoder_path() {
        let mut msgs = vec![call()];
        let mut c = call();
        c.set_sender(Some(&BusName::new(":1.5").unwrap()));
        msgs.push(
            Message::method_return(&c)
                .serial(9)
                .unix_fds(2)
                .build()
                .unwrap(),
        );
        msgs.push(Message::error(&c, "a.b.C", "x").serial(10).build().unwrap());
        msgs.push(Message::signal("/", "a.b", "S").serial(11).build().unwrap());
        msgs.push(
            Message::builder(MessageType(77))
                .serial(12)
                .build()
                .unwrap(),
        );
        for endian in [Endian::Little, Endian::Big] {
            for m in &msgs {
                let mut m = m.clone();
                m.endian = endian;
                let mut fast = BytesMut::new();
                m.encode_header_into(&mut fast).unwrap();
                assert_eq!(fast.len(), m.header_len());
                let mut enc = Encoder::new(endian);
                m.write_header(&mut enc).unwrap();
                assert_eq!(&fast[..], &enc.into_inner()[..], "{m:?}");
            }
        }
    }

    /// The one-pass reader of common headers accepts only what the general reader accepts,
    /// with the same fields, and takes every common header: checked on messages of each type
    /// in both byte orders and on every single-byte change of their header fields.
    #[test]
    fn known_fields_reader_agrees_with_the_general_one() {
        let mut c = call();
        c.set_sender(Some(&BusName::new(":1.5").unwrap()));
        let common = [
            call(),
            Message::method_return(&c)
                .serial(9)
                .unix_fds(2)
                .body(&(1u8,))
                .build()
                .unwrap(),
            Message::error(&c, "a.b.C", "x").serial(10).build().unwrap(),
            Message::signal("/", "a.b", "S").serial(11).build().unwrap(),
            Message::builder(MessageType(77))
                .serial(12)
                .build()
                .unwrap(),
        ];
        let unknown = Message::signal("/a", "a.b", "S")
            .serial(13)
            .unknown_field(42, Value::U32(1))
            .build()
            .unwrap();
        let read = |bytes: &[u8], header_end: usize| {
            let endian = Endian::from_marker(bytes[0]).unwrap();
            let mut general = Message::empty(MessageType::METHOD_CALL);
            general.endian = endian;
            let fast = read_known_fields(bytes, header_end, endian == Endian::Big);
            let r = general.read_fields(bytes, header_end);
            if let Some(fast) = fast {
                assert!(r.is_ok(), "{r:?} {bytes:?}");
                assert_eq!(fast.spans, general.spans);
                assert_eq!(fast.reply_serial, general.reply_serial);
                assert_eq!(fast.unix_fds, general.unix_fds);
                assert!(general.unknown_fields.is_empty());
                let present = (1..=9u8)
                    .filter(|&c| match HeaderField(c) {
                        HeaderField::REPLY_SERIAL => general.reply_serial.is_some(),
                        HeaderField::UNIX_FDS => general.unix_fds.is_some(),
                        _ => general.spans[usize::from(c)].is_some(),
                    })
                    .fold(0, |m, c| m | 1 << c);
                assert_eq!(fast.seen, present);
                // The required-field test agrees with the general one for every type.
                general.strings = Bytes::copy_from_slice(bytes);
                for t in 0..=5 {
                    general.msg_type = MessageType(t);
                    assert_eq!(
                        fast.has_required(MessageType(t), bytes),
                        general.check_required().is_ok(),
                        "type {t} {bytes:?}"
                    );
                }
            }
            fast.is_some()
        };
        for endian in [Endian::Little, Endian::Big] {
            for (i, m) in common.iter().chain([&unknown]).enumerate() {
                let mut m = m.clone();
                m.endian = endian;
                let bytes = m.encode().unwrap();
                let fields_len = Decoder::new(&bytes[12..16], endian, 0).u32().unwrap();
                let header_end = FIXED_HEADER_LEN + fields_len as usize;
                assert_eq!(read(&bytes, header_end), i < common.len(), "{m:?}");
                for at in FIXED_HEADER_LEN..header_end {
                    for v in [
                        0, 1, 2, 0x7f, 0x80, 0xff, b'/', b'.', b':', b'0', b'u', b's',
                    ] {
                        let mut b = bytes.clone();
                        b[at] = v;
                        read(&b, header_end);
                        read(&b, header_end - 1);
                    }
                }
            }
        }
    }

    /// [`read_known_fields_into`], returning what it read.
    fn read_known_fields(raw: &[u8], header_end: usize, big: bool) -> Option<KnownFields> {
        let mut f = KnownFields::NONE;
        read_known_fields_into(raw, header_end, big, &mut f).map(|()| f)
    }

    /// `Message::decode`'s one-pass path gives exactly what the general path gives (the same
    /// message, or the same error at the same offset) on messages of each type, in both byte
    /// orders, with every byte replaced by each of a set of values and every truncation. The
    /// general path reads the header fields itself, so the one-pass header reader is compared
    /// too.
    #[test]
    fn decode_fast_path_agrees_with_the_general_one() {
        let mut c = call();
        c.set_sender(Some(&BusName::new(":1.5").unwrap()));
        let props = HashMap::from([("Name", Value::from("x")), ("Count", Value::U32(3))]);
        // Built in each byte order (the builder encodes the body in it), so that the unchanged
        // messages are valid in both.
        let msgs = |endian| {
            [
                Message::method_call("/org/example/Obj", "Frob")
                    .interface("org.example.Iface")
                    .destination("org.example.Service")
                    .serial(7)
                    .body(&("hi", 42u32, true)),
                Message::method_return(&c)
                    .serial(9)
                    .unix_fds(2)
                    .body(&(1u8, "s")),
                Message::error(&c, "a.b.C", "x").serial(10),
                Message::signal(
                    "/org/freedesktop/DBus/Locax",
                    "org.freedesktop.DBus.Locax",
                    "S",
                )
                .serial(11)
                .body(&("org.example.I", &props, vec!["Firmware"])),
                Message::method_call("/", "M").serial(12),
                Message::builder(MessageType(77)).serial(13),
            ]
            .map(|b| b.endian(endian).build().unwrap())
        };
        let same = |b: &[u8]| {
            let bytes = Bytes::copy_from_slice(b);
            let fast = Message::decode(bytes.clone());
            // Every check in turn: the fixed header, the length, then the general path.
            let general = match parse_fixed(&bytes) {
                // The header read by the general reader too, not by the one-pass one under test.
                Ok(Some(fixed)) if fixed.total == bytes.len() => {
                    Message::decode_general(bytes, fixed, None)
                }
                Ok(Some(fixed)) => Err(length_error(bytes.len(), fixed.total)),
                Ok(None) => Err(Error::at(ErrorKind::NotEnoughData, bytes.len())
                    .detail("fewer than 16 bytes of fixed header")),
                Err(e) => Err(e),
            };
            match (&fast, &general) {
                (Ok(f), Ok(g)) => {
                    assert_eq!(f, g);
                    assert_eq!(f.body_checked, g.body_checked);
                    assert_eq!(f.unknown_fields(), g.unknown_fields());
                }
                _ => assert_eq!(fast.as_ref().err(), general.as_ref().err(), "{b:?}"),
            }
        };
        for endian in [Endian::Little, Endian::Big] {
            for m in msgs(endian) {
                let bytes = m.encode().unwrap();
                let back = Message::decode(Bytes::copy_from_slice(&bytes)).unwrap();
                assert!(back.body_checked && back == m, "{m:?}");
                for at in 0..bytes.len() {
                    for v in [
                        0, 1, 2, 5, 9, 0x7f, 0x80, 0xff, b'/', b'.', b':', b'0', b'u', b's', b'g',
                        b'o', b'l',
                    ] {
                        let mut b = bytes.clone();
                        b[at] = v;
                        same(&b);
                    }
                }
                for n in 0..bytes.len() {
                    same(&bytes[..n]);
                }
            }
        }
    }

    /// The short-signature compare agrees with `==` at every length around its cases.
    #[test]
    fn signature_eq_agrees_with_slice_eq() {
        let base = b"a{sv}(ii)asuxtb";
        for n in 0..base.len() {
            let a = &base[..n];
            for m in 0..base.len() {
                assert_eq!(signature_eq(a, &base[..m]), n == m);
            }
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 1;
                assert!(!signature_eq(a, &b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn encode_without_serial_fails() {
        let m = Message::method_call("/a", "M").build().unwrap();
        assert_eq!(m.encode().unwrap_err().kind(), ErrorKind::MissingSerial);
    }
}

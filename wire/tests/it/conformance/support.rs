//! Test support: a raw byte writer, a raw message builder that lets each test change exactly one
//! thing in an otherwise valid message, and a stream reader that frames with
//! [`fastbus_wire::frame_len`] the way a connection does.

use std::rc::Rc;

use bytes::Bytes;
use fastbus_wire::{Endian, Error, ErrorKind, Message, frame_len};

/// Both byte orders; every case runs in each.
pub(crate) const BOTH: [Endian; 2] = [Endian::Little, Endian::Big];

/// How the stream reader is fed: all at once, one byte at a time, two bytes at a time
/// (as `try_message_data` in libdbus's `test/internals/dbus-message-util.c`).
pub(crate) const CHUNKINGS: [usize; 3] = [usize::MAX, 1, 2];

/// Whether the slow boundary tests (64 MiB and 128 MiB buffers) should run.
pub(crate) fn slow_tests_enabled(name: &str) -> bool {
    let on = std::env::var("FASTBUS_SLOW_TESTS").is_ok_and(|v| v == "1");
    if !on {
        println!("skipped {name}: set FASTBUS_SLOW_TESTS=1 to run it (needs large buffers)");
    }
    on
}

/// Writes D-Bus data by hand, aligned from the first byte written (the start of a message or
/// of a body, which is 8-aligned within the message).
#[derive(Clone, Debug)]
pub(crate) struct W {
    pub(crate) endian: Endian,
    pub(crate) buf: Vec<u8>,
}

impl W {
    pub(crate) fn new(endian: Endian) -> Self {
        Self {
            endian,
            buf: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// Pad with zeros to a multiple of `n`.
    pub(crate) fn pad(&mut self, n: usize) -> &mut Self {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
        self
    }

    /// Raw bytes, no alignment.
    pub(crate) fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    pub(crate) fn y(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.pad(4);
        let b = self.word(v);
        self.raw(&b)
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.pad(8);
        let b = match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        };
        self.raw(&b)
    }

    fn word(&self, v: u32) -> [u8; 4] {
        match self.endian {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// STRING or OBJECT_PATH: length, the bytes (not checked), NUL.
    pub(crate) fn s(&mut self, text: impl AsRef<[u8]>) -> &mut Self {
        let text = text.as_ref();
        self.u32(text.len() as u32).raw(text).y(0)
    }

    /// SIGNATURE: length byte, the codes (not checked), NUL.
    pub(crate) fn g(&mut self, sig: impl AsRef<[u8]>) -> &mut Self {
        let sig = sig.as_ref();
        self.y(sig.len() as u8).raw(sig).y(0)
    }

    /// The start of a STRUCT or DICT_ENTRY.
    pub(crate) fn st(&mut self) -> &mut Self {
        self.pad(8)
    }

    /// An ARRAY: length, padding to `align`, what `f` writes; the length is patched to fit.
    pub(crate) fn array(&mut self, align: usize, f: impl FnOnce(&mut W)) -> &mut Self {
        self.u32(0);
        let at = self.len() - 4;
        self.pad(align);
        let start = self.len();
        f(self);
        let n = (self.len() - start) as u32;
        self.patch_u32(at, n)
    }

    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) -> &mut Self {
        let b = self.word(v);
        self.buf[at..at + 4].copy_from_slice(&b);
        self
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

/// The value of a header field, after its variant signature.
#[derive(Clone)]
pub(crate) enum FV {
    /// A UINT32 (aligned).
    U32(u32),
    /// A STRING or OBJECT_PATH (length, bytes, NUL).
    Str(Vec<u8>),
    /// A SIGNATURE.
    Sig(Vec<u8>),
    /// Anything, written by the closure (aligned from the message start).
    Custom(Rc<dyn Fn(&mut W)>),
}

pub(crate) fn fs(text: &str) -> FV {
    FV::Str(text.as_bytes().to_vec())
}

/// Header field codes.
pub(crate) const PATH: u8 = 1;
pub(crate) const INTERFACE: u8 = 2;
pub(crate) const MEMBER: u8 = 3;
pub(crate) const ERROR_NAME: u8 = 4;
pub(crate) const REPLY_SERIAL: u8 = 5;
pub(crate) const DESTINATION: u8 = 6;
pub(crate) const SENDER: u8 = 7;
pub(crate) const SIGNATURE: u8 = 8;
pub(crate) const UNIX_FDS: u8 = 9;

/// A message written byte by byte: endian, type, flags, version, body length, serial, the field
/// array of `(code, signature, value)`, padding, body. Every part can be overridden.
#[derive(Clone)]
pub(crate) struct RawMsg {
    pub(crate) endian: Endian,
    pub(crate) marker: u8,
    pub(crate) msg_type: u8,
    pub(crate) flags: u8,
    pub(crate) version: u8,
    pub(crate) body_len: Option<u32>,
    pub(crate) serial: u32,
    pub(crate) fields_len: Option<u32>,
    pub(crate) fields: Vec<(u8, Vec<u8>, FV)>,
    pub(crate) body: Vec<u8>,
}

/// A built message and where its parts are.
#[derive(Clone, Debug)]
pub(crate) struct Built {
    pub(crate) bytes: Vec<u8>,
    /// Where each header field struct starts (its code byte), in order.
    pub(crate) field_at: Vec<usize>,
    /// Where each header field's value starts (after its variant signature and padding).
    pub(crate) value_at: Vec<usize>,
    /// The end of the field array (before the padding to 8).
    pub(crate) header_end: usize,
    /// Where the body starts.
    pub(crate) body_start: usize,
}

impl RawMsg {
    /// A message of type `msg_type` with no header fields, serial 1.
    pub(crate) fn new(endian: Endian, msg_type: u8) -> Self {
        Self {
            endian,
            marker: match endian {
                Endian::Little => b'l',
                Endian::Big => b'B',
            },
            msg_type,
            flags: 0,
            version: 1,
            body_len: None,
            serial: 1,
            fields_len: None,
            fields: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A valid method call: PATH `/org/example/Obj`, MEMBER `Frob`.
    pub(crate) fn call(endian: Endian) -> Self {
        Self::new(endian, 1)
            .field(PATH, "o", fs("/org/example/Obj"))
            .field(MEMBER, "s", fs("Frob"))
    }

    /// A valid signal: PATH, INTERFACE `org.example.Iface`, MEMBER `Changed`.
    pub(crate) fn signal(endian: Endian) -> Self {
        Self::new(endian, 4)
            .field(PATH, "o", fs("/org/example/Obj"))
            .field(INTERFACE, "s", fs("org.example.Iface"))
            .field(MEMBER, "s", fs("Changed"))
    }

    /// A valid method return to serial 7.
    pub(crate) fn method_return(endian: Endian) -> Self {
        Self::new(endian, 2).field(REPLY_SERIAL, "u", FV::U32(7))
    }

    /// A valid error reply `org.example.Error.Failed` to serial 7.
    pub(crate) fn error(endian: Endian) -> Self {
        Self::new(endian, 3)
            .field(ERROR_NAME, "s", fs("org.example.Error.Failed"))
            .field(REPLY_SERIAL, "u", FV::U32(7))
    }

    /// Append a header field.
    pub(crate) fn field(mut self, code: u8, sig: impl AsRef<[u8]>, v: FV) -> Self {
        self.fields.push((code, sig.as_ref().to_vec(), v));
        self
    }

    /// Remove every header field with this code.
    pub(crate) fn without(mut self, code: u8) -> Self {
        self.fields.retain(|f| f.0 != code);
        self
    }

    /// Replace the field with this code (in place), or append it.
    pub(crate) fn replace(mut self, code: u8, sig: impl AsRef<[u8]>, v: FV) -> Self {
        let f = (code, sig.as_ref().to_vec(), v);
        match self.fields.iter_mut().find(|x| x.0 == code) {
            Some(slot) => *slot = f,
            None => self.fields.push(f),
        }
        self
    }

    /// Set the body and its SIGNATURE field (the signature bytes are not checked).
    pub(crate) fn body(self, sig: impl AsRef<[u8]>, body: &W) -> Self {
        let mut m = self.replace(SIGNATURE, "g", FV::Sig(sig.as_ref().to_vec()));
        m.body = body.bytes();
        m
    }

    pub(crate) fn marker(mut self, b: u8) -> Self {
        self.marker = b;
        self
    }
    pub(crate) fn msg_type(mut self, t: u8) -> Self {
        self.msg_type = t;
        self
    }
    pub(crate) fn flags(mut self, f: u8) -> Self {
        self.flags = f;
        self
    }
    pub(crate) fn version(mut self, v: u8) -> Self {
        self.version = v;
        self
    }
    pub(crate) fn serial(mut self, s: u32) -> Self {
        self.serial = s;
        self
    }
    pub(crate) fn body_len(mut self, n: u32) -> Self {
        self.body_len = Some(n);
        self
    }
    pub(crate) fn fields_len(mut self, n: u32) -> Self {
        self.fields_len = Some(n);
        self
    }

    pub(crate) fn build(&self) -> Built {
        let mut w = W::new(self.endian);
        w.y(self.marker)
            .y(self.msg_type)
            .y(self.flags)
            .y(self.version)
            .u32(self.body_len.unwrap_or(self.body.len() as u32))
            .u32(self.serial);
        let mut field_at = Vec::new();
        let mut value_at = Vec::new();
        w.array(8, |w| {
            for (code, sig, v) in &self.fields {
                w.st();
                field_at.push(w.len());
                w.y(*code).g(sig);
                match v {
                    FV::U32(x) => {
                        w.pad(4);
                        value_at.push(w.len());
                        w.u32(*x);
                    }
                    FV::Str(s) => {
                        w.pad(4);
                        value_at.push(w.len());
                        w.s(s);
                    }
                    FV::Sig(s) => {
                        value_at.push(w.len());
                        w.g(s);
                    }
                    FV::Custom(f) => {
                        value_at.push(w.len());
                        f(w);
                    }
                }
            }
        });
        if let Some(n) = self.fields_len {
            w.patch_u32(12, n);
        }
        let header_end = w.len();
        w.pad(8);
        let body_start = w.len();
        w.raw(&self.body);
        Built {
            bytes: w.buf,
            field_at,
            value_at,
            header_end,
            body_start,
        }
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.build().bytes
    }
}

/// A method call with the given body; returns the bytes and where the body starts.
pub(crate) fn with_body(endian: Endian, sig: &str, body: &W) -> Built {
    RawMsg::call(endian).body(sig, body).build()
}

/// What a stream reader saw.
#[derive(Debug)]
pub(crate) enum Event {
    Msg(Box<Message>),
    Err(Error),
}

/// Reads a byte stream as a connection does: accumulate, ask `frame_len` how long the message
/// is, cut it, decode it. The first error drops the connection: nothing after it is read.
#[derive(Debug, Default)]
pub(crate) struct StreamReader {
    buf: Vec<u8>,
    pub(crate) events: Vec<Event>,
    dead: bool,
}

impl StreamReader {
    pub(crate) fn push(&mut self, chunk: &[u8]) {
        if self.dead {
            return;
        }
        self.buf.extend_from_slice(chunk);
        loop {
            match frame_len(&self.buf) {
                Err(e) => return self.fail(e),
                Ok(None) => {
                    assert!(self.buf.len() < 16, "frame_len wants more than 16 bytes");
                    return;
                }
                Ok(Some(n)) => {
                    assert!(n >= 16, "frame_len said a message is {n} bytes");
                    if n > self.buf.len() {
                        return;
                    }
                    let rest = self.buf.split_off(n);
                    let one = std::mem::replace(&mut self.buf, rest);
                    match Message::decode(Bytes::from(one)) {
                        Ok(m) => self.events.push(Event::Msg(Box::new(m))),
                        Err(e) => return self.fail(e),
                    }
                }
            }
        }
    }

    fn fail(&mut self, e: Error) {
        self.events.push(Event::Err(e));
        self.dead = true;
        self.buf.clear();
    }

    /// The peer closed the stream: bytes of an unfinished message are a clean error.
    pub(crate) fn eof(&mut self) {
        if self.dead || self.buf.is_empty() {
            return;
        }
        let partial = Bytes::from(std::mem::take(&mut self.buf));
        match Message::decode(partial) {
            Ok(m) => panic!("a partial message decoded: {m:?}"),
            Err(e) => self.fail(e),
        }
    }
}

/// Feed `bytes` to a fresh stream reader in chunks of `chunk` bytes, then end the stream.
pub(crate) fn read_stream(bytes: &[u8], chunk: usize) -> Vec<Event> {
    let mut r = StreamReader::default();
    for c in bytes.chunks(chunk.min(bytes.len()).max(1)) {
        r.push(c);
    }
    r.eof();
    r.events
}

/// A valid method call with serial 99, appended after a message under test to check that the
/// stream goes on (or, after an error, that it does not).
pub(crate) fn next_message(endian: Endian) -> Vec<u8> {
    RawMsg::call(endian).serial(99).bytes()
}

#[track_caller]
fn check_error(e: &Error, kind: ErrorKind, offset: Option<usize>, how: &str) {
    assert_eq!(e.kind(), kind, "{how}: wrong kind in error {e}");
    if let Some(o) = offset {
        assert_eq!(e.offset(), Some(o), "{how}: wrong offset in error {e}");
    }
}

/// `bytes` (one whole message) must be rejected with `kind` (at `offset`, when given) by
/// `Message::decode`, and by a stream reader fed whole, 1 and 2 bytes at a time, which must then
/// drop the connection: the valid message that follows is never delivered.
#[track_caller]
pub(crate) fn assert_rejected(bytes: &[u8], kind: ErrorKind, offset: Option<usize>) -> Error {
    let e = match Message::decode(Bytes::copy_from_slice(bytes)) {
        Ok(m) => panic!("expected {kind:?}, but decoded {m:?}"),
        Err(e) => e,
    };
    check_error(&e, kind, offset, "Message::decode");
    let endian = match bytes.first() {
        Some(b'B') => Endian::Big,
        _ => Endian::Little,
    };
    let mut stream = bytes.to_vec();
    stream.extend(next_message(endian));
    for chunk in CHUNKINGS {
        let events = read_stream(&stream, chunk);
        match events.as_slice() {
            [Event::Err(e)] => check_error(e, kind, offset, &format!("stream, chunks of {chunk}")),
            other => panic!("stream, chunks of {chunk}: expected one {kind:?}, got {other:?}"),
        }
    }
    e
}

/// `bytes` (one whole message) must decode, alone and on a stream fed whole, 1 and 2 bytes at a
/// time, and the valid message that follows it on the stream must be delivered too.
#[track_caller]
pub(crate) fn assert_accepted(bytes: &[u8]) -> Message {
    let msg = match Message::decode(Bytes::copy_from_slice(bytes)) {
        Ok(m) => m,
        Err(e) => panic!("expected the message to decode, got {e}"),
    };
    let mut stream = bytes.to_vec();
    stream.extend(next_message(msg.endian()));
    for chunk in CHUNKINGS {
        match read_stream(&stream, chunk).as_slice() {
            [Event::Msg(a), Event::Msg(b)] => {
                assert_eq!(**a, msg, "stream, chunks of {chunk}: a different message");
                assert_eq!(b.serial(), 99, "stream, chunks of {chunk}: next message");
            }
            other => panic!("stream, chunks of {chunk}: expected two messages, got {other:?}"),
        }
    }
    msg
}

/// Decode a message that is known to be valid (no stream checks).
#[track_caller]
pub(crate) fn decode(bytes: &[u8]) -> Message {
    Message::decode(Bytes::copy_from_slice(bytes)).unwrap_or_else(|e| panic!("decode: {e}"))
}

//! The marshalling core: [`Encoder`] and [`Decoder`], and the typed [`Encode`] / [`Decode`] traits
//! with their implementations for the Rust types that map to D-Bus types.
//!
//! Every value is aligned to its natural boundary counted from the start of the message; both the
//! header and the body start on an 8-byte boundary, so a buffer that starts a message or a body
//! can be used as the origin. Padding is written as zeros and checked to be zeros on read.
//! Arrays of fixed-size elements (`ay`, `ai`, `ad`, ...) are copied in bulk, and `&[u8]`/`&str`
//! are borrowed from the decoded bytes.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};

use bytes::BytesMut;

use crate::error::{Error, ErrorKind, Result};
use crate::names::ObjectPath;
use crate::signature::{ConstSignature, MAX_TOTAL_DEPTH, Signature, Type, check_single_type};

/// The largest array the specification allows, in bytes of element data (64 MiB).
pub const MAX_ARRAY_LEN: usize = 1 << 26;

/// Byte order of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Little endian, marked `l` on the wire.
    Little,
    /// Big endian, marked `B` on the wire.
    Big,
}

impl Endian {
    /// The byte order of this machine.
    #[cfg(target_endian = "little")]
    pub const NATIVE: Endian = Endian::Little;
    /// The byte order of this machine.
    #[cfg(target_endian = "big")]
    pub const NATIVE: Endian = Endian::Big;

    /// The header byte that marks this order.
    pub fn marker(self) -> u8 {
        match self {
            Endian::Little => b'l',
            Endian::Big => b'B',
        }
    }

    /// The order a header byte marks, if any.
    pub fn from_marker(b: u8) -> Option<Endian> {
        match b {
            b'l' => Some(Endian::Little),
            b'B' => Some(Endian::Big),
            _ => None,
        }
    }
}

/// Writes values into a growing buffer. Alignment is counted from `origin`, the position in the
/// buffer where the message (or its body) starts.
#[derive(Debug)]
pub struct Encoder {
    buf: BytesMut,
    origin: usize,
    big: bool,
    depth: u32,
    /// The deepest nesting allowed: 64, or 65 while a tuple is written as an argument list
    /// (its parentheses are not on the wire, so it is not a container there).
    limit: u32,
}

impl Encoder {
    /// An encoder writing a fresh buffer in the given byte order.
    pub fn new(endian: Endian) -> Self {
        Self::append_to(BytesMut::new(), endian)
    }

    /// An encoder writing a fresh buffer with room for `capacity` bytes before it grows.
    pub fn with_capacity(endian: Endian, capacity: usize) -> Self {
        Self::append_to(BytesMut::with_capacity(capacity), endian)
    }

    /// An encoder that appends to `buf`; the message starts at its current end (which must be
    /// 8-aligned relative to the stream for the result to be a valid D-Bus stream, as it is when
    /// only whole messages were written before).
    pub fn append_to(buf: BytesMut, endian: Endian) -> Self {
        Self {
            origin: buf.len(),
            buf,
            big: endian == Endian::Big,
            depth: 0,
            limit: MAX_TOTAL_DEPTH,
        }
    }

    /// The byte order being written.
    pub fn endian(&self) -> Endian {
        if self.big {
            Endian::Big
        } else {
            Endian::Little
        }
    }

    /// Bytes written since the origin.
    pub fn len(&self) -> usize {
        self.buf.len() - self.origin
    }

    /// Whether nothing was written since the origin.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole buffer, including what was there before the origin.
    pub fn into_inner(self) -> BytesMut {
        self.buf
    }

    /// Pad with zeros up to a multiple of `n` (1, 2, 4 or 8) from the origin.
    #[inline]
    pub fn align(&mut self, n: usize) {
        let pad = self.len().wrapping_neg() & (n - 1);
        if pad != 0 {
            self.buf.extend_from_slice(&[0u8; 8][..pad]);
        }
    }

    #[inline]
    fn put_raw<const N: usize>(&mut self, le: [u8; N], be: [u8; N]) {
        self.align(N);
        self.buf.extend_from_slice(if self.big { &be } else { &le });
    }

    /// Write a BYTE.
    #[inline]
    pub fn put_u8(&mut self, v: u8) {
        self.buf.extend_from_slice(&[v]);
    }

    /// Write a 16-bit value (aligned).
    #[inline]
    pub fn put_u16(&mut self, v: u16) {
        self.put_raw(v.to_le_bytes(), v.to_be_bytes());
    }

    /// Write a 32-bit value (aligned).
    #[inline]
    pub fn put_u32(&mut self, v: u32) {
        self.put_raw(v.to_le_bytes(), v.to_be_bytes());
    }

    /// Write a 64-bit value (aligned).
    #[inline]
    pub fn put_u64(&mut self, v: u64) {
        self.put_raw(v.to_le_bytes(), v.to_be_bytes());
    }

    /// Write a STRING or OBJECT_PATH: length, bytes, NUL.
    ///
    /// # Errors
    /// When `s` contains a NUL byte, which D-Bus strings cannot carry.
    #[inline]
    pub fn put_str(&mut self, s: &str) -> Result<()> {
        if nul_position(s.as_bytes()).is_some() {
            return Err(Error::new(ErrorKind::StringContainsNul).detail("string to encode"));
        }
        let len = u32::try_from(s.len()).map_err(|_| Error::new(ErrorKind::MessageTooLong))?;
        self.put_u32(len);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(&[0]);
        Ok(())
    }

    /// Write a SIGNATURE: one length byte, the codes, NUL. The caller guarantees validity.
    #[inline]
    pub fn put_signature_bytes(&mut self, s: &[u8]) {
        if let &[code] = s {
            // A variant of a basic type, the commonest signature: one write.
            return self.buf.extend_from_slice(&[1, code, 0]);
        }
        self.buf.extend_from_slice(&[s.len() as u8]);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(&[0]);
    }

    /// Make room for `n` more bytes.
    #[inline]
    pub(crate) fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }

    /// Write raw bytes with no alignment (for bulk arrays).
    #[inline]
    pub fn put_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Enter a container being written (array, dict entry, variant, dynamic struct): at most
    /// 64 deep in total, the limit every receiver checks.
    #[inline]
    pub(crate) fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > self.limit {
            return Err(Error::new(ErrorKind::NestedTooDeeply).detail("value to encode"));
        }
        Ok(())
    }

    /// The value about to be written is a tuple standing for an argument list: its own struct
    /// level does not count towards the nesting limit.
    pub(crate) fn for_argument_list(mut self) -> Self {
        self.limit = MAX_TOTAL_DEPTH + 1;
        self
    }

    /// Leave a container entered with [`Encoder::enter`].
    #[inline]
    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Write an array: the length, padding to `elem_align`, then what `f` writes, then patch the
    /// length.
    ///
    /// # Errors
    /// What `f` returns, or [`ErrorKind::ArrayLengthExceedsMaximum`] past 64 MiB.
    #[inline]
    pub fn array(
        &mut self,
        elem_align: usize,
        f: impl FnOnce(&mut Self) -> Result<()>,
    ) -> Result<()> {
        self.enter()?;
        self.put_u32(0);
        let len_at = self.buf.len() - 4;
        self.align(elem_align);
        let start = self.buf.len();
        f(self)?;
        self.leave();
        let n = self.buf.len() - start;
        if n > MAX_ARRAY_LEN {
            return Err(Error::new(ErrorKind::ArrayLengthExceedsMaximum));
        }
        let n = n as u32;
        let b = if self.big {
            n.to_be_bytes()
        } else {
            n.to_le_bytes()
        };
        self.buf[len_at..len_at + 4].copy_from_slice(&b);
        Ok(())
    }
}

/// Reads values from a byte slice, checking every rule of the specification. Alignment is counted
/// from the start of the slice, which must be the start of a message or of a body.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
    depth: u32,
    /// The deepest nesting allowed: 64, or 65 while a tuple is read as an argument list.
    limit: u32,
    n_fds: u32,
    base: usize,
    /// The bytes were checked already, against the signature being read, by the validating
    /// walk of `Message::decode`: padding and NULs inside strings are not checked again. Every
    /// check that makes a value what its type promises (UTF-8 for `&str`, the grammars of
    /// object paths and signatures, booleans, `h` indexes, lengths and bounds) still is, so a
    /// `Decode` implementation that reads other types than its signature says stays safe.
    checked: bool,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf` in the given byte order; `n_fds` is the number of file descriptors
    /// that travel with the message (its UNIX_FDS field), bounding `h` values.
    pub fn new(buf: &'a [u8], endian: Endian, n_fds: u32) -> Self {
        Self {
            buf,
            pos: 0,
            big: endian == Endian::Big,
            depth: 0,
            limit: MAX_TOTAL_DEPTH,
            n_fds,
            base: 0,
            checked: false,
        }
    }

    /// The bytes hold values of the signature about to be read, as `Message::decode`'s
    /// validation established: skip the padding and NUL checks, which only fail on bytes it
    /// refuses.
    pub(crate) fn checked(mut self) -> Self {
        self.checked = true;
        self
    }

    /// The value about to be read is a tuple standing for an argument list: its own struct level
    /// does not count towards the nesting limit.
    pub(crate) fn for_argument_list(mut self) -> Self {
        self.limit = MAX_TOTAL_DEPTH + 1;
        self
    }

    /// Report error offsets as if `buf` started at byte `base` of a larger buffer.
    pub(crate) fn with_base(mut self, base: usize) -> Self {
        self.base = base;
        self
    }

    pub(crate) fn set_pos(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The byte order being read.
    pub fn endian(&self) -> Endian {
        if self.big {
            Endian::Big
        } else {
            Endian::Little
        }
    }

    /// The read position, from the start of the slice.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error of `kind` at the current position.
    #[cold]
    #[inline(never)]
    pub fn error(&self, kind: ErrorKind) -> Error {
        Error::at(kind, self.base + self.pos)
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn error_at(&self, kind: ErrorKind, pos: usize) -> Error {
        Error::at(kind, self.base + pos)
    }

    /// Skip padding up to a multiple of `n`, checking that it is zeros and present.
    #[inline]
    pub fn align(&mut self, n: usize) -> Result<()> {
        let pad = self.pos.wrapping_neg() & (n - 1);
        if pad == 0 {
            return Ok(());
        }
        let Some(p) = self.buf.get(self.pos..self.pos + pad) else {
            return Err(self.error(ErrorKind::NotEnoughData));
        };
        if self.checked {
            self.pos += pad;
            return Ok(());
        }
        if let Some(i) = p.iter().position(|&b| b != 0) {
            return Err(self.error_at(ErrorKind::PaddingNotNul, self.pos + i));
        }
        self.pos += pad;
        Ok(())
    }

    /// The next `n` bytes, without moving past them.
    #[inline]
    pub(crate) fn peek(&self, n: usize) -> Option<&'a [u8]> {
        self.buf.get(self.pos..self.pos.checked_add(n)?)
    }

    /// Move past `n` bytes returned by [`Decoder::peek`].
    #[inline]
    pub(crate) fn skip(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }

    /// Take `n` bytes with no alignment.
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| self.error(ErrorKind::NotEnoughData))?;
        let Some(b) = self.buf.get(self.pos..end) else {
            return Err(self.error(ErrorKind::NotEnoughData));
        };
        self.pos = end;
        Ok(b)
    }

    #[inline]
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.align(N)?;
        let Some(b) = self.buf.get(self.pos..self.pos + N) else {
            return Err(self.error(ErrorKind::NotEnoughData));
        };
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        self.pos += N;
        Ok(a)
    }

    /// Read a BYTE.
    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        let Some(&b) = self.buf.get(self.pos) else {
            return Err(self.error(ErrorKind::NotEnoughData));
        };
        self.pos += 1;
        Ok(b)
    }

    /// Read an aligned 16-bit value.
    #[inline]
    pub fn u16(&mut self) -> Result<u16> {
        let a = self.take_array::<2>()?;
        Ok(if self.big {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        })
    }

    /// Read an aligned 32-bit value.
    #[inline]
    pub fn u32(&mut self) -> Result<u32> {
        let a = self.take_array::<4>()?;
        Ok(if self.big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }

    /// Read an aligned 64-bit value.
    #[inline]
    pub fn u64(&mut self) -> Result<u64> {
        let a = self.take_array::<8>()?;
        Ok(if self.big {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        })
    }

    /// Read a BOOLEAN (a UINT32 that must be 0 or 1).
    #[inline]
    pub fn bool(&mut self) -> Result<bool> {
        self.align(4)?;
        let at = self.pos;
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.error_at(ErrorKind::BooleanNotZeroOrOne, at)),
        }
    }

    /// Read a STRING (or the text of an OBJECT_PATH): valid UTF-8, no NUL inside, NUL after.
    #[inline]
    pub fn str(&mut self) -> Result<&'a str> {
        if self.checked
            && let Some(s) = self.checked_str()
        {
            return Ok(s);
        }
        self.full_str()
    }

    /// [`Decoder::str`] with every check.
    #[inline(never)]
    fn full_str(&mut self) -> Result<&'a str> {
        let bytes = self.string_bytes()?;
        match utf8(bytes) {
            Some(s) if self.checked || nul_position(bytes).is_none() => Ok(s),
            _ => Err(self.text_error(bytes)),
        }
    }

    /// [`Decoder::str`] (or the text of [`Decoder::object_path`]) in a validated body, whose
    /// padding, lengths, NULs, UTF-8 and path grammar were checked: only the bounds that safe
    /// code needs and the `&str` are made here. `None` (never, for a body that was validated)
    /// sends the caller to the full read, which says what is wrong.
    #[inline(always)]
    fn checked_str(&mut self) -> Option<&'a str> {
        let at = self.pos.checked_add(3)? & !3;
        let len: [u8; 4] = self.buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
        let len = if self.big {
            u32::from_be_bytes(len)
        } else {
            u32::from_le_bytes(len)
        };
        let start = at + 4;
        let end = start.checked_add(len as usize)?;
        let s = utf8(self.buf.get(start..end)?)?;
        self.pos = end + 1;
        Some(s)
    }

    /// The error for the string `bytes` just read: not UTF-8 (first), or a NUL inside.
    #[cold]
    #[inline(never)]
    fn text_error(&self, bytes: &[u8]) -> Error {
        let start = self.pos - 1 - bytes.len();
        match (std::str::from_utf8(bytes), nul_position(bytes)) {
            (Err(e), _) => self.error_at(ErrorKind::BadUtf8, start + e.valid_up_to()),
            (Ok(_), Some(i)) => self.error_at(ErrorKind::StringContainsNul, start + i),
            (Ok(_), None) => self.error_at(ErrorKind::BadUtf8, start),
        }
    }

    /// Check a STRING as [`Decoder::str`] does, without making a `&str` of it: eight bytes at
    /// a time while they are ASCII (nearly every string on a bus), the full UTF-8 check for the
    /// rest.
    #[inline]
    pub(crate) fn skip_str(&mut self) -> Result<()> {
        let bytes = self.string_bytes()?;
        if is_ascii_without_nul(bytes) {
            return Ok(());
        }
        self.check_text(bytes)
    }

    /// The full check of a string that is not all ASCII: UTF-8, and no NUL.
    #[inline(never)]
    fn check_text(&self, bytes: &[u8]) -> Result<()> {
        match std::str::from_utf8(bytes) {
            Ok(_) if nul_position(bytes).is_none() => Ok(()),
            _ => Err(self.text_error(bytes)),
        }
    }

    /// Check an OBJECT_PATH as [`Decoder::object_path`] does, without making a value of it.
    #[inline]
    pub(crate) fn skip_object_path(&mut self) -> Result<()> {
        self.path_bytes().map(drop)
    }

    /// The bytes of an OBJECT_PATH, checked against its grammar (which admits only ASCII).
    #[inline]
    fn path_bytes(&mut self) -> Result<&'a [u8]> {
        self.align(4)?;
        let at = self.pos;
        let bytes = self.string_bytes()?;
        if let Err(e) = crate::names::object_path_bytes(bytes) {
            // Only on failure: say "not UTF-8" (or "NUL") when that is the deeper problem.
            self.pos = at;
            self.str()?;
            return Err(e.relative_to(at).shifted(self.base));
        }
        Ok(bytes)
    }

    /// Read the bytes of a STRING or OBJECT_PATH (length, bytes, NUL) without checking their
    /// content; the caller validates them (as the header does with the name grammars, which
    /// admit only ASCII without NUL).
    #[inline]
    pub(crate) fn string_bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        let start = self.pos;
        let Some(end) = start.checked_add(len).filter(|&e| e < self.buf.len()) else {
            return Err(self
                .error(ErrorKind::LengthOutOfBounds)
                .detail("string length"));
        };
        if self.buf[end] != 0 {
            return Err(self.error_at(ErrorKind::StringMissingNul, end));
        }
        self.pos = end + 1;
        Ok(&self.buf[start..end])
    }

    /// Read an OBJECT_PATH, checking its grammar.
    pub fn object_path(&mut self) -> Result<ObjectPath<'a>> {
        if self.checked
            && let Some(s) = self.checked_str()
        {
            // Validated with the body: the grammar held.
            return Ok(ObjectPath::from_checked(s));
        }
        let bytes = self.path_bytes()?;
        // The grammar admits only ASCII, so this cannot fail.
        let s = utf8(bytes).ok_or_else(|| self.error(ErrorKind::BadUtf8))?;
        Ok(ObjectPath::from_checked(s))
    }

    /// Read the raw bytes of a SIGNATURE (length byte, codes, NUL) without validating the codes.
    #[inline]
    pub fn signature_bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.u8()? as usize;
        let start = self.pos;
        if start + len >= self.buf.len() {
            return Err(self.error(ErrorKind::SignatureLengthOutOfBounds));
        }
        let s = &self.buf[start..start + len];
        if self.buf[start + len] != 0 || s.contains(&0) {
            return Err(self.error_at(ErrorKind::SignatureMissingNul, start + len));
        }
        self.pos = start + len + 1;
        Ok(s)
    }

    /// Read a SIGNATURE value and validate it.
    pub fn signature(&mut self) -> Result<Signature<'a>> {
        let at = self.pos;
        let s = self.signature_bytes()?;
        crate::signature::check_signature_bytes(s).map_err(|e| self.shift(e, at + 1))?;
        Ok(Signature::from_checked(
            std::str::from_utf8(s).unwrap_or_default(),
        ))
    }

    /// Read a variant's signature: exactly one complete type.
    #[inline]
    pub fn variant_signature(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        // The common cases, one basic type or `v`, or an array of one: no need for the
        // general parser.
        match self.buf.get(at..at + 4) {
            Some(&[1, c, 0, _]) if crate::signature::is_basic(c) || c == b'v' => {
                self.pos = at + 3;
                Ok(&self.buf[at + 1..at + 2])
            }
            Some(&[2, b'a', c, 0]) if crate::signature::is_basic(c) || c == b'v' => {
                self.pos = at + 4;
                Ok(&self.buf[at + 1..at + 3])
            }
            _ => self.variant_signature_general(),
        }
    }

    #[inline(never)]
    fn variant_signature_general(&mut self) -> Result<&'a [u8]> {
        let at = self.pos;
        if let Some(&[1, c, 0]) = self.buf.get(at..at + 3) {
            // One basic type at the very end of the data.
            if crate::signature::is_basic(c) || c == b'v' {
                self.pos = at + 3;
                return Ok(&self.buf[at + 1..at + 2]);
            }
        }
        let s = self.signature_bytes()?;
        check_single_type(s).map_err(|e| self.shift(e, at + 1))?;
        Ok(s)
    }

    fn shift(&self, e: Error, at: usize) -> Error {
        e.relative_to(self.base + at)
    }

    /// Read a UNIX_FD index, checking it against the message's UNIX_FDS count.
    #[inline]
    pub fn fd_index(&mut self) -> Result<u32> {
        self.align(4)?;
        let at = self.pos;
        let i = self.u32()?;
        if i >= self.n_fds {
            return Err(self
                .error_at(ErrorKind::FdIndexOutOfRange, at)
                .detail(format!(
                    "index {i}, but the message carries {} file descriptors",
                    self.n_fds
                )));
        }
        Ok(i)
    }

    /// Enter a container (array, struct, dict entry or variant): at most 64 deep in total.
    #[inline]
    pub fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > self.limit {
            return Err(self.error(ErrorKind::NestedTooDeeply));
        }
        Ok(())
    }

    /// Leave a container entered with [`Decoder::enter`].
    #[inline]
    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Read an array header: the byte length (at most 64 MiB, within the data) and the padding
    /// to `elem_align`. Returns the position where the elements end.
    #[inline]
    pub fn array_start(&mut self, elem_align: usize) -> Result<usize> {
        self.align(4)?;
        let at = self.pos;
        let len = self.u32()? as usize;
        if len > MAX_ARRAY_LEN {
            return Err(self.error_at(ErrorKind::ArrayLengthExceedsMaximum, at));
        }
        self.align(elem_align)?;
        let end = self.pos + len;
        if end > self.buf.len() {
            return Err(self
                .error_at(ErrorKind::LengthOutOfBounds, at)
                .detail("array length"));
        }
        Ok(end)
    }

    /// Read the elements of an array whose header was read with [`Decoder::array_start`], calling
    /// `f` for each until `end`; the last element must end exactly at `end`.
    #[inline]
    pub fn array_elements(
        &mut self,
        end: usize,
        mut f: impl FnMut(&mut Self, usize) -> Result<()>,
    ) -> Result<()> {
        self.enter()?;
        let mut i = 0;
        while self.pos < end {
            f(self, i).map_err(|e| e.within(format_args!("array element {i}")))?;
            i += 1;
        }
        if self.pos != end {
            return Err(self.error(ErrorKind::ArrayLengthIncorrect));
        }
        self.leave();
        Ok(())
    }

    /// Read an array of fixed-size elements as one slice: the byte length must be a whole number
    /// of `elem_size` elements (CVE-2022-42011).
    #[inline]
    pub fn fixed_array(&mut self, elem_size: usize) -> Result<&'a [u8]> {
        self.align(4)?;
        let at = self.pos;
        let end = self.array_start(elem_size.min(8))?;
        let len = end - self.pos;
        if !is_whole(len, elem_size) {
            return Err(self
                .error_at(ErrorKind::ArrayLengthIncorrect, at)
                .detail(format!(
                    "{len} bytes is not a whole number of {elem_size}-byte elements"
                )));
        }
        self.take(len)
    }

    /// Read the rest as nothing: fail with [`ErrorKind::TooMuchData`] if bytes are left.
    pub fn finish(&self) -> Result<()> {
        if self.pos != self.buf.len() {
            return Err(self.error(ErrorKind::TooMuchData));
        }
        Ok(())
    }
}

/// `b` as a `&str` if it is valid UTF-8. Nearly every string on a bus is ASCII: those are made
/// a `&str` after one `is_ascii` check, through the `ascii` crate, for a fraction of what
/// [`std::str::from_utf8`]'s byte-by-byte start costs on short strings; the rest go through
/// `from_utf8`.
#[inline]
pub(crate) fn utf8(b: &[u8]) -> Option<&str> {
    match ascii::AsciiStr::from_ascii(b) {
        Ok(s) => Some(s.as_str()),
        Err(_) => std::str::from_utf8(b).ok(),
    }
}

/// Whether `len` bytes are a whole number of `size`-byte elements; without a division for
/// the sizes of numbers (1, 2, 4, 8), which are powers of two.
#[inline(always)]
pub(crate) fn is_whole(len: usize, size: usize) -> bool {
    if size.is_power_of_two() {
        len & (size - 1) == 0
    } else {
        len % size == 0
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether some byte of `w` is zero (exact: no false positives when no byte is zero).
#[inline]
fn has_zero_byte(w: u64) -> bool {
    w.wrapping_sub(ONES) & !w & HIGHS != 0
}

/// Whether every byte of `b` is ASCII and none is NUL: eight bytes per step, the last step
/// (or, under eight bytes, two four-byte steps) overlapping the one before.
#[inline(always)]
pub(crate) fn is_ascii_without_nul(b: &[u8]) -> bool {
    let ok = |w: u64| w & HIGHS == 0 && !has_zero_byte(w);
    let n = b.len();
    if n >= 8 {
        let mut chunks = b.chunks_exact(8);
        for c in chunks.by_ref() {
            let Ok(a) = <[u8; 8]>::try_from(c) else {
                return false;
            };
            if !ok(u64::from_le_bytes(a)) {
                return false;
            }
        }
        if chunks.remainder().is_empty() {
            return true;
        }
        let Ok(last) = <[u8; 8]>::try_from(&b[n - 8..]) else {
            return false;
        };
        ok(u64::from_le_bytes(last))
    } else if n >= 4 {
        // Both halves in one word: the first four bytes and the last four.
        let (Ok(first), Ok(last)) = (
            <[u8; 4]>::try_from(&b[..4]),
            <[u8; 4]>::try_from(&b[n - 4..]),
        ) else {
            return false;
        };
        ok(u64::from(u32::from_le_bytes(first)) | u64::from(u32::from_le_bytes(last)) << 32)
    } else {
        b.iter().all(|&c| c != 0 && c < 0x80)
    }
}

/// The index of the first NUL byte of `b`, if any: eight bytes per step.
#[inline]
pub(crate) fn nul_position(b: &[u8]) -> Option<usize> {
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for c in chunks.by_ref() {
        let Ok(a) = <[u8; 8]>::try_from(c) else {
            break;
        };
        if has_zero_byte(u64::from_le_bytes(a)) {
            return c.iter().position(|&x| x == 0).map(|i| at + i);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| x == 0)
        .map(|i| at + i)
}

/// A Rust value that can be written as its D-Bus type.
pub trait Encode: Type {
    /// Write `self`, aligned, into `enc`.
    ///
    /// # Errors
    /// When the value cannot be represented (a NUL in a string, an array over 64 MiB, a dynamic
    /// value that does not fit its declared signature).
    fn encode(&self, enc: &mut Encoder) -> Result<()>;

    /// The size of this type's wire form when it is fixed and has no padding inside or after it
    /// (numbers, and structs of them laid out without padding, such as `(ii)`); 0 otherwise.
    /// Arrays of such types are written element after element with no per-element checks.
    #[doc(hidden)]
    const FIXED: usize = 0;

    /// Write the wire form of a [`Encode::FIXED`]-size value into `out` (exactly that long).
    #[doc(hidden)]
    fn write_fixed(&self, _out: &mut [u8], _big: bool) {}

    /// Write the elements of an array of `Self`. Fixed-size types override this with a bulk
    /// copy.
    #[doc(hidden)]
    fn encode_elements(items: &[Self], enc: &mut Encoder) -> Result<()>
    where
        Self: Sized,
    {
        // At least a byte per element; `size_of` is exact for structs of numbers.
        let hint = items
            .len()
            .saturating_mul(std::mem::size_of::<Self>().max(1));
        enc.buf.reserve(hint.min(MAX_ARRAY_LEN));
        items.iter().try_for_each(|x| x.encode(enc))
    }
}

/// How many elements to reserve room for when an array of `len` bytes is decoded whose
/// elements take at least `min_size` bytes each: at most 4096, so a hostile length cannot make
/// us reserve more than the elements it really holds would need, times a small factor.
#[inline]
pub(crate) fn capacity_hint(len: usize, min_size: usize) -> usize {
    (len / min_size.max(1)).min(4096)
}

/// A Rust value that can be read from its D-Bus type, possibly borrowing from the bytes.
pub trait Decode<'a>: Type + Sized {
    /// Read one value, aligned, from `dec`.
    ///
    /// # Errors
    /// When the bytes break a rule of the specification for this type.
    fn decode(dec: &mut Decoder<'a>) -> Result<Self>;

    /// As [`Encode::FIXED`]: the size of a wire form that is fixed, needs no validation and has
    /// no padding (numbers and structs of them), or 0.
    #[doc(hidden)]
    const FIXED: usize = 0;

    /// Read a [`Decode::FIXED`]-size value from the first bytes of `b`.
    #[doc(hidden)]
    fn read_fixed(_b: &[u8], _big: bool) -> Option<Self> {
        None
    }

    /// Read the elements of an array of `Self`, which must end at `end`. Fixed-size types override
    /// this with a bulk copy.
    #[doc(hidden)]
    fn decode_elements(dec: &mut Decoder<'a>) -> Result<Vec<Self>> {
        decode_elements_one_by_one(dec)
    }
}

/// Read the elements of an array one by one.
fn decode_elements_one_by_one<'a, T: Decode<'a>>(dec: &mut Decoder<'a>) -> Result<Vec<T>> {
    let end = dec.array_start(T::ALIGNMENT)?;
    // Every element takes at least its alignment in bytes (but the last), so this is an upper
    // bound of the count; capped, so a hostile length cannot reserve much.
    let mut v = Vec::with_capacity(capacity_hint(end - dec.pos(), T::ALIGNMENT));
    dec.array_elements(end, |d, _| {
        v.push(T::decode(d)?);
        Ok(())
    })?;
    Ok(v)
}

/// The [`Encode::FIXED`] size of a struct whose fields have the fixed sizes `fields`: their sum
/// when every field is fixed and starts aligned to its size with no padding before it, and the
/// total is a multiple of 8 (so the next array element needs no padding either); 0 otherwise.
const fn fixed_struct(fields: &[usize]) -> usize {
    let mut off = 0;
    let mut i = 0;
    while i < fields.len() {
        let f = fields[i];
        if f == 0 || off % if f < 8 { f } else { 8 } != 0 {
            return 0;
        }
        off += f;
        i += 1;
    }
    if off % 8 == 0 { off } else { 0 }
}

/// Plain-old-data numbers that can be bulk copied.
trait Pod: bytemuck::Pod + Default {
    fn swap(self) -> Self;
}

macro_rules! number {
    ($t:ty, $code:literal, $put:ident, $get:ident, $via:ty, $elements:path) => {
        impl Type for $t {
            const SIGNATURE: ConstSignature = ConstSignature::new($code);
            const ALIGNMENT: usize = std::mem::size_of::<$t>();
        }
        impl Encode for $t {
            #[inline]
            fn encode(&self, enc: &mut Encoder) -> Result<()> {
                enc.$put(<$via>::from_ne_bytes(self.to_ne_bytes()));
                Ok(())
            }
            fn encode_elements(items: &[Self], enc: &mut Encoder) -> Result<()> {
                encode_pod(items, enc)
            }
            const FIXED: usize = std::mem::size_of::<$t>();
            #[inline]
            fn write_fixed(&self, out: &mut [u8], big: bool) {
                let b = if big {
                    self.to_be_bytes()
                } else {
                    self.to_le_bytes()
                };
                if let Some(dst) = out.get_mut(..b.len()) {
                    dst.copy_from_slice(&b);
                }
            }
        }
        impl<'a> Decode<'a> for $t {
            #[inline]
            fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
                Ok(<$t>::from_ne_bytes(dec.$get()?.to_ne_bytes()))
            }
            const FIXED: usize = std::mem::size_of::<$t>();
            #[inline]
            fn read_fixed(b: &[u8], big: bool) -> Option<Self> {
                let a = b.get(..std::mem::size_of::<$t>())?.try_into().ok()?;
                Some(if big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                })
            }
            fn decode_elements(dec: &mut Decoder<'a>) -> Result<Vec<Self>> {
                $elements(dec)
            }
        }
        impl Pod for $t {
            fn swap(self) -> Self {
                <$t>::from_ne_bytes(
                    <$via>::from_ne_bytes(self.to_ne_bytes())
                        .swap_bytes()
                        .to_ne_bytes(),
                )
            }
        }
    };
}

number!(u8, "y", put_u8, u8, u8, decode_bytes);
number!(i16, "n", put_u16, u16, u16, decode_pod);
number!(u16, "q", put_u16, u16, u16, decode_pod);
number!(i32, "i", put_u32, u32, u32, decode_pod);
number!(u32, "u", put_u32, u32, u32, decode_pod);
number!(i64, "x", put_u64, u64, u64, decode_pod);
number!(u64, "t", put_u64, u64, u64, decode_pod);
number!(f64, "d", put_u64, u64, u64, decode_pod);

/// `ay` as an owned `Vec<u8>`: one allocation and one `memcpy`.
fn decode_bytes(dec: &mut Decoder<'_>) -> Result<Vec<u8>> {
    Ok(dec.fixed_array(1)?.to_vec())
}

fn native(enc_big: bool) -> bool {
    enc_big == (Endian::NATIVE == Endian::Big)
}

fn encode_pod<T: Pod>(items: &[T], enc: &mut Encoder) -> Result<()> {
    if native(enc.big) {
        enc.put_bytes(bytemuck::cast_slice(items));
    } else {
        enc.buf.reserve(std::mem::size_of_val(items));
        for x in items {
            enc.put_bytes(bytemuck::bytes_of(&x.swap()));
        }
    }
    Ok(())
}

fn decode_pod<T: Pod>(dec: &mut Decoder<'_>) -> Result<Vec<T>> {
    let size = std::mem::size_of::<T>();
    let bytes = dec.fixed_array(size)?;
    let mut v = vec![T::default(); bytes.len() / size];
    bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
    if !native(dec.big) {
        v.iter_mut().for_each(|x| *x = x.swap());
    }
    Ok(v)
}

impl Type for bool {
    const SIGNATURE: ConstSignature = ConstSignature::new("b");
    const ALIGNMENT: usize = 4;
}
impl Encode for bool {
    #[inline]
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_u32(u32::from(*self));
        Ok(())
    }
}
impl<'a> Decode<'a> for bool {
    #[inline]
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        dec.bool()
    }
}

impl Type for str {
    const SIGNATURE: ConstSignature = ConstSignature::new("s");
    const ALIGNMENT: usize = 4;
}
impl Encode for str {
    #[inline]
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_str(self)
    }
}
impl Type for String {
    const SIGNATURE: ConstSignature = ConstSignature::new("s");
    const ALIGNMENT: usize = 4;
}
impl Encode for String {
    #[inline]
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_str(self)
    }
}
impl<'a> Decode<'a> for &'a str {
    #[inline]
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        dec.str()
    }
}
impl<'a> Decode<'a> for String {
    #[inline]
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        dec.str().map(str::to_owned)
    }
}

impl<T: Type + ?Sized> Type for &T {
    const SIGNATURE: ConstSignature = T::SIGNATURE;
    const ALIGNMENT: usize = T::ALIGNMENT;
}
impl<T: Encode + ?Sized> Encode for &T {
    #[inline]
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        (**self).encode(enc)
    }
}
impl<T: Type + ?Sized> Type for Box<T> {
    const SIGNATURE: ConstSignature = T::SIGNATURE;
    const ALIGNMENT: usize = T::ALIGNMENT;
}
impl<T: Encode + ?Sized> Encode for Box<T> {
    #[inline]
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        (**self).encode(enc)
    }
}

impl Type for ObjectPath<'_> {
    const SIGNATURE: ConstSignature = ConstSignature::new("o");
    const ALIGNMENT: usize = 4;
}
impl Encode for ObjectPath<'_> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_str(self.as_str())
    }
}
impl<'a> Decode<'a> for ObjectPath<'a> {
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        dec.object_path()
    }
}

impl Type for Signature<'_> {
    const SIGNATURE: ConstSignature = ConstSignature::new("g");
    const ALIGNMENT: usize = 1;
}
impl Encode for Signature<'_> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_signature_bytes(self.as_bytes());
        Ok(())
    }
}
impl<'a> Decode<'a> for Signature<'a> {
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        dec.signature()
    }
}

/// A UNIX_FD value: the index of a file descriptor among those that travel with the message
/// (`h` on the wire). [`crate::Message::fd`] turns it into the descriptor itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub u32);

impl Type for Fd {
    const SIGNATURE: ConstSignature = ConstSignature::new("h");
    const ALIGNMENT: usize = 4;
}
impl Encode for Fd {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_u32(self.0);
        Ok(())
    }
}
impl<'a> Decode<'a> for Fd {
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        dec.fd_index().map(Fd)
    }
}

const fn array_signature(elem: ConstSignature) -> ConstSignature {
    ConstSignature::new("a").concat(elem)
}

impl<T: Type> Type for [T] {
    const SIGNATURE: ConstSignature = array_signature(T::SIGNATURE);
    const ALIGNMENT: usize = 4;
}
impl<T: Encode> Encode for [T] {
    #[inline]
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.array(T::ALIGNMENT, |enc| T::encode_elements(self, enc))
    }
}
impl<T: Type> Type for Vec<T> {
    const SIGNATURE: ConstSignature = array_signature(T::SIGNATURE);
    const ALIGNMENT: usize = 4;
}
impl<T: Encode> Encode for Vec<T> {
    #[inline]
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        self.as_slice().encode(enc)
    }
}
impl<'a, T: Decode<'a>> Decode<'a> for Vec<T> {
    #[inline]
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        T::decode_elements(dec)
    }
}
impl<'a> Decode<'a> for &'a [u8] {
    #[inline]
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        dec.fixed_array(1)
    }
}

const fn dict_signature(k: ConstSignature, v: ConstSignature) -> ConstSignature {
    ConstSignature::new("a{").concat(k).concat(v).push(b'}')
}

fn encode_dict<'x, K: Encode + 'x, V: Encode + 'x>(
    entries: impl Iterator<Item = (&'x K, &'x V)>,
    enc: &mut Encoder,
) -> Result<()> {
    enc.array(8, |enc| {
        for (k, v) in entries {
            enc.align(8);
            enc.enter()?;
            k.encode(enc)?;
            v.encode(enc)?;
            enc.leave();
        }
        Ok(())
    })
}

/// Read a dict into the map `make(capacity hint)` returns, with `insert` for each entry.
fn decode_dict<'a, K: Decode<'a>, V: Decode<'a>, M>(
    dec: &mut Decoder<'a>,
    make: impl FnOnce(usize) -> M,
    mut insert: impl FnMut(&mut M, K, V),
) -> Result<M> {
    let end = dec.array_start(8)?;
    // Entries are 8-aligned and at least 16 bytes (but the last); `a{sv}` properties (key,
    // signature, value) are most often 24 to 48. Sized for 24 bytes each, a map of properties
    // rarely grows and is not twice the size it needs (a table past 1 KiB also leaves glibc
    // malloc's fastest path).
    let mut map = make(capacity_hint(end - dec.pos() + 23, 24).min(256));
    dec.array_elements(end, |d, _| {
        d.align(8)?;
        d.enter()?;
        let k = K::decode(d).map_err(|e| e.within("dict key"))?;
        let v = V::decode(d).map_err(|e| e.within("dict value"))?;
        d.leave();
        insert(&mut map, k, v);
        Ok(())
    })?;
    Ok(map)
}

impl<K: Type, V: Type, S> Type for HashMap<K, V, S> {
    const SIGNATURE: ConstSignature = dict_signature(K::SIGNATURE, V::SIGNATURE);
    const ALIGNMENT: usize = 4;
}
impl<K: Encode, V: Encode, S> Encode for HashMap<K, V, S> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        encode_dict(self.iter(), enc)
    }
}
/// Duplicate keys: the last value wins (the specification does not require rejecting them).
impl<'a, K: Decode<'a> + Eq + Hash, V: Decode<'a>, S: BuildHasher + Default> Decode<'a>
    for HashMap<K, V, S>
{
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        decode_dict(
            dec,
            |n| HashMap::with_capacity_and_hasher(n, S::default()),
            |m, k, v| {
                m.insert(k, v);
            },
        )
    }
}
impl<K: Type, V: Type> Type for BTreeMap<K, V> {
    const SIGNATURE: ConstSignature = dict_signature(K::SIGNATURE, V::SIGNATURE);
    const ALIGNMENT: usize = 4;
}
impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        encode_dict(self.iter(), enc)
    }
}
/// Duplicate keys: the last value wins.
impl<'a, K: Decode<'a> + Ord, V: Decode<'a>> Decode<'a> for BTreeMap<K, V> {
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        decode_dict(
            dec,
            |_| BTreeMap::new(),
            |m, k, v| {
                m.insert(k, v);
            },
        )
    }
}

/// The unit type is the empty argument list (an empty body, signature "").
impl Type for () {
    const SIGNATURE: ConstSignature = ConstSignature::EMPTY;
    const ALIGNMENT: usize = 1;
}
impl Encode for () {
    fn encode(&self, _enc: &mut Encoder) -> Result<()> {
        Ok(())
    }
}
impl<'a> Decode<'a> for () {
    fn decode(_dec: &mut Decoder<'a>) -> Result<Self> {
        Ok(())
    }
}

macro_rules! tuple {
    ($($t:ident $i:tt),+) => {
        /// A struct; as a message body, the argument list.
        impl<$($t: Type),+> Type for ($($t,)+) {
            const SIGNATURE: ConstSignature =
                ConstSignature::new("(")$(.concat($t::SIGNATURE))+.push(b')');
            const ALIGNMENT: usize = 8;
        }
        impl<$($t: Encode),+> Encode for ($($t,)+) {
            #[inline]
            fn encode(&self, enc: &mut Encoder) -> Result<()> {
                enc.align(8);
                enc.enter()?;
                $(self.$i.encode(enc)?;)+
                enc.leave();
                Ok(())
            }
            const FIXED: usize = fixed_struct(&[$($t::FIXED),+]);
            #[inline]
            #[allow(unused_assignments, reason = "the offset after the last field is not needed")]
            fn write_fixed(&self, out: &mut [u8], big: bool) {
                let mut off = 0;
                $(
                    if let Some(dst) = out.get_mut(off..off + $t::FIXED) {
                        self.$i.write_fixed(dst, big);
                    }
                    off += $t::FIXED;
                )+
            }
            fn encode_elements(items: &[Self], enc: &mut Encoder) -> Result<()> {
                if Self::FIXED == 0 {
                    enc.buf.reserve(items.len().saturating_mul(std::mem::size_of::<Self>()).min(MAX_ARRAY_LEN));
                    return items.iter().try_for_each(|x| x.encode(enc));
                }
                // Structs of numbers without padding: one resize, then each element written
                // in place (the array's elements start 8-aligned, and each is a multiple of 8).
                if items.is_empty() {
                    return Ok(());
                }
                let len = items.len().saturating_mul(Self::FIXED);
                if len > MAX_ARRAY_LEN {
                    return Err(Error::new(ErrorKind::ArrayLengthExceedsMaximum));
                }
                enc.align(8);
                enc.enter()?;
                let start = enc.buf.len();
                enc.buf.resize(start + len, 0);
                let big = enc.big;
                for (out, x) in enc.buf[start..].chunks_exact_mut(Self::FIXED).zip(items) {
                    x.write_fixed(out, big);
                }
                enc.leave();
                Ok(())
            }
        }
        impl<'a, $($t: Decode<'a>),+> Decode<'a> for ($($t,)+) {
            #[inline]
            fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
                dec.align(8)?;
                dec.enter()?;
                let v = ($($t::decode(dec).map_err(|e| e.within(format_args!("struct field {}", $i)))?,)+);
                dec.leave();
                Ok(v)
            }
            const FIXED: usize = fixed_struct(&[$(<$t as Decode<'a>>::FIXED),+]);
            #[inline]
            #[allow(unused_assignments, reason = "the offset after the last field is not needed")]
            fn read_fixed(b: &[u8], big: bool) -> Option<Self> {
                let mut off = 0;
                Some(($(
                    {
                        let x = $t::read_fixed(b.get(off..)?, big)?;
                        off += <$t as Decode<'a>>::FIXED;
                        x
                    },
                )+))
            }
            fn decode_elements(dec: &mut Decoder<'a>) -> Result<Vec<Self>> {
                let size = <Self as Decode<'a>>::FIXED;
                if size == 0 {
                    return decode_elements_one_by_one(dec);
                }
                // Structs of numbers without padding: the length is checked to be a whole
                // number of elements, then each is read in place. The array and (when it has
                // elements) its structs count towards the nesting limit, as when walked.
                dec.enter()?;
                let bytes = dec.fixed_array(size)?;
                if !bytes.is_empty() {
                    dec.enter()?;
                    dec.leave();
                }
                dec.leave();
                let big = dec.big;
                let mut v = Vec::with_capacity(bytes.len() / size);
                for c in bytes.chunks_exact(size) {
                    // Cannot fail: every chunk is exactly one element long.
                    match Self::read_fixed(c, big) {
                        Some(x) => v.push(x),
                        None => return Err(Error::new(ErrorKind::InvalidValue)),
                    }
                }
                Ok(v)
            }
        }
    };
}

tuple!(A 0);
tuple!(A 0, B 1);
tuple!(A 0, B 1, C 2);
tuple!(A 0, B 1, C 2, D 3);
tuple!(A 0, B 1, C 2, D 3, E 4);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);

/// A typed variant (`v` on the wire) holding a `T`; decoding checks that the variant's signature
/// is `T`'s. For a variant whose type is known only at run time, use [`crate::Value`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Variant<T>(pub T);

impl<T> Type for Variant<T> {
    const SIGNATURE: ConstSignature = ConstSignature::new("v");
    const ALIGNMENT: usize = 1;
}
impl<T: Encode> Encode for Variant<T> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        enc.put_signature_bytes(T::SIGNATURE.as_bytes());
        enc.enter()?;
        self.0.encode(enc)?;
        enc.leave();
        Ok(())
    }
}
impl<'a, T: Decode<'a>> Decode<'a> for Variant<T> {
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        let at = dec.pos();
        let sig = dec.variant_signature()?;
        if sig != T::SIGNATURE.as_bytes() {
            return Err(dec
                .error_at(ErrorKind::SignatureMismatch, at)
                .detail(format!(
                    "variant holds {:?}, expected {:?}",
                    String::from_utf8_lossy(sig),
                    T::SIGNATURE.as_str()
                )));
        }
        dec.enter()?;
        let v = T::decode(dec).map_err(|e| e.within("variant"))?;
        dec.leave();
        Ok(Variant(v))
    }
}

/// Encode `v` into a fresh buffer in the given byte order (the buffer is the origin for
/// alignment, as a message body is).
///
/// # Errors
/// See [`Encode::encode`].
pub fn to_bytes<T: Encode + ?Sized>(v: &T, endian: Endian) -> Result<BytesMut> {
    let mut enc = Encoder::new(endian);
    v.encode(&mut enc)?;
    Ok(enc.into_inner())
}

/// Decode one `T` from exactly `bytes` (which start on an 8-byte boundary of a message), with
/// `n_fds` file descriptors available for `h` values.
///
/// # Errors
/// When the bytes are not a valid `T`, or bytes are left over.
pub fn from_bytes<'a, T: Decode<'a>>(bytes: &'a [u8], endian: Endian, n_fds: u32) -> Result<T> {
    let mut dec = Decoder::new(bytes, endian, n_fds);
    let v = T::decode(&mut dec)?;
    dec.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `utf8` (the ASCII cast, else `from_utf8`) agrees with `std::str::from_utf8`: every
    /// string of up to two bytes, well-formed and malformed sequences at the start or the end of
    /// ASCII runs of up to 20 bytes (across the ASCII check's word steps), and random bytes.
    #[test]
    fn utf8_agrees_with_from_utf8() {
        let same = |b: &[u8]| assert_eq!(utf8(b), std::str::from_utf8(b).ok(), "{b:02x?}");
        same(b"");
        for a in 0..=255u8 {
            same(&[a]);
            for b in 0..=255u8 {
                same(&[a, b]);
            }
        }
        let seqs: [&[u8]; 12] = [
            "é".as_bytes(),
            "€".as_bytes(),
            "😀".as_bytes(),
            b"\xc0\x80",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xe2\x82",
            b"\xf0\x9f\x98",
            b"\x80",
            b"\xff",
            b"\0",
            b"a",
        ];
        for pad in 0..20 {
            for s in seqs {
                for at_end in [false, true] {
                    let mut b = vec![b'x'; pad];
                    if at_end {
                        b.extend_from_slice(s);
                    } else {
                        b.splice(0..0, s.iter().copied());
                    }
                    same(&b);
                }
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 20) as usize;
            let b: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8 & 0xc7).collect();
            same(&b);
        }
    }

    #[test]
    fn tuple_and_dict_signatures_are_composed_at_compile_time() {
        assert_eq!(<(String, u32, bool)>::SIGNATURE.as_str(), "(sub)");
        assert_eq!(<HashMap<String, Variant<u32>>>::SIGNATURE.as_str(), "a{sv}");
        assert_eq!(<Vec<(i32, i32)>>::SIGNATURE.as_str(), "a(ii)");
        assert_eq!(<&[u8]>::SIGNATURE.as_str(), "ay");
    }

    #[test]
    fn empty_array_of_int64_keeps_its_padding() {
        for endian in [Endian::Little, Endian::Big] {
            let mut enc = Encoder::new(endian);
            enc.put_u8(7);
            Vec::<u64>::new().encode(&mut enc).unwrap();
            let bytes = enc.into_inner();
            assert_eq!(bytes.len(), 8, "length at 4, then padding to 8");
            let mut dec = Decoder::new(&bytes, endian, 0);
            assert_eq!(dec.u8().unwrap(), 7);
            assert_eq!(Vec::<u64>::decode(&mut dec).unwrap(), Vec::<u64>::new());
            dec.finish().unwrap();
        }
    }

    #[test]
    fn bulk_arrays_swap_bytes_for_foreign_order() {
        let v: Vec<i32> = vec![1, -2, 0x0102_0304];
        for endian in [Endian::Little, Endian::Big] {
            let bytes = to_bytes(&v, endian).unwrap();
            if endian == Endian::Big {
                assert_eq!(&bytes[4..8], &[0, 0, 0, 1]);
            }
            assert_eq!(from_bytes::<Vec<i32>>(&bytes, endian, 0).unwrap(), v);
        }
    }

    #[test]
    fn borrowed_decode_points_into_the_buffer() {
        let bytes = to_bytes(&("hello", vec![1u8, 2, 3]), Endian::Little).unwrap();
        let (s, b): (&str, &[u8]) = from_bytes(&bytes, Endian::Little, 0).unwrap();
        assert_eq!((s, b), ("hello", &[1u8, 2, 3][..]));
        let range = bytes.as_ptr_range();
        assert!(range.contains(&s.as_ptr()) && range.contains(&b.as_ptr()));
    }

    #[test]
    fn word_at_a_time_text_checks_agree_with_byte_by_byte_ones() {
        let samples: [&[u8]; 10] = [
            b"",
            b"a",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefgh\0",
            b"\0abcdefghijklmnop",
            b"abcdefghijklm\0op",
            "abcdefghé".as_bytes(),
            b"abc\x80defgh",
            b"\x7f\x01abcdefgh",
        ];
        for b in samples {
            let naive_nul = b.iter().position(|&c| c == 0);
            assert_eq!(nul_position(b), naive_nul, "{b:?}");
            let naive_ascii = b.iter().all(|&c| c != 0 && c < 0x80);
            assert_eq!(is_ascii_without_nul(b), naive_ascii, "{b:?}");
        }
        // Every position of a NUL in strings of every length up to 40.
        for len in 0..40 {
            assert!(is_ascii_without_nul(&vec![b'x'; len]), "{len}");
            for at in 0..len {
                let mut v = vec![b'x'; len];
                v[at] = 0;
                assert_eq!(nul_position(&v), Some(at));
                assert!(!is_ascii_without_nul(&v));
                v[at] = 0xc3;
                assert!(!is_ascii_without_nul(&v));
            }
        }
    }

    #[test]
    fn string_with_nul_is_not_encoded() {
        let e = to_bytes("a\0b", Endian::Little).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StringContainsNul);
    }

    #[test]
    fn fd_index_is_checked_against_unix_fds() {
        let bytes = to_bytes(&Fd(5), Endian::Little).unwrap();
        let e = from_bytes::<Fd>(&bytes, Endian::Little, 1).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FdIndexOutOfRange);
        assert_eq!(from_bytes::<Fd>(&bytes, Endian::Little, 6).unwrap(), Fd(5));
    }

    #[test]
    fn typed_variant_checks_its_signature() {
        let bytes = to_bytes(&Variant(5u32), Endian::Big).unwrap();
        assert_eq!(
            from_bytes::<Variant<u32>>(&bytes, Endian::Big, 0).unwrap(),
            Variant(5)
        );
        let e = from_bytes::<Variant<i32>>(&bytes, Endian::Big, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SignatureMismatch);
    }
}

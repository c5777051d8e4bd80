//! [`ValueRef`]: the dynamic value that borrows, the counterpart of [`Value`] for reading. Strings,
//! object paths and signatures are slices of the decoded bytes, and arrays of fixed-size numbers
//! (`ay`, `ai`, `ad`, ...) are one borrowed slice each, not a list of elements; only containers
//! of other types allocate (a `Vec` per array, dict, struct, and a `Box` per variant).
//!
//! It validates exactly as [`Value`] does (the same rules, offsets and error kinds), and
//! [`ValueRef::to_value`] turns it into the owned form. As a typed parameter
//! (`HashMap<&str, ValueRef>`), a `ValueRef` is a VARIANT, like `Value`.

use std::fmt;

use crate::codec::{Decode, Decoder, Encode, Encoder, Endian, Fd, capacity_hint};
use crate::error::{Error, ErrorKind, Result};
use crate::names::ObjectPath;
use crate::signature::{ConstSignature, SigBuf, SigWriter, Signature, Type, is_basic};
use crate::value::{Array, Dict, Value, alignment, bulk_size, type_end};

/// Any D-Bus value, borrowing from the bytes it was decoded from.
///
/// ```
/// use bytes::Bytes;
/// use fastbus_wire::{ArrayRef, Message, ValueRef};
/// use std::collections::HashMap;
///
/// let uuid = [7u8, 8, 9];
/// let props = HashMap::from([
///     ("Uuid", ValueRef::from(ArrayRef::from_bytes(&uuid))),
///     ("Name", ValueRef::Str("hub")),
/// ]);
/// let signal = Message::signal("/a", "org.freedesktop.DBus.Properties", "PropertiesChanged")
///     .serial(1)
///     .body(&("org.example.Hub1", props, Vec::<&str>::new()))
///     .build()?;
/// let msg = Message::decode(Bytes::from(signal.encode()?))?;
/// let (_, changed, _): (&str, HashMap<&str, ValueRef>, Vec<&str>) = msg.body()?;
/// assert_eq!(changed["Name"].as_str(), Some("hub")); // borrowed from the message
/// assert_eq!(changed["Uuid"].as_bytes(), Some(&[7u8, 8, 9][..])); // one slice, no elements
/// assert_eq!(changed["Uuid"].to_string(), "[byte 0x07, byte 0x08, byte 0x09]");
/// # Ok::<(), fastbus_wire::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ValueRef<'a> {
    /// `y`
    Byte(u8),
    /// `b`
    Bool(bool),
    /// `n`
    I16(i16),
    /// `q`
    U16(u16),
    /// `i`
    I32(i32),
    /// `u`
    U32(u32),
    /// `x`
    I64(i64),
    /// `t`
    U64(u64),
    /// `d`
    F64(f64),
    /// `s`
    Str(&'a str),
    /// `o`
    ObjectPath(ObjectPath<'a>),
    /// `g`
    Signature(Signature<'a>),
    /// `h`: an index into the message's file descriptors.
    Fd(Fd),
    /// `aT` for any `T` but a dict entry.
    Array(ArrayRef<'a>),
    /// `a{KV}`
    Dict(DictRef<'a>),
    /// `(...)`
    Struct(Vec<ValueRef<'a>>),
    /// `v`
    Variant(Box<ValueRef<'a>>),
}

/// The elements of an [`ArrayRef`].
#[derive(Clone, Debug)]
enum Items<'a> {
    /// Fixed-size numbers of type `code`, as they are on the wire (`big`: big-endian).
    Fixed {
        code: u8,
        bytes: &'a [u8],
        big: bool,
    },
    /// Elements of any other type, one by one.
    Values(Vec<ValueRef<'a>>),
}

/// An array of values of one element type. Arrays of fixed-size numbers (`y n q i u x t d`)
/// that were decoded are one borrowed slice ([`ArrayRef::as_bytes`] for `ay`); elements are
/// made from it on demand ([`ArrayRef::get`], [`ArrayRef::iter`]).
#[derive(Clone, Debug)]
pub struct ArrayRef<'a> {
    element_signature: Signature<'a>,
    items: Items<'a>,
}

/// A dictionary (`a{KV}`), its entries in wire order; duplicate keys are kept as they came.
#[derive(Clone, Debug, PartialEq)]
pub struct DictRef<'a> {
    key_code: u8,
    value_signature: Signature<'a>,
    entries: Vec<(ValueRef<'a>, ValueRef<'a>)>,
}

/// The signature of one element type: a static string for a single code (no allocation and
/// no UTF-8 check), else the validated bytes themselves.
fn element_sig(s: &[u8]) -> Signature<'_> {
    const CODES: &str = "ybnqiuxtdsoghv";
    if let [c] = s {
        if let Some(i) = CODES.bytes().position(|x| x == *c) {
            return Signature::from_checked(&CODES[i..=i]);
        }
    }
    // Validated signatures are ASCII.
    Signature::from_checked(std::str::from_utf8(s).unwrap_or_default())
}

fn fixed_size(code: u8) -> usize {
    match code {
        b'y' => 1,
        b'n' | b'q' => 2,
        b'i' | b'u' => 4,
        _ => 8,
    }
}

/// Element `i` of the wire bytes of a fixed-size number array.
fn fixed_item(code: u8, bytes: &[u8], big: bool, i: usize) -> Option<ValueRef<'static>> {
    let n = fixed_size(code);
    let b = bytes.get(i.checked_mul(n)?..i.checked_mul(n)? + n)?;
    let mut w = [0u8; 8];
    if big {
        w[8 - n..].copy_from_slice(b);
    } else {
        w[..n].copy_from_slice(b);
    }
    let x = if big {
        u64::from_be_bytes(w)
    } else {
        u64::from_le_bytes(w)
    };
    Some(match code {
        b'y' => ValueRef::Byte(x as u8),
        b'n' => ValueRef::I16(x as u16 as i16),
        b'q' => ValueRef::U16(x as u16),
        b'i' => ValueRef::I32(x as u32 as i32),
        b'u' => ValueRef::U32(x as u32),
        b'x' => ValueRef::I64(x as i64),
        b't' => ValueRef::U64(x),
        _ => ValueRef::F64(f64::from_bits(x)),
    })
}

fn sig_error(v: &ValueRef<'_>, sig: &[u8]) -> Error {
    Error::new(ErrorKind::InvalidValue).detail(format!(
        "a {} value does not fit signature {:?}",
        v.signature(),
        String::from_utf8_lossy(sig)
    ))
}

impl<'a> ArrayRef<'a> {
    /// An array of `items`, each of which must have type `element_signature`.
    ///
    /// # Errors
    /// When the signature is not one complete type (or is a dict entry) or an item does not
    /// fit it.
    pub fn new(element_signature: Signature<'a>, items: Vec<ValueRef<'a>>) -> Result<Self> {
        crate::signature::check_single_type(element_signature.as_bytes()).map_err(|e| {
            e.detail(format!(
                "element signature {:?}",
                element_signature.as_str()
            ))
        })?;
        if element_signature.as_bytes()[0] == b'{' {
            return Err(Error::new(ErrorKind::DictEntryNotInsideArray));
        }
        for item in &items {
            if !conforms(item, element_signature.as_bytes()) {
                return Err(sig_error(item, element_signature.as_bytes()));
            }
        }
        Ok(Self {
            element_signature,
            items: Items::Values(items),
        })
    }

    /// An `ay` borrowing `bytes`.
    pub fn from_bytes(bytes: &'a [u8]) -> Self {
        Self {
            element_signature: element_sig(b"y"),
            items: Items::Fixed {
                code: b'y',
                bytes,
                big: false,
            },
        }
    }

    /// The type of every element.
    pub fn element_signature(&self) -> &Signature<'a> {
        &self.element_signature
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match &self.items {
            Items::Fixed { code, bytes, .. } => bytes.len() / fixed_size(*code),
            Items::Values(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes of an `ay`, borrowed from the message when it was decoded (`None` for other
    /// element types, or an `ay` built element by element with [`ArrayRef::new`]).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.items {
            Items::Fixed {
                code: b'y', bytes, ..
            } => Some(bytes),
            _ => None,
        }
    }

    /// The elements, when they are held one by one: arrays of any type but fixed-size numbers,
    /// and arrays built with [`ArrayRef::new`]. `None` for a decoded array of numbers (use
    /// [`ArrayRef::iter`], or [`ArrayRef::as_bytes`] for `ay`).
    pub fn values(&self) -> Option<&[ValueRef<'a>]> {
        match &self.items {
            Items::Values(v) => Some(v),
            Items::Fixed { .. } => None,
        }
    }

    /// Element `i` (a clone, which for numbers is made from the wire bytes).
    pub fn get(&self, i: usize) -> Option<ValueRef<'a>> {
        match &self.items {
            Items::Fixed { code, bytes, big } => fixed_item(*code, bytes, *big, i),
            Items::Values(v) => v.get(i).cloned(),
        }
    }

    /// The elements in order (clones, as [`ArrayRef::get`] gives them).
    pub fn iter(&self) -> impl Iterator<Item = ValueRef<'a>> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }
}

impl PartialEq for ArrayRef<'_> {
    /// Equal element types and elements, however each side holds them.
    fn eq(&self, o: &Self) -> bool {
        self.element_signature == o.element_signature
            && match (&self.items, &o.items) {
                (Items::Values(a), Items::Values(b)) => a == b,
                (
                    Items::Fixed {
                        bytes: a, big: x, ..
                    },
                    Items::Fixed {
                        bytes: b, big: y, ..
                    },
                ) if x == y => a == b,
                _ => self.len() == o.len() && self.iter().eq(o.iter()),
            }
    }
}

impl<'a> DictRef<'a> {
    /// A dictionary; the key type must be basic and every entry must fit the two types.
    ///
    /// # Errors
    /// When a signature is not valid here or an entry does not fit it.
    pub fn new(
        key_signature: &Signature<'_>,
        value_signature: Signature<'a>,
        entries: Vec<(ValueRef<'a>, ValueRef<'a>)>,
    ) -> Result<Self> {
        crate::signature::check_single_type(value_signature.as_bytes())
            .map_err(|e| e.detail(format!("element signature {:?}", value_signature.as_str())))?;
        let k = key_signature.as_bytes();
        let &[key_code] = k else {
            return Err(Error::new(ErrorKind::DictKeyMustBeBasicType)
                .detail(format!("key signature {:?}", key_signature.as_str())));
        };
        if !is_basic(key_code) {
            return Err(Error::new(ErrorKind::DictKeyMustBeBasicType)
                .detail(format!("key signature {:?}", key_signature.as_str())));
        }
        for (key, value) in &entries {
            if !conforms(key, k) {
                return Err(sig_error(key, k));
            }
            if !conforms(value, value_signature.as_bytes()) {
                return Err(sig_error(value, value_signature.as_bytes()));
            }
        }
        Ok(Self {
            key_code,
            value_signature,
            entries,
        })
    }

    /// The key type (one basic type code).
    pub fn key_signature(&self) -> Signature<'static> {
        element_sig(&[self.key_code]).into_owned()
    }

    /// The value type.
    pub fn value_signature(&self) -> &Signature<'a> {
        &self.value_signature
    }

    /// The entries in wire order.
    pub fn entries(&self) -> &[(ValueRef<'a>, ValueRef<'a>)] {
        &self.entries
    }

    /// The first entry whose key is the string `key`.
    pub fn get(&self, key: &str) -> Option<&ValueRef<'a>> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
}

/// Decode one value of the single complete type at `sig[*i..]`, exactly as
/// `Value`'s decoder does (every check in the same order), borrowing instead of copying.
pub(crate) fn decode_ref<'a>(
    dec: &mut Decoder<'a>,
    sig: &'a [u8],
    i: &mut usize,
) -> Result<ValueRef<'a>> {
    let c = sig.get(*i).copied().unwrap_or(0);
    *i += 1;
    if let Some(v) = basic_ref(dec, c) {
        return v;
    }
    Ok(match c {
        b'v' => ValueRef::Variant(Box::new(decode_variant(dec)?)),
        b'a' if sig.get(*i) == Some(&b'{') => {
            let end = type_end(sig, *i);
            let (key, value) = (&sig[*i + 1..*i + 2], &sig[*i + 2..end - 1]);
            *i = end;
            let stop = dec.array_start(8)?;
            let mut entries = Vec::with_capacity(capacity_hint(stop - dec.pos(), 16).min(256));
            dec.array_elements(stop, |d, _| {
                d.align(8)?;
                d.enter()?;
                let k = decode_ref(d, key, &mut 0).map_err(|e| e.within("dict key"))?;
                let v = decode_ref(d, value, &mut 0).map_err(|e| e.within("dict value"))?;
                d.leave();
                entries.push((k, v));
                Ok(())
            })?;
            ValueRef::Dict(DictRef {
                key_code: key[0],
                value_signature: element_sig(value),
                entries,
            })
        }
        b'a' => {
            let end = type_end(sig, *i);
            let elem = &sig[*i..end];
            *i = end;
            dec.align(4)?;
            let at = dec.pos();
            let stop = dec.array_start(alignment(elem[0]))?;
            if let Some(size) = bulk_size(elem) {
                // As the bulk validation does: a whole number of fixed-size elements
                // (CVE-2022-42011), checked before any element is read.
                let len = stop - dec.pos();
                if !crate::codec::is_whole(len, size) {
                    return Err(dec
                        .error_at(ErrorKind::ArrayLengthIncorrect, at)
                        .detail(format!(
                            "{len} bytes is not a whole number of {size}-byte elements"
                        )));
                }
            }
            let items = match elem {
                [code @ (b'y' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd')] => {
                    fixed_items(dec, *code, stop)?
                }
                _ => {
                    let mut items =
                        Vec::with_capacity(capacity_hint(stop - dec.pos(), alignment(elem[0])));
                    dec.array_elements(stop, |d, _| {
                        items.push(decode_ref(d, elem, &mut 0)?);
                        Ok(())
                    })?;
                    Items::Values(items)
                }
            };
            ValueRef::Array(ArrayRef {
                element_signature: element_sig(elem),
                items,
            })
        }
        b'(' => {
            dec.align(8)?;
            dec.enter()?;
            let mut fields = Vec::new();
            while sig.get(*i).is_some_and(|&c| c != b')') {
                let f = decode_ref(dec, sig, i)
                    .map_err(|e| e.within(format_args!("struct field {}", fields.len())))?;
                fields.push(f);
            }
            *i += 1;
            dec.leave();
            ValueRef::Struct(fields)
        }
        _ => return Err(dec.error(ErrorKind::UnknownTypeCode)),
    })
}

/// A variant's signature and value.
#[inline]
fn decode_variant<'a>(dec: &mut Decoder<'a>) -> Result<ValueRef<'a>> {
    let inner = dec.variant_signature()?;
    dec.enter()?;
    // The commonest variants (basic values, `ay`: property values) read here, as
    // `decode_ref` reads them, without its call.
    let v = match *inner {
        [c] => basic_ref(dec, c).unwrap_or_else(|| decode_ref(dec, inner, &mut 0)),
        [b'a', b'y'] => bytes_ref(dec),
        _ => decode_ref(dec, inner, &mut 0),
    }
    .map_err(|e| e.within("variant"))?;
    dec.leave();
    Ok(v)
}

/// A value of the basic type `c`; `None` when `c` is not a basic type code.
#[inline(always)]
fn basic_ref<'a>(dec: &mut Decoder<'a>, c: u8) -> Option<Result<ValueRef<'a>>> {
    Some(match c {
        b'y' => dec.u8().map(ValueRef::Byte),
        b'b' => dec.bool().map(ValueRef::Bool),
        b'n' => dec.u16().map(|n| ValueRef::I16(n as i16)),
        b'q' => dec.u16().map(ValueRef::U16),
        b'i' => dec.u32().map(|n| ValueRef::I32(n as i32)),
        b'u' => dec.u32().map(ValueRef::U32),
        b'x' => dec.u64().map(|n| ValueRef::I64(n as i64)),
        b't' => dec.u64().map(ValueRef::U64),
        b'd' => dec.u64().map(|n| ValueRef::F64(f64::from_bits(n))),
        b'h' => dec.fd_index().map(|n| ValueRef::Fd(Fd(n))),
        b's' => dec.str().map(ValueRef::Str),
        b'o' => dec.object_path().map(ValueRef::ObjectPath),
        b'g' => dec.signature().map(ValueRef::Signature),
        _ => return None,
    })
}

/// The elements of an array of fixed-size numbers `code`, up to `stop`: the bytes, borrowed
/// as they are.
#[inline]
fn fixed_items<'a>(dec: &mut Decoder<'a>, code: u8, stop: usize) -> Result<Items<'a>> {
    dec.enter()?;
    let bytes = dec.take(stop - dec.pos())?;
    dec.leave();
    Ok(Items::Fixed {
        code,
        bytes,
        big: dec.endian() == Endian::Big,
    })
}

/// An `ay`, as [`decode_ref`] reads it (every check in the same order): one borrowed slice.
#[inline]
fn bytes_ref<'a>(dec: &mut Decoder<'a>) -> Result<ValueRef<'a>> {
    dec.align(4)?;
    let stop = dec.array_start(1)?;
    Ok(ValueRef::Array(ArrayRef {
        element_signature: element_sig(b"y"),
        items: fixed_items(dec, b'y', stop)?,
    }))
}

/// Whether `v` has exactly the single complete type `sig`.
fn conforms(v: &ValueRef<'_>, sig: &[u8]) -> bool {
    match (v, sig) {
        (ValueRef::Array(a), [b'a', elem @ ..]) => a.element_signature.as_bytes() == elem,
        (ValueRef::Dict(d), [b'a', b'{', k, rest @ .., b'}']) => {
            d.key_code == *k && d.value_signature.as_bytes() == rest
        }
        (ValueRef::Struct(fields), [b'(', inner @ .., b')']) => {
            let mut i = 0;
            for f in fields {
                let end = type_end(inner, i);
                if end > inner.len() || !conforms(f, &inner[i..end]) {
                    return false;
                }
                i = end;
            }
            i == inner.len() && !fields.is_empty()
        }
        (v, [c]) => v.basic_code() == Some(*c),
        _ => false,
    }
}

/// Encode `v` as the single complete type `sig` (checked to fit).
fn encode_ref(enc: &mut Encoder, v: &ValueRef<'_>, sig: &[u8]) -> Result<()> {
    if !conforms(v, sig) {
        return Err(sig_error(v, sig));
    }
    encode_conforming(enc, v)
}

fn encode_conforming(enc: &mut Encoder, v: &ValueRef<'_>) -> Result<()> {
    match v {
        ValueRef::Byte(x) => enc.put_u8(*x),
        ValueRef::Bool(x) => enc.put_u32(u32::from(*x)),
        ValueRef::I16(x) => enc.put_u16(*x as u16),
        ValueRef::U16(x) => enc.put_u16(*x),
        ValueRef::I32(x) => enc.put_u32(*x as u32),
        ValueRef::U32(x) => enc.put_u32(*x),
        ValueRef::I64(x) => enc.put_u64(*x as u64),
        ValueRef::U64(x) => enc.put_u64(*x),
        ValueRef::F64(x) => enc.put_u64(x.to_bits()),
        ValueRef::Fd(x) => enc.put_u32(x.0),
        ValueRef::Str(s) => enc.put_str(s)?,
        ValueRef::ObjectPath(p) => enc.put_str(p.as_str())?,
        ValueRef::Signature(s) => enc.put_signature_bytes(s.as_bytes()),
        ValueRef::Variant(inner) => inner.encode(enc)?,
        ValueRef::Array(a) => {
            let elem = a.element_signature.as_bytes();
            enc.array(alignment(elem[0]), |enc| match &a.items {
                Items::Fixed { code, bytes, big } => {
                    if *big == (enc.endian() == Endian::Big) {
                        enc.put_bytes(bytes);
                    } else {
                        // The other byte order: each element reversed.
                        for c in bytes.chunks_exact(fixed_size(*code)) {
                            let mut w = [0u8; 8];
                            let w = &mut w[..c.len()];
                            w.copy_from_slice(c);
                            w.reverse();
                            enc.put_bytes(w);
                        }
                    }
                    Ok(())
                }
                Items::Values(items) => items
                    .iter()
                    .try_for_each(|item| encode_ref(enc, item, elem)),
            })?
        }
        ValueRef::Dict(d) => {
            let (k, val) = ([d.key_code], d.value_signature.as_bytes());
            enc.array(8, |enc| {
                for (key, value) in &d.entries {
                    enc.align(8);
                    enc.enter()?;
                    encode_ref(enc, key, &k)?;
                    encode_ref(enc, value, val)?;
                    enc.leave();
                }
                Ok(())
            })?
        }
        ValueRef::Struct(fields) => {
            if fields.is_empty() {
                return Err(Error::new(ErrorKind::StructHasNoFields));
            }
            enc.align(8);
            enc.enter()?;
            fields.iter().try_for_each(|f| encode_conforming(enc, f))?;
            enc.leave();
        }
    }
    Ok(())
}

impl<'a> ValueRef<'a> {
    fn basic_code(&self) -> Option<u8> {
        Some(match self {
            ValueRef::Byte(_) => b'y',
            ValueRef::Bool(_) => b'b',
            ValueRef::I16(_) => b'n',
            ValueRef::U16(_) => b'q',
            ValueRef::I32(_) => b'i',
            ValueRef::U32(_) => b'u',
            ValueRef::I64(_) => b'x',
            ValueRef::U64(_) => b't',
            ValueRef::F64(_) => b'd',
            ValueRef::Str(_) => b's',
            ValueRef::ObjectPath(_) => b'o',
            ValueRef::Signature(_) => b'g',
            ValueRef::Fd(_) => b'h',
            ValueRef::Variant(_) => b'v',
            _ => return None,
        })
    }

    fn write_signature(&self, out: &mut impl SigWriter) {
        if let Some(c) = self.basic_code() {
            return out.put(&[c]);
        }
        match self {
            ValueRef::Array(a) => {
                out.put(b"a");
                out.put(a.element_signature.as_bytes());
            }
            ValueRef::Dict(d) => {
                out.put(b"a{");
                out.put(&[d.key_code]);
                out.put(d.value_signature.as_bytes());
                out.put(b"}");
            }
            ValueRef::Struct(fields) => {
                out.put(b"(");
                fields.iter().for_each(|f| f.write_signature(out));
                out.put(b")");
            }
            _ => {}
        }
    }

    /// The signature of this value (one complete type).
    pub fn signature(&self) -> Signature<'static> {
        let mut s = String::new();
        self.write_signature(&mut s);
        Signature::from_checked(s)
    }

    /// The signature of an argument list made of `values`.
    pub fn signature_of(values: &[ValueRef<'_>]) -> Signature<'static> {
        let mut s = String::new();
        values.iter().for_each(|v| v.write_signature(&mut s));
        Signature::from_checked(s)
    }

    /// Decode a sequence of values of signature `sig` (a body) from `dec`. The values may
    /// borrow element signatures from `sig`, so it must live as long as they do.
    ///
    /// # Errors
    /// When the bytes do not hold values of that signature.
    pub fn decode_all(dec: &mut Decoder<'a>, sig: &'a Signature<'_>) -> Result<Vec<Self>> {
        decode_all_bytes(dec, sig.as_bytes())
    }

    /// Encode `values` one after the other, as the arguments of a body.
    ///
    /// # Errors
    /// When a value cannot be encoded.
    pub fn encode_all(enc: &mut Encoder, values: &[ValueRef<'_>]) -> Result<()> {
        values.iter().try_for_each(|v| encode_conforming(enc, v))
    }

    /// The owned [`Value`] with the same content.
    pub fn to_value(&self) -> Value {
        match self {
            ValueRef::Byte(x) => Value::Byte(*x),
            ValueRef::Bool(x) => Value::Bool(*x),
            ValueRef::I16(x) => Value::I16(*x),
            ValueRef::U16(x) => Value::U16(*x),
            ValueRef::I32(x) => Value::I32(*x),
            ValueRef::U32(x) => Value::U32(*x),
            ValueRef::I64(x) => Value::I64(*x),
            ValueRef::U64(x) => Value::U64(*x),
            ValueRef::F64(x) => Value::F64(*x),
            ValueRef::Str(s) => Value::Str((*s).to_owned()),
            ValueRef::ObjectPath(p) => Value::ObjectPath(p.clone().into_owned()),
            ValueRef::Signature(s) => Value::Signature(s.clone().into_owned()),
            ValueRef::Fd(x) => Value::Fd(*x),
            ValueRef::Variant(v) => Value::Variant(Box::new(v.to_value())),
            ValueRef::Struct(fields) => Value::Struct(fields.iter().map(Self::to_value).collect()),
            ValueRef::Array(a) => Value::Array(Array::from_checked(
                a.element_signature.clone().into_owned(),
                a.iter().map(|v| v.to_value()).collect(),
            )),
            ValueRef::Dict(d) => Value::Dict(Dict::from_checked(
                d.key_signature(),
                d.value_signature.clone().into_owned(),
                d.entries
                    .iter()
                    .map(|(k, v)| (k.to_value(), v.to_value()))
                    .collect(),
            )),
        }
    }

    /// The string inside a `s`, `o` or `g` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ValueRef::Str(s) => Some(s),
            ValueRef::ObjectPath(p) => Some(p.as_str()),
            ValueRef::Signature(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The bytes of an `ay` value, when it was decoded (see [`ArrayRef::as_bytes`]).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            ValueRef::Array(a) => a.as_bytes(),
            _ => None,
        }
    }

    /// Any integer value (or a boolean as 0/1, or a fd index) as an `i64`, when it fits.
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            ValueRef::Byte(x) => x.into(),
            ValueRef::Bool(x) => x.into(),
            ValueRef::I16(x) => x.into(),
            ValueRef::U16(x) => x.into(),
            ValueRef::I32(x) => x.into(),
            ValueRef::U32(x) => x.into(),
            ValueRef::I64(x) => x,
            ValueRef::U64(x) => i64::try_from(x).ok()?,
            ValueRef::Fd(Fd(x)) => x.into(),
            _ => return None,
        })
    }

    /// The boolean inside a `b` value.
    pub fn as_bool(&self) -> Option<bool> {
        if let ValueRef::Bool(b) = self {
            Some(*b)
        } else {
            None
        }
    }

    /// The value inside a variant, or `self` when it is not one.
    pub fn unwrap_variant(&self) -> &ValueRef<'a> {
        match self {
            ValueRef::Variant(v) => v.unwrap_variant(),
            v => v,
        }
    }
}

/// [`ValueRef::decode_all`] for signature bytes (a message's SIGNATURE field).
pub(crate) fn decode_all_bytes<'a>(
    dec: &mut Decoder<'a>,
    s: &'a [u8],
) -> Result<Vec<ValueRef<'a>>> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < s.len() {
        let v =
            decode_ref(dec, s, &mut i).map_err(|e| e.within(format_args!("arg {}", out.len())))?;
        out.push(v);
    }
    Ok(out)
}

impl<'a> From<&'a Value> for ValueRef<'a> {
    /// A borrowed view of an owned value (arrays element by element).
    fn from(v: &'a Value) -> Self {
        match v {
            Value::Byte(x) => ValueRef::Byte(*x),
            Value::Bool(x) => ValueRef::Bool(*x),
            Value::I16(x) => ValueRef::I16(*x),
            Value::U16(x) => ValueRef::U16(*x),
            Value::I32(x) => ValueRef::I32(*x),
            Value::U32(x) => ValueRef::U32(*x),
            Value::I64(x) => ValueRef::I64(*x),
            Value::U64(x) => ValueRef::U64(*x),
            Value::F64(x) => ValueRef::F64(*x),
            Value::Str(s) => ValueRef::Str(s),
            Value::ObjectPath(p) => ValueRef::ObjectPath(p.as_ref()),
            Value::Signature(s) => ValueRef::Signature(s.as_ref()),
            Value::Fd(x) => ValueRef::Fd(*x),
            Value::Variant(v) => ValueRef::Variant(Box::new(ValueRef::from(&**v))),
            Value::Struct(fields) => ValueRef::Struct(fields.iter().map(ValueRef::from).collect()),
            Value::Array(a) => ValueRef::Array(ArrayRef {
                element_signature: a.element_signature().as_ref(),
                items: Items::Values(a.items().iter().map(ValueRef::from).collect()),
            }),
            Value::Dict(d) => ValueRef::Dict(DictRef {
                key_code: d.key_signature().as_bytes()[0],
                value_signature: d.value_signature().as_ref(),
                entries: d
                    .entries()
                    .iter()
                    .map(|(k, v)| (ValueRef::from(k), ValueRef::from(v)))
                    .collect(),
            }),
            // `Value` is non-exhaustive only towards other crates.
        }
    }
}

impl From<&ValueRef<'_>> for Value {
    fn from(v: &ValueRef<'_>) -> Self {
        v.to_value()
    }
}

impl Type for ValueRef<'_> {
    const SIGNATURE: ConstSignature = ConstSignature::new("v");
    const ALIGNMENT: usize = 1;
}

/// A `ValueRef` as a typed parameter is a VARIANT.
impl Encode for ValueRef<'_> {
    fn encode(&self, enc: &mut Encoder) -> Result<()> {
        match self.basic_code() {
            Some(c) => enc.put_signature_bytes(&[c]),
            None => {
                let mut sig = SigBuf::new();
                self.write_signature(&mut sig);
                enc.put_signature_bytes(sig.codes()?);
            }
        }
        enc.enter()?;
        encode_conforming(enc, self)?;
        enc.leave();
        Ok(())
    }
}

impl<'a> Decode<'a> for ValueRef<'a> {
    #[inline]
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        decode_variant(dec)
    }
}

/// The same text as [`Value`]'s `Display` gives for the same content.
impl fmt::Display for ValueRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueRef::Byte(x) => write!(f, "byte 0x{x:02x}"),
            ValueRef::Bool(x) => write!(f, "{x}"),
            ValueRef::I16(x) => write!(f, "int16 {x}"),
            ValueRef::U16(x) => write!(f, "uint16 {x}"),
            ValueRef::I32(x) => write!(f, "{x}"),
            ValueRef::U32(x) => write!(f, "uint32 {x}"),
            ValueRef::I64(x) => write!(f, "int64 {x}"),
            ValueRef::U64(x) => write!(f, "uint64 {x}"),
            ValueRef::F64(x) => write!(f, "{x:?}"),
            ValueRef::Str(s) => write!(f, "{s:?}"),
            ValueRef::ObjectPath(p) => write!(f, "objectpath '{p}'"),
            ValueRef::Signature(s) => write!(f, "signature '{s}'"),
            ValueRef::Fd(Fd(i)) => write!(f, "handle {i}"),
            ValueRef::Variant(v) => write!(f, "<{v}>"),
            ValueRef::Struct(fields) => {
                f.write_str("(")?;
                for (n, item) in fields.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
            ValueRef::Array(a) if a.is_empty() => write!(f, "@a{} []", a.element_signature),
            ValueRef::Array(a) => {
                f.write_str("[")?;
                for (n, item) in a.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            ValueRef::Dict(d) if d.entries.is_empty() => {
                write!(f, "@a{{{}{}}} {{}}", d.key_code as char, d.value_signature)
            }
            ValueRef::Dict(d) => {
                f.write_str("{")?;
                for (n, (k, v)) in d.entries.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl<'a> From<&'a str> for ValueRef<'a> {
    fn from(s: &'a str) -> Self {
        ValueRef::Str(s)
    }
}

impl<'a> From<ObjectPath<'a>> for ValueRef<'a> {
    fn from(p: ObjectPath<'a>) -> Self {
        ValueRef::ObjectPath(p)
    }
}

impl<'a> From<Signature<'a>> for ValueRef<'a> {
    fn from(s: Signature<'a>) -> Self {
        ValueRef::Signature(s)
    }
}

macro_rules! from_number {
    ($($t:ty => $v:ident),+) => {$(
        impl From<$t> for ValueRef<'_> {
            fn from(x: $t) -> Self {
                ValueRef::$v(x)
            }
        }
    )+};
}
from_number!(u8 => Byte, bool => Bool, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
    i64 => I64, u64 => U64, f64 => F64, Fd => Fd);

impl<'a> From<ArrayRef<'a>> for ValueRef<'a> {
    fn from(a: ArrayRef<'a>) -> Self {
        ValueRef::Array(a)
    }
}

impl<'a> From<DictRef<'a>> for ValueRef<'a> {
    fn from(d: DictRef<'a>) -> Self {
        ValueRef::Dict(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{from_bytes, to_bytes};

    fn sample() -> Value {
        let sig = |s: &str| Signature::from_string(s.to_owned()).unwrap();
        let dict = Dict::new(
            sig("s"),
            sig("v"),
            vec![
                ("a".into(), Value::Variant(Box::new(Value::U32(7)))),
                (
                    "b".into(),
                    Value::Variant(Box::new(Value::Struct(vec![1i32.into()]))),
                ),
            ],
        )
        .unwrap();
        let bytes = (0..20u8).map(Value::Byte).collect();
        Value::Struct(vec![
            Value::from("hi"),
            Value::Dict(dict),
            Value::Array(Array::new(sig("y"), bytes).unwrap()),
            Value::Array(Array::new(sig("x"), vec![Value::I64(-5), Value::I64(9)]).unwrap()),
            Value::from(ObjectPath::new("/a/b").unwrap()),
        ])
    }

    /// As for `Value`: a variant signature past 255 bytes is refused at encode.
    #[test]
    fn variant_signature_limit_at_encode() {
        let fields = |n| ValueRef::Struct(vec![ValueRef::Byte(1); n]);
        for endian in [Endian::Little, Endian::Big] {
            assert!(to_bytes(&fields(253), endian).is_ok());
            let e = to_bytes(&fields(254), endian).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::SignatureTooLong);
        }
    }

    #[test]
    fn borrowed_value_reads_what_owned_value_reads() {
        let v = sample();
        for endian in [Endian::Little, Endian::Big] {
            let bytes = to_bytes(&v, endian).unwrap();
            let r: ValueRef<'_> = from_bytes(&bytes, endian, 0).unwrap();
            assert_eq!(r.to_value(), v);
            assert_eq!(r.to_string(), v.to_string());
            assert_eq!(r.signature(), v.signature());
            // Re-encoded in either order, it is what the owned value encodes to.
            for out in [Endian::Little, Endian::Big] {
                assert_eq!(to_bytes(&r, out).unwrap(), to_bytes(&v, out).unwrap());
            }
            let ValueRef::Struct(fields) = &r else {
                panic!("{r:?}")
            };
            let ay = fields[2].as_bytes().unwrap();
            assert!(bytes.as_ptr_range().contains(&ay.as_ptr()), "borrowed");
            assert_eq!(ValueRef::from(&v), r);
        }
    }

    /// Every byte of the sample (as a variant, in both byte orders) replaced by a few values,
    /// and every truncation: `ValueRef` accepts what `Value` accepts, reads the same content,
    /// and refuses the rest with the same error kind at the same offset.
    #[test]
    fn borrowed_value_refuses_what_owned_value_refuses() {
        // The sample, and a variant of each basic type (which the typed decoder reads without
        // `decode_ref`).
        let basics = [
            Value::from("héllo"),
            Value::U32(7),
            Value::I32(-7),
            Value::Bool(true),
            Value::Byte(3),
            Value::I64(-9),
            Value::U64(9),
            Value::F64(1.5),
            Value::I16(-2),
            Value::U16(2),
            Value::from(ObjectPath::new("/a").unwrap()),
            Value::Array(
                Array::new(
                    Signature::new("y").unwrap().into_owned(),
                    vec![Value::Byte(1), Value::Byte(2), Value::Byte(3)],
                )
                .unwrap(),
            ),
        ];
        let mut refused = 0;
        for (v, endian) in std::iter::once(sample())
            .chain(basics)
            .flat_map(|v| [(v.clone(), Endian::Little), (v, Endian::Big)])
        {
            let bytes = to_bytes(&v, endian).unwrap().to_vec();
            let check = |b: &[u8]| {
                let owned = from_bytes::<Value>(b, endian, 0);
                let borrowed = from_bytes::<ValueRef<'_>>(b, endian, 0);
                match (&owned, &borrowed) {
                    // By their text: a changed byte can make a NaN, unequal to itself.
                    (Ok(o), Ok(r)) => assert_eq!(format!("{:?}", r.to_value()), format!("{o:?}")),
                    (Err(o), Err(r)) => {
                        assert_eq!((o.kind(), o.offset()), (r.kind(), r.offset()), "{b:02x?}");
                    }
                    _ => panic!("{owned:?} vs {borrowed:?} for {b:02x?}"),
                }
                owned.is_err()
            };
            for i in 0..bytes.len() {
                for r in [0u8, 1, 2, 0x80, 0xff, b'(', bytes[i] ^ 1] {
                    let mut b = bytes.clone();
                    b[i] = r;
                    refused += usize::from(check(&b));
                }
            }
            for n in 0..bytes.len() {
                assert!(check(&bytes[..n]));
            }
        }
        assert!(refused > 100, "{refused}");
    }

    #[test]
    fn arrays_of_numbers_are_borrowed_and_read_element_by_element() {
        for endian in [Endian::Little, Endian::Big] {
            let bytes = to_bytes(&crate::codec::Variant(vec![-1i16, 2, 300]), endian).unwrap();
            let r: ValueRef<'_> = from_bytes(&bytes, endian, 0).unwrap();
            let ValueRef::Array(a) = &r else {
                panic!("{r:?}")
            };
            assert_eq!(a.len(), 3);
            assert!(a.values().is_none() && a.as_bytes().is_none());
            assert_eq!(a.get(2), Some(ValueRef::I16(300)));
            assert_eq!(a.get(3), None);
            assert_eq!(
                a.iter().collect::<Vec<_>>(),
                [ValueRef::I16(-1), ValueRef::I16(2), ValueRef::I16(300)]
            );
            // Equal to the same array built element by element.
            let built = ArrayRef::new(
                Signature::new("n").unwrap(),
                vec![ValueRef::I16(-1), ValueRef::I16(2), ValueRef::I16(300)],
            )
            .unwrap();
            assert_eq!(a, &built);
            assert_eq!(r.to_string(), "[int16 -1, int16 2, int16 300]");
        }
    }

    #[test]
    fn built_containers_check_their_types() {
        let sig = |s: &'static str| Signature::new(s).unwrap();
        let e = ArrayRef::new(sig("u"), vec![ValueRef::Str("x")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        assert_eq!(
            ArrayRef::new(Signature::from_checked("{sv}"), vec![])
                .unwrap_err()
                .kind(),
            ErrorKind::DictEntryNotInsideArray
        );
        assert_eq!(
            DictRef::new(&sig("v"), sig("u"), vec![])
                .unwrap_err()
                .kind(),
            ErrorKind::DictKeyMustBeBasicType
        );
        let d = DictRef::new(
            &sig("s"),
            sig("v"),
            vec![(
                ValueRef::Str("k"),
                ValueRef::Variant(Box::new(ValueRef::U32(1))),
            )],
        )
        .unwrap();
        assert_eq!(
            d.get("k"),
            Some(&ValueRef::Variant(Box::new(ValueRef::U32(1))))
        );
        assert_eq!(d.key_signature().as_str(), "s");
        let e = DictRef::new(
            &sig("s"),
            sig("u"),
            vec![(ValueRef::U32(1), ValueRef::U32(1))],
        );
        assert_eq!(e.unwrap_err().kind(), ErrorKind::InvalidValue);
        // Encoding refuses what does not fit, too.
        let empty = ValueRef::Struct(vec![]);
        assert_eq!(
            to_bytes(&empty, Endian::Little).unwrap_err().kind(),
            ErrorKind::StructHasNoFields
        );
        let v = ValueRef::Struct(vec![
            ValueRef::from(ArrayRef::from_bytes(b"ab")),
            ValueRef::from(7u32),
        ]);
        assert_eq!(v.signature().as_str(), "(ayu)");
        assert_eq!(v.as_i64(), None);
        assert_eq!(ValueRef::from(7u32).as_i64(), Some(7));
        assert_eq!(ValueRef::from(true).as_bool(), Some(true));
        let nested = ValueRef::Variant(Box::new(ValueRef::Variant(Box::new(ValueRef::from("x")))));
        assert_eq!(nested.unwrap_variant().as_str(), Some("x"));
    }
}

//! The dynamic, owned [`Value`]: every D-Bus type, for data whose type is known only at run time
//! (proxies built from introspection, `a{sv}` property maps, tools). Also the signature-driven
//! walker that validates a body without building anything.
//!
//! As a typed parameter (`HashMap<String, Value>`), a `Value` is a VARIANT: it writes its own
//! signature followed by itself.

use std::fmt;

use crate::codec::{Decode, Decoder, Encode, Encoder, Endian, Fd, capacity_hint};
use crate::error::{Error, ErrorKind, Result};
use crate::names::ObjectPath;
use crate::signature::{ConstSignature, SigBuf, SigWriter, Signature, Type};

/// Any D-Bus value, owned.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
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
    Str(String),
    /// `o`
    ObjectPath(ObjectPath<'static>),
    /// `g`
    Signature(Signature<'static>),
    /// `h`: an index into the message's file descriptors.
    Fd(Fd),
    /// `aT` for any `T` but a dict entry.
    Array(Array),
    /// `a{KV}`
    Dict(Dict),
    /// `(...)`
    Struct(Vec<Value>),
    /// `v`
    Variant(Box<Value>),
}

/// An array of values that all have one element type (which an empty array still carries).
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    element_signature: Signature<'static>,
    items: Vec<Value>,
}

/// A dictionary (`a{KV}`), its entries in wire order; duplicate keys are kept as they came.
#[derive(Clone, Debug, PartialEq)]
pub struct Dict {
    key_signature: Signature<'static>,
    value_signature: Signature<'static>,
    entries: Vec<(Value, Value)>,
}

fn sig_error(v: &Value, sig: &[u8]) -> Error {
    Error::new(ErrorKind::InvalidValue).detail(format!(
        "a {} value does not fit signature {:?}",
        v.signature(),
        String::from_utf8_lossy(sig)
    ))
}

fn single(sig: &str) -> Result<()> {
    crate::signature::check_single_type(sig.as_bytes())
        .map_err(|e| e.detail(format!("element signature {sig:?}")))
}

impl Array {
    /// An array of `items`, each of which must have type `element_signature`.
    ///
    /// # Errors
    /// When the signature is not one complete type or an item does not fit it.
    pub fn new(element_signature: Signature<'static>, items: Vec<Value>) -> Result<Self> {
        single(element_signature.as_str())?;
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
            items,
        })
    }

    /// An array whose items are known to fit `element_signature`.
    pub(crate) fn from_checked(element_signature: Signature<'static>, items: Vec<Value>) -> Self {
        Self {
            element_signature,
            items,
        }
    }

    /// The type of every element.
    pub fn element_signature(&self) -> &Signature<'static> {
        &self.element_signature
    }

    /// The elements.
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    /// The elements, owned.
    pub fn into_items(self) -> Vec<Value> {
        self.items
    }
}

impl Dict {
    /// A dictionary; the key type must be basic and every entry must fit the two types.
    ///
    /// # Errors
    /// When a signature is not valid here or an entry does not fit it.
    pub fn new(
        key_signature: Signature<'static>,
        value_signature: Signature<'static>,
        entries: Vec<(Value, Value)>,
    ) -> Result<Self> {
        single(value_signature.as_str())?;
        let k = key_signature.as_bytes();
        if k.len() != 1 || !crate::signature::is_basic(k[0]) {
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
            key_signature,
            value_signature,
            entries,
        })
    }

    /// A dictionary whose entries are known to fit the two signatures.
    pub(crate) fn from_checked(
        key_signature: Signature<'static>,
        value_signature: Signature<'static>,
        entries: Vec<(Value, Value)>,
    ) -> Self {
        Self {
            key_signature,
            value_signature,
            entries,
        }
    }

    /// The key type.
    pub fn key_signature(&self) -> &Signature<'static> {
        &self.key_signature
    }

    /// The value type.
    pub fn value_signature(&self) -> &Signature<'static> {
        &self.value_signature
    }

    /// The entries in wire order.
    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    /// The first entry whose key is the string `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The entries, owned.
    pub fn into_entries(self) -> Vec<(Value, Value)> {
        self.entries
    }
}

/// The index after the single complete type starting at `i` of a valid signature (at most
/// `sig.len() + 1` for one that is cut short).
pub(crate) fn type_end(sig: &[u8], i: usize) -> usize {
    let mut j = i;
    while sig.get(j) == Some(&b'a') {
        j += 1;
    }
    if !matches!(sig.get(j), Some(b'(' | b'{')) {
        return j + 1;
    }
    let mut depth = 0usize;
    while let Some(&c) = sig.get(j) {
        match c {
            b'(' | b'{' => depth += 1,
            b')' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j + 1
}

pub(crate) fn alignment(code: u8) -> usize {
    match code {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b'h' | b's' | b'o' | b'a' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// The size of an element that can be skipped (or copied) in bulk: a fixed-size number, or a
/// struct of them laid out with no padding and a size that keeps the next element aligned.
/// Booleans are excluded because each must be checked.
pub(crate) fn bulk_size(sig: &[u8]) -> Option<usize> {
    let fixed = |c: u8| match c {
        b'y' => Some(1),
        b'n' | b'q' => Some(2),
        b'i' | b'u' | b'h' => Some(4),
        b'x' | b't' | b'd' => Some(8),
        _ => None,
    };
    match sig {
        [c] => fixed(*c),
        [b'(', fields @ .., b')'] => {
            let mut size = 0;
            for &c in fields {
                let n = fixed(c)?;
                if size % n != 0 {
                    return None;
                }
                size += n;
            }
            (size % 8 == 0).then_some(size)
        }
        _ => None,
    }
}

/// Walk one value of the single complete type at `sig[*i..]`, checking every rule and building
/// nothing; advances `*i` past the type. Basic values are read here, inlined into the walk of
/// their container; containers recurse through [`skip_container`].
#[inline]
pub(crate) fn skip_value(dec: &mut Decoder<'_>, sig: &[u8], i: &mut usize) -> Result<()> {
    let c = sig.get(*i).copied().unwrap_or(0);
    *i += 1;
    match c {
        b'y' => dec.u8().map(drop),
        b'n' | b'q' => dec.u16().map(drop),
        b'i' | b'u' | b'h' => dec.u32().map(drop),
        b'x' | b't' | b'd' => dec.u64().map(drop),
        b'b' => dec.bool().map(drop),
        b's' => dec.skip_str(),
        b'o' => dec.skip_object_path(),
        _ => skip_container(dec, sig, c, i),
    }
}

/// [`skip_value`] for the type code `c` that is not a fixed-size number, a string or an
/// object path; `sig[*i..]` follows `c`.
fn skip_container(dec: &mut Decoder<'_>, sig: &[u8], c: u8, i: &mut usize) -> Result<()> {
    match c {
        b'g' => dec.signature().map(drop),
        b'v' => {
            let inner = dec.variant_signature()?;
            dec.enter()?;
            skip_value(dec, inner, &mut 0).map_err(|e| e.within("variant"))?;
            dec.leave();
            Ok(())
        }
        b'a' => {
            let end = type_end(sig, *i);
            let elem = &sig[*i..end];
            *i = end;
            if let Some(size) = bulk_size(elem) {
                // Count the levels the element-wise walk would: the array, and its structs
                // when it has any.
                dec.enter()?;
                if !dec.fixed_array(size)?.is_empty() && elem[0] == b'(' {
                    dec.enter()?;
                    dec.leave();
                }
                dec.leave();
                return Ok(());
            }
            let stop = dec.array_start(alignment(elem[0]))?;
            dec.array_elements(stop, |d, _| skip_value(d, elem, &mut 0))
        }
        b'(' | b'{' => {
            dec.align(8)?;
            dec.enter()?;
            let mut field = 0;
            while sig.get(*i).is_some_and(|&c| c != b')' && c != b'}') {
                skip_value(dec, sig, i)
                    .map_err(|e| e.within(format_args!("struct field {field}")))?;
                field += 1;
            }
            *i += 1;
            dec.leave();
            Ok(())
        }
        _ => Err(dec.error(ErrorKind::UnknownTypeCode)),
    }
}

/// An owned signature for an element type; single type codes (the common case) borrow a
/// static string instead of allocating.
fn owned_sig(s: &[u8]) -> Signature<'static> {
    const CODES: &str = "ybnqiuxtdsoghv";
    if let [c] = s {
        if let Some(i) = CODES.bytes().position(|x| x == *c) {
            return Signature::from_checked(&CODES[i..=i]);
        }
    }
    Signature::from_checked(String::from_utf8_lossy(s).into_owned())
}

/// The values of an array of the fixed-size number type `code` whose elements are `bytes`
/// (a whole number of them, checked by the caller).
fn numbers(code: u8, bytes: &[u8], endian: Endian) -> Vec<Value> {
    fn each<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> Value) -> Vec<Value> {
        bytes
            .chunks_exact(N)
            .filter_map(|c| <[u8; N]>::try_from(c).ok())
            .map(f)
            .collect()
    }
    let big = endian == Endian::Big;
    let u16_of = move |b: [u8; 2]| {
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_of = move |b: [u8; 4]| {
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let u64_of = move |b: [u8; 8]| {
        if big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    };
    match code {
        b'y' => bytes.iter().map(|&b| Value::Byte(b)).collect(),
        b'n' => each(bytes, |b| Value::I16(u16_of(b) as i16)),
        b'q' => each(bytes, |b| Value::U16(u16_of(b))),
        b'i' => each(bytes, |b| Value::I32(u32_of(b) as i32)),
        b'u' => each(bytes, |b| Value::U32(u32_of(b))),
        b'x' => each(bytes, |b| Value::I64(u64_of(b) as i64)),
        b't' => each(bytes, |b| Value::U64(u64_of(b))),
        _ => each(bytes, |b| Value::F64(f64::from_bits(u64_of(b)))),
    }
}

/// Decode one value of the single complete type at `sig[*i..]`.
pub(crate) fn decode_value(dec: &mut Decoder<'_>, sig: &[u8], i: &mut usize) -> Result<Value> {
    let c = sig.get(*i).copied().unwrap_or(0);
    *i += 1;
    Ok(match c {
        b'y' => Value::Byte(dec.u8()?),
        b'b' => Value::Bool(dec.bool()?),
        b'n' => Value::I16(dec.u16()? as i16),
        b'q' => Value::U16(dec.u16()?),
        b'i' => Value::I32(dec.u32()? as i32),
        b'u' => Value::U32(dec.u32()?),
        b'x' => Value::I64(dec.u64()? as i64),
        b't' => Value::U64(dec.u64()?),
        b'd' => Value::F64(f64::from_bits(dec.u64()?)),
        b'h' => Value::Fd(Fd(dec.fd_index()?)),
        b's' => Value::Str(dec.str()?.to_owned()),
        b'o' => Value::ObjectPath(dec.object_path()?.into_owned()),
        b'g' => Value::Signature(dec.signature()?.into_owned()),
        b'v' => {
            let inner = dec.variant_signature()?;
            dec.enter()?;
            let v = decode_value(dec, inner, &mut 0).map_err(|e| e.within("variant"))?;
            dec.leave();
            Value::Variant(Box::new(v))
        }
        b'a' if sig.get(*i) == Some(&b'{') => {
            let end = type_end(sig, *i);
            let (key, value) = (&sig[*i + 1..*i + 2], &sig[*i + 2..end - 1]);
            *i = end;
            let stop = dec.array_start(8)?;
            let mut entries = Vec::with_capacity(capacity_hint(stop - dec.pos(), 16).min(256));
            dec.array_elements(stop, |d, _| {
                d.align(8)?;
                d.enter()?;
                let k = decode_value(d, key, &mut 0).map_err(|e| e.within("dict key"))?;
                let v = decode_value(d, value, &mut 0).map_err(|e| e.within("dict value"))?;
                d.leave();
                entries.push((k, v));
                Ok(())
            })?;
            Value::Dict(Dict {
                key_signature: owned_sig(key),
                value_signature: owned_sig(value),
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
                    // Fixed-size numbers: read the whole array at once, no per-element walk.
                    dec.enter()?;
                    let bytes = dec.take(stop - dec.pos())?;
                    let items = numbers(*code, bytes, dec.endian());
                    dec.leave();
                    items
                }
                _ => {
                    let mut items =
                        Vec::with_capacity(capacity_hint(stop - dec.pos(), alignment(elem[0])));
                    dec.array_elements(stop, |d, _| {
                        items.push(decode_value(d, elem, &mut 0)?);
                        Ok(())
                    })?;
                    items
                }
            };
            Value::Array(Array {
                element_signature: owned_sig(elem),
                items,
            })
        }
        b'(' => {
            dec.align(8)?;
            dec.enter()?;
            let mut fields = Vec::new();
            while sig.get(*i).is_some_and(|&c| c != b')') {
                let f = decode_value(dec, sig, i)
                    .map_err(|e| e.within(format_args!("struct field {}", fields.len())))?;
                fields.push(f);
            }
            *i += 1;
            dec.leave();
            Value::Struct(fields)
        }
        _ => return Err(dec.error(ErrorKind::UnknownTypeCode)),
    })
}

/// Whether `v` has exactly the single complete type `sig`.
fn conforms(v: &Value, sig: &[u8]) -> bool {
    match (v, sig) {
        (Value::Byte(_), b"y")
        | (Value::Bool(_), b"b")
        | (Value::I16(_), b"n")
        | (Value::U16(_), b"q")
        | (Value::I32(_), b"i")
        | (Value::U32(_), b"u")
        | (Value::I64(_), b"x")
        | (Value::U64(_), b"t")
        | (Value::F64(_), b"d")
        | (Value::Str(_), b"s")
        | (Value::ObjectPath(_), b"o")
        | (Value::Signature(_), b"g")
        | (Value::Fd(_), b"h")
        | (Value::Variant(_), b"v") => true,
        (Value::Array(a), [b'a', elem @ ..]) => a.element_signature.as_bytes() == elem,
        (Value::Dict(d), [b'a', b'{', k, rest @ .., b'}']) => {
            d.key_signature.as_bytes() == [*k] && d.value_signature.as_bytes() == rest
        }
        (Value::Struct(fields), [b'(', inner @ .., b')']) => {
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
        _ => false,
    }
}

/// Encode `v` as the single complete type `sig` (checked to fit).
pub(crate) fn encode_value(enc: &mut Encoder, v: &Value, sig: &[u8]) -> Result<()> {
    if !conforms(v, sig) {
        return Err(sig_error(v, sig));
    }
    encode_conforming(enc, v)
}

fn encode_conforming(enc: &mut Encoder, v: &Value) -> Result<()> {
    match v {
        Value::Byte(x) => enc.put_u8(*x),
        Value::Bool(x) => enc.put_u32(u32::from(*x)),
        Value::I16(x) => enc.put_u16(*x as u16),
        Value::U16(x) => enc.put_u16(*x),
        Value::I32(x) => enc.put_u32(*x as u32),
        Value::U32(x) => enc.put_u32(*x),
        Value::I64(x) => enc.put_u64(*x as u64),
        Value::U64(x) => enc.put_u64(*x),
        Value::F64(x) => enc.put_u64(x.to_bits()),
        Value::Fd(x) => enc.put_u32(x.0),
        Value::Str(s) => enc.put_str(s)?,
        Value::ObjectPath(p) => enc.put_str(p.as_str())?,
        Value::Signature(s) => enc.put_signature_bytes(s.as_bytes()),
        Value::Variant(inner) => inner.encode(enc)?,
        Value::Array(a) => {
            // `Array::new` and `Dict::new` checked every element against the element types
            // (and the decoder builds only conforming ones): no second check per element.
            let elem = a.element_signature.as_bytes();
            enc.array(alignment(elem[0]), |enc| {
                if elem == b"y" {
                    // Bytes (a UUID, a MAC address) in one loop, not one call per byte.
                    enc.reserve(a.items.len());
                    for item in &a.items {
                        match item {
                            Value::Byte(b) => enc.put_u8(*b),
                            other => encode_conforming(enc, other)?,
                        }
                    }
                    return Ok(());
                }
                a.items
                    .iter()
                    .try_for_each(|item| encode_conforming(enc, item))
            })?
        }
        Value::Dict(d) => enc.array(8, |enc| {
            for (key, value) in &d.entries {
                enc.align(8);
                enc.enter()?;
                encode_conforming(enc, key)?;
                encode_conforming(enc, value)?;
                enc.leave();
            }
            Ok(())
        })?,
        Value::Struct(fields) => {
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

impl Value {
    fn basic_code(&self) -> Option<u8> {
        Some(match self {
            Value::Byte(_) => b'y',
            Value::Bool(_) => b'b',
            Value::I16(_) => b'n',
            Value::U16(_) => b'q',
            Value::I32(_) => b'i',
            Value::U32(_) => b'u',
            Value::I64(_) => b'x',
            Value::U64(_) => b't',
            Value::F64(_) => b'd',
            Value::Str(_) => b's',
            Value::ObjectPath(_) => b'o',
            Value::Signature(_) => b'g',
            Value::Fd(_) => b'h',
            Value::Variant(_) => b'v',
            _ => return None,
        })
    }

    fn write_signature(&self, out: &mut impl SigWriter) {
        if let Some(c) = self.basic_code() {
            return out.put(&[c]);
        }
        match self {
            Value::Array(a) => {
                out.put(b"a");
                out.put(a.element_signature.as_bytes());
            }
            Value::Dict(d) => {
                out.put(b"a{");
                out.put(d.key_signature.as_bytes());
                out.put(d.value_signature.as_bytes());
                out.put(b"}");
            }
            Value::Struct(fields) => {
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
    pub fn signature_of(values: &[Value]) -> Signature<'static> {
        let mut s = String::new();
        values.iter().for_each(|v| v.write_signature(&mut s));
        Signature::from_checked(s)
    }

    /// Decode a sequence of values of signature `sig` (a body) from `dec`.
    ///
    /// # Errors
    /// When the bytes do not hold values of that signature.
    pub fn decode_all(dec: &mut Decoder<'_>, sig: &Signature<'_>) -> Result<Vec<Value>> {
        let s = sig.as_bytes();
        let mut i = 0;
        let mut out = Vec::new();
        while i < s.len() {
            let v = decode_value(dec, s, &mut i)
                .map_err(|e| e.within(format_args!("arg {}", out.len())))?;
            out.push(v);
        }
        Ok(out)
    }

    /// Encode `values` one after the other, as the arguments of a body.
    ///
    /// # Errors
    /// When a value cannot be encoded.
    pub fn encode_all(enc: &mut Encoder, values: &[Value]) -> Result<()> {
        values.iter().try_for_each(|v| encode_conforming(enc, v))
    }

    /// The string inside a `s`, `o` or `g` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::ObjectPath(p) => Some(p.as_str()),
            Value::Signature(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// Any integer value (or a boolean as 0/1, or a fd index) as an `i64`, when it fits.
    pub fn as_i64(&self) -> Option<i64> {
        Some(match *self {
            Value::Byte(x) => x.into(),
            Value::Bool(x) => x.into(),
            Value::I16(x) => x.into(),
            Value::U16(x) => x.into(),
            Value::I32(x) => x.into(),
            Value::U32(x) => x.into(),
            Value::I64(x) => x,
            Value::U64(x) => i64::try_from(x).ok()?,
            Value::Fd(Fd(x)) => x.into(),
            _ => return None,
        })
    }

    /// The boolean inside a `b` value.
    pub fn as_bool(&self) -> Option<bool> {
        if let Value::Bool(b) = self {
            Some(*b)
        } else {
            None
        }
    }

    /// The value inside a variant, or `self` when it is not one.
    pub fn unwrap_variant(&self) -> &Value {
        match self {
            Value::Variant(v) => v.unwrap_variant(),
            v => v,
        }
    }
}

impl Type for Value {
    const SIGNATURE: ConstSignature = ConstSignature::new("v");
    const ALIGNMENT: usize = 1;
}

/// A `Value` as a typed parameter is a VARIANT.
impl Encode for Value {
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

impl<'a> Decode<'a> for Value {
    fn decode(dec: &mut Decoder<'a>) -> Result<Self> {
        let inner = dec.variant_signature()?;
        dec.enter()?;
        let v = decode_value(dec, inner, &mut 0).map_err(|e| e.within("variant"))?;
        dec.leave();
        Ok(v)
    }
}

macro_rules! from_value {
    ($($t:ty => $v:ident),+) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Self {
                Value::$v(x.into())
            }
        }
    )+};
}
from_value!(u8 => Byte, bool => Bool, i16 => I16, u16 => U16, i32 => I32, u32 => U32,
    i64 => I64, u64 => U64, f64 => F64, String => Str, &str => Str, Fd => Fd, Array => Array,
    Dict => Dict);

impl From<ObjectPath<'_>> for Value {
    fn from(p: ObjectPath<'_>) -> Self {
        Value::ObjectPath(p.into_owned())
    }
}

impl From<Signature<'_>> for Value {
    fn from(s: Signature<'_>) -> Self {
        Value::Signature(s.into_owned())
    }
}

fn write_list<'x>(
    f: &mut fmt::Formatter<'_>,
    open: &str,
    items: impl Iterator<Item = &'x Value>,
    close: &str,
) -> fmt::Result {
    f.write_str(open)?;
    for (n, item) in items.enumerate() {
        if n > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

/// A readable form close to GVariant's text format: `"text"`, `uint32 5`, `objectpath '/a'`,
/// `[1, 2]`, `{"k": <5>}`, `(1, "x")`, `<variant>`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Byte(x) => write!(f, "byte 0x{x:02x}"),
            Value::Bool(x) => write!(f, "{x}"),
            Value::I16(x) => write!(f, "int16 {x}"),
            Value::U16(x) => write!(f, "uint16 {x}"),
            Value::I32(x) => write!(f, "{x}"),
            Value::U32(x) => write!(f, "uint32 {x}"),
            Value::I64(x) => write!(f, "int64 {x}"),
            Value::U64(x) => write!(f, "uint64 {x}"),
            Value::F64(x) => write!(f, "{x:?}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::ObjectPath(p) => write!(f, "objectpath '{p}'"),
            Value::Signature(s) => write!(f, "signature '{s}'"),
            Value::Fd(Fd(i)) => write!(f, "handle {i}"),
            Value::Variant(v) => write!(f, "<{v}>"),
            Value::Struct(fields) => write_list(f, "(", fields.iter(), ")"),
            Value::Array(a) if a.items.is_empty() => write!(f, "@a{} []", a.element_signature),
            Value::Array(a) => write_list(f, "[", a.items.iter(), "]"),
            Value::Dict(d) if d.entries.is_empty() => {
                write!(f, "@a{{{}{}}} {{}}", d.key_signature, d.value_signature)
            }
            Value::Dict(d) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Endian, from_bytes, to_bytes};

    fn sig(s: &str) -> Signature<'static> {
        Signature::from_string(s.to_owned()).unwrap()
    }

    fn sample() -> Value {
        let dict = Dict::new(
            sig("s"),
            sig("v"),
            vec![
                ("a".into(), Value::Variant(Box::new(Value::U32(7)))),
                (
                    "b".into(),
                    Value::Variant(Box::new(Value::Struct(vec![1i32.into(), "x".into()]))),
                ),
            ],
        )
        .unwrap();
        Value::Struct(vec![
            Value::from("hi"),
            Value::Dict(dict),
            Value::Array(Array::new(sig("x"), vec![]).unwrap()),
            Value::from(ObjectPath::new("/a/b").unwrap()),
            Value::F64(1.5),
        ])
    }

    #[test]
    fn value_round_trips_in_both_orders() {
        let v = sample();
        assert_eq!(v.signature().as_str(), "(sa{sv}axod)");
        for endian in [Endian::Little, Endian::Big] {
            let bytes = to_bytes(&v, endian).unwrap();
            let back: Value = from_bytes(&bytes, endian, 0).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn display_is_readable() {
        assert_eq!(
            sample().to_string(),
            "(\"hi\", {\"a\": <uint32 7>, \"b\": <(1, \"x\")>}, @ax [], objectpath '/a/b', 1.5)"
        );
    }

    /// A variant's signature is written on the stack: up to 255 bytes it round-trips, past
    /// that encoding fails (it used to write a wrapped length byte and a corrupt message).
    #[test]
    fn variant_signature_limit_at_encode() {
        let fields = |n| Value::Struct(vec![Value::Byte(1); n]);
        for endian in [Endian::Little, Endian::Big] {
            let v = fields(253);
            assert_eq!(v.signature().len(), 255);
            let bytes = to_bytes(&v, endian).unwrap();
            assert_eq!(from_bytes::<Value>(&bytes, endian, 0).unwrap(), v);
            let e = to_bytes(&fields(254), endian).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::SignatureTooLong);
        }
    }

    /// A `Value` byte array takes its own loop at encode: it writes the same bytes as the typed
    /// `[u8]` encoder (a bulk copy), in both orders, and decodes back to itself.
    #[test]
    fn byte_array_value_encodes_like_typed_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        let v =
            Value::Array(Array::new(sig("y"), bytes.iter().map(|&b| b.into()).collect()).unwrap());
        for endian in [Endian::Little, Endian::Big] {
            let mut enc = Encoder::new(endian);
            enc.put_signature_bytes(b"ay");
            bytes.encode(&mut enc).unwrap();
            assert_eq!(to_bytes(&v, endian).unwrap(), enc.into_inner());
            let back: Value = from_bytes(&to_bytes(&v, endian).unwrap(), endian, 0).unwrap();
            assert_eq!(back, v);
        }
    }

    #[test]
    fn array_rejects_mixed_items() {
        let e = Array::new(sig("i"), vec![1i32.into(), "x".into()]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn bulk_size_only_for_padding_free_structs() {
        assert_eq!(bulk_size(b"(ii)"), Some(8));
        assert_eq!(bulk_size(b"(yyyyyyyy)"), Some(8));
        assert_eq!(bulk_size(b"(yi)"), None);
        assert_eq!(bulk_size(b"(ib)"), None);
        assert_eq!(bulk_size(b"t"), Some(8));
    }
}

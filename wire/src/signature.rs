//! Type signatures: validation against every rule of the specification, the parsed type tree,
//! and the [`Type`] trait that gives a Rust type its signature as a compile-time constant.
//!
//! Rules (specification, "Signatures" and "Container types"): only known type codes; the reserved
//! codes `r e m * ? @ & ^` never on the wire; `a` followed by one complete type; structs
//! non-empty and balanced; dict entries only directly inside an array, with exactly two fields and
//! a basic key; at most 32 nested arrays and 32 nested structs (dict entries count as structs);
//! at most 255 bytes.

use std::borrow::Cow;
use std::fmt;

use crate::error::{Error, ErrorKind, Result, shown};
use crate::names::name_type;

/// The longest signature the specification allows, in bytes.
pub const MAX_SIGNATURE_LEN: usize = 255;
/// The deepest nesting of arrays (and, separately, of structs) allowed.
pub const MAX_ARRAY_DEPTH: u32 = 32;
/// The deepest nesting of structs and dict entries allowed.
pub const MAX_STRUCT_DEPTH: u32 = 32;
/// The deepest total nesting of containers, variants included.
pub const MAX_TOTAL_DEPTH: u32 = 64;

/// Where a dynamic value ([`crate::Value`], [`crate::ValueRef`]) writes its signature: a
/// `String` when the signature is asked for, a [`SigBuf`] on the stack while encoding.
pub(crate) trait SigWriter {
    /// Append type codes (ASCII).
    fn put(&mut self, codes: &[u8]);
}

impl SigWriter for String {
    fn put(&mut self, codes: &[u8]) {
        codes.iter().for_each(|&c| self.push(char::from(c)));
    }
}

/// A variant's signature written on the stack while its value is encoded (no allocation); it
/// notes when the signature runs past the 255 bytes a signature may have, which a value built
/// by hand (a struct of 300 fields) can.
pub(crate) struct SigBuf {
    codes: [u8; MAX_SIGNATURE_LEN],
    len: usize,
    too_long: bool,
}

impl SigBuf {
    pub(crate) fn new() -> Self {
        Self {
            codes: [0; MAX_SIGNATURE_LEN],
            len: 0,
            too_long: false,
        }
    }

    /// The codes written.
    ///
    /// # Errors
    /// [`ErrorKind::SignatureTooLong`] when more than 255 bytes were written.
    pub(crate) fn codes(&self) -> Result<&[u8]> {
        match self.too_long {
            false => Ok(&self.codes[..self.len]),
            true => Err(Error::new(ErrorKind::SignatureTooLong).detail("variant to encode")),
        }
    }
}

impl SigWriter for SigBuf {
    fn put(&mut self, codes: &[u8]) {
        let end = self.len + codes.len();
        match self.codes.get_mut(self.len..end) {
            Some(dst) => {
                dst.copy_from_slice(codes);
                self.len = end;
            }
            None => self.too_long = true,
        }
    }
}

pub(crate) const fn is_basic(c: u8) -> bool {
    matches!(
        c,
        b'y' | b'b' | b'n' | b'q' | b'i' | b'u' | b'x' | b't' | b'd' | b's' | b'o' | b'g' | b'h'
    )
}

/// [`is_basic`] as a table, one load per code.
static BASIC: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = is_basic(c as u8);
        c += 1;
    }
    t
};

/// Whether every code of `s` is a basic type: the signature of an argument list of strings,
/// numbers, booleans, paths and the like (`s`, `su`, `sub`, ...), valid as it stands when it is
/// at most 255 bytes.
#[inline]
pub(crate) fn is_basic_only(s: &[u8]) -> bool {
    s.iter().all(|&c| BASIC[usize::from(c)])
}

fn code_error(c: u8, at: usize) -> Error {
    let kind = match c {
        b')' => ErrorKind::StructEndedButNotStarted,
        b'{' => ErrorKind::DictEntryNotInsideArray,
        b'}' => ErrorKind::DictEntryEndedButNotStarted,
        b'r' | b'e' | b'm' | b'*' | b'?' | b'@' | b'&' | b'^' => ErrorKind::ReservedTypeCode,
        _ => ErrorKind::UnknownTypeCode,
    };
    Error::at(kind, at).detail(format!("type code {:?}", c as char))
}

/// Whether `s` is exactly one struct, `(` ... its matching `)` (evaluated at compile time for
/// the signatures of `Type` impls, to tell an argument-list tuple from other types).
pub(crate) const fn is_one_struct(s: &[u8]) -> bool {
    if s.len() < 2 || s[0] != b'(' {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'(' | b'{' => depth += 1,
            b')' | b'}' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                if depth == 0 {
                    return i + 1 == s.len();
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Check one single complete type starting at `i`; return the index after it.
fn check_single(s: &[u8], i: usize, arrays: u32, structs: u32) -> Result<usize> {
    let Some(&c) = s.get(i) else {
        // Callers handle the end of input themselves; this is only reached through `a`.
        return Err(Error::at(ErrorKind::MissingArrayElementType, i));
    };
    match c {
        c if is_basic(c) || c == b'v' => Ok(i + 1),
        b'a' => {
            if arrays + 1 > MAX_ARRAY_DEPTH {
                return Err(Error::at(ErrorKind::ExceededMaximumArrayRecursion, i));
            }
            match s.get(i + 1) {
                None | Some(b')') | Some(b'}') => {
                    Err(Error::at(ErrorKind::MissingArrayElementType, i))
                }
                Some(b'{') => check_dict_entry(s, i + 1, arrays + 1, structs),
                Some(_) => check_single(s, i + 1, arrays + 1, structs),
            }
        }
        b'(' => {
            if structs + 1 > MAX_STRUCT_DEPTH {
                return Err(Error::at(ErrorKind::ExceededMaximumStructRecursion, i));
            }
            let mut j = i + 1;
            if s.get(j) == Some(&b')') {
                return Err(Error::at(ErrorKind::StructHasNoFields, i));
            }
            loop {
                match s.get(j) {
                    None => return Err(Error::at(ErrorKind::StructStartedButNotEnded, i)),
                    Some(b')') => return Ok(j + 1),
                    Some(_) => j = check_single(s, j, arrays, structs + 1)?,
                }
            }
        }
        _ => Err(code_error(c, i)),
    }
}

/// Check a dict entry `{kv}` whose `{` is at `i`; return the index after `}`.
fn check_dict_entry(s: &[u8], i: usize, arrays: u32, structs: u32) -> Result<usize> {
    if structs + 1 > MAX_STRUCT_DEPTH {
        return Err(Error::at(ErrorKind::ExceededMaximumStructRecursion, i));
    }
    let key = i + 1;
    match s.get(key) {
        None => return Err(Error::at(ErrorKind::DictEntryStartedButNotEnded, i)),
        Some(b'}') => return Err(Error::at(ErrorKind::DictEntryHasNoFields, i)),
        Some(&c) if is_basic(c) => {}
        Some(b'a' | b'(' | b'v' | b'{') => {
            return Err(Error::at(ErrorKind::DictKeyMustBeBasicType, key));
        }
        Some(&c) => return Err(code_error(c, key)),
    }
    let value = key + 1;
    match s.get(value) {
        None => return Err(Error::at(ErrorKind::DictEntryStartedButNotEnded, i)),
        Some(b'}') => return Err(Error::at(ErrorKind::DictEntryHasOnlyOneField, i)),
        Some(_) => {}
    }
    let end = check_single(s, value, arrays, structs + 1)?;
    match s.get(end) {
        Some(b'}') => Ok(end + 1),
        None => Err(Error::at(ErrorKind::DictEntryStartedButNotEnded, i)),
        Some(_) => Err(Error::at(ErrorKind::DictEntryHasTooManyFields, i)),
    }
}

/// Whether `s` is a valid signature (`single`: exactly one complete type). One pass with a
/// stack of open containers instead of recursion; it accepts exactly what the recursive checks
/// below accept (the tests compare them), which run only on what it refuses, to say why.
fn is_valid_signature(s: &[u8], single: bool) -> bool {
    /// Stack entries: an array waiting for its element, a struct (empty or not), a dict entry
    /// waiting for its key, its value, or its `}`.
    const ARRAY: u8 = 0;
    const STRUCT_EMPTY: u8 = 1;
    const STRUCT: u8 = 2;
    const DICT_KEY: u8 = 3;
    const DICT_VALUE: u8 = 4;
    const DICT_END: u8 = 5;
    if s.len() > MAX_SIGNATURE_LEN || (single && s.is_empty()) {
        return false;
    }
    let mut stack = [0u8; (MAX_ARRAY_DEPTH + MAX_STRUCT_DEPTH) as usize];
    let mut sp = 0;
    let (mut arrays, mut structs) = (0u32, 0u32);
    let mut top_level = 0usize;
    for &c in s {
        // A complete type ends here when `c` is basic, `v`, `)` or `}`.
        let mut basic = false;
        match c {
            b'a' | b'(' | b'{' => {
                let frame = match c {
                    b'a' => {
                        arrays += 1;
                        if arrays > MAX_ARRAY_DEPTH {
                            return false;
                        }
                        ARRAY
                    }
                    b'{' if sp > 0 && stack[sp - 1] == ARRAY => {
                        structs += 1;
                        DICT_KEY
                    }
                    b'{' => return false,
                    _ => {
                        structs += 1;
                        STRUCT_EMPTY
                    }
                };
                if structs > MAX_STRUCT_DEPTH || sp == stack.len() {
                    return false;
                }
                stack[sp] = frame;
                sp += 1;
                continue;
            }
            b')' => {
                if sp == 0 || stack[sp - 1] != STRUCT {
                    return false;
                }
                sp -= 1;
                structs -= 1;
            }
            b'}' => {
                if sp == 0 || stack[sp - 1] != DICT_END {
                    return false;
                }
                sp -= 1;
                structs -= 1;
            }
            b'v' => {}
            c if is_basic(c) => basic = true,
            _ => return false,
        }
        // One complete type ended: it completes the arrays waiting for it, then counts in its
        // container.
        while sp > 0 && stack[sp - 1] == ARRAY {
            sp -= 1;
            arrays -= 1;
            basic = false;
        }
        if sp == 0 {
            top_level += 1;
            if single && top_level > 1 {
                return false;
            }
            continue;
        }
        let top = &mut stack[sp - 1];
        *top = match *top {
            STRUCT_EMPTY | STRUCT => STRUCT,
            DICT_KEY if basic => DICT_VALUE,
            DICT_VALUE => DICT_END,
            _ => return false,
        };
    }
    sp == 0
}

/// Validate a whole signature (zero or more complete types).
pub(crate) fn check_signature_bytes(s: &[u8]) -> Result<()> {
    if s.len() > MAX_SIGNATURE_LEN {
        return Err(Error::new(ErrorKind::SignatureTooLong));
    }
    if is_simple_signature(s) || is_valid_signature(s, false) {
        return Ok(());
    }
    signature_rules(s)
}

/// Whether `s` is a sequence of the commonest complete types, each valid as it stands: a basic
/// type or `v`, an array of one (`as`, `ay`, `av`), or a dict of them (`a{sv}`, `a{ss}`).
/// Nesting stays at two levels, so only the length limit (checked by the caller) applies. The
/// general check decides anything else.
#[inline]
fn is_simple_signature(s: &[u8]) -> bool {
    let simple = |c: u8| is_basic(c) || c == b'v';
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if simple(c) {
            i += 1;
            continue;
        }
        match s.get(i..) {
            Some(&[b'a', e, ..]) if simple(e) => i += 2,
            Some(&[b'a', b'{', k, v, b'}', ..]) if is_basic(k) && simple(v) => i += 5,
            _ => return false,
        }
    }
    true
}

/// The rule-by-rule check of a signature of at most 255 bytes, which says what is wrong.
fn signature_rules(s: &[u8]) -> Result<()> {
    let mut i = 0;
    while i < s.len() {
        i = check_single(s, i, 0, 0)?;
    }
    Ok(())
}

fn check_signature(s: &str) -> Result<()> {
    check_signature_bytes(s.as_bytes()).map_err(|e| e.detail(format!("signature {}", shown(s))))
}

/// Validate a variant's signature: exactly one complete type.
pub(crate) fn check_single_type(s: &[u8]) -> Result<()> {
    if is_valid_signature(s, true) {
        return Ok(());
    }
    single_type_rules(s)
}

/// The rule-by-rule check of a single complete type, which says what is wrong.
fn single_type_rules(s: &[u8]) -> Result<()> {
    if s.is_empty() {
        return Err(Error::new(ErrorKind::VariantSignatureEmpty));
    }
    if s.len() > MAX_SIGNATURE_LEN {
        return Err(Error::new(ErrorKind::SignatureTooLong));
    }
    let end = check_single(s, 0, 0, 0)?;
    if end != s.len() {
        return Err(Error::new(
            ErrorKind::VariantSignatureSpecifiesMultipleValues,
        ));
    }
    Ok(())
}

name_type!(
    /// A validated type signature such as `a{sv}` (zero or more complete types, at most 255 bytes).
    Signature, check_signature
);

impl Signature<'_> {
    /// The empty signature (no arguments).
    pub const EMPTY: Signature<'static> = Signature(Cow::Borrowed(""));

    /// Parse into a tree of complete types, one per top-level type.
    pub fn types(&self) -> Vec<SignatureType> {
        let s = self.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.len() {
            let (t, next) = build(s, i);
            out.push(t);
            i = next;
        }
        out
    }

    /// Whether this signature is exactly one complete type (what a variant may hold).
    pub fn is_single_type(&self) -> bool {
        check_single_type(self.as_bytes()).is_ok()
    }
}

/// One complete type, parsed from a signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SignatureType {
    /// `y`
    Byte,
    /// `b`
    Boolean,
    /// `n`
    Int16,
    /// `q`
    UInt16,
    /// `i`
    Int32,
    /// `u`
    UInt32,
    /// `x`
    Int64,
    /// `t`
    UInt64,
    /// `d`
    Double,
    /// `s`
    String,
    /// `o`
    ObjectPath,
    /// `g`
    Signature,
    /// `h`
    UnixFd,
    /// `v`
    Variant,
    /// `aT` (not a dict)
    Array(Box<SignatureType>),
    /// `a{KV}`
    Dict(Box<SignatureType>, Box<SignatureType>),
    /// `(T...)`
    Struct(Vec<SignatureType>),
}

/// Build the tree of a type known to be valid. Indexing falls back to `Variant` on bytes that
/// cannot occur after validation, so this never panics.
fn build(s: &[u8], i: usize) -> (SignatureType, usize) {
    use SignatureType as T;
    let c = s.get(i).copied().unwrap_or(b'v');
    let simple = match c {
        b'y' => T::Byte,
        b'b' => T::Boolean,
        b'n' => T::Int16,
        b'q' => T::UInt16,
        b'i' => T::Int32,
        b'u' => T::UInt32,
        b'x' => T::Int64,
        b't' => T::UInt64,
        b'd' => T::Double,
        b's' => T::String,
        b'o' => T::ObjectPath,
        b'g' => T::Signature,
        b'h' => T::UnixFd,
        b'a' if s.get(i + 1) == Some(&b'{') => {
            let (k, after_k) = build(s, i + 2);
            let (v, after_v) = build(s, after_k);
            return (T::Dict(Box::new(k), Box::new(v)), after_v + 1);
        }
        b'a' => {
            let (e, next) = build(s, i + 1);
            return (T::Array(Box::new(e)), next);
        }
        b'(' => {
            let mut fields = Vec::new();
            let mut j = i + 1;
            while j < s.len() && s[j] != b')' {
                let (f, next) = build(s, j);
                fields.push(f);
                j = next;
            }
            return (T::Struct(fields), j + 1);
        }
        _ => T::Variant,
    };
    (simple, i + 1)
}

impl SignatureType {
    /// The alignment of this type on the wire, in bytes.
    pub fn alignment(&self) -> usize {
        use SignatureType as T;
        match self {
            T::Byte | T::Signature | T::Variant => 1,
            T::Int16 | T::UInt16 => 2,
            T::Boolean | T::Int32 | T::UInt32 | T::UnixFd | T::String | T::ObjectPath => 4,
            T::Array(_) | T::Dict(..) => 4,
            T::Int64 | T::UInt64 | T::Double | T::Struct(_) => 8,
        }
    }

    /// Whether this is a basic (non-container) type, as a dict key must be.
    pub fn is_basic(&self) -> bool {
        use SignatureType as T;
        !matches!(self, T::Variant | T::Array(_) | T::Dict(..) | T::Struct(_))
    }

    fn write(&self, out: &mut String) {
        use SignatureType as T;
        let c = match self {
            T::Byte => 'y',
            T::Boolean => 'b',
            T::Int16 => 'n',
            T::UInt16 => 'q',
            T::Int32 => 'i',
            T::UInt32 => 'u',
            T::Int64 => 'x',
            T::UInt64 => 't',
            T::Double => 'd',
            T::String => 's',
            T::ObjectPath => 'o',
            T::Signature => 'g',
            T::UnixFd => 'h',
            T::Variant => 'v',
            T::Array(e) => {
                out.push('a');
                return e.write(out);
            }
            T::Dict(k, v) => {
                out.push_str("a{");
                k.write(out);
                v.write(out);
                return out.push('}');
            }
            T::Struct(fields) => {
                out.push('(');
                fields.iter().for_each(|f| f.write(out));
                return out.push(')');
            }
        };
        out.push(c);
    }
}

impl fmt::Display for SignatureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// A signature built at compile time, so that [`Type::SIGNATURE`] costs nothing at run time.
/// Built with [`ConstSignature::new`] and [`ConstSignature::concat`]; a signature longer than
/// 255 bytes fails to compile.
#[derive(Clone, Copy)]
pub struct ConstSignature {
    bytes: [u8; MAX_SIGNATURE_LEN],
    len: u8,
}

impl ConstSignature {
    /// A constant signature from a string. Panics at compile time when longer than 255 bytes;
    /// validity is checked by the tests of each `Type` impl.
    pub const fn new(s: &str) -> Self {
        Self::EMPTY.concat_bytes(s.as_bytes())
    }

    /// The empty signature.
    pub const EMPTY: Self = Self {
        bytes: [0; MAX_SIGNATURE_LEN],
        len: 0,
    };

    /// `self` followed by `other`.
    pub const fn concat(self, other: ConstSignature) -> Self {
        self.concat_bytes(other.as_bytes())
    }

    const fn concat_bytes(mut self, b: &[u8]) -> Self {
        let start = self.len as usize;
        assert!(
            start + b.len() <= MAX_SIGNATURE_LEN,
            "signature longer than 255 bytes"
        );
        let mut i = 0;
        while i < b.len() {
            self.bytes[start + i] = b[i];
            i += 1;
        }
        self.len = (start + b.len()) as u8;
        self
    }

    /// `self` with one more type code appended.
    pub const fn push(self, c: u8) -> Self {
        self.concat_bytes(&[c])
    }

    /// The signature bytes.
    pub const fn as_bytes(&self) -> &[u8] {
        self.bytes.split_at(self.len as usize).0
    }

    /// The signature as a string (type codes are ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// As a validated [`Signature`].
    ///
    /// # Errors
    /// When the constant is not a valid signature (a bug in a `Type` impl).
    pub fn to_signature(&self) -> Result<Signature<'_>> {
        Signature::new(self.as_str())
    }
}

impl fmt::Debug for ConstSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConstSignature({:?})", self.as_str())
    }
}

impl PartialEq for ConstSignature {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ConstSignature {}

/// A Rust type that has one D-Bus signature, known at compile time.
pub trait Type {
    /// The D-Bus signature of this type (a single complete type, or for the unit type and
    /// argument tuples used as message bodies, see [`crate::Message`]).
    const SIGNATURE: ConstSignature;
    /// The alignment of the first byte of this type on the wire.
    const ALIGNMENT: usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string of up to 6 codes over an alphabet of each kind of code, and deep and
    /// long signatures: the one-pass check accepts exactly what the rule-by-rule checks accept.
    /// The shortcut for signatures of basic codes only accepts nothing the full check refuses:
    /// every one- and two-byte string, and basic runs up to the length limit.
    #[test]
    fn basic_only_signatures_are_valid() {
        for a in 0..=255u8 {
            assert_eq!(is_basic_only(&[a]), is_basic(a));
            for b in 0..=255u8 {
                let s = [a, b];
                if is_basic_only(&s) {
                    assert!(check_signature_bytes(&s).is_ok(), "{s:?}");
                }
            }
        }
        let codes = b"ybnqiuxtdsogh";
        for n in [3, 13, 254, 255] {
            let s: Vec<u8> = codes.iter().copied().cycle().take(n).collect();
            assert!(is_basic_only(&s) && check_signature_bytes(&s).is_ok());
        }
        assert!(!is_basic_only(b"sv") && !is_basic_only(b"as") && is_basic_only(b""));
    }

    #[test]
    fn one_pass_check_accepts_exactly_what_the_rules_accept() {
        fn check(s: &[u8]) {
            let rules = s.len() <= MAX_SIGNATURE_LEN && signature_rules(s).is_ok();
            // The shortcut for the commonest signatures accepts nothing the rules refuse.
            assert!(
                !is_simple_signature(s) || signature_rules(s).is_ok(),
                "simple {:?}",
                crate::error::shown_bytes(s)
            );
            assert_eq!(
                is_valid_signature(s, false),
                rules,
                "{:?}",
                crate::error::shown_bytes(s)
            );
            assert_eq!(
                is_valid_signature(s, true),
                single_type_rules(s).is_ok(),
                "single {:?}",
                crate::error::shown_bytes(s)
            );
        }
        fn each(s: &mut Vec<u8>, left: usize) {
            check(s);
            if left > 0 {
                for &c in b"yva(){}r" {
                    s.push(c);
                    each(s, left - 1);
                    s.pop();
                }
            }
        }
        each(&mut Vec::new(), 6);
        for n in [31, 32, 33] {
            for (open, close) in [("a", ""), ("(", ")"), ("a{s", "}"), ("a(", ")")] {
                let deep = format!("{}y{}", open.repeat(n), close.repeat(n));
                check(deep.as_bytes());
            }
            check(format!("{}a{{sv}}", "a".repeat(n)).as_bytes());
            check(format!("{}{}", "(".repeat(n), ")".repeat(n)).as_bytes());
        }
        check("y".repeat(255).as_bytes());
        check(format!("a{}", "y".repeat(255)).as_bytes());
        check(format!("({})", "y".repeat(253)).as_bytes());
        check(format!("({})", "y".repeat(254)).as_bytes());
    }

    #[test]
    fn the_commonest_signatures_take_the_shortcut() {
        for s in [
            "", "s", "sa{sv}as", "a{ss}", "ay", "sub", "av", "a{yv}", "asa{ov}h",
        ] {
            assert!(is_simple_signature(s.as_bytes()), "{s}");
        }
        for s in [
            "a",
            "a{vs}",
            "aa{sv}",
            "a{s}",
            "(s)",
            "a{sv",
            "{sv}",
            "a{sa{sv}}",
            "r",
        ] {
            assert!(!is_simple_signature(s.as_bytes()), "{s}");
        }
    }

    fn kind(s: &str) -> Option<ErrorKind> {
        check_signature_bytes(s.as_bytes()).err().map(|e| e.kind())
    }

    #[test]
    fn tree_prints_back_to_the_same_signature() {
        for s in [
            "a{sv}",
            "(ia{s(vv)})",
            "aai",
            "sa{sv}as",
            "",
            "a{oa{sa{sv}}}",
        ] {
            let sig = Signature::new(s).unwrap();
            let printed: String = sig.types().iter().map(|t| t.to_string()).collect();
            assert_eq!(printed, s);
        }
    }

    #[test]
    fn dict_entry_counts_towards_struct_depth() {
        let ok = format!("{}i{}", "(".repeat(31), ")".repeat(31));
        assert_eq!(kind(&format!("a{{s{ok}}}")), None);
        let too_deep = format!("{}i{}", "(".repeat(32), ")".repeat(32));
        assert_eq!(
            kind(&format!("a{{s{too_deep}}}")),
            Some(ErrorKind::ExceededMaximumStructRecursion)
        );
    }

    #[test]
    fn one_struct_is_told_from_argument_lists() {
        for (s, want) in [
            ("(ii)", true),
            ("((ii))", true),
            ("(a{sv}(i))", true),
            ("(i)(i)", false),
            ("(i)i", false),
            ("ii", false),
            ("", false),
            ("a(i)", false),
            ("(", false),
        ] {
            assert_eq!(is_one_struct(s.as_bytes()), want, "{s}");
        }
    }

    #[test]
    fn const_signature_concatenates() {
        const S: ConstSignature = ConstSignature::new("a{")
            .concat(ConstSignature::new("sv"))
            .push(b'}');
        assert_eq!(S.as_str(), "a{sv}");
        assert!(S.to_signature().is_ok());
    }
}

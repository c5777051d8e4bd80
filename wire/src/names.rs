//! Validated D-Bus names: bus names (unique and well-known), interface, member and error names,
//! and object paths, each in a borrowed (`Name<'a>`) and owned (`Name<'static>`) form.
//!
//! The rules are those of the specification's "Valid Names" section
//! (<https://dbus.freedesktop.org/doc/dbus-specification.html#message-protocol-names>) and its
//! object path grammar. Every constructor checks every rule and says which one was broken.
//!
//! Unique names: we *produce* only the specification's form (`:` then two or more dot-separated
//! elements), but, like libdbus, we *accept* the lenient forms `:`, `:0` and `:a` in SENDER and
//! DESTINATION header fields of messages from a bus ([`BusName::new_lenient`]).

use std::borrow::Cow;

use crate::error::{Error, ErrorKind, Result, shown_bytes};

/// The longest bus, interface, member or error name the specification allows, in bytes.
pub const MAX_NAME_LEN: usize = 255;

fn fail(kind: ErrorKind, s: &[u8], rule: &'static str) -> Error {
    Error::new(kind).detail(format!("{}: {rule}", shown_bytes(s)))
}

/// Byte classes for the name grammars, one table lookup per byte.
const NAME: u8 = 1; // [A-Za-z0-9_]
const DIGIT: u8 = 2; // [0-9] (also NAME)
const HYPHEN: u8 = 4; // '-'

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[b] = NAME;
        } else if c.is_ascii_digit() {
            t[b] = NAME | DIGIT;
        } else if c == b'-' {
            t[b] = HYPHEN;
        }
        b += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

/// The index of the first byte at or after `i` that is not `[A-Za-z0-9_]` (plus `-` when
/// `also` is [`HYPHEN`]), or `s.len()`.
#[inline]
fn name_run(s: &[u8], i: usize, also: u8) -> usize {
    let accept = NAME | also;
    let rest = s.get(i..).unwrap_or_default();
    match rest
        .iter()
        .position(|&b| CLASS[usize::from(b)] & accept == 0)
    {
        Some(n) => i + n,
        None => s.len(),
    }
}

/// Fast acceptance of valid names, many bytes at once: each byte's class is computed for 16
/// bytes with SSE2 compares (x86-64) or for 8 with integer arithmetic (SWAR, elsewhere), so the
/// steps do not wait on each other as the steps of an automaton do (one dependent table load
/// per byte). A grammar only says "valid"; for anything it refuses, the rule-by-rule checks
/// below run and say which rule was broken (they are the reference, and the tests check that
/// both fast checks agree with them).
mod fast {
    /// The little-endian word of the 1 to 7 bytes of `s`, zeros above them.
    #[inline(always)]
    fn short_word(s: &[u8]) -> u64 {
        let n = s.len();
        match *s {
            [a, b, c, d, ..] => {
                // Two loads that overlap in the middle: the shared bytes are equal, so `|`
                // keeps them.
                let [e, f, g, h] = s.last_chunk::<4>().copied().unwrap_or_default();
                u64::from(u32::from_le_bytes([a, b, c, d]))
                    | u64::from(u32::from_le_bytes([e, f, g, h])) << ((n - 4) * 8)
            }
            [a, b, c] => u64::from(u32::from_le_bytes([a, b, c, 0])),
            [a, b] => u64::from(u16::from_le_bytes([a, b])),
            [a] => u64::from(a),
            [] => 0,
        }
    }

    /// A grammar of `sep`-separated elements, as [`accepts`] checks it.
    #[derive(Clone, Copy)]
    pub(super) struct Grammar {
        /// The separator (`.` or `/`), or `None` for one element.
        sep: Option<u8>,
        /// `-` is an element byte (bus names).
        hyphen: bool,
        /// An element may start with a digit (unique names, paths).
        digit_first: bool,
        /// The string starts with a separator (paths).
        leading_sep: bool,
        /// At least two elements (interface, error and bus names).
        two_elements: bool,
    }

    /// Interface and error names: two or more `.`-separated elements of `[A-Za-z0-9_]`, none
    /// starting with a digit.
    pub(super) const DOTTED: Grammar = Grammar {
        sep: Some(b'.'),
        hyphen: false,
        digit_first: false,
        leading_sep: false,
        two_elements: true,
    };

    /// Member names: `[A-Za-z_][A-Za-z0-9_]*`.
    pub(super) const MEMBER: Grammar = Grammar {
        sep: None,
        hyphen: false,
        digit_first: false,
        leading_sep: false,
        two_elements: false,
    };

    /// Object paths other than `/`: `/`-separated non-empty elements of `[A-Za-z0-9_]` after a
    /// leading `/` ([`is_object_path`](super::is_object_path) accepts `/` itself).
    pub(super) const PATH: Grammar = Grammar {
        sep: Some(b'/'),
        hyphen: false,
        digit_first: true,
        leading_sep: true,
        two_elements: false,
    };

    /// Well-known names: as [`DOTTED`] with `-` allowed everywhere.
    pub(super) const WELL_KNOWN: Grammar = Grammar {
        sep: Some(b'.'),
        hyphen: true,
        digit_first: false,
        leading_sep: false,
        two_elements: true,
    };

    /// The part of a unique name after its `:`: two or more `.`-separated elements of
    /// `[A-Za-z0-9_-]`, digits first allowed.
    pub(super) const UNIQUE_BODY: Grammar = Grammar {
        sep: Some(b'.'),
        hyphen: true,
        digit_first: true,
        leading_sep: false,
        two_elements: true,
    };

    /// The rules on the ends of `s`, which both checks test first: not empty, a separator
    /// first exactly when the grammar starts with one, none last.
    #[inline(always)]
    fn ends_fit(s: &[u8], g: Grammar) -> bool {
        let (Some(&first), Some(&last)) = (s.first(), s.last()) else {
            return false;
        };
        let is_sep = |b: u8| g.sep == Some(b);
        g.leading_sep == is_sep(first) && !is_sep(last)
    }

    /// Whether all of `s` is of the grammar `g`: [`sse2::accepts`] where the target has SSE2
    /// (every x86-64), else [`swar::accepts`]. Both are held to the rule-by-rule checks.
    #[inline(always)]
    pub(super) fn accepts(s: &[u8], g: Grammar) -> bool {
        #[cfg(target_arch = "x86_64")]
        return sse2::accepts(s, g);
        #[cfg(not(target_arch = "x86_64"))]
        return swar::accepts(s, g);
    }

    /// Eight bytes at a time with integer arithmetic: the check where there is no SSE2, and the
    /// tests' second reference.
    #[cfg(any(test, not(target_arch = "x86_64")))]
    pub(super) mod swar {
        use super::{Grammar, short_word};

        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;

        // The masks below have bit 7 of each byte set when the byte is in the class, and other
        // bits left over, which the caller ignores. They are exact when every byte of `w` is under
        // 0x80 (no sum carries into the next byte); a word with a byte above is refused anyway.

        /// The bytes of `w` in `lo..=hi` (`lo` > 0).
        #[inline(always)]
        fn range(w: u64, lo: u8, hi: u8) -> u64 {
            let at_least_lo = w.wrapping_add(ONES * u64::from(0x80 - lo));
            let above_hi = w.wrapping_add(ONES * u64::from(0x7f - hi));
            at_least_lo & !above_hi
        }

        /// The bytes of `w` other than `c`.
        #[inline(always)]
        fn ne(w: u64, c: u8) -> u64 {
            let t = w ^ (ONES * u64::from(c));
            t.wrapping_add(LOWS) | t
        }

        /// The state of [`accepts`] between words.
        struct Scan {
            g: Grammar,
            /// Bit 7 of byte 0 when the next word's first byte must start an element.
            after: u64,
            /// Bit 7 of each byte found wrong.
            bad: u64,
            /// Bit 7 of each separator.
            seps: u64,
        }

        impl Scan {
            /// Check the bytes of `w` that `present` marks.
            #[inline(always)]
            fn word(&mut self, w: u64, present: u64) {
                let g = self.g;
                let not_sep = g.sep.map_or(!0, |c| ne(w, c));
                let name = range(w | (ONES * 0x20), b'a', b'z') | !ne(w, b'_');
                let digit = range(w, b'0', b'9');
                let mut not_element = !(name | digit);
                if g.hyphen {
                    not_element &= ne(w, b'-');
                }
                // The bytes that may not start an element: separators, and digits unless allowed.
                let sep = !not_sep;
                let no_start = if g.digit_first { sep } else { sep | digit };
                let follows_sep = sep << 8 | self.after;
                self.bad |= w | (not_element & not_sep | follows_sep & no_start) & present;
                self.after = sep >> 56;
                self.seps |= sep & present;
            }
        }

        /// Whether all of `s` is of the grammar `g`. Per word: every byte ASCII and an element byte
        /// or a separator; each byte after a separator (and the first byte, unless the grammar
        /// starts with one) a byte that may start an element, which a separator is not; so no
        /// element is empty. Then: the last byte is no separator, and the counts of elements hold.
        /// The words' findings are gathered in bit 7 of each byte of `bad` and tested once.
        #[inline(always)]
        pub(in crate::names) fn accepts(s: &[u8], g: Grammar) -> bool {
            if !super::ends_fit(s, g) {
                return false;
            }
            let mut scan = Scan {
                g,
                after: if g.leading_sep { 0 } else { 0x80 },
                bad: 0,
                seps: 0,
            };
            let mut words = s.chunks_exact(8);
            for w in words.by_ref() {
                scan.word(u64::from_le_bytes(w.try_into().unwrap_or_default()), HIGHS);
                // Also keeps the loop scalar: vectorised, its set-up costs more than a name.
                if scan.bad & HIGHS != 0 {
                    return false;
                }
            }
            let rest = words.remainder().len();
            if rest > 0 {
                // The last bytes in the low bytes of a word: for a string of eight bytes or more,
                // the word that ends it shifted down.
                let w = match s.last_chunk::<8>() {
                    Some(w) => u64::from_le_bytes(*w) >> ((8 - rest) * 8),
                    None => short_word(s),
                };
                scan.word(w, HIGHS >> ((8 - rest) * 8));
            }
            let Scan { bad, seps, .. } = scan;
            bad & HIGHS == 0 && (!g.two_elements || seps & HIGHS != 0)
        }
    }

    #[cfg(target_arch = "x86_64")]
    mod sse2 {
        use super::{Grammar, short_word};

        /// Whether all of `s` is of the grammar `g`, by the rules of
        /// [`swar::accepts`](super::swar::accepts), sixteen bytes at a time with SSE2 compares
        /// (through `safe_arch`, whose wrappers are safe where the target has the feature):
        /// each byte's classes as one bit of a 16-bit mask, then the rules on the masks. A
        /// chunk's bytes are in the masks from bit 0 on; the last, partial chunk is the
        /// string's last 16 bytes with the bits of the bytes already checked shifted out (or,
        /// for a string under 16 bytes, its bytes in two words with zeros above, which
        /// `present` leaves out).
        #[inline(always)]
        pub(super) fn accepts(s: &[u8], g: Grammar) -> bool {
            use safe_arch::{m128i, set_i64_m128i};
            if !super::ends_fit(s, g) {
                return false;
            }
            let mut scan = Masks {
                after: u32::from(!g.leading_sep),
                bad: 0,
                seps: 0,
            };
            let mut chunks = s.chunks_exact(16);
            for c in chunks.by_ref() {
                let v = m128i::from(<[u8; 16]>::try_from(c).unwrap_or_default());
                scan.chunk(g, classes(v, g), 0xffff);
                if scan.bad != 0 {
                    return false;
                }
            }
            let rest = chunks.remainder().len();
            if rest > 0 {
                let present = (1 << rest) - 1;
                let (ok, sep, digit) = match s.last_chunk::<16>() {
                    Some(w) => {
                        let (ok, sep, digit) = classes(m128i::from(*w), g);
                        let shift = 16 - rest;
                        (ok >> shift, sep >> shift, digit >> shift)
                    }
                    None => {
                        // Under 16 bytes: the first eight (or fewer) and the rest, zeros above.
                        let (lo, hi) = match s.first_chunk::<8>() {
                            Some(lo) => {
                                let end = s.last_chunk::<8>().copied().unwrap_or_default();
                                let shift = ((16 - rest) * 8) as u32;
                                let hi = u64::from_le_bytes(end).checked_shr(shift).unwrap_or(0);
                                (u64::from_le_bytes(*lo), hi)
                            }
                            None => (short_word(s), 0),
                        };
                        classes(set_i64_m128i(hi as i64, lo as i64), g)
                    }
                };
                scan.chunk(g, (ok, sep, digit), present);
            }
            scan.bad == 0 && (!g.two_elements || scan.seps != 0)
        }

        /// The classes of the bytes of `v` as masks, bit i for byte i: (element bytes and
        /// separators, separators, digits) of the grammar `g`. A byte over 0x7f is negative to
        /// the signed compares, so in no range.
        #[inline(always)]
        fn classes(v: safe_arch::m128i, g: Grammar) -> (u32, u32, u32) {
            use safe_arch::{
                cmp_eq_mask_i8_m128i as eq, cmp_gt_mask_i8_m128i as gt, m128i,
                move_mask_i8_m128i as bits, set_splat_i8_m128i as splat,
            };
            let byte = |b: u8| splat(b as i8);
            let lower = v | byte(0x20);
            let letter = gt(lower, byte(b'a' - 1)) & gt(byte(b'z' + 1), lower);
            let digit = gt(v, byte(b'0' - 1)) & gt(byte(b'9' + 1), v);
            let sep = match g.sep {
                Some(c) => eq(v, byte(c)),
                None => m128i::default(),
            };
            let mut ok = letter | digit | sep | eq(v, byte(b'_'));
            if g.hyphen {
                ok |= eq(v, byte(b'-'));
            }
            (bits(ok) as u32, bits(sep) as u32, bits(digit) as u32)
        }

        /// The state of [`accepts`] between chunks, as bit masks (bit i for byte i).
        struct Masks {
            /// Bit 0 set when the next chunk's first byte must start an element.
            after: u32,
            /// The bytes found wrong.
            bad: u32,
            /// The separators.
            seps: u32,
        }

        impl Masks {
            /// Check the bytes of a chunk that `present` marks, from its classes (element bytes
            /// and separators, separators, digits).
            #[inline(always)]
            fn chunk(&mut self, g: Grammar, (ok, sep, digit): (u32, u32, u32), present: u32) {
                let starts = (sep << 1 | self.after) & present;
                let no_start = if g.digit_first { sep } else { sep | digit };
                self.bad |= (!ok | starts & no_start) & present;
                self.seps |= sep & present;
                self.after = sep >> 15 & 1;
            }
        }
    }
}

/// Whether `s` is an interface or error name (exact: the fast check agrees with the rules).
#[inline]
pub(crate) fn is_dotted_name(s: &[u8]) -> bool {
    s.len() <= MAX_NAME_LEN && fast::accepts(s, fast::DOTTED)
}

/// Whether `s` is a member name.
#[inline]
pub(crate) fn is_member(s: &[u8]) -> bool {
    s.len() <= MAX_NAME_LEN && fast::accepts(s, fast::MEMBER)
}

/// Whether `s` is an object path.
#[inline(never)]
pub(crate) fn is_object_path(s: &[u8]) -> bool {
    s == b"/" || fast::accepts(s, fast::PATH)
}

/// Whether `s` is a unique name as the specification writes them: `:` then two or more
/// `.`-separated elements of `[A-Za-z0-9_-]` (digits first allowed).
#[inline]
fn is_unique(s: &[u8]) -> bool {
    s.strip_prefix(b":")
        .is_some_and(|body| fast::accepts(body, fast::UNIQUE_BODY))
}

/// Whether `s` is a bus name by the lenient rule the decoder applies to SENDER and
/// DESTINATION ([`bus_name_lenient_bytes`]).
#[inline(always)]
pub(crate) fn is_bus_name_lenient(s: &[u8]) -> bool {
    s.len() <= MAX_NAME_LEN
        && match s.strip_prefix(b":") {
            Some(body) => body
                .iter()
                .all(|&b| CLASS[usize::from(b)] & (NAME | HYPHEN) != 0 || b == b'.'),
            None => fast::accepts(s, fast::WELL_KNOWN),
        }
}

const EMPTY_ELEMENT: &str = "elements must not be empty (no leading, trailing or double '.')";

/// Check dot-separated elements of `[A-Za-z0-9_]` (plus `-` when `hyphen`), at least two of them;
/// an element starting with a digit fails with `digit_rule` unless that is `None`. One pass,
/// one table lookup per byte.
fn check_elements(
    s: &[u8],
    body: &[u8],
    kind: ErrorKind,
    hyphen: bool,
    digit_rule: Option<&'static str>,
) -> Result<()> {
    let also = if hyphen { HYPHEN } else { 0 };
    let mut elements = 0;
    let mut i = 0;
    loop {
        // `i` starts an element.
        let Some(&first) = body.get(i) else {
            return Err(fail(kind, s, EMPTY_ELEMENT));
        };
        if CLASS[usize::from(first)] & DIGIT != 0 {
            if let Some(rule) = digit_rule {
                return Err(fail(kind, s, rule));
            }
        }
        let end = name_run(body, i, also);
        if end == i && first != b'.' {
            return Err(fail(kind, s, element_chars(hyphen)));
        }
        if end == i {
            return Err(fail(kind, s, EMPTY_ELEMENT));
        }
        elements += 1;
        match body.get(end) {
            None => break,
            Some(b'.') => i = end + 1,
            Some(_) => return Err(fail(kind, s, element_chars(hyphen))),
        }
    }
    if elements < 2 {
        return Err(fail(
            kind,
            s,
            "must have at least two elements separated by '.'",
        ));
    }
    Ok(())
}

fn element_chars(hyphen: bool) -> &'static str {
    if hyphen {
        "elements may only contain [A-Za-z0-9_-]"
    } else {
        "elements may only contain [A-Za-z0-9_]"
    }
}

fn check_length(s: &[u8], kind: ErrorKind) -> Result<()> {
    if s.is_empty() {
        return Err(fail(kind, s, "must not be empty"));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(fail(kind, s, "must be at most 255 bytes"));
    }
    Ok(())
}

/// Interface names (and error names, which follow the same rules).
fn check_dotted(s: &[u8], kind: ErrorKind) -> Result<()> {
    if is_dotted_name(s) {
        return Ok(());
    }
    dotted_rules(s, kind)
}

fn dotted_rules(s: &[u8], kind: ErrorKind) -> Result<()> {
    check_length(s, kind)?;
    check_elements(
        s,
        s,
        kind,
        false,
        Some("elements must not start with a digit"),
    )
}

pub(crate) fn interface_bytes(s: &[u8]) -> Result<()> {
    check_dotted(s, ErrorKind::BadInterface)
}

pub(crate) fn error_name_bytes(s: &[u8]) -> Result<()> {
    check_dotted(s, ErrorKind::BadErrorName)
}

pub(crate) fn member_bytes(s: &[u8]) -> Result<()> {
    if is_member(s) {
        return Ok(());
    }
    member_rules(s)
}

fn member_rules(s: &[u8]) -> Result<()> {
    let kind = ErrorKind::BadMember;
    check_length(s, kind)?;
    if CLASS[usize::from(s[0])] & DIGIT != 0 {
        return Err(fail(kind, s, "must not start with a digit"));
    }
    if name_run(s, 0, 0) != s.len() {
        return Err(fail(kind, s, "may only contain [A-Za-z0-9_] (no '.')"));
    }
    Ok(())
}

pub(crate) fn object_path_bytes(s: &[u8]) -> Result<()> {
    if is_object_path(s) {
        return Ok(());
    }
    object_path_rules(s)
}

fn object_path_rules(s: &[u8]) -> Result<()> {
    let kind = ErrorKind::BadPath;
    let Some(rest) = s.strip_prefix(b"/") else {
        return Err(fail(kind, s, "must start with '/'"));
    };
    if rest.is_empty() {
        return Ok(());
    }
    let empty = "elements must not be empty (no '//' and no trailing '/')";
    let mut i = 0;
    loop {
        let end = name_run(rest, i, 0);
        match rest.get(end) {
            _ if end == i && rest.get(i).is_none_or(|&b| b == b'/') => {
                return Err(fail(kind, s, empty));
            }
            None => return Ok(()),
            Some(b'/') => i = end + 1,
            Some(_) => return Err(fail(kind, s, "elements may only contain [A-Za-z0-9_]")),
        }
    }
}

fn unique_name_bytes(s: &[u8]) -> Result<()> {
    if s.len() <= MAX_NAME_LEN && is_unique(s) {
        return Ok(());
    }
    unique_name_rules(s)
}

fn unique_name_rules(s: &[u8]) -> Result<()> {
    check_length(s, ErrorKind::BadBusName)?;
    match s.strip_prefix(b":") {
        Some(body) => check_elements(s, body, ErrorKind::BadBusName, true, None),
        None => Err(fail(
            ErrorKind::BadBusName,
            s,
            "a unique name must start with ':'",
        )),
    }
}

fn well_known_name_bytes(s: &[u8]) -> Result<()> {
    if s.len() <= MAX_NAME_LEN && fast::accepts(s, fast::WELL_KNOWN) {
        return Ok(());
    }
    well_known_name_rules(s)
}

fn well_known_name_rules(s: &[u8]) -> Result<()> {
    check_length(s, ErrorKind::BadBusName)?;
    if s.starts_with(b":") {
        return Err(fail(
            ErrorKind::BadBusName,
            s,
            "a well-known name must not start with ':'",
        ));
    }
    let digit = "elements of a well-known name must not start with a digit";
    check_elements(s, s, ErrorKind::BadBusName, true, Some(digit))
}

fn bus_name_bytes(s: &[u8]) -> Result<()> {
    if s.starts_with(b":") {
        unique_name_bytes(s)
    } else {
        well_known_name_bytes(s)
    }
}

/// libdbus's rule for unique names on input: `:` followed by any run of `[A-Za-z0-9_.-]`.
pub(crate) fn bus_name_lenient_bytes(s: &[u8]) -> Result<()> {
    if is_bus_name_lenient(s) {
        return Ok(());
    }
    bus_name_lenient_rules(s)
}

fn bus_name_lenient_rules(s: &[u8]) -> Result<()> {
    match s.strip_prefix(b":") {
        Some(body) => {
            check_length(s, ErrorKind::BadBusName)?;
            if body
                .iter()
                .all(|&b| CLASS[usize::from(b)] & (NAME | HYPHEN) != 0 || b == b'.')
            {
                Ok(())
            } else {
                Err(fail(
                    ErrorKind::BadBusName,
                    s,
                    "elements may only contain [A-Za-z0-9_-]",
                ))
            }
        }
        None => well_known_name_bytes(s),
    }
}

macro_rules! str_checks {
    ($($name:ident => $bytes:ident),+) => {$(
        pub(crate) fn $name(s: &str) -> Result<()> {
            $bytes(s.as_bytes())
        }
    )+};
}

str_checks!(
    check_interface => interface_bytes,
    check_error_name => error_name_bytes,
    check_member => member_bytes,
    check_object_path => object_path_bytes,
    check_unique_name => unique_name_bytes,
    check_well_known_name => well_known_name_bytes,
    check_bus_name => bus_name_bytes,
    check_bus_name_lenient => bus_name_lenient_bytes
);

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name<'a>(std::borrow::Cow<'a, str>);

        impl<'a> $name<'a> {
            /// Validate `s` and borrow it.
            ///
            /// # Errors
            /// Says which rule `s` breaks.
            pub fn new(s: &'a str) -> $crate::error::Result<Self> {
                $check(s)?;
                Ok(Self(std::borrow::Cow::Borrowed(s)))
            }

            /// Validate `s` and take ownership of it.
            ///
            /// # Errors
            /// Says which rule `s` breaks.
            pub fn from_string(s: String) -> $crate::error::Result<$name<'static>> {
                $check(&s)?;
                Ok($name(std::borrow::Cow::Owned(s)))
            }

            /// Wrap a string that was validated already (by the decoder).
            #[allow(dead_code, reason = "not every name type is built from checked input")]
            pub(crate) fn from_checked(s: impl Into<std::borrow::Cow<'a, str>>) -> Self {
                Self(s.into())
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// An owned copy that no longer borrows.
            pub fn into_owned(self) -> $name<'static> {
                $name(std::borrow::Cow::Owned(self.0.into_owned()))
            }

            /// A borrowed view of this name.
            pub fn as_ref(&self) -> $name<'_> {
                $name(std::borrow::Cow::Borrowed(&self.0))
            }
        }

        impl std::ops::Deref for $name<'_> {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name<'_> {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name<'_> {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl<'a> TryFrom<&'a str> for $name<'a> {
            type Error = $crate::error::Error;
            fn try_from(s: &'a str) -> $crate::error::Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name<'static> {
            type Error = $crate::error::Error;
            fn try_from(s: String) -> $crate::error::Result<Self> {
                Self::from_string(s)
            }
        }

        impl std::str::FromStr for $name<'static> {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> $crate::error::Result<Self> {
                Self::from_string(s.to_owned())
            }
        }

        impl PartialEq<str> for $name<'_> {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name<'_> {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl From<$name<'_>> for String {
            fn from(n: $name<'_>) -> String {
                n.0.into_owned()
            }
        }
    };
}
pub(crate) use name_type;

name_type!(
    /// An interface name such as `org.freedesktop.DBus.Properties`.
    InterfaceName, check_interface
);
name_type!(
    /// A member (method or signal) name such as `GetAll`.
    MemberName, check_member
);
name_type!(
    /// An error name such as `org.freedesktop.DBus.Error.UnknownMethod`.
    ErrorName, check_error_name
);
name_type!(
    /// An object path such as `/org/freedesktop/DBus`.
    ObjectPath, check_object_path
);
name_type!(
    /// A unique connection name such as `:1.42`, assigned by the bus.
    UniqueName, check_unique_name
);
name_type!(
    /// A well-known bus name such as `org.freedesktop.NetworkManager`.
    WellKnownName, check_well_known_name
);
name_type!(
    /// A bus name of either kind: unique (`:1.42`) or well-known (`org.example.App`).
    BusName, check_bus_name
);

impl BusName<'_> {
    /// Whether this is a unique name (starts with `:`).
    pub fn is_unique(&self) -> bool {
        self.0.starts_with(':')
    }

    /// Validate with libdbus's lenient rule for unique names (`:`, `:0` and `:a` accepted), as
    /// the decoder does for names that came from a bus.
    ///
    /// # Errors
    /// Says which rule `s` breaks.
    pub fn new_lenient(s: &str) -> Result<BusName<'_>> {
        check_bus_name_lenient(s)?;
        Ok(BusName(Cow::Borrowed(s)))
    }
}

impl ObjectPath<'_> {
    /// The root path `/`.
    pub const ROOT: ObjectPath<'static> = ObjectPath(Cow::Borrowed("/"));

    /// Whether `self` is `other` or lies below it (`/a` contains `/a` and `/a/b`, not `/ab`).
    pub fn starts_with_path(&self, other: &ObjectPath<'_>) -> bool {
        let (me, base) = (self.as_str(), other.as_str());
        base == "/"
            || me == base
            || (me.len() > base.len() && me.starts_with(base) && me.as_bytes()[base.len()] == b'/')
    }
}

impl<'a> From<UniqueName<'a>> for BusName<'a> {
    fn from(n: UniqueName<'a>) -> Self {
        BusName(n.0)
    }
}

impl<'a> From<WellKnownName<'a>> for BusName<'a> {
    fn from(n: WellKnownName<'a>) -> Self {
        BusName(n.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(r: Result<()>) -> Option<ErrorKind> {
        r.err().map(|e| e.kind())
    }

    #[test]
    fn rejects_and_accepts_object_paths() {
        for bad in ["", "a", "/a/", "//", "/a//b", "/a-b", "/é"] {
            assert_eq!(
                kind_of(check_object_path(bad)),
                Some(ErrorKind::BadPath),
                "{bad:?}"
            );
        }
        for good in ["/", "/a/b_1", "/org/freedesktop/DBus"] {
            check_object_path(good).unwrap();
        }
    }

    #[test]
    fn path_prefix_respects_element_boundaries() {
        let a = ObjectPath::new("/a").unwrap();
        assert!(ObjectPath::new("/a/b").unwrap().starts_with_path(&a));
        assert!(a.starts_with_path(&a));
        assert!(!ObjectPath::new("/ab").unwrap().starts_with_path(&a));
        assert!(a.starts_with_path(&ObjectPath::ROOT));
    }

    #[test]
    fn error_says_which_rule() {
        let e = InterfaceName::new("a.1b").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadInterface);
        assert!(e.to_string().contains("must not start with a digit"), "{e}");
    }

    #[test]
    fn owned_and_borrowed_forms_compare_equal() {
        let owned = MemberName::from_string("Hello".to_owned()).unwrap();
        let borrowed = MemberName::new("Hello").unwrap();
        assert_eq!(owned, borrowed);
        assert_eq!(borrowed.clone().into_owned(), owned);
        assert_eq!(owned, "Hello");
    }

    /// Every string of up to 5 bytes over an alphabet of every byte class (a non-ASCII byte
    /// and NUL included); every 3 bytes of it at every place of valid names of 7 to 33 bytes
    /// (across the 8-byte words and 16-byte chunks the fast checks read); and long names: each
    /// fast check (SSE2 and portable) accepts exactly what the rule-by-rule checks accept.
    #[test]
    fn fast_checks_accept_exactly_what_the_rules_accept() {
        type Fast = fn(&[u8]) -> bool;
        type Rules = fn(&[u8]) -> Result<()>;
        let grammars: [(&str, Fast, Rules); 6] = [
            ("dotted", is_dotted_name, |s| {
                dotted_rules(s, ErrorKind::BadInterface)
            }),
            ("member", is_member, member_rules),
            ("path", is_object_path, object_path_rules),
            (
                "unique",
                |s| s.len() <= MAX_NAME_LEN && is_unique(s),
                unique_name_rules,
            ),
            (
                "well-known",
                |s| s.len() <= MAX_NAME_LEN && fast::accepts(s, fast::WELL_KNOWN),
                well_known_name_rules,
            ),
            ("lenient bus", is_bus_name_lenient, bus_name_lenient_rules),
        ];
        let alphabet = b"a_0-./:\xc3\0";
        let mut s = Vec::new();
        let mut check = |s: &[u8]| {
            for (name, fast, rules) in grammars {
                assert_eq!(fast(s), rules(s).is_ok(), "{name} {:?}", shown_bytes(s));
            }
            // The portable check too, where the checks above ran the SSE2 one.
            for g in [
                fast::DOTTED,
                fast::MEMBER,
                fast::PATH,
                fast::WELL_KNOWN,
                fast::UNIQUE_BODY,
            ] {
                assert_eq!(
                    fast::swar::accepts(s, g),
                    fast::accepts(s, g),
                    "{:?}",
                    shown_bytes(s)
                );
            }
        };
        fn each(s: &mut Vec<u8>, alphabet: &[u8], left: usize, f: &mut impl FnMut(&[u8])) {
            f(s);
            if left == 0 {
                return;
            }
            for &c in alphabet {
                s.push(c);
                each(s, alphabet, left - 1, f);
                s.pop();
            }
        }
        each(&mut s, alphabet, 5, &mut check);
        for base in [
            &b"ab.cd.ef.gh.ij.kl.mn.op.qr.st.uv.w"[..],
            b"/ab/cd/ef/gh/ij/kl/mn/op/qr/st/uv",
            b":1.ab.cd.ef.gh.ij.kl.mn.op.qr.st.u",
            b"Abcdefghijklmnopqrstuvwxyz_012345",
        ] {
            // Across the words of the portable check and the 16-byte chunks of SSE2.
            for len in [7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33] {
                let mut s = base[..len].to_vec();
                for at in 0..=len - 3 {
                    for x in alphabet {
                        for y in alphabet {
                            for z in alphabet {
                                s[at..at + 3].copy_from_slice(&[*x, *y, *z]);
                                check(&s);
                            }
                        }
                    }
                    s[at..at + 3].copy_from_slice(&base[at..at + 3]);
                }
            }
        }
        for long in [
            "a.b".repeat(85).into_bytes(),
            format!("{}.b", "a".repeat(253)).into_bytes(),
            format!(":1.{}", "2".repeat(252)).into_bytes(),
            "/ab".repeat(200).into_bytes(),
            "M".repeat(256).into_bytes(),
        ] {
            check(&long);
            check(&long[..255.min(long.len())]);
        }
    }

    #[test]
    fn unique_names_lenient_on_input_strict_on_output() {
        for lenient in [":", ":0", ":a", ":1.5"] {
            BusName::new_lenient(lenient).unwrap();
        }
        assert!(UniqueName::new(":0").is_err());
        UniqueName::new(":1.0a").unwrap();
        assert!(BusName::new(":1.5").unwrap().is_unique());
        assert!(WellKnownName::new(":1.5").is_err());
    }
}

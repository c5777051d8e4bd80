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

/// Fast acceptance of valid names: one table-driven automaton per grammar, one lookup per byte
/// and no branch but the loop's. An automaton only says "valid"; for anything it refuses, the
/// rule-by-rule checks below run and say which rule was broken (they are the reference, and the
/// tests check that both agree).
mod dfa {
    /// Byte classes the automata are written in.
    const LETTER: u8 = 1; // [A-Za-z_]
    const DIGIT: u8 = 2; // [0-9]
    const HYPHEN: u8 = 4; // '-'
    const DOT: u8 = 8; // '.'
    const SLASH: u8 = 16; // '/'
    const COLON: u8 = 32; // ':'

    const fn class(c: u8) -> u8 {
        if c.is_ascii_alphabetic() || c == b'_' {
            LETTER
        } else if c.is_ascii_digit() {
            DIGIT
        } else {
            match c {
                b'-' => HYPHEN,
                b'.' => DOT,
                b'/' => SLASH,
                b':' => COLON,
                _ => 0,
            }
        }
    }

    /// An automaton of at most 8 states; state 0 rejects for good, state 1 starts. `next` is
    /// indexed by `8 * s + byte`, where `s` is 32 times the state (what `next` holds), that is
    /// by `256 * state + byte`: a step is one address computation and one load, and the table is
    /// long enough for any `u8` state and byte, so no index needs a bound check or a mask.
    pub(super) struct Dfa {
        next: [u8; TABLE_LEN],
        accept: u8,
    }

    /// `8 * 255 + 255 + 1`: every index a `u8` state and a byte can make.
    const TABLE_LEN: usize = 2296;

    /// `(from, classes, to)`: in state `from`, a byte of one of `classes` goes to `to`; every
    /// other byte goes to state 0. `accept` is a bit set of accepting states.
    const fn build(rules: &[(u8, u8, u8)], accept: u8) -> Dfa {
        let mut next = [0u8; TABLE_LEN];
        let mut r = 0;
        while r < rules.len() {
            let (from, classes, to) = rules[r];
            let mut b = 0;
            while b < 256 {
                if class(b as u8) & classes != 0 {
                    next[from as usize * 256 + b] = to * 32;
                }
                b += 1;
            }
            r += 1;
        }
        Dfa { next, accept }
    }

    impl Dfa {
        /// Whether the automaton accepts all of `s`.
        #[inline]
        pub(super) fn accepts(&self, s: &[u8]) -> bool {
            let step = |st: u8, b: u8| self.next[usize::from(st) * 8 + usize::from(b)];
            let mut st = 32u8;
            let mut chunks = s.chunks_exact(4);
            for c in chunks.by_ref() {
                st = step(st, c[0]);
                st = step(st, c[1]);
                st = step(st, c[2]);
                st = step(st, c[3]);
            }
            for &b in chunks.remainder() {
                st = step(st, b);
            }
            self.accept & (1 << (st >> 5)) != 0
        }
    }

    const NAME: u8 = LETTER | DIGIT;

    /// Interface and error names: two or more `.`-separated elements of `[A-Za-z0-9_]`, none
    /// starting with a digit. States: 2 first element, 3 after a dot, 4 a later element.
    pub(super) static DOTTED: Dfa = build(
        &[
            (1, LETTER, 2),
            (2, NAME, 2),
            (2, DOT, 3),
            (3, LETTER, 4),
            (4, NAME, 4),
            (4, DOT, 3),
        ],
        1 << 4,
    );

    /// Member names: `[A-Za-z_][A-Za-z0-9_]*`.
    pub(super) static MEMBER: Dfa = build(&[(1, LETTER, 2), (2, NAME, 2)], 1 << 2);

    /// Object paths: `/`, or `/`-separated non-empty elements of `[A-Za-z0-9_]` after a
    /// leading `/`. States: 2 the root, 3 in an element, 4 after an inner `/`.
    pub(super) static PATH: Dfa = build(
        &[
            (1, SLASH, 2),
            (2, NAME, 3),
            (3, NAME, 3),
            (3, SLASH, 4),
            (4, NAME, 3),
        ],
        1 << 2 | 1 << 3,
    );

    /// Well-known names: as [`DOTTED`] with `-` allowed everywhere; states 2-4 as there.
    pub(super) static WELL_KNOWN: Dfa = build(
        &[
            (1, LETTER | HYPHEN, 2),
            (2, NAME | HYPHEN, 2),
            (2, DOT, 3),
            (3, LETTER | HYPHEN, 4),
            (4, NAME | HYPHEN, 4),
            (4, DOT, 3),
        ],
        1 << 4,
    );

    /// Unique names as the specification writes them: `:` then two or more `.`-separated
    /// elements of `[A-Za-z0-9_-]` (digits first allowed). States: 2 after `:`, 3 the first
    /// element, 4 after a dot, 5 a later element.
    pub(super) static UNIQUE: Dfa = build(
        &[
            (1, COLON, 2),
            (2, NAME | HYPHEN, 3),
            (3, NAME | HYPHEN, 3),
            (3, DOT, 4),
            (4, NAME | HYPHEN, 5),
            (5, NAME | HYPHEN, 5),
            (5, DOT, 4),
        ],
        1 << 5,
    );
}

/// Whether `s` is an interface or error name (exact: the automaton agrees with the rules).
#[inline]
pub(crate) fn is_dotted_name(s: &[u8]) -> bool {
    s.len() <= MAX_NAME_LEN && dfa::DOTTED.accepts(s)
}

/// Whether `s` is a member name.
#[inline]
pub(crate) fn is_member(s: &[u8]) -> bool {
    s.len() <= MAX_NAME_LEN && dfa::MEMBER.accepts(s)
}

/// Whether `s` is an object path.
#[inline]
pub(crate) fn is_object_path(s: &[u8]) -> bool {
    dfa::PATH.accepts(s)
}

/// Whether `s` is a bus name by the lenient rule the decoder applies to SENDER and
/// DESTINATION ([`bus_name_lenient_bytes`]).
#[inline]
pub(crate) fn is_bus_name_lenient(s: &[u8]) -> bool {
    s.len() <= MAX_NAME_LEN
        && match s.strip_prefix(b":") {
            Some(body) => body
                .iter()
                .all(|&b| CLASS[usize::from(b)] & (NAME | HYPHEN) != 0 || b == b'.'),
            None => dfa::WELL_KNOWN.accepts(s),
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
    if s.len() <= MAX_NAME_LEN && dfa::UNIQUE.accepts(s) {
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
    if s.len() <= MAX_NAME_LEN && dfa::WELL_KNOWN.accepts(s) {
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
    /// and NUL included), plus long names: each fast check accepts exactly what the rule-by-rule
    /// checks accept.
    #[test]
    fn automata_accept_exactly_what_the_rules_accept() {
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
                |s| s.len() <= MAX_NAME_LEN && dfa::UNIQUE.accepts(s),
                unique_name_rules,
            ),
            (
                "well-known",
                |s| s.len() <= MAX_NAME_LEN && dfa::WELL_KNOWN.accepts(s),
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

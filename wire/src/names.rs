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

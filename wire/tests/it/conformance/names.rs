//! wire.md section E: name validators, shared by the API and the header fields (cases 54-56).
//! Each name is checked through its type's constructor and, in both byte orders, in the header
//! field that carries it.

use fastbus_wire::{
    BusName, ErrorKind, ErrorName, InterfaceName, MemberName, UniqueName, WellKnownName,
};

use super::support::*;

fn long(prefix: &str, total: usize) -> String {
    format!("{prefix}{}", "b".repeat(total - prefix.len()))
}

/// Decode a message carrying `name` in the header field `code`.
fn in_header(code: u8, name: &str) -> Vec<RawMsg> {
    let base = |e| match code {
        ERROR_NAME => RawMsg::error(e),
        _ => RawMsg::call(e),
    };
    BOTH.iter()
        .map(|&e| base(e).replace(code, "s", fs(name)))
        .collect()
}

/// Case 54: bus names, in DESTINATION and SENDER too.
#[test]
fn rejects_and_accepts_bus_names() {
    let bad = [
        String::new(),
        "a".into(),
        ".a.b".into(),
        "a..b".into(),
        "a.b.".into(),
        "1a.b".into(),
        "a.1b".into(),
        "a b.c".into(),
        "a.b/c".into(),
        long("a.", 256),
        long(":1.", 256),
    ];
    for name in &bad {
        let err = BusName::new(name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadBusName, "{name:?}");
        for code in [DESTINATION, SENDER] {
            for m in in_header(code, name) {
                assert_rejected(&m.bytes(), ErrorKind::BadBusName, None);
            }
        }
    }
    let good = [
        "a.b-c".to_owned(),
        "_a.b".into(),
        "a.b".into(),
        "-a.b".into(),
        long("a.", 255),
        ":1.5".into(),
        ":1.0a".into(),
        long(":1.", 255),
    ];
    for name in &good {
        let n = BusName::new(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert_eq!(n.is_unique(), name.starts_with(':'));
        for code in [DESTINATION, SENDER] {
            for m in in_header(code, name) {
                assert_accepted(&m.bytes());
            }
        }
    }
    // The two kinds are distinct types.
    assert!(UniqueName::new(":1.5").is_ok());
    assert_eq!(
        UniqueName::new("a.b").unwrap_err().kind(),
        ErrorKind::BadBusName
    );
    assert!(WellKnownName::new("a.b").is_ok());
    assert_eq!(
        WellKnownName::new(":1.5").unwrap_err().kind(),
        ErrorKind::BadBusName
    );
    // Digits may start elements of unique names only.
    assert!(UniqueName::new(":1.2.3").is_ok());
    assert!(WellKnownName::new("a.2").is_err());
}

/// Case 55: interface and error names (the list of libdbus's
/// `test/internals/dbus-marshal-validate-util.c`).
#[test]
fn rejects_and_accepts_interface_and_error_names() {
    let bad = [
        String::new(),
        "a".into(),
        "a.b-c".into(),
        "a.1b".into(),
        ".a".into(),
        "a.".into(),
        "a..b".into(),
        "a.b.".into(),
        ":a.b".into(),
        "a.é".into(),
        long("a.", 256),
    ];
    for name in &bad {
        let err = InterfaceName::new(name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInterface, "{name:?}");
        let err = ErrorName::new(name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadErrorName, "{name:?}");
        for m in in_header(INTERFACE, name) {
            assert_rejected(&m.bytes(), ErrorKind::BadInterface, None);
        }
        for m in in_header(ERROR_NAME, name) {
            assert_rejected(&m.bytes(), ErrorKind::BadErrorName, None);
        }
    }
    let good = [
        "a.b".to_owned(),
        "a0.b1".into(),
        "_a._b".into(),
        "org.freedesktop.DBus.Error.Failed".into(),
        long("a.", 255),
    ];
    for name in &good {
        InterfaceName::new(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        ErrorName::new(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        for m in in_header(INTERFACE, name) {
            assert_eq!(assert_accepted(&m.bytes()).interface().unwrap(), **name);
        }
        for m in in_header(ERROR_NAME, name) {
            assert_eq!(assert_accepted(&m.bytes()).error_name().unwrap(), **name);
        }
    }
}

/// Case 56: member names.
#[test]
fn rejects_and_accepts_member_names() {
    let bad = [
        String::new(),
        "9Hello".into(),
        "foo-bar".into(),
        "a.b".into(),
        "Hello.".into(),
        "!foo".into(),
        "a b".into(),
        "é".into(),
        "b".repeat(256),
    ];
    for name in &bad {
        let err = MemberName::new(name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadMember, "{name:?}");
        for m in in_header(MEMBER, name) {
            assert_rejected(&m.bytes(), ErrorKind::BadMember, None);
        }
    }
    for name in ["_foobar", "foo89", "a", &"b".repeat(255)] {
        MemberName::new(name).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        for m in in_header(MEMBER, name) {
            assert_eq!(assert_accepted(&m.bytes()).member().unwrap(), name);
        }
    }
}

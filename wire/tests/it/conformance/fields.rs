//! wire.md section B: header fields (cases 14-29).

use std::rc::Rc;

use fastbus_wire::{
    BusName, ErrorKind, Fd, HeaderField, LOCAL_INTERFACE, LOCAL_PATH, Message, MessageType, Value,
};

use super::support::*;

fn custom(f: impl Fn(&mut W) + 'static) -> FV {
    FV::Custom(Rc::new(f))
}

/// Case 14 [HEADER_FIELD_CODE].
#[test]
fn rejects_header_field_code_0() {
    for e in BOTH {
        let built = RawMsg::call(e).field(0, "s", fs("x")).build();
        assert_rejected(
            &built.bytes,
            ErrorKind::HeaderFieldCode,
            Some(built.field_at[2]),
        );
        let built = RawMsg::call(e).field(0, "u", FV::U32(1)).build();
        assert_rejected(
            &built.bytes,
            ErrorKind::HeaderFieldCode,
            Some(built.field_at[2]),
        );
    }
}

/// Case 15: unknown field codes holding a well-formed variant are accepted and kept; a bus
/// removes them before relaying (`strip_unknown_fields`). zbus 5.19 stopped answering on these.
#[test]
fn accepts_unknown_header_field_codes_and_strips_them_before_relaying() {
    for e in BOTH {
        for code in 10..=255u8 {
            let bytes = RawMsg::call(e).field(code, "s", fs("hello")).bytes();
            let mut msg = assert_accepted(&bytes);
            assert_eq!(
                msg.unknown_fields(),
                &[(HeaderField(code), Value::Str("hello".into()))]
            );
            assert_eq!(msg.encode().unwrap(), bytes, "kept when re-encoded");
            msg.strip_unknown_fields();
            let relayed = decode(&msg.encode().unwrap());
            assert!(relayed.unknown_fields().is_empty());
            assert_eq!(relayed.path().unwrap(), "/org/example/Obj");
            assert_eq!(relayed.member().unwrap(), "Frob");
        }
        // Containers and nested variants inside an unknown field, and one before the known fields.
        let bytes = RawMsg::new(e, 1)
            .field(
                77,
                "a{sv}",
                custom(|w| {
                    w.array(8, |w| {
                        w.st().s("k").g("v").g("u").u32(5);
                    });
                }),
            )
            .field(PATH, "o", fs("/a"))
            .field(MEMBER, "s", fs("M"))
            .bytes();
        let msg = assert_accepted(&bytes);
        assert_eq!(msg.unknown_fields().len(), 1);
        assert_eq!(
            msg.unknown_fields()[0].1.to_string(),
            "{\"k\": <<uint32 5>>}"
        );
        // A `h` in an unknown field refers to no fd; it is kept, not checked.
        let msg = assert_accepted(&RawMsg::call(e).field(99, "h", FV::U32(3)).bytes());
        assert_eq!(msg.unknown_fields()[0].1, Value::Fd(Fd(3)));
    }
}

/// Case 16: an unknown field must still be well formed.
#[test]
fn rejects_unknown_header_field_with_malformed_variant() {
    for e in BOTH {
        let cases: Vec<(&str, FV, ErrorKind)> = vec![
            ("w", FV::U32(1), ErrorKind::UnknownTypeCode),
            (
                "ii",
                FV::U32(1),
                ErrorKind::VariantSignatureSpecifiesMultipleValues,
            ),
            ("", FV::U32(1), ErrorKind::VariantSignatureEmpty),
            ("b", FV::U32(2), ErrorKind::BooleanNotZeroOrOne),
            ("s", FV::Str(vec![0xff]), ErrorKind::BadUtf8),
            (
                "s",
                custom(|w| {
                    w.u32(100).raw(b"abc");
                }),
                ErrorKind::LengthOutOfBounds,
            ),
            (
                "t",
                custom(|w| {
                    w.pad(8).raw(&[1, 2, 3]);
                }),
                ErrorKind::NotEnoughData,
            ),
        ];
        for (sig, v, kind) in cases {
            let bytes = RawMsg::call(e).field(200, sig, v).bytes();
            assert_rejected(&bytes, kind, None);
        }
    }
}

/// Case 17 [HEADER_FIELD_HAS_WRONG_TYPE].
#[test]
fn rejects_known_header_field_with_wrong_type() {
    for e in BOTH {
        let cases: Vec<(RawMsg, u8, &str, FV)> = vec![
            (RawMsg::call(e), PATH, "s", fs("/a")),
            (RawMsg::call(e), INTERFACE, "u", FV::U32(1)),
            (RawMsg::call(e), MEMBER, "o", fs("/M")),
            (RawMsg::error(e), ERROR_NAME, "o", fs("/a")),
            (RawMsg::method_return(e), REPLY_SERIAL, "s", fs("7")),
            (RawMsg::method_return(e), REPLY_SERIAL, "i", FV::U32(7)),
            (RawMsg::call(e), DESTINATION, "o", fs("/a")),
            (RawMsg::call(e), SENDER, "g", FV::Sig(b"s".to_vec())),
            (RawMsg::call(e), SIGNATURE, "s", fs("")),
            (RawMsg::call(e), UNIX_FDS, "i", FV::U32(0)),
            (
                RawMsg::call(e),
                UNIX_FDS,
                "v",
                custom(|w| {
                    w.g("u").u32(0);
                }),
            ),
        ];
        for (m, code, sig, v) in cases {
            let built = m.replace(code, sig, v).build();
            let at = built
                .field_at
                .iter()
                .zip(&m_codes(&built, e))
                .find(|(_, c)| **c == code)
                .map(|(a, _)| *a);
            assert_rejected(&built.bytes, ErrorKind::HeaderFieldHasWrongType, at);
        }
    }
}

/// The code byte of each field of a built message.
fn m_codes(built: &Built, _e: fastbus_wire::Endian) -> Vec<u8> {
    built.field_at.iter().map(|&a| built.bytes[a]).collect()
}

/// Case 18 [HEADER_FIELD_APPEARS_TWICE], the behaviour of libdbus, dbus-broker and sd-bus
/// (zbus lets the later value win).
#[test]
fn rejects_known_header_field_appearing_twice() {
    for e in BOTH {
        let cases: Vec<(RawMsg, u8, &str, FV)> = vec![
            (RawMsg::call(e), PATH, "o", fs("/org/example/Obj")),
            (RawMsg::signal(e), INTERFACE, "s", fs("org.example.Iface")),
            (RawMsg::call(e), MEMBER, "s", fs("Frob")),
            (
                RawMsg::error(e),
                ERROR_NAME,
                "s",
                fs("org.example.Error.Failed"),
            ),
            (RawMsg::method_return(e), REPLY_SERIAL, "u", FV::U32(7)),
            (RawMsg::call(e), DESTINATION, "s", fs("org.example.Service")),
            (RawMsg::call(e), SENDER, "s", fs(":1.5")),
            (RawMsg::call(e), SIGNATURE, "g", FV::Sig(Vec::new())),
            (RawMsg::call(e), UNIX_FDS, "u", FV::U32(0)),
        ];
        for (m, code, sig, v) in cases {
            // Add the field twice when the base message does not have it already.
            let m = if m.fields.iter().any(|f| f.0 == code) {
                m
            } else {
                m.field(code, sig, v.clone())
            };
            let built = m.field(code, sig, v).build();
            let second = *built.field_at.last().unwrap();
            assert_rejected(
                &built.bytes,
                ErrorKind::HeaderFieldAppearsTwice,
                Some(second),
            );
        }
    }
}

/// Case 18, decision: an unknown field that appears twice is kept twice (dbus-broker: "Duplicates
/// are rejected (except if they are unknown)").
#[test]
fn accepts_unknown_header_field_appearing_twice() {
    for e in BOTH {
        let bytes = RawMsg::call(e)
            .field(42, "u", FV::U32(1))
            .field(42, "u", FV::U32(2))
            .bytes();
        let msg = assert_accepted(&bytes);
        assert_eq!(
            msg.unknown_fields(),
            &[
                (HeaderField(42), Value::U32(1)),
                (HeaderField(42), Value::U32(2))
            ]
        );
    }
}

/// Case 19 [MISSING_PATH, MISSING_MEMBER]; INTERFACE is optional in a method call.
#[test]
fn rejects_method_call_without_path_or_member() {
    for e in BOTH {
        let bytes = RawMsg::call(e).without(PATH).bytes();
        assert_rejected(&bytes, ErrorKind::MissingPath, None);
        let bytes = RawMsg::call(e).without(MEMBER).bytes();
        assert_rejected(&bytes, ErrorKind::MissingMember, None);
    }
}

#[test]
fn accepts_method_call_without_interface() {
    for e in BOTH {
        let msg = assert_accepted(&RawMsg::call(e).bytes());
        assert_eq!(msg.message_type(), MessageType::METHOD_CALL);
        assert!(msg.interface().is_none());
    }
}

/// Case 20 [MISSING_INTERFACE, MISSING_PATH, MISSING_MEMBER].
#[test]
fn rejects_signal_without_interface_path_or_member() {
    for e in BOTH {
        assert_accepted(&RawMsg::signal(e).bytes());
        for (code, kind) in [
            (INTERFACE, ErrorKind::MissingInterface),
            (PATH, ErrorKind::MissingPath),
            (MEMBER, ErrorKind::MissingMember),
        ] {
            let bytes = RawMsg::signal(e).without(code).bytes();
            assert_rejected(&bytes, kind, None);
        }
    }
}

/// Case 21 [MISSING_REPLY_SERIAL].
#[test]
fn rejects_method_return_without_reply_serial() {
    for e in BOTH {
        assert_accepted(&RawMsg::method_return(e).bytes());
        let bytes = RawMsg::method_return(e).without(REPLY_SERIAL).bytes();
        assert_rejected(&bytes, ErrorKind::MissingReplySerial, None);
    }
}

/// Case 22 [MISSING_ERROR_NAME, MISSING_REPLY_SERIAL].
#[test]
fn rejects_error_without_error_name_or_reply_serial() {
    for e in BOTH {
        assert_accepted(&RawMsg::error(e).bytes());
        let bytes = RawMsg::error(e).without(ERROR_NAME).bytes();
        assert_rejected(&bytes, ErrorKind::MissingErrorName, None);
        let bytes = RawMsg::error(e).without(REPLY_SERIAL).bytes();
        assert_rejected(&bytes, ErrorKind::MissingReplySerial, None);
    }
}

/// Case 23 [BAD_SERIAL] in REPLY_SERIAL.
#[test]
fn rejects_reply_serial_0() {
    for e in BOTH {
        for m in [RawMsg::method_return(e), RawMsg::error(e)] {
            let built = m.replace(REPLY_SERIAL, "u", FV::U32(0)).build();
            let at = *built.value_at.last().unwrap();
            assert_rejected(&built.bytes, ErrorKind::BadSerial, Some(at));
        }
    }
}

/// Case 24, decision: REPLY_SERIAL on a signal (or method call) is accepted and kept, as the
/// specification says; sd-bus rejects it.
#[test]
fn accepts_reply_serial_on_signal_and_method_call() {
    for e in BOTH {
        for m in [RawMsg::signal(e), RawMsg::call(e)] {
            let bytes = m.field(REPLY_SERIAL, "u", FV::U32(7)).bytes();
            let msg = assert_accepted(&bytes);
            assert_eq!(msg.reply_serial(), Some(7));
        }
    }
}

/// Case 25 [USES_LOCAL_PATH, USES_LOCAL_INTERFACE]: rejected on input, and never built.
#[test]
fn rejects_local_path_and_local_interface() {
    for e in BOTH {
        for m in [RawMsg::call(e), RawMsg::signal(e)] {
            let bytes = m.clone().replace(PATH, "o", fs(LOCAL_PATH)).bytes();
            assert_rejected(&bytes, ErrorKind::UsesLocalPath, None);
            let bytes = m.replace(INTERFACE, "s", fs(LOCAL_INTERFACE)).bytes();
            assert_rejected(&bytes, ErrorKind::UsesLocalInterface, None);
        }
    }
    let e = Message::method_call(LOCAL_PATH, "M")
        .serial(1)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UsesLocalPath);
    let e = Message::signal("/a", LOCAL_INTERFACE, "Disconnected")
        .serial(1)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UsesLocalInterface);
}

/// Case 26 [BAD_PATH, BAD_INTERFACE, BAD_MEMBER, BAD_ERROR_NAME, BAD_DESTINATION, BAD_SENDER].
/// The offset is that of the field's value.
#[test]
fn rejects_invalid_names_in_header_fields() {
    for e in BOTH {
        let cases = [
            (RawMsg::call(e), PATH, "o", "/a/", ErrorKind::BadPath),
            (
                RawMsg::call(e),
                INTERFACE,
                "s",
                "nodots",
                ErrorKind::BadInterface,
            ),
            (RawMsg::call(e), MEMBER, "s", "a.b", ErrorKind::BadMember),
            (
                RawMsg::error(e),
                ERROR_NAME,
                "s",
                "a",
                ErrorKind::BadErrorName,
            ),
            (
                RawMsg::call(e),
                DESTINATION,
                "s",
                "1a.b",
                ErrorKind::BadBusName,
            ),
            (
                RawMsg::call(e),
                SENDER,
                "s",
                "not a valid bus name",
                ErrorKind::BadBusName,
            ),
        ];
        for (m, code, sig, name, kind) in cases {
            let built = m.replace(code, sig, fs(name)).build();
            let i = built
                .field_at
                .iter()
                .position(|&a| built.bytes[a] == code)
                .unwrap();
            assert_rejected(&built.bytes, kind, Some(built.value_at[i]));
        }
    }
}

/// Case 26 and 54, decision: SENDER and DESTINATION of received messages may use libdbus's
/// lenient unique names (`:`, `:0`, `:a`); the builder produces only spec names.
#[test]
fn accepts_lenient_unique_names_in_received_sender_and_destination() {
    for e in BOTH {
        for name in [":", ":0", ":a", ":1.5", ":1.0a"] {
            for code in [SENDER, DESTINATION] {
                let msg = assert_accepted(&RawMsg::call(e).field(code, "s", fs(name)).bytes());
                let got = if code == SENDER {
                    msg.sender()
                } else {
                    msg.destination()
                };
                assert_eq!(got.unwrap(), name);
            }
        }
    }
    for lenient in [":", ":0", ":a"] {
        BusName::new_lenient(lenient).unwrap();
        assert_eq!(
            BusName::new(lenient).unwrap_err().kind(),
            ErrorKind::BadBusName
        );
        let e = Message::method_call("/a", "M")
            .sender(lenient)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadBusName);
    }
}

/// Case 27: no SIGNATURE field means an empty signature, so the body must be empty.
#[test]
fn rejects_body_without_signature_field() {
    for e in BOTH {
        let mut m = RawMsg::call(e);
        m.body = vec![0, 0, 0, 0];
        assert_rejected(&m.bytes(), ErrorKind::BodyWithoutSignature, Some(4));
        // An explicitly empty signature is the same thing.
        let mut m = RawMsg::call(e).field(SIGNATURE, "g", FV::Sig(Vec::new()));
        assert_accepted(&m.bytes());
        m.body = vec![0, 0, 0, 0];
        assert_rejected(&m.bytes(), ErrorKind::TooMuchData, None);
    }
}

#[cfg(unix)]
fn dev_null() -> std::os::fd::OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

/// Case 28 [MISSING_UNIX_FDS]. This layer only sees the UNIX_FDS header and the fds a transport
/// attaches with `set_fds`; comparing the two, rejecting the message and closing the fds that did
/// arrive is the transport's job and is covered by the transport tests. Here: both counts are
/// visible, and indexing past the fds that arrived fails cleanly.
#[cfg(unix)]
#[test]
fn message_with_fewer_fds_than_unix_fds_exposes_both_counts_and_fails_cleanly() {
    for e in BOTH {
        let mut body = W::new(e);
        body.u32(0).u32(1);
        let bytes = RawMsg::call(e)
            .field(UNIX_FDS, "u", FV::U32(2))
            .body("hh", &body)
            .bytes();
        let mut msg = assert_accepted(&bytes);
        assert_eq!(msg.unix_fds(), Some(2));
        msg.set_fds(vec![dev_null()]);
        assert_eq!(msg.fds().len(), 1);
        let (a, b): (Fd, Fd) = msg.body().unwrap();
        msg.fd(a).unwrap();
        let err = msg.fd(b).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FdIndexOutOfRange);
        // UNIX_FDS = 0 with fds attached: the surplus is visible to the transport, which closes it.
        let bytes = RawMsg::call(e).field(UNIX_FDS, "u", FV::U32(0)).bytes();
        let mut msg = assert_accepted(&bytes);
        msg.set_fds(vec![dev_null()]);
        assert_eq!((msg.unix_fds(), msg.fds().len()), (Some(0), 1));
    }
}

/// Case 29: a `h` of 5 with one fd is structurally valid; reading the handle fails cleanly
/// (libdbus: `InconsistentMessage`), typed or dynamic, and never indexes past the fds.
#[cfg(unix)]
#[test]
fn accepts_handle_past_unix_fds_but_reading_it_fails_cleanly() {
    for e in BOTH {
        let mut body = W::new(e);
        body.u32(5);
        let built = RawMsg::call(e)
            .field(UNIX_FDS, "u", FV::U32(1))
            .body("h", &body)
            .build();
        let mut msg = assert_accepted(&built.bytes);
        let err = msg.body::<Fd>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FdIndexOutOfRange);
        assert_eq!(err.offset(), Some(0), "offset within the body");
        let err = msg.body_values().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FdIndexOutOfRange);
        msg.set_fds(vec![dev_null()]);
        let err = msg.fd(Fd(5)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FdIndexOutOfRange);
        assert_eq!(
            msg.fd(Fd(u32::MAX)).unwrap_err().kind(),
            ErrorKind::FdIndexOutOfRange
        );
        msg.fd(Fd(0)).unwrap();

        // No UNIX_FDS field at all: every handle is out of range.
        let bytes = RawMsg::call(e).body("h", &body).bytes();
        let msg = assert_accepted(&bytes);
        assert_eq!(
            msg.body::<Fd>().unwrap_err().kind(),
            ErrorKind::FdIndexOutOfRange
        );

        // In range: index 0 of 1.
        let mut body = W::new(e);
        body.u32(0);
        let bytes = RawMsg::call(e)
            .field(UNIX_FDS, "u", FV::U32(1))
            .body("h", &body)
            .bytes();
        let msg = assert_accepted(&bytes);
        assert_eq!(msg.body::<Fd>().unwrap(), Fd(0));
        assert_eq!(msg.body_values().unwrap(), vec![Value::Fd(Fd(0))]);
    }
}

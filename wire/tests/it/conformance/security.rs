//! The codec rows of `shared/conformance/security.md`: one regression test per row, named after
//! what it guards. Several rows are also covered case by case in the other modules (the case
//! numbers are given); the tests here pin the exact inputs each advisory was about.

use std::collections::BTreeMap;

use bytes::Bytes;
use fastbus_wire::introspection::Node;
use fastbus_wire::{
    BusName, Dict, Endian, Error, ErrorKind, Fd, InterfaceName, MatchRule, MemberName, Message,
    ObjectPath, Signature, Value, frame_len,
};

use super::signatures::{assert_bad_signature, assert_bad_variant_signature, nested_variants};
use super::support::*;
use super::values::{assert_same_content, rebuild, sample_messages};

/// CVE-2008-3834 and CVE-2009-1189 (libdbus let a crafted dict key through, and asserted on
/// some malformed signatures): a dict key must be a basic type, and `v` is not one. Rejected
/// everywhere a signature is read (the API, the header SIGNATURE field, a `g` value, a variant's
/// signature), by the dynamic `Dict`, and in introspection data. Also case 35.
#[test]
fn rejects_dict_keys_that_are_not_basic_types() {
    for sig in ["a{(ii)i}", "a{aii}", "a{vs}"] {
        assert_bad_signature(sig.as_bytes(), ErrorKind::DictKeyMustBeBasicType);
        assert_bad_variant_signature(sig.as_bytes(), ErrorKind::DictKeyMustBeBasicType);
        let xml = format!(
            r#"<node><interface name="a.b"><method name="M"><arg type="{sig}"/></method></interface></node>"#
        );
        let e = Node::from_xml(&xml).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DictKeyMustBeBasicType, "{xml}: {e}");
    }
    for key in ["(ii)", "ai", "v"] {
        let e = Dict::new(
            Signature::from_string(key.to_owned()).unwrap(),
            Signature::new("i").unwrap(),
            Vec::new(),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DictKeyMustBeBasicType, "{key}: {e}");
    }
}

/// CVE-2010-4352 (deeply nested variants crashed dbus-daemon: the depth limit applied to static
/// signatures only): 64 levels of variant in variant are accepted, 65 are rejected, and neither
/// that nor 100,000 levels overflows even a small stack, when decoding, walking the values or
/// building a message. Also case 39.
#[test]
fn accepts_64_nested_variants_and_rejects_65_on_a_small_stack() {
    let on_small_stack = std::thread::Builder::new()
        .name("small stack".into())
        // A quarter of a test thread's default; deep recursion would overflow it.
        .stack_size(512 << 10)
        .spawn(|| {
            for e in BOTH {
                let ok = with_body(e, "v", &nested_variants(e, 64));
                let msg = Message::decode(Bytes::from(ok.bytes)).expect("64 levels");
                let values = msg.body_values().expect("64 levels of values");
                msg.body::<Value>().expect("64 levels, typed");
                for depth in [65, 1000, 100_000] {
                    let bad = with_body(e, "v", &nested_variants(e, depth));
                    let err = Message::decode(Bytes::from(bad.bytes)).unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::NestedTooDeeply, "{depth}: {err}");
                }
                // Building: 64 levels of variants encode; one more is refused.
                let Value::Variant(inner) = values[0].clone() else {
                    panic!("{}", values[0])
                };
                Message::method_call("/a", "M")
                    .endian(e)
                    .serial(1)
                    .body_values(&[Value::Variant(inner.clone())])
                    .build()
                    .expect("64 levels build");
                let deeper = Value::Variant(Box::new(Value::Variant(inner)));
                let err = Message::method_call("/a", "M")
                    .serial(1)
                    .body_values(&[deeper])
                    .build()
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::NestedTooDeeply, "{err}");
            }
        })
        .expect("spawn");
    on_small_stack.join().expect("no stack overflow");
}

/// CVE-2022-42010 (a signature with wrongly nested parentheses and braces hit an assertion):
/// `(a{i)}`-style mis-nesting is rejected, never mis-parsed. Also case 36.
#[test]
fn rejects_mis_nested_parentheses_and_braces() {
    for sig in ["(a{i)}", "a{(i})", "(a{ii)}", "a{i(})", "({)}", "a{i)}"] {
        let e = Signature::new(sig).expect_err(sig);
        assert!(
            matches!(
                e.kind(),
                ErrorKind::StructEndedButNotStarted
                    | ErrorKind::DictEntryEndedButNotStarted
                    | ErrorKind::DictKeyMustBeBasicType
                    | ErrorKind::DictEntryHasTooManyFields
                    | ErrorKind::DictEntryNotInsideArray
            ),
            "{sig}: {e}"
        );
        assert_bad_signature(sig.as_bytes(), e.kind());
    }
}

/// CVE-2022-42011 (an array of fixed-size elements whose length is not a multiple of the element
/// size caused an assertion or an out-of-bounds read): `at` with a byte length of 12 is rejected
/// by message validation and by the typed and dynamic decoders. Also case 45.
#[test]
fn rejects_uint64_array_of_12_bytes() {
    for e in BOTH {
        let mut body = W::new(e);
        body.u32(12).pad(8).raw(&[0; 16]);
        let built = with_body(e, "at", &body);
        assert_rejected(
            &built.bytes,
            ErrorKind::ArrayLengthIncorrect,
            Some(built.body_start),
        );
        let mut w = W::new(e);
        w.u32(12).pad(8).raw(&[0; 12]);
        let typed = fastbus_wire::from_bytes::<Vec<u64>>(&w.buf, e, 0).unwrap_err();
        assert_eq!(typed.kind(), ErrorKind::ArrayLengthIncorrect);
        let mut dec = fastbus_wire::Decoder::new(&w.buf, e, 0);
        let dynamic = Value::decode_all(&mut dec, &Signature::new("at").unwrap()).unwrap_err();
        assert_eq!(dynamic.kind(), ErrorKind::ArrayLengthIncorrect);
    }
}

/// What a bus does to a message it relays: stamp SENDER, drop unknown header fields, encode it
/// again in the order it came in.
fn relay(msg: &Message) -> Message {
    let mut relayed = msg.clone();
    relayed.set_sender(Some(&BusName::new(":1.99").unwrap()));
    relayed.strip_unknown_fields();
    let bytes = relayed.encode().expect("a relayed message encodes");
    assert_eq!(frame_len(&bytes).unwrap(), Some(bytes.len()));
    assert_accepted(&bytes)
}

/// CVE-2011-2200 (byte-swapping bugs when foreign-endian messages were relayed): big-endian
/// messages, captured from dbus-daemon and GLib and built here, are relayed (SENDER stamped,
/// re-encoded in their own order) and re-encoded natively, and keep every header field and value.
/// Also case 52.
#[test]
fn relays_and_re_encodes_big_endian_messages_without_changing_them() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut messages = Vec::new();
    for name in [
        "dbus-daemon-relayed-big-endian.bin",
        "gdbus-big-endian-types.bin",
    ] {
        let data = std::fs::read(dir.join(name)).unwrap();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = frame_len(rest).unwrap().unwrap();
            messages.push(decode(&rest[..n]));
            rest = &rest[n..];
        }
    }
    messages.extend(sample_messages(Endian::Big));
    assert!(messages.len() >= 14);
    for msg in &messages {
        assert_eq!(msg.endian(), Endian::Big);
        let relayed = relay(msg);
        assert_eq!(relayed.endian(), Endian::Big);
        assert_eq!(relayed.sender().unwrap(), ":1.99");
        assert_eq!(
            relayed.body_bytes(),
            msg.body_bytes(),
            "the body is relayed as it is"
        );
        assert_eq!(relayed.body_values().unwrap(), msg.body_values().unwrap());
        let (mut a, mut b) = (relayed.clone(), msg.clone());
        a.set_sender(None);
        b.set_sender(None);
        assert_same_content(&a, &b);
        // Re-encoded natively (from the values, as a bus that converts would) and relayed again.
        let native = rebuild(&relayed, Endian::NATIVE);
        assert_same_content(&native, &relayed);
        assert_same_content(&relay(&native), &relayed);
    }
}

/// CVE-2022-42012 (fd indexes in a foreign-endian message were not byte-swapped, so the wrong
/// fds were used and freed): a big-endian message with `h` values and fds, relayed, decodes to
/// the same indexes as its little-endian twin, and each index finds its fd. Also cases 29 and 52.
#[cfg(unix)]
#[test]
fn reads_fd_indexes_of_big_endian_messages_byte_swapped() {
    use std::os::fd::AsRawFd;
    let big = sample_messages(Endian::Big);
    let little = sample_messages(Endian::Little);
    let (Some(b), Some(l)) = (
        big.iter().find(|m| m.unix_fds().is_some()),
        little.iter().find(|m| m.unix_fds().is_some()),
    ) else {
        panic!("the samples include a message with fds");
    };
    let bytes = b.encode().unwrap();
    // In the big-endian bytes, index 1 is 00 00 00 01: read little-endian it would be 2^24.
    let mut relayed = relay(&decode(&bytes));
    let fds = super::values::dev_nulls(2);
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    relayed.set_fds(fds);
    let values = relayed.body_values().unwrap();
    assert_eq!(values, l.body_values().unwrap());
    assert_eq!(values[0], Value::Fd(Fd(0)));
    assert_eq!(values[2], Value::Fd(Fd(1)));
    let (f0, _, f1, _): (Fd, &str, Fd, Vec<Fd>) = relayed.body().unwrap();
    assert_eq!(relayed.fd(f0).unwrap().as_raw_fd(), raw[0]);
    assert_eq!(relayed.fd(f1).unwrap().as_raw_fd(), raw[1]);
    // An index past the fds is an error, never another descriptor.
    assert_eq!(
        relayed.fd(Fd(1 << 24)).unwrap_err().kind(),
        ErrorKind::FdIndexOutOfRange
    );
}

/// Check that an error's text is safe to log: bounded, no raw NUL or control characters, and
/// the hostile input shown escaped, not interpreted.
#[track_caller]
fn assert_safe_text(e: &Error, limit: usize) {
    let text = e.to_string();
    assert!(text.len() <= limit, "{} bytes: {text:.200}", text.len());
    assert!(
        !text.chars().any(|c| c.is_control()),
        "control character in {text:?}"
    );
}

/// CVE-2013-2168 (formatting an error message about a crafted message crashed system services):
/// errors about hostile strings (with NUL, `%` conversions, control characters, invalid UTF-8,
/// and names of 64 KiB) are plain data: formatting them never panics, they show the input
/// escaped and cut to a few dozen characters, and text that *is* data (an error reply's text)
/// travels unchanged.
#[test]
fn formats_errors_about_hostile_strings_safely() {
    let huge = format!("%s%n{}", "x%".repeat(32 << 10));
    let hostile = [
        "%s%s%s%n%n%n",
        "a\0b",
        "\u{1b}[2J\r\n\t",
        "\u{202e}evil",
        huge.as_str(),
    ];
    for s in hostile {
        for e in [
            InterfaceName::new(s).unwrap_err(),
            MemberName::new(s).unwrap_err(),
            ObjectPath::new(s).unwrap_err(),
            BusName::new(s).unwrap_err(),
            Signature::new(s).unwrap_err(),
            Message::method_call("/a", s).build().unwrap_err(),
            Message::method_call(s, "M").build().unwrap_err(),
        ] {
            assert_safe_text(&e, 400);
            if s.len() > 1000 {
                assert!(e.to_string().contains("bytes)"), "{e}");
            }
        }
        // Inside a match rule (the rule itself is capped at 1024 bytes).
        if let Err(e) = MatchRule::parse(&format!("member='{s}'")) {
            assert_safe_text(&e, 2400);
        }
        // Inside introspection data from a peer.
        let xml = format!(
            "<node><interface name=\"a.b\"><method name=\"{}\"/></interface></node>",
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('"', "&quot;")
        );
        if let Err(e) = Node::from_xml(&xml) {
            assert_safe_text(&e, 400);
        }
        // An error reply's text is data: any string without NUL travels as it is.
        let call = Message::method_call("/a", "M").serial(1).build().unwrap();
        match Message::error(&call, "org.example.Error.Failed", s)
            .serial(2)
            .build()
        {
            Ok(reply) => {
                let back = decode(&reply.encode().unwrap());
                assert_eq!(back.error_text(), Some(s));
            }
            Err(e) => {
                assert!(s.contains('\0'));
                assert_eq!(e.kind(), ErrorKind::StringContainsNul);
                assert_safe_text(&e, 400);
            }
        }
    }
    // Names from the wire: a 64 KiB PATH of `%` and a SENDER with invalid UTF-8 and control bytes.
    for e in BOTH {
        let path = format!("/{}", "%n".repeat(32 << 10));
        let built = RawMsg::call(e).replace(PATH, "o", fs(&path)).build();
        let err = assert_rejected(&built.bytes, ErrorKind::BadPath, None);
        assert_safe_text(&err, 400);
        let sender = FV::Str(b"\xff\x00\x1b:1.%s".to_vec());
        let built = RawMsg::call(e).field(SENDER, "s", sender).build();
        let err = Message::decode(Bytes::from(built.bytes)).unwrap_err();
        assert_safe_text(&err, 400);
    }
    // Values print escaped, too.
    let mut props = BTreeMap::new();
    props.insert("k\0%n".to_owned(), Value::Str("\u{1b}\"%s\0".into()));
    let shown = Value::from(
        Dict::new(
            Signature::new("s").unwrap(),
            Signature::new("v").unwrap(),
            props
                .into_iter()
                .map(|(k, v)| (Value::Str(k), Value::Variant(Box::new(v))))
                .collect(),
        )
        .unwrap(),
    )
    .to_string();
    assert_eq!(shown, r#"{"k\0%n": <"\u{1b}\"%s\0">}"#);
}

/// zbus 5.19 stopped answering after unknown header field codes and unknown message types: on a
/// stream, messages of unknown type and messages with unknown fields are delivered (to be ignored
/// by the caller) and the messages after them still arrive, fed whole, 1 and 2 bytes at a time.
/// Also cases 4 and 15.
#[test]
fn keeps_reading_the_stream_after_unknown_message_types_and_header_fields() {
    for e in BOTH {
        let mut stream = Vec::new();
        stream.extend(RawMsg::new(e, 100).serial(1).bytes());
        stream.extend(
            RawMsg::call(e)
                .serial(2)
                .field(200, "s", fs("unknown"))
                .field(
                    10,
                    "(iav)",
                    FV::Custom(std::rc::Rc::new(|w: &mut W| {
                        w.st().u32(7).array(1, |w| {
                            w.g("s").s("x");
                        });
                    })),
                )
                .bytes(),
        );
        stream.extend(
            RawMsg::new(e, 255)
                .serial(3)
                .field(77, "u", FV::U32(1))
                .bytes(),
        );
        stream.extend(RawMsg::signal(e).serial(4).bytes());
        for chunk in CHUNKINGS {
            let events = read_stream(&stream, chunk);
            let serials: Vec<u32> = events
                .iter()
                .map(|ev| match ev {
                    Event::Msg(m) => m.serial(),
                    Event::Err(err) => panic!("chunks of {chunk}: {err}"),
                })
                .collect();
            assert_eq!(serials, [1, 2, 3, 4], "chunks of {chunk}");
            let Event::Msg(second) = &events[1] else {
                unreachable!()
            };
            assert_eq!(second.unknown_fields().len(), 2);
            assert_eq!(second.member().unwrap(), "Frob");
        }
    }
}

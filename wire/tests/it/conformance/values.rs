//! wire.md section D: values in the body (cases 41-53; CVE-2011-2200, CVE-2022-42011,
//! CVE-2022-42012).

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use fastbus_wire::{
    Endian, ErrorKind, Fd, MAX_ARRAY_LEN, Message, ObjectPath, Signature, Value, Variant,
    frame_len, from_bytes,
};

use super::support::*;

/// Case 41 [BOOLEAN_NOT_ZERO_OR_ONE]: in a body, inside an array, inside a variant, inside a
/// struct after padding; the offset is that of the boolean itself.
#[test]
fn rejects_boolean_other_than_0_or_1() {
    for e in BOTH {
        for bad in [2u32, 0xffff_ffff, 0x100] {
            let mut body = W::new(e);
            body.u32(bad);
            let built = with_body(e, "b", &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::BooleanNotZeroOrOne,
                Some(built.body_start),
            );

            let mut body = W::new(e);
            body.array(4, |w| {
                w.u32(1).u32(0).u32(bad);
            });
            let built = with_body(e, "ab", &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::BooleanNotZeroOrOne,
                Some(built.body_start + 12),
            );

            let mut body = W::new(e);
            body.g("b").u32(bad);
            let built = with_body(e, "v", &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::BooleanNotZeroOrOne,
                Some(built.body_start + 4),
            );

            let mut body = W::new(e);
            body.st().y(1).u32(bad);
            let built = with_body(e, "(yb)", &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::BooleanNotZeroOrOne,
                Some(built.body_start + 4),
            );
        }
        let mut body = W::new(e);
        body.u32(0).u32(1);
        let msg = assert_accepted(&with_body(e, "bb", &body).bytes);
        assert_eq!(msg.body::<(bool, bool)>().unwrap(), (false, true));
    }
    // The typed decoder on its own.
    let err = from_bytes::<bool>(&2u32.to_le_bytes(), Endian::Little, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BooleanNotZeroOrOne);
    let err = from_bytes::<Vec<bool>>(&[4, 0, 0, 0, 7, 0, 0, 0], Endian::Little, 0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BooleanNotZeroOrOne);
}

/// Case 42 [ALIGNMENT_PADDING_NOT_NUL]: before an INT64, a STRUCT, the first element of an
/// array (also an empty one), and before the value of a variant.
#[test]
fn rejects_non_zero_padding_before_int64_struct_and_first_array_element() {
    for e in BOTH {
        let mut body = W::new(e);
        body.y(1).u64(2);
        check_padding(e, "yx", &body, 1..8);

        let mut body = W::new(e);
        body.y(1).st().u32(2);
        check_padding(e, "y(u)", &body, 1..8);

        let mut body = W::new(e);
        body.array(8, |w| {
            w.u64(5);
        });
        check_padding(e, "ax", &body, 4..8);

        let mut body = W::new(e);
        body.array(8, |_| {});
        assert_eq!(body.len(), 8, "an empty ax keeps its padding");
        check_padding(e, "ax", &body, 4..8);

        let mut body = W::new(e);
        body.array(8, |w| {
            w.st().s("k").u32(1);
        });
        check_padding(e, "a{su}", &body, 4..8);

        let mut body = W::new(e);
        body.g("u").u32(9);
        check_padding(e, "v", &body, 3..4);
    }
}

/// Accept `body`, then set each byte of `padding` (body offsets) to 1 and expect a rejection at
/// exactly that byte.
#[track_caller]
fn check_padding(e: Endian, sig: &str, body: &W, padding: std::ops::Range<usize>) {
    let built = with_body(e, sig, body);
    assert_accepted(&built.bytes);
    for at in padding {
        let mut bytes = built.bytes.clone();
        bytes[built.body_start + at] = 1;
        assert_rejected(
            &bytes,
            ErrorKind::PaddingNotNul,
            Some(built.body_start + at),
        );
    }
}

/// Case 43: the padding after an empty `at`'s length is required.
#[test]
fn rejects_empty_uint64_array_without_its_padding_and_accepts_it_with_padding() {
    for e in BOTH {
        let mut body = W::new(e);
        body.u32(0);
        let built = with_body(e, "at", &body);
        assert_rejected(
            &built.bytes,
            ErrorKind::NotEnoughData,
            Some(built.body_start + 4),
        );

        body.pad(8);
        let msg = assert_accepted(&with_body(e, "at", &body).bytes);
        assert_eq!(msg.body::<Vec<u64>>().unwrap(), Vec::<u64>::new());
        let v = msg.body_values().unwrap();
        assert_eq!(v[0].to_string(), "@at []");
    }
}

/// Case 44 [ARRAY_LENGTH_EXCEEDS_MAXIMUM], the cheap half: the length word alone is enough to
/// reject, for every kind of array, before its bytes are looked at.
#[test]
fn rejects_array_longer_than_64_mib() {
    for e in BOTH {
        for sig in ["ay", "ai", "at", "as", "a{sv}", "a(ii)", "ab", "av"] {
            let mut body = W::new(e);
            body.u32(MAX_ARRAY_LEN as u32 + 1).pad(8).raw(&[0; 16]);
            let built = with_body(e, sig, &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::ArrayLengthExceedsMaximum,
                Some(built.body_start),
            );
            let mut body = W::new(e);
            body.u32(u32::MAX);
            let built = with_body(e, sig, &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::ArrayLengthExceedsMaximum,
                Some(built.body_start),
            );
        }
        // After padding: the offset is that of the length word.
        let mut body = W::new(e);
        body.y(1).u32(MAX_ARRAY_LEN as u32 + 1);
        let built = with_body(e, "yay", &body);
        assert_rejected(
            &built.bytes,
            ErrorKind::ArrayLengthExceedsMaximum,
            Some(built.body_start + 4),
        );
    }
}

/// A method call whose body is one `ay` of `n` bytes of `fill`.
fn byte_array_message(e: Endian, n: usize, fill: u8) -> (Vec<u8>, usize) {
    let mut body = W::new(e);
    body.u32(n as u32);
    body.buf.resize(4 + n, fill);
    let built = with_body(e, "ay", &body);
    (built.bytes, built.body_start)
}

/// Case 44, the boundary with real buffers (slow), and case 53's `ay` of 64 MiB: exactly
/// 2^26 bytes is accepted and borrowed from the message; one byte more is rejected.
#[test]
fn accepts_byte_array_of_exactly_64_mib_without_copying_and_rejects_one_byte_more() {
    if !slow_tests_enabled(
        "accepts_byte_array_of_exactly_64_mib_without_copying_and_rejects_one_byte_more",
    ) {
        return;
    }
    for e in BOTH {
        let (bytes, _) = byte_array_message(e, MAX_ARRAY_LEN, 0xab);
        assert_eq!(frame_len(&bytes).unwrap(), Some(bytes.len()));
        let bytes = Bytes::from(bytes);
        let range = bytes.as_ptr_range();
        let msg = Message::decode(bytes.clone()).unwrap();
        let data: &[u8] = msg.body().unwrap();
        assert_eq!(data.len(), MAX_ARRAY_LEN);
        assert!(range.contains(&data.as_ptr()), "the array was copied");
        assert!(data.iter().all(|&b| b == 0xab));

        let (bytes, body_start) = byte_array_message(e, MAX_ARRAY_LEN + 1, 0xab);
        let err = Message::decode(Bytes::from(bytes)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArrayLengthExceedsMaximum);
        assert_eq!(err.offset(), Some(body_start));
    }
}

/// Case 45: a fixed-size array's length must be a whole number of elements (CVE-2022-42011).
#[test]
fn rejects_fixed_size_array_length_not_a_multiple_of_element_size() {
    for e in BOTH {
        for (sig, len) in [
            ("at", 12u32),
            ("ai", 6),
            ("ai", 1),
            ("an", 3),
            ("ad", 4),
            ("ah", 2),
            ("a(ii)", 12),
        ] {
            let mut body = W::new(e);
            body.u32(len).pad(8).raw(&[0; 24]);
            // The bytes after the array are part of the body in the valid reading, so only the
            // length is wrong: make them a following `ay` would be overkill; the checker must
            // stop at the length anyway.
            let built = with_body(e, sig, &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::ArrayLengthIncorrect,
                Some(built.body_start),
            );
        }
        // The typed decoders check it too.
        let mut w = W::new(e);
        w.u32(12).pad(8).raw(&[0; 12]);
        let err = from_bytes::<Vec<u64>>(&w.buf, e, 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArrayLengthIncorrect);
        let mut w = W::new(e);
        w.u32(6).raw(&[0; 6]);
        let err = from_bytes::<Vec<i32>>(&w.buf, e, 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArrayLengthIncorrect);
        let mut w = W::new(e);
        w.u32(12).pad(8).raw(&[0; 16]);
        let err = from_bytes::<Vec<(i32, i32)>>(&w.buf, e, 0).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArrayLengthIncorrect);
    }
}

/// Case 46 [LENGTH_OUT_OF_BOUNDS]: an array length past the end of the body.
#[test]
fn rejects_array_length_running_past_end_of_body() {
    for e in BOTH {
        for sig in ["ay", "ai", "as", "ab", "a{sv}"] {
            let mut body = W::new(e);
            body.u32(100).pad(8).raw(&[0; 8]);
            let built = with_body(e, sig, &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::LengthOutOfBounds,
                Some(built.body_start),
            );
        }
    }
}

/// Case 46 [ARRAY_LENGTH_INCORRECT]: the last element runs past the declared array length.
#[test]
fn rejects_last_array_element_running_past_declared_array_length() {
    for e in BOTH {
        // `as` of length 5 holding "hello" (10 bytes), then a `u` that the string overlaps.
        let mut body = W::new(e);
        body.u32(5).s("hello").u32(0);
        assert_rejected(
            &with_body(e, "asu", &body).bytes,
            ErrorKind::ArrayLengthIncorrect,
            None,
        );
        // `ab` of length 6: the second boolean ends at 12.
        let mut body = W::new(e);
        body.u32(6).u32(1).u32(0);
        assert_rejected(
            &with_body(e, "abb", &body).bytes,
            ErrorKind::ArrayLengthIncorrect,
            None,
        );
        // `a(yy)` of length 9: the second struct starts at 16.
        let mut body = W::new(e);
        body.u32(9).st().y(1).y(2).st().y(3).y(4);
        assert_rejected(
            &with_body(e, "a(yy)", &body).bytes,
            ErrorKind::ArrayLengthIncorrect,
            None,
        );
    }
}

/// Case 47: string length past the end [LENGTH_OUT_OF_BOUNDS]; no NUL [STRING_MISSING_NUL]; a NUL
/// inside.
#[test]
fn rejects_string_length_past_end_missing_nul_or_nul_inside() {
    for e in BOTH {
        for sig in ["s", "o"] {
            let mut body = W::new(e);
            body.u32(100).raw(b"abc\0");
            let built = with_body(e, sig, &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::LengthOutOfBounds,
                Some(built.body_start + 4),
            );
            // 0xffffffff must not wrap around.
            let mut body = W::new(e);
            body.u32(u32::MAX).raw(b"abc\0");
            let built = with_body(e, sig, &body);
            assert_rejected(&built.bytes, ErrorKind::LengthOutOfBounds, None);

            let mut body = W::new(e);
            body.u32(3).raw(b"/bcx");
            let built = with_body(e, sig, &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::StringMissingNul,
                Some(built.body_start + 7),
            );

            let mut body = W::new(e);
            body.u32(3).raw(b"/\0c\0");
            let built = with_body(e, sig, &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::StringContainsNul,
                Some(built.body_start + 5),
            );
        }
    }
}

/// Case 47 [BAD_UTF8_IN_STRING]: overlong, surrogate, above U+10FFFF, truncated, 0xFF; in a
/// body string, a string inside an array, a variant, and a header field.
#[test]
fn rejects_invalid_utf8_in_strings() {
    let bad: [&[u8]; 7] = [
        b"\xc0\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"\xff",
        b"\xc3",
    ];
    for e in BOTH {
        for b in bad {
            let mut text = b"ok".to_vec();
            text.extend_from_slice(b);
            text.extend_from_slice(b"ok");

            let mut body = W::new(e);
            body.s(&text);
            let built = with_body(e, "s", &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::BadUtf8,
                Some(built.body_start + 4 + 2),
            );

            let mut body = W::new(e);
            body.array(4, |w| {
                w.s("fine").s(&text);
            });
            assert_rejected(&with_body(e, "as", &body).bytes, ErrorKind::BadUtf8, None);

            let mut body = W::new(e);
            body.g("s").s(&text);
            let built = with_body(e, "v", &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::BadUtf8,
                Some(built.body_start + 4 + 4 + 2),
            );

            let bytes = RawMsg::call(e)
                .field(INTERFACE, "s", FV::Str(text.clone()))
                .bytes();
            assert_rejected(&bytes, ErrorKind::BadUtf8, None);
        }
    }
}

/// Case 47: the noncharacters U+FDD0 and U+FFFE are allowed since spec 0.21.
#[test]
fn accepts_unicode_noncharacters_in_strings() {
    for e in BOTH {
        for text in [
            "\u{fdd0}",
            "\u{fffe}",
            "a\u{fdef}b",
            "\u{10ffff}",
            "\u{1fffe}",
        ] {
            let mut body = W::new(e);
            body.s(text);
            let msg = assert_accepted(&with_body(e, "s", &body).bytes);
            assert_eq!(msg.body::<&str>().unwrap(), text);
        }
    }
}

/// Case 48 [BAD_PATH]: object path values in a body and in the PATH field.
#[test]
fn rejects_invalid_object_path_values_and_accepts_valid_ones() {
    for e in BOTH {
        for bad in ["", "a", "/a/", "//", "/a//b", "/a-b", "/é", "a/b", "/a/b/"] {
            let mut body = W::new(e);
            body.y(1).s(bad);
            let built = with_body(e, "yo", &body);
            assert_rejected(&built.bytes, ErrorKind::BadPath, Some(built.body_start + 4));
            let built = RawMsg::call(e).replace(PATH, "o", fs(bad)).build();
            assert_rejected(&built.bytes, ErrorKind::BadPath, Some(built.value_at[0]));
            assert_eq!(ObjectPath::new(bad).unwrap_err().kind(), ErrorKind::BadPath);
        }
        for good in ["/", "/a/b_1", "/A/0/_"] {
            let mut body = W::new(e);
            body.s(good);
            let msg = assert_accepted(&with_body(e, "o", &body).bytes);
            assert_eq!(msg.body::<ObjectPath<'_>>().unwrap(), good);
            let msg = assert_accepted(&RawMsg::call(e).replace(PATH, "o", fs(good)).bytes());
            assert_eq!(msg.path().unwrap(), good);
        }
    }
}

/// Case 49: variant signatures: empty [VARIANT_SIGNATURE_EMPTY], two types
/// [VARIANT_SIGNATURE_SPECIFIES_MULTIPLE_VALUES], invalid [VARIANT_SIGNATURE_BAD: we report the
/// specific rule], length past the end [VARIANT_SIGNATURE_LENGTH_OUT_OF_BOUNDS], no NUL
/// [VARIANT_SIGNATURE_MISSING_NUL].
#[test]
fn rejects_malformed_variant_signatures() {
    use ErrorKind::*;
    for e in BOTH {
        type Case<'a> = (&'a dyn Fn(&mut W), ErrorKind);
        let cases: [Case<'_>; 7] = [
            (
                &|w| {
                    w.g("");
                },
                VariantSignatureEmpty,
            ),
            (
                &|w| {
                    w.g("ii").u32(1).u32(2);
                },
                VariantSignatureSpecifiesMultipleValues,
            ),
            (
                &|w| {
                    w.g("a{sv}i").u32(0).u32(0);
                },
                VariantSignatureSpecifiesMultipleValues,
            ),
            (
                &|w| {
                    w.g("w").u32(0);
                },
                UnknownTypeCode,
            ),
            (
                &|w| {
                    w.g("a").u32(0);
                },
                MissingArrayElementType,
            ),
            (
                &|w| {
                    w.y(200).raw(b"u\0");
                },
                SignatureLengthOutOfBounds,
            ),
            (
                &|w| {
                    w.y(1).raw(b"ux\0\0\0\0\0");
                },
                SignatureMissingNul,
            ),
        ];
        for (write, kind) in cases {
            let mut body = W::new(e);
            write(&mut body);
            let built = with_body(e, "v", &body);
            let err = assert_rejected(&built.bytes, kind, None);
            assert!(
                (built.body_start..built.bytes.len()).contains(&err.offset().unwrap()),
                "{err}"
            );
            // The typed decoders agree.
            let err = from_bytes::<Value>(&body.buf, e, 0).unwrap_err();
            assert_eq!(err.kind(), kind);
            let err = from_bytes::<Variant<u32>>(&body.buf, e, 0).unwrap_err();
            assert_eq!(err.kind(), kind);
            // And a known header field whose variant is broken the same way.
            let bytes = RawMsg::call(e)
                .field(
                    REPLY_SERIAL,
                    "",
                    FV::Custom(std::rc::Rc::new(|_: &mut W| {})),
                )
                .bytes();
            let err = assert_rejected(&bytes, VariantSignatureEmpty, None);
            assert!(err.offset().is_some());
        }
        // A typed variant of the wrong type is a mismatch, not a crash.
        let mut body = W::new(e);
        body.g("s").s("x");
        let err = from_bytes::<Variant<u32>>(&body.buf, e, 0).unwrap_err();
        assert_eq!(err.kind(), SignatureMismatch);
    }
}

/// Case 50 [NOT_ENOUGH_DATA, TOO_MUCH_DATA]: the body and its signature must agree exactly.
#[test]
fn rejects_body_shorter_than_its_signature_or_with_bytes_after_the_last_argument() {
    for e in BOTH {
        let mut body = W::new(e);
        body.s("x");
        assert_rejected(
            &with_body(e, "su", &body).bytes,
            ErrorKind::NotEnoughData,
            None,
        );
        let built = with_body(
            e,
            "u",
            &W {
                endian: e,
                buf: vec![0, 0],
            },
        );
        assert_rejected(
            &built.bytes,
            ErrorKind::NotEnoughData,
            Some(built.body_start),
        );
        let mut body = W::new(e);
        body.s("x").u64(1);
        let built = with_body(e, "s", &body);
        assert_rejected(
            &built.bytes,
            ErrorKind::TooMuchData,
            Some(built.body_start + 6),
        );
        let mut body = W::new(e);
        body.u32(1).u32(0);
        let built = with_body(e, "u", &body);
        assert_rejected(
            &built.bytes,
            ErrorKind::TooMuchData,
            Some(built.body_start + 4),
        );
        let built = with_body(
            e,
            "y",
            &W {
                endian: e,
                buf: vec![1, 0],
            },
        );
        assert_rejected(
            &built.bytes,
            ErrorKind::TooMuchData,
            Some(built.body_start + 1),
        );
    }
}

/// Case 51: `a{sv}` with a repeated key. The spec allows not checking. Policy:
/// - typed maps (`HashMap`, `BTreeMap`): the last value wins;
/// - `Value::Dict` keeps every entry in wire order; `Dict::get` returns the first.
#[test]
fn duplicate_dict_keys_last_wins_in_typed_maps_and_value_dict_keeps_all() {
    for e in BOTH {
        let mut body = W::new(e);
        body.array(8, |w| {
            w.st().s("k").g("u").u32(1);
            w.st().s("other").g("s").s("x");
            w.st().s("k").g("u").u32(2);
        });
        let msg = assert_accepted(&with_body(e, "a{sv}", &body).bytes);
        let map: HashMap<&str, Value> = msg.body().unwrap();
        assert_eq!((map.len(), &map["k"]), (2, &Value::U32(2)));
        let map: HashMap<String, Value> = msg.body().unwrap();
        assert_eq!(map["k"], Value::U32(2));
        let values = msg.body_values().unwrap();
        let Value::Dict(d) = &values[0] else {
            panic!("{}", values[0])
        };
        let keys: Vec<_> = d.entries().iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, ["k".into(), "other".into(), "k".into()] as [Value; 3]);
        assert_eq!(d.get("k"), Some(&Value::Variant(Box::new(Value::U32(1)))));

        // Only u32 values: the typed BTreeMap, last wins.
        let mut body = W::new(e);
        body.array(8, |w| {
            w.st().s("k").g("u").u32(1);
            w.st().s("k").g("u").u32(2);
        });
        let msg = assert_accepted(&with_body(e, "a{sv}", &body).bytes);
        let map: BTreeMap<String, Variant<u32>> = msg.body().unwrap();
        assert_eq!(
            map.into_iter().collect::<Vec<_>>(),
            [("k".into(), Variant(2))]
        );
    }
}

/// A method return carrying `h` values and two fds.
#[cfg(unix)]
fn handles(call: &Message, e: Endian) -> Message {
    Message::method_return(call)
        .endian(e)
        .serial(4)
        .body(&(Fd(0), "and", Fd(1), vec![Fd(1), Fd(0)]))
        .fds(dev_nulls(2))
        .build()
        .unwrap()
}

#[cfg(not(unix))]
fn handles(call: &Message, e: Endian) -> Message {
    Message::method_return(call)
        .endian(e)
        .serial(4)
        .build()
        .unwrap()
}

/// Messages of every kind, in one byte order.
pub(super) fn sample_messages(e: Endian) -> Vec<Message> {
    // A BTreeMap, so that both byte orders write the entries in the same order.
    let mut props = BTreeMap::new();
    props.insert("Name".to_owned(), Value::Str("x".into()));
    props.insert("Count".to_owned(), Value::U32(5));
    props.insert("On".to_owned(), Value::Bool(true));
    let data = fastbus_wire::Array::new(Signature::new("y").unwrap(), vec![Value::Byte(1); 16]);
    props.insert("Data".to_owned(), Value::Array(data.unwrap()));
    let call = Message::method_call("/org/example/Obj", "Frob")
        .endian(e)
        .interface("org.example.Iface")
        .destination("org.example.Service")
        .serial(3)
        .body(&(
            (1u8, true, -2i16, 3u16, -4i32, 5u32, -6i64, 7u64, 1.5f64),
            "text ✓",
            ObjectPath::new("/a/b").unwrap(),
            Signature::new("a{sv}").unwrap(),
            vec![1i32, -1, i32::MAX],
            vec![(1u8, "s"), (2, "t")],
            props,
            Variant(Variant(9u64)),
        ))
        .build()
        .unwrap();
    let mut with_sender = call.clone();
    with_sender.set_sender(Some(&fastbus_wire::BusName::new(":1.7").unwrap()));
    vec![
        call,
        handles(&with_sender, e),
        Message::error(&with_sender, "org.example.Error.Failed", "it failed")
            .endian(e)
            .serial(5)
            .build()
            .unwrap(),
        Message::signal("/", "org.example.Iface", "Changed")
            .endian(e)
            .serial(6)
            .body(&(Vec::<u64>::new(), vec![Vec::<Value>::new()]))
            .build()
            .unwrap(),
    ]
}

#[cfg(unix)]
fn attach_fds(m: &mut Message, n: usize) {
    m.set_fds(dev_nulls(n));
}

/// Case 52: a big-endian copy of every valid message decodes to the same values as the
/// little-endian one, `h` values and fds included (CVE-2011-2200, CVE-2022-42012); re-encoding
/// the foreign-endian message natively round-trips.
#[test]
fn big_endian_copy_of_every_message_decodes_to_the_same_values() {
    let little = sample_messages(Endian::Little);
    let big = sample_messages(Endian::Big);
    for (l, b) in little.iter().zip(&big) {
        let lb = l.encode().unwrap();
        let bb = b.encode().unwrap();
        assert_eq!((lb[0], bb[0]), (b'l', b'B'));
        assert_eq!(lb.len(), bb.len());
        let mut ld = assert_accepted(&lb);
        let mut bd = assert_accepted(&bb);
        assert_same_content(&ld, &bd);

        // Re-encode the big-endian message in the native order from its values.
        let native = rebuild(&bd, Endian::NATIVE);
        assert_same_content(&native, &bd);
        let bytes = native.encode().unwrap();
        let again = decode(&bytes);
        assert_same_content(&again, &native);
        assert_eq!(again.encode().unwrap(), bytes);

        #[cfg(unix)]
        if let Some(n) = bd.unix_fds() {
            attach_fds(&mut ld, n as usize);
            attach_fds(&mut bd, n as usize);
            let values = bd.body_values().unwrap();
            let Value::Fd(first) = values[0] else {
                panic!("{}", values[0])
            };
            assert_eq!(first, Fd(0));
            bd.fd(first).unwrap();
            let Value::Fd(second) = values[2] else {
                panic!()
            };
            assert_eq!(second, Fd(1), "fd index byte-swapped");
            bd.fd(second).unwrap();
            assert_eq!(ld.body_values().unwrap(), values);
        }
    }
}

/// Case 52 with GLib's serializer: the same eight messages captured in both byte orders.
#[test]
fn glib_big_and_little_endian_captures_decode_to_the_same_values() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let split = |name: &str| {
        let data = std::fs::read(dir.join(name)).unwrap();
        let mut out = Vec::new();
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = frame_len(rest).unwrap().unwrap();
            out.push(assert_accepted(&rest[..n]));
            rest = &rest[n..];
        }
        out
    };
    let big = split("gdbus-big-endian-types.bin");
    let little = split("gdbus-little-endian-types.bin");
    assert_eq!(big.len(), 8);
    assert_eq!(big.len(), little.len());
    let mut saw_fds = false;
    for (b, l) in big.iter().zip(&little) {
        assert_eq!((b.endian(), l.endian()), (Endian::Big, Endian::Little));
        assert_same_content(b, l);
        saw_fds |= b.unix_fds().is_some();
        let native = rebuild(b, Endian::NATIVE);
        assert_same_content(&native, b);
        assert_eq!(
            decode(&b.encode().unwrap()),
            *b,
            "re-encoded in its own order"
        );
    }
    assert!(saw_fds, "the captures include a message with UNIX_FDS");
}

#[track_caller]
pub(super) fn assert_same_content(a: &Message, b: &Message) {
    assert_eq!(a.message_type(), b.message_type());
    assert_eq!(a.flags(), b.flags());
    assert_eq!(a.serial(), b.serial());
    assert_eq!(a.path(), b.path());
    assert_eq!(a.interface(), b.interface());
    assert_eq!(a.member(), b.member());
    assert_eq!(a.error_name(), b.error_name());
    assert_eq!(a.reply_serial(), b.reply_serial());
    assert_eq!(a.destination(), b.destination());
    assert_eq!(a.sender(), b.sender());
    assert_eq!(a.signature(), b.signature());
    assert_eq!(a.unix_fds(), b.unix_fds());
    assert_eq!(a.body_bytes().len(), b.body_bytes().len());
    assert_eq!(
        a.body_values().unwrap_or_else(|e| panic!("{e}")),
        b.body_values().unwrap()
    );
}

/// The same message in another byte order, rebuilt from its header and values.
pub(super) fn rebuild(m: &Message, e: Endian) -> Message {
    let t = m.message_type();
    let mut b = Message::builder(t)
        .endian(e)
        .serial(m.serial())
        .flags(m.flags());
    if let Some(p) = m.path() {
        b = b.path(p);
    }
    if let Some(i) = m.interface() {
        b = b.interface(i);
    }
    if let Some(x) = m.member() {
        b = b.member(x);
    }
    if let Some(x) = m.error_name() {
        b = b.error_name(x);
    }
    if let Some(x) = m.reply_serial() {
        b = b.reply_serial(x);
    }
    if let Some(x) = m.destination() {
        b = b.destination(x);
    }
    if let Some(x) = m.sender() {
        b = b.sender(x);
    }
    #[cfg(unix)]
    if let Some(n) = m.unix_fds() {
        b = b.fds(dev_nulls(n as usize));
    }
    b.body_values(&m.body_values().unwrap()).build().unwrap()
}

#[cfg(unix)]
pub(super) fn dev_nulls(n: usize) -> Vec<std::os::fd::OwnedFd> {
    (0..n)
        .map(|_| std::fs::File::open("/dev/null").unwrap().into())
        .collect()
}

/// Case 53: an `ay` of 1 MiB decodes borrowed from the message bytes, without a copy.
#[test]
fn decodes_1_mib_byte_array_borrowed_without_copying() {
    for e in BOTH {
        let (bytes, body_start) = byte_array_message(e, 1 << 20, 0x5a);
        let bytes = Bytes::from(bytes);
        let range = bytes.as_ptr_range();
        let msg = Message::decode(bytes.clone()).unwrap();
        assert_eq!(msg.body_bytes().as_ptr(), bytes[body_start..].as_ptr());
        let data: &[u8] = msg.body().unwrap();
        assert_eq!(data.len(), 1 << 20);
        assert!(range.contains(&data.as_ptr()), "the array was copied");
        assert_eq!(data.as_ptr(), bytes[body_start + 4..].as_ptr());
        assert!(data.iter().all(|&b| b == 0x5a));
    }
}

/// Case 53: 1 MiB of `a(yyyyyyyy)` is accepted and read in full.
#[test]
fn decodes_large_array_of_byte_structs() {
    type Y8 = (u8, u8, u8, u8, u8, u8, u8, u8);
    let n = (1 << 20) / 8;
    for e in BOTH {
        let mut body = W::new(e);
        body.array(8, |w| {
            for i in 0..n {
                w.raw(&[(i % 251) as u8, 1, 2, 3, 4, 5, 6, 7]);
            }
        });
        let msg = assert_accepted(&with_body(e, "a(yyyyyyyy)", &body).bytes);
        let v: Vec<Y8> = msg.body().unwrap();
        assert_eq!(v.len(), n);
        assert_eq!(v[n - 1], (((n - 1) % 251) as u8, 1, 2, 3, 4, 5, 6, 7));
        let values = msg.body_values().unwrap();
        let Value::Array(a) = &values[0] else {
            panic!()
        };
        assert_eq!(a.items().len(), n);
    }
}

/// Case 53: 64 KiB of empty `av` arrays inside an `aav`.
#[test]
fn decodes_64_kib_of_empty_nested_arrays() {
    let n = (64 << 10) / 4;
    for e in BOTH {
        let mut body = W::new(e);
        body.array(4, |w| {
            for _ in 0..n {
                w.u32(0);
            }
        });
        assert_eq!(body.len(), 4 + (64 << 10));
        let msg = assert_accepted(&with_body(e, "aav", &body).bytes);
        let v: Vec<Vec<Value>> = msg.body().unwrap();
        assert_eq!(v.len(), n);
        assert!(v.iter().all(Vec::is_empty));
        let values = msg.body_values().unwrap();
        let Value::Array(a) = &values[0] else {
            panic!()
        };
        assert_eq!(a.items().len(), n);
    }
}

/// Case 52: a builder that already holds a body (`Message::error` encodes the text at once)
/// re-encodes it when the byte order changes, so a big-endian error reply is valid.
#[test]
fn error_reply_switched_to_big_endian_after_its_body_still_decodes() {
    let call = Message::method_call("/a", "M").serial(9).build().unwrap();
    for e in BOTH {
        let reply = Message::error(&call, "org.example.Error.Failed", "it failed ✓")
            .endian(e)
            .serial(1)
            .build()
            .unwrap();
        let bytes = reply.encode().unwrap();
        assert_eq!(bytes[0], e.marker());
        let msg = assert_accepted(&bytes);
        assert_eq!(msg.error_text(), Some("it failed ✓"));
        assert_eq!(msg.body::<&str>().unwrap(), "it failed ✓");
    }
}

//! wire.md section C: signatures in the header SIGNATURE field, in variants and in `g` values
//! (cases 30-40; CVE-2008-3834, CVE-2009-1189, CVE-2010-4352, CVE-2022-42010).

use fastbus_wire::{Endian, ErrorKind, Signature, Value};

use super::support::*;

/// `sig` must be rejected with `kind` everywhere a signature is read: the API, the header
/// SIGNATURE field (both byte orders, framed three ways) and a `g` body value.
#[track_caller]
pub(super) fn assert_bad_signature(sig: &[u8], kind: ErrorKind) {
    if let Ok(text) = std::str::from_utf8(sig) {
        let err = Signature::new(text).expect_err(text);
        assert_eq!(err.kind(), kind, "Signature::new({text:?}): {err}");
    }
    for e in BOTH {
        let built = RawMsg::call(e)
            .field(SIGNATURE, "g", FV::Sig(sig.to_vec()))
            .build();
        let err = assert_rejected(&built.bytes, kind, None);
        // The offset points into the signature (or at it, for whole-signature problems).
        let start = built.value_at[2];
        let o = err.offset().unwrap();
        assert!(
            (start..=start + 1 + sig.len()).contains(&o),
            "header SIGNATURE {sig:?}: offset {o} outside {start}..={}",
            start + 1 + sig.len()
        );

        let mut body = W::new(e);
        body.g(sig);
        let built = with_body(e, "g", &body);
        let err = assert_rejected(&built.bytes, kind, None);
        let o = err.offset().unwrap();
        let start = built.body_start;
        assert!(
            (start..=start + 1 + sig.len()).contains(&o),
            "g value {sig:?}: offset {o}"
        );
    }
}

/// A single-type signature must be rejected with `kind` as a variant's signature too.
#[track_caller]
pub(super) fn assert_bad_variant_signature(sig: &[u8], kind: ErrorKind) {
    for e in BOTH {
        let mut body = W::new(e);
        body.g(sig).u32(0);
        let built = with_body(e, "v", &body);
        assert_rejected(&built.bytes, kind, None);
    }
}

#[track_caller]
fn assert_good_signature(sig: &str) {
    Signature::new(sig).unwrap_or_else(|e| panic!("{sig:?}: {e}"));
    for e in BOTH {
        let msg = assert_accepted(
            &RawMsg::call(e)
                .field(SIGNATURE, "g", FV::Sig(Vec::new()))
                .field(200, "g", FV::Sig(sig.as_bytes().to_vec()))
                .bytes(),
        );
        assert_eq!(
            msg.unknown_fields()[0].1,
            Value::Signature(Signature::new(sig).unwrap().into_owned())
        );
        let mut body = W::new(e);
        body.g(sig);
        let msg = assert_accepted(&with_body(e, "g", &body).bytes);
        assert_eq!(msg.body::<Signature<'_>>().unwrap(), sig);
    }
}

/// Case 30 [UNKNOWN_TYPECODE].
#[test]
fn rejects_unknown_type_codes() {
    for sig in ["w", "$", " ", ".", "1", "iw", "a{sw}", "(iw)"] {
        assert_bad_signature(sig.as_bytes(), ErrorKind::UnknownTypeCode);
    }
    assert_bad_signature(&[0xff], ErrorKind::UnknownTypeCode);
    for sig in ["w", "aw"] {
        assert_bad_variant_signature(sig.as_bytes(), ErrorKind::UnknownTypeCode);
    }
}

/// Case 31: the reserved codes never appear on the wire.
#[test]
fn rejects_reserved_type_codes() {
    for c in ["r", "e", "m", "*", "?", "@", "&", "^"] {
        assert_bad_signature(c.as_bytes(), ErrorKind::ReservedTypeCode);
        assert_bad_signature(format!("a{c}").as_bytes(), ErrorKind::ReservedTypeCode);
        assert_bad_variant_signature(c.as_bytes(), ErrorKind::ReservedTypeCode);
    }
}

/// Case 32 [MISSING_ARRAY_ELEMENT_TYPE].
#[test]
fn rejects_array_without_element_type() {
    for sig in ["a", "ia", "aaaa", "(a)", "a{ia}", "a{sa}"] {
        assert_bad_signature(sig.as_bytes(), ErrorKind::MissingArrayElementType);
    }
    for sig in ["a", "aaaa"] {
        assert_bad_variant_signature(sig.as_bytes(), ErrorKind::MissingArrayElementType);
    }
}

/// Case 33 [STRUCT_STARTED_BUT_NOT_ENDED, STRUCT_ENDED_BUT_NOT_STARTED].
#[test]
fn rejects_unbalanced_struct_parentheses() {
    for sig in ["(", "(i", "(ai", "((i)"] {
        assert_bad_signature(sig.as_bytes(), ErrorKind::StructStartedButNotEnded);
        assert_bad_variant_signature(sig.as_bytes(), ErrorKind::StructStartedButNotEnded);
    }
    for sig in [")", "i)", "(i))"] {
        assert_bad_signature(sig.as_bytes(), ErrorKind::StructEndedButNotStarted);
    }
}

/// Case 34 [STRUCT_HAS_NO_FIELDS].
#[test]
fn rejects_empty_struct() {
    for sig in ["()", "a()", "(())", "(i())"] {
        assert_bad_signature(sig.as_bytes(), ErrorKind::StructHasNoFields);
        assert_bad_variant_signature(sig.as_bytes(), ErrorKind::StructHasNoFields);
    }
}

/// Case 35: dict entries only inside arrays, exactly two fields, basic keys (CVE-2009-1189:
/// `v` is not basic).
#[test]
fn rejects_misplaced_or_malformed_dict_entries() {
    use ErrorKind::*;
    for (sig, kind) in [
        ("{is}", DictEntryNotInsideArray),
        ("({is})", DictEntryNotInsideArray),
        ("a{}", DictEntryHasNoFields),
        ("a{i}", DictEntryHasOnlyOneField),
        ("a{isi}", DictEntryHasTooManyFields),
        ("a{(ii)i}", DictKeyMustBeBasicType),
        ("a{aii}", DictKeyMustBeBasicType),
        ("a{vs}", DictKeyMustBeBasicType),
        ("a{a{ss}s}", DictKeyMustBeBasicType),
        ("a{is", DictEntryStartedButNotEnded),
        ("a{i", DictEntryStartedButNotEnded),
        ("}", DictEntryEndedButNotStarted),
    ] {
        assert_bad_signature(sig.as_bytes(), kind);
        assert_bad_variant_signature(sig.as_bytes(), kind);
    }
    assert_good_signature("a{sv}");
    assert_good_signature("a{ha{ov}}");
}

/// Case 36: mis-nested brackets, the shape behind CVE-2022-42010.
#[test]
fn rejects_mis_nested_brackets() {
    use ErrorKind::*;
    for (sig, kind) in [
        ("(a{i)}", StructEndedButNotStarted),
        ("a{(i})", DictKeyMustBeBasicType),
        ("a{i(})", DictEntryEndedButNotStarted),
        ("(a{ii)}", DictEntryHasTooManyFields),
        ("a{i(i})", DictEntryEndedButNotStarted),
        ("(}", DictEntryEndedButNotStarted),
        ("a{)", StructEndedButNotStarted),
    ] {
        assert_bad_signature(sig.as_bytes(), kind);
    }
}

fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

/// Case 37 [EXCEEDED_MAXIMUM_ARRAY_RECURSION].
#[test]
fn accepts_32_nested_arrays_and_rejects_33() {
    assert_good_signature(&nested("a", "y", "", 32));
    assert_good_signature(&nested("a", "{sy}", "", 32));
    let too_deep = nested("a", "y", "", 33);
    assert_bad_signature(
        too_deep.as_bytes(),
        ErrorKind::ExceededMaximumArrayRecursion,
    );
    assert_bad_variant_signature(
        too_deep.as_bytes(),
        ErrorKind::ExceededMaximumArrayRecursion,
    );
}

/// Case 38 [EXCEEDED_MAXIMUM_STRUCT_RECURSION]; dict entries count as structs.
#[test]
fn accepts_32_nested_structs_and_rejects_33() {
    assert_good_signature(&nested("(", "y", ")", 32));
    let too_deep = nested("(", "y", ")", 33);
    assert_bad_signature(
        too_deep.as_bytes(),
        ErrorKind::ExceededMaximumStructRecursion,
    );
    assert_bad_variant_signature(
        too_deep.as_bytes(),
        ErrorKind::ExceededMaximumStructRecursion,
    );
    // A dict entry is the 32nd struct here, so one more struct inside it is too many.
    assert_good_signature(&format!("a{{y{}}}", nested("(", "y", ")", 31)));
    let dict = format!("a{{y{}}}", nested("(", "y", ")", 32));
    assert_bad_signature(dict.as_bytes(), ErrorKind::ExceededMaximumStructRecursion);
}

/// Write `a(` `levels` times, each array holding one struct, around `inner`.
fn write_array_struct_nest(w: &mut W, levels: usize, inner: &dyn Fn(&mut W)) {
    if levels == 0 {
        return inner(w);
    }
    w.array(8, |w| {
        w.st();
        write_array_struct_nest(w, levels - 1, inner);
    });
}

/// Case 39, statically: `a(` 32 times is 64 levels and is accepted with data at every level;
/// a variant at the bottom is the 65th and is rejected [NESTED_TOO_DEEPLY]; a variant at the 64th
/// level instead of the last struct is accepted.
#[test]
fn accepts_64_levels_of_static_nesting_and_rejects_a_variant_below_them() {
    for e in BOTH {
        let sig = nested("a(", "y", ")", 32);
        let mut body = W::new(e);
        write_array_struct_nest(&mut body, 32, &|w| {
            w.y(7);
        });
        let msg = assert_accepted(&with_body(e, &sig, &body).bytes);
        let mut v = &msg.body_values().unwrap()[0];
        for _ in 0..32 {
            let Value::Array(a) = v else { panic!("{v}") };
            let Value::Struct(fields) = &a.items()[0] else {
                panic!()
            };
            v = &fields[0];
        }
        assert_eq!(*v, Value::Byte(7));

        let sig = nested("a(", "v", ")", 32);
        let mut body = W::new(e);
        write_array_struct_nest(&mut body, 32, &|w| {
            w.g("y").y(7);
        });
        assert_rejected(
            &with_body(e, &sig, &body).bytes,
            ErrorKind::NestedTooDeeply,
            None,
        );

        // 31 times `a(`, then `av`: 63 containers, then the variant as the 64th.
        let sig = format!("{}av{}", "a(".repeat(31), ")".repeat(31));
        let mut body = W::new(e);
        write_array_struct_nest(&mut body, 31, &|w| {
            w.array(1, |w| {
                w.g("y").y(7);
            });
        });
        assert_accepted(&with_body(e, &sig, &body).bytes);
    }
}

/// `depth` variants, each holding the next, the innermost holding the byte 7.
pub(super) fn nested_variants(e: Endian, depth: usize) -> W {
    let mut w = W::new(e);
    for _ in 0..depth - 1 {
        w.g("v");
    }
    w.g("y").y(7);
    w
}

/// Case 39, dynamically: variant in variant (CVE-2010-4352). 64 levels are accepted, 65 are
/// rejected [NESTED_TOO_DEEPLY], and 100,000 levels are rejected just as quickly, without
/// overflowing the stack.
#[test]
fn accepts_64_nested_variants_and_rejects_65_without_stack_overflow() {
    for e in BOTH {
        let msg = assert_accepted(&with_body(e, "v", &nested_variants(e, 64)).bytes);
        let body = msg.body_values().unwrap();
        let mut v = &body[0];
        let mut depth = 0;
        while let Value::Variant(inner) = v {
            v = inner;
            depth += 1;
        }
        assert_eq!((depth, v), (64, &Value::Byte(7)));
        // The typed `Value` reads the outer variant itself.
        let Value::Variant(outer) = &body[0] else {
            panic!("{}", body[0])
        };
        assert_eq!(msg.body::<Value>().unwrap(), **outer);

        for depth in [65, 100_000] {
            let built = with_body(e, "v", &nested_variants(e, depth));
            let err = if depth == 65 {
                assert_rejected(&built.bytes, ErrorKind::NestedTooDeeply, None)
            } else {
                let err = fastbus_wire::Message::decode(built.bytes.into()).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::NestedTooDeeply);
                err
            };
            // The 65th variant's value starts after 64 signatures of 3 bytes (+ the 65th's).
            assert_eq!(err.offset(), Some(built.body_start + 65 * 3), "{err}");
        }
        // Also in an unknown header field.
        let bytes = RawMsg::call(e)
            .field(
                200,
                "v",
                FV::Custom(std::rc::Rc::new(move |w: &mut W| {
                    let inner = nested_variants(w.endian, 70);
                    w.raw(&inner.buf);
                })),
            )
            .bytes();
        assert_rejected(&bytes, ErrorKind::NestedTooDeeply, None);
    }
}

/// Case 40 [SIGNATURE_MISSING_NUL, SIGNATURE_LENGTH_OUT_OF_BOUNDS].
#[test]
fn rejects_signature_without_nul_or_with_nul_inside() {
    for e in BOTH {
        // `g` value "i" whose NUL is replaced by 'x' (still inside the body).
        let mut body = W::new(e);
        body.y(1).raw(b"ix");
        let built = with_body(e, "g", &body);
        assert_rejected(
            &built.bytes,
            ErrorKind::SignatureMissingNul,
            Some(built.body_start + 2),
        );
        // A NUL inside: length 3, "i\0i", NUL.
        let mut body = W::new(e);
        body.y(3).raw(b"i\0i\0");
        assert_rejected(
            &with_body(e, "g", &body).bytes,
            ErrorKind::SignatureMissingNul,
            None,
        );
        // The same in the header SIGNATURE field: length 1, 'i', then 'x' instead of NUL.
        let built = RawMsg::call(e)
            .field(
                SIGNATURE,
                "g",
                FV::Custom(std::rc::Rc::new(|w: &mut W| {
                    w.y(1).raw(b"ix");
                })),
            )
            .build();
        assert_rejected(
            &built.bytes,
            ErrorKind::SignatureMissingNul,
            Some(built.value_at[2] + 2),
        );
    }
}

#[test]
fn rejects_signature_length_past_end_of_buffer() {
    for e in BOTH {
        for len in [2u8, 200, 255] {
            let mut body = W::new(e);
            body.y(len).raw(b"i\0");
            let built = with_body(e, "g", &body);
            assert_rejected(
                &built.bytes,
                ErrorKind::SignatureLengthOutOfBounds,
                Some(built.body_start + 1),
            );
            // As the last header field, the length runs past the field array.
            let bytes = RawMsg::call(e)
                .field(
                    SIGNATURE,
                    "g",
                    FV::Custom(std::rc::Rc::new(move |w: &mut W| {
                        w.y(len).raw(b"i\0");
                    })),
                )
                .bytes();
            assert_rejected(&bytes, ErrorKind::SignatureLengthOutOfBounds, None);
        }
    }
}

/// The 255-byte limit: a `g` value can't say more (its length is one byte); the API rejects 256.
#[test]
fn accepts_255_byte_signature_and_api_rejects_256() {
    let sig255 = "y".repeat(255);
    assert_good_signature(&sig255);
    let err = Signature::new(&"y".repeat(256)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignatureTooLong);
}

/// Case 39, decision: every array counts towards the 64 levels, including arrays of fixed-size
/// elements that are validated in bulk, and their structs when they have elements. (libdbus does
/// not count the level of an array whose elements are fixed-size basic values, so it would take
/// an `ay` below 64 variants; we are one level stricter there.) Whatever `Message::decode`
/// accepts, `body_values` can read.
#[test]
fn nesting_limit_counts_bulk_arrays_like_any_other_array() {
    for e in BOTH {
        // (element signature, one element's bytes, most variants that may hold the array):
        // 63 variants and the array make 64 levels; with structs, 62 variants.
        let cases: [(&str, &[u8], usize); 5] = [
            ("y", &[7], 63),
            ("i", &[0, 0, 0, 0], 63),
            ("t", &[0; 8], 63),
            ("(ii)", &[0; 8], 62),
            ("(yyyyyyyy)", &[0; 8], 62),
        ];
        for (elem, one, deepest) in cases {
            for variants in deepest - 1..=deepest + 1 {
                // `variants - 1` variants holding a variant, the last one holding the array.
                let mut body = W::new(e);
                for _ in 1..variants {
                    body.g("v");
                }
                body.g(format!("a{elem}"));
                body.array(if one.len() == 8 { 8 } else { one.len() }, |w| {
                    w.raw(one);
                });
                let built = with_body(e, "v", &body);
                if variants <= deepest {
                    let msg = assert_accepted(&built.bytes);
                    msg.body_values()
                        .unwrap_or_else(|err| panic!("a{elem} below {variants}: {err}"));
                } else {
                    assert_rejected(&built.bytes, ErrorKind::NestedTooDeeply, None);
                }
            }
        }
    }
}

/// Case 39 on the sending side: the specification's limits bind senders too, so a body nested
/// deeper than 64 levels through variants is refused when it is built, not sent for the peer to
/// reject.
#[test]
fn refuses_to_build_a_body_nested_deeper_than_64_levels() {
    let nest = |depth: usize| {
        let mut v = Value::Byte(7);
        for _ in 0..depth {
            v = Value::Variant(Box::new(v));
        }
        v
    };
    for e in BOTH {
        let ok = fastbus_wire::Message::method_call("/a", "M")
            .endian(e)
            .serial(1)
            .body_values(&[nest(64)])
            .build()
            .unwrap();
        assert_accepted(&ok.encode().unwrap());
        let err = fastbus_wire::Message::method_call("/a", "M")
            .endian(e)
            .serial(1)
            .body_values(&[nest(65)])
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NestedTooDeeply);
    }
}

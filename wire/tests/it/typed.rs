//! The typed side of the codec: every `Type` constant, tuples up to 16 fields (structs and
//! argument lists), `HashMap` / `BTreeMap`, typed encoding against the dynamic `Value` encoding
//! of the same data, and `Value`'s `Display`.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use fastbus_wire::{
    Array, Decoder, Dict, Endian, ErrorKind, Fd, Message, ObjectPath, Signature, Type, Value,
    Variant, from_bytes, to_bytes,
};
use proptest::prelude::*;

const BOTH: [Endian; 2] = [Endian::Little, Endian::Big];

/// `T::SIGNATURE` is `want`, a valid signature; a single complete type (all but `()` are) has
/// `T::ALIGNMENT` equal to the specification's alignment of that type.
#[track_caller]
fn check_type<T: Type + ?Sized>(want: &str) {
    let sig = T::SIGNATURE;
    assert_eq!(sig.as_str(), want);
    let parsed = sig.to_signature().unwrap_or_else(|e| panic!("{want}: {e}"));
    match parsed.types().as_slice() {
        [] => assert_eq!(want, ""),
        [one] => assert_eq!(T::ALIGNMENT, one.alignment(), "{want}: alignment"),
        more => panic!("{want}: {} types", more.len()),
    }
}

#[test]
fn every_type_constant_is_a_valid_signature_with_its_alignment() {
    check_type::<u8>("y");
    check_type::<bool>("b");
    check_type::<i16>("n");
    check_type::<u16>("q");
    check_type::<i32>("i");
    check_type::<u32>("u");
    check_type::<i64>("x");
    check_type::<u64>("t");
    check_type::<f64>("d");
    check_type::<str>("s");
    check_type::<&str>("s");
    check_type::<String>("s");
    check_type::<Box<str>>("s");
    check_type::<ObjectPath<'_>>("o");
    check_type::<Signature<'_>>("g");
    check_type::<Fd>("h");
    check_type::<Value>("v");
    check_type::<Variant<u32>>("v");
    check_type::<Variant<Vec<String>>>("v");
    check_type::<[u8]>("ay");
    check_type::<&[u8]>("ay");
    check_type::<Vec<u8>>("ay");
    check_type::<Vec<Vec<ObjectPath<'_>>>>("aao");
    check_type::<Vec<(i32, i32)>>("a(ii)");
    check_type::<HashMap<String, Value>>("a{sv}");
    check_type::<HashMap<&str, Value>>("a{sv}");
    check_type::<BTreeMap<u64, Vec<f64>>>("a{tad}");
    check_type::<HashMap<ObjectPath<'_>, HashMap<String, HashMap<String, Value>>>>("a{oa{sa{sv}}}");
    check_type::<()>("");
    check_type::<(u8,)>("(y)");
    check_type::<(String, u32, bool)>("(sub)");
    check_type::<((i32, (u8, Fd)), Vec<(String, Value)>)>("((i(yh))a(sv))");
    check_type::<(u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8)>("(yyyyyyyyyyyy)");
    check_type::<(
        u8,
        bool,
        i16,
        u16,
        i32,
        u32,
        i64,
        u64,
        f64,
        String,
        ObjectPath<'_>,
        Signature<'_>,
        Fd,
        Value,
        Vec<u8>,
        HashMap<String, u32>,
    )>("(ybnqiuxtdsoghvaya{su})");
}

type Twelve<'a> = (
    u8,
    bool,
    i16,
    u16,
    i32,
    u32,
    i64,
    u64,
    f64,
    &'a str,
    ObjectPath<'a>,
    Signature<'a>,
);

fn twelve() -> Twelve<'static> {
    (
        0xfe,
        true,
        -3,
        65_000,
        i32::MIN,
        u32::MAX,
        i64::MIN + 1,
        u64::MAX - 1,
        -0.25,
        "twelve ✓",
        ObjectPath::new("/a/b").unwrap(),
        Signature::new("a{sv}").unwrap(),
    )
}

/// A 16-field argument list of many kinds of types.
type Sixteen = (
    u8,
    u16,
    u32,
    u64,
    i16,
    i32,
    i64,
    f64,
    String,
    bool,
    Fd,
    Vec<u8>,
    Variant<u32>,
    Vec<(i32, String)>,
    BTreeMap<u8, i64>,
    Value,
);

/// Maps keyed by every kind of basic type.
type Keys<'a> = (
    BTreeMap<u8, u8>,
    BTreeMap<bool, u8>,
    BTreeMap<i16, u8>,
    BTreeMap<u16, u8>,
    BTreeMap<u32, u8>,
    BTreeMap<u64, u8>,
    BTreeMap<Fd, u8>,
    BTreeMap<Signature<'a>, u8>,
);

/// Tuples up to at least 12 fields: as the argument list of a message (their parentheses are not
/// part of the body signature), as a single struct argument, and as array elements; both byte
/// orders, borrowed strings pointing into the message.
#[test]
fn tuples_of_12_and_16_fields_round_trip_as_argument_lists_and_structs() {
    for e in BOTH {
        let args = twelve();
        let msg = Message::method_call("/a", "M")
            .endian(e)
            .serial(1)
            .body(&args)
            .build()
            .unwrap();
        assert_eq!(msg.signature().as_str(), "ybnqiuxtdsog");
        let back = Message::decode(Bytes::from(msg.encode().unwrap())).unwrap();
        let got: Twelve<'_> = back.body().unwrap();
        assert_eq!(got, args);
        let body = back.body_bytes().as_ptr_range();
        assert!(body.contains(&got.9.as_ptr()), "the string is borrowed");

        let one_struct = Message::method_call("/a", "M")
            .endian(e)
            .serial(1)
            .body(&(args.clone(),))
            .build()
            .unwrap();
        assert_eq!(one_struct.signature().as_str(), "(ybnqiuxtdsog)");
        assert_eq!(one_struct.body::<(Twelve<'_>,)>().unwrap().0, args);
        // The single struct can be read as the struct itself too.
        assert_eq!(one_struct.body::<Twelve<'_>>().unwrap(), args);

        let sixteen = (
            1u8,
            2u16,
            3u32,
            4u64,
            5i16,
            6i32,
            7i64,
            8.5f64,
            "nine".to_owned(),
            false,
            Fd(0),
            vec![11u8; 3],
            Variant(12u32),
            vec![(13i32, "x".to_owned())],
            BTreeMap::from([(14u8, -14i64)]),
            Value::Str("sixteen".into()),
        );
        let msg = Message::signal("/a", "a.b", "S")
            .endian(e)
            .serial(2)
            .unix_fds(1)
            .body(&sixteen)
            .build()
            .unwrap();
        assert_eq!(msg.signature().as_str(), "yqutnixdsbhayva(is)a{yx}v");
        let back = Message::decode(Bytes::from(msg.encode().unwrap())).unwrap();
        let got: Sixteen = back.body().unwrap();
        // The standard library compares tuples of at most 12 fields: compare in two halves.
        let (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15) = got;
        let (b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15) = sixteen;
        assert_eq!(
            (a0, a1, a2, a3, a4, a5, a6, a7),
            (b0, b1, b2, b3, b4, b5, b6, b7)
        );
        assert_eq!(
            (a8, a9, a10, a11, a12, a13, a14, a15),
            (b8, b9, b10, b11, b12, b13, b14, b15)
        );

        let rows = vec![twelve(), twelve()];
        let bytes = to_bytes(&rows, e).unwrap();
        assert_eq!(from_bytes::<Vec<Twelve<'_>>>(&bytes, e, 0).unwrap(), rows);
    }
}

/// A body read as the wrong tuple is a `SignatureMismatch`, not garbage.
#[test]
fn tuple_of_the_wrong_shape_is_a_signature_mismatch() {
    let msg = Message::method_call("/a", "M")
        .serial(1)
        .body(&twelve())
        .build()
        .unwrap();
    for e in [
        msg.body::<(u8, bool)>().unwrap_err(),
        msg.body::<(Twelve<'_>,)>().unwrap_err(),
        msg.body::<u8>().unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::SignatureMismatch, "{e}");
    }
}

/// `HashMap` and `BTreeMap` with every kind of basic key, nested maps, borrowed keys, and the
/// `a{sv}` of properties with `Value` values.
#[test]
fn hash_and_btree_maps_round_trip() {
    for e in BOTH {
        let by_string: HashMap<String, Vec<u8>> = HashMap::from([
            ("a".into(), vec![1, 2]),
            ("".into(), vec![]),
            ("ü".into(), vec![3]),
        ]);
        let bytes = to_bytes(&by_string, e).unwrap();
        assert_eq!(
            from_bytes::<HashMap<String, Vec<u8>>>(&bytes, e, 0).unwrap(),
            by_string
        );
        let borrowed: HashMap<&str, &[u8]> = from_bytes(&bytes, e, 0).unwrap();
        assert_eq!(borrowed["a"], &[1, 2]);

        let by_number: BTreeMap<i64, (String, bool)> =
            BTreeMap::from([(-1, ("m".into(), true)), (i64::MAX, ("x".into(), false))]);
        let bytes = to_bytes(&by_number, e).unwrap();
        assert_eq!(
            from_bytes::<BTreeMap<i64, (String, bool)>>(&bytes, e, 0).unwrap(),
            by_number
        );

        let mut managed: BTreeMap<ObjectPath<'static>, HashMap<String, HashMap<String, Value>>> =
            BTreeMap::new();
        managed.insert(
            ObjectPath::new("/org/example/Obj").unwrap().into_owned(),
            HashMap::from([(
                "org.example.Iface".to_owned(),
                HashMap::from([
                    ("Name".to_owned(), Value::Str("x".into())),
                    ("Count".to_owned(), Value::U32(7)),
                ]),
            )]),
        );
        let msg =
            Message::method_return(&Message::method_call("/a", "M").serial(3).build().unwrap())
                .endian(e)
                .serial(4)
                .body(&managed)
                .build()
                .unwrap();
        assert_eq!(msg.signature().as_str(), "a{oa{sa{sv}}}");
        let back = Message::decode(Bytes::from(msg.encode().unwrap())).unwrap();
        let got: BTreeMap<ObjectPath<'_>, HashMap<&str, HashMap<&str, Value>>> =
            back.body().unwrap();
        let props = &got[&ObjectPath::new("/org/example/Obj").unwrap()]["org.example.Iface"];
        assert_eq!(props["Count"], Value::U32(7));
        assert_eq!(props.len(), 2);

        // Keys of every basic type.
        let keys = (
            BTreeMap::from([(1u8, 0u8)]),
            BTreeMap::from([(true, 0u8)]),
            BTreeMap::from([(-1i16, 0u8)]),
            BTreeMap::from([(1u16, 0u8)]),
            BTreeMap::from([(1u32, 0u8)]),
            BTreeMap::from([(1u64, 0u8)]),
            BTreeMap::from([(Fd(0), 0u8)]),
            BTreeMap::from([(Signature::new("as").unwrap(), 0u8)]),
        );
        let bytes = to_bytes(&keys, e).unwrap();
        let back: Keys<'_> = from_bytes(&bytes, e, 1).unwrap();
        assert_eq!(back, keys);
    }
}

/// The same data as a typed tuple and as a dynamic `Value`: what the two encoders write.
type Mixed = (
    u8,
    bool,
    i16,
    i32,
    u32,
    i64,
    u64,
    f64,
    String,
    Vec<i32>,
    BTreeMap<String, u32>,
    Vec<(u8, String)>,
);

fn as_value(m: &Mixed) -> Value {
    let s = |x: &str| Signature::from_string(x.to_owned()).unwrap();
    Value::Struct(vec![
        Value::Byte(m.0),
        Value::Bool(m.1),
        Value::I16(m.2),
        Value::I32(m.3),
        Value::U32(m.4),
        Value::I64(m.5),
        Value::U64(m.6),
        Value::F64(m.7),
        Value::Str(m.8.clone()),
        Value::Array(Array::new(s("i"), m.9.iter().map(|&x| Value::I32(x)).collect()).unwrap()),
        Value::Dict(
            Dict::new(
                s("s"),
                s("u"),
                m.10.iter()
                    .map(|(k, v)| (Value::Str(k.clone()), Value::U32(*v)))
                    .collect(),
            )
            .unwrap(),
        ),
        Value::Array(
            Array::new(
                s("(ys)"),
                m.11.iter()
                    .map(|(y, t)| Value::Struct(vec![Value::Byte(*y), Value::Str(t.clone())]))
                    .collect(),
            )
            .unwrap(),
        ),
    ])
}

fn cases() -> u32 {
    std::env::var("FASTBUS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn mixed() -> impl Strategy<Value = Mixed> {
    (
        (
            any::<u8>(),
            any::<bool>(),
            any::<i16>(),
            any::<i32>(),
            any::<u32>(),
        ),
        (
            any::<i64>(),
            any::<u64>(),
            any::<f64>().prop_filter("NaN is not equal to itself", |x| !x.is_nan()),
            "[^\u{0}]{0,10}",
            prop::collection::vec(any::<i32>(), 0..6),
            prop::collection::btree_map("[a-z]{0,4}", any::<u32>(), 0..4),
            prop::collection::vec((any::<u8>(), "[^\u{0}]{0,4}"), 0..4),
        ),
    )
        .prop_map(|((a, b, c, d, e), (f, g, h, i, j, k, l))| (a, b, c, d, e, f, g, h, i, j, k, l))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Typed values round-trip in both byte orders; the typed encoder writes exactly the bytes
    /// the dynamic one writes for the same data, and each side reads the other's.
    #[test]
    fn typed_values_round_trip_and_agree_with_dynamic_values(m in mixed(), big in any::<bool>()) {
        let e = if big { Endian::Big } else { Endian::Little };
        let typed = to_bytes(&m, e).unwrap();
        prop_assert_eq!(from_bytes::<Mixed>(&typed, e, 0).unwrap(), m.clone());
        let value = as_value(&m);
        let mut enc = fastbus_wire::Encoder::new(e);
        Value::encode_all(&mut enc, std::slice::from_ref(&value)).unwrap();
        prop_assert_eq!(&enc.into_inner()[..], &typed[..]);
        let mut dec = Decoder::new(&typed, e, 0);
        let back = Value::decode_all(&mut dec, &<Mixed as Type>::SIGNATURE.to_signature().unwrap());
        prop_assert_eq!(back.unwrap(), vec![value]);
        dec.finish().unwrap();
    }
}

/// `Display` shows every type readably, close to GVariant's text format, with strings escaped.
#[test]
fn value_display_shows_every_type() {
    let s = |x: &str| Signature::from_string(x.to_owned()).unwrap();
    let v = Value::Struct(vec![
        Value::Byte(0x0a),
        Value::Bool(false),
        Value::I16(-2),
        Value::U16(3),
        Value::I32(-4),
        Value::U32(5),
        Value::I64(-6),
        Value::U64(7),
        Value::F64(0.5),
        Value::Str("quote \" and \\ and \n".into()),
        Value::ObjectPath(ObjectPath::new("/a/b").unwrap().into_owned()),
        Value::Signature(s("a{sv}")),
        Value::Fd(Fd(2)),
        Value::Variant(Box::new(Value::Variant(Box::new(Value::U32(1))))),
        Value::Array(Array::new(s("i"), vec![Value::I32(1), Value::I32(2)]).unwrap()),
        Value::Array(Array::new(s("(ii)"), vec![]).unwrap()),
        Value::Dict(Dict::new(s("s"), s("v"), vec![]).unwrap()),
        Value::Dict(
            Dict::new(
                s("u"),
                s("as"),
                vec![(
                    Value::U32(1),
                    Value::Array(Array::new(s("s"), vec!["x".into()]).unwrap()),
                )],
            )
            .unwrap(),
        ),
        Value::Struct(vec![Value::Str("nested".into())]),
    ]);
    assert_eq!(
        v.to_string(),
        "(byte 0x0a, false, int16 -2, uint16 3, -4, uint32 5, int64 -6, uint64 7, 0.5, \
         \"quote \\\" and \\\\ and \\n\", objectpath '/a/b', signature 'a{sv}', handle 2, \
         <<uint32 1>>, [1, 2], @a(ii) [], @a{sv} {}, {uint32 1: [\"x\"]}, (\"nested\"))"
    );
}

/// One level of typed nesting: a variant holding a one-field struct (two containers).
type W<T> = Variant<(T,)>;
type L4<T> = W<W<W<W<T>>>>;
type L16<T> = L4<L4<L4<L4<T>>>>;
type L32<T> = L16<L16<T>>;

fn w<T>(t: T) -> W<T> {
    Variant((t,))
}
fn l4<T>(t: T) -> L4<T> {
    w(w(w(w(t))))
}
fn l16<T>(t: T) -> L16<T> {
    l4(l4(l4(l4(t))))
}
fn l32<T>(t: T) -> L32<T> {
    l16(l16(t))
}

/// A value nested deeper than every receiver's limit (64 containers) is refused when it is
/// encoded, typed or dynamic: typed tuples count as structs there, as they do when decoded.
#[test]
fn nesting_past_64_levels_is_refused_when_encoding_typed_or_dynamic_values() {
    let dynamic = |depth: usize| {
        let mut v = Value::Byte(1);
        for _ in 0..depth {
            v = Value::Variant(Box::new(Value::Struct(vec![v])));
        }
        to_bytes(&v, Endian::Little)
    };
    // As a typed parameter a `Value` is itself a variant: 1 + 2 * depth containers.
    dynamic(31).unwrap();
    assert_eq!(dynamic(32).unwrap_err().kind(), ErrorKind::NestedTooDeeply);

    // 32 levels of Variant<(T,)>: exactly 64 containers; it encodes and decodes back.
    for e in BOTH {
        let bytes = to_bytes(&l32(7u8), e).unwrap();
        assert_eq!(from_bytes::<L32<u8>>(&bytes, e, 0).unwrap(), l32(7u8));
        // One more level is 66 containers: refused by the encoder, as by every decoder.
        let err = to_bytes(&w(l32(7u8)), e).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NestedTooDeeply, "{err}");
        let err = Message::method_call("/a", "M")
            .endian(e)
            .serial(1)
            .body(&(w(l32(7u8)),))
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NestedTooDeeply, "{err}");
        // As the argument list of a body the outer tuple is no struct: 64 levels still go.
        let msg = Message::method_call("/a", "M")
            .endian(e)
            .serial(1)
            .body(&(l32(7u8),))
            .build()
            .unwrap();
        let back = Message::decode(Bytes::from(msg.encode().unwrap())).unwrap();
        assert_eq!(back.body::<(L32<u8>,)>().unwrap().0, l32(7u8));
        assert_eq!(back.body::<L32<u8>>().unwrap(), l32(7u8));
    }
}

/// The same array, typed and as a dynamic `Value`, in both byte orders: identical bytes, and
/// each reads back. Covers the in-place path of arrays of padding-free structs of numbers and the
/// element-by-element path of the others.
fn check_struct_array<T>(items: Vec<T>, as_value: impl Fn(&T) -> Value)
where
    T: fastbus_wire::Encode + for<'a> fastbus_wire::Decode<'a> + PartialEq + std::fmt::Debug,
{
    let elem = T::SIGNATURE.to_signature().unwrap().into_owned();
    let value = Value::Array(Array::new(elem, items.iter().map(as_value).collect()).unwrap());
    for e in BOTH {
        let typed = to_bytes(&items, e).unwrap();
        let mut enc = fastbus_wire::Encoder::new(e);
        Value::encode_all(&mut enc, std::slice::from_ref(&value)).unwrap();
        assert_eq!(
            &typed[..],
            &enc.into_inner()[..],
            "{}",
            T::SIGNATURE.as_str()
        );
        assert_eq!(from_bytes::<Vec<T>>(&typed, e, 0).unwrap(), items);
        let sig = Signature::from_string(format!("a{}", T::SIGNATURE.as_str())).unwrap();
        let mut dec = Decoder::new(&typed, e, 0);
        assert_eq!(
            Value::decode_all(&mut dec, &sig).unwrap(),
            vec![value.clone()]
        );
    }
}

#[test]
fn arrays_of_structs_of_numbers_encode_as_the_dynamic_encoder_does() {
    let s = |v: Vec<Value>| Value::Struct(v);
    check_struct_array((0..50).map(|i| (i, -i)).collect(), |&(a, b)| {
        s(vec![Value::I32(a), Value::I32(b)])
    });
    check_struct_array(
        (0..20u8)
            .map(|i| (i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7))
            .collect(),
        |t| {
            s([t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7]
                .into_iter()
                .map(Value::Byte)
                .collect())
        },
    );
    check_struct_array(
        vec![(1u16, 2u16, 3u32), (u16::MAX, 0, u32::MAX)],
        |&(a, b, c)| s(vec![Value::U16(a), Value::U16(b), Value::U32(c)]),
    );
    check_struct_array(vec![(1.5f64, -7i64), (-0.0, i64::MIN)], |&(a, b)| {
        s(vec![Value::F64(a), Value::I64(b)])
    });
    check_struct_array(vec![((1i32, 2i32), 3u64), ((-1, -2), 0)], |&((a, b), c)| {
        s(vec![s(vec![Value::I32(a), Value::I32(b)]), Value::U64(c)])
    });
    // Padding inside or after the struct: element by element.
    check_struct_array(vec![(1u8, 2i32), (3, -4)], |&(a, b)| {
        s(vec![Value::Byte(a), Value::I32(b)])
    });
    check_struct_array(vec![(5i32,), (6,)], |&(a,)| s(vec![Value::I32(a)]));
    check_struct_array(vec![(true, 1u32)], |&(a, b)| {
        s(vec![Value::Bool(a), Value::U32(b)])
    });
    check_struct_array(Vec::<(i32, i32)>::new(), |_| unreachable!());
}

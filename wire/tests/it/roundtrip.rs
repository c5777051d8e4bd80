//! Round trips and robustness of the codec: real captured messages against GLib's reading of
//! them, proptest round trips of arbitrary values and messages in both byte orders, and a
//! mutation test that flips, truncates and extends valid messages and asserts that decoding
//! never panics (and that whatever decodes re-encodes to the same message).

use std::path::{Path, PathBuf};

use crate::json;

use bytes::Bytes;
use fastbus_wire::{
    Array, Dict, Endian, Fd, Flags, Message, MessageType, ObjectPath, Signature, SignatureType,
    Value, frame_len,
};
use proptest::prelude::*;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Split a file of concatenated messages with `frame_len`.
fn split(data: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = frame_len(&data[at..])
            .unwrap()
            .expect("a whole fixed header");
        out.push(data.slice(at..at + n));
        at += n;
    }
    out
}

fn captured() -> Vec<(String, Vec<Bytes>, Vec<serde_json::Value>)> {
    let mut sets = Vec::new();
    for entry in std::fs::read_dir(testdata()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            let data = Bytes::from(std::fs::read(&path).unwrap());
            let expected = std::fs::read_to_string(path.with_extension("expected.jsonl")).unwrap();
            let expected = expected
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            sets.push((name, split(&data), expected));
        }
    }
    assert!(sets.len() >= 10, "the captured message sets are missing");
    sets
}

#[test]
fn captured_messages_decode_as_glib_reads_them() {
    let mut count = 0;
    for (name, messages, expected) in captured() {
        assert_eq!(messages.len(), expected.len(), "{name}");
        for (i, (raw, want)) in messages.iter().zip(&expected).enumerate() {
            let msg = Message::decode(raw.clone()).unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
            assert_eq!(&json::message_to_json(&msg).unwrap(), want, "{name} #{i}");
            count += 1;
        }
    }
    assert!(count >= 50, "only {count} captured messages");
}

/// Checklist 52: a copy of every valid message in the other byte order decodes to the same
/// value tree, and re-encoding in its own order round-trips.
#[test]
fn captured_messages_reencode_in_both_byte_orders() {
    for (name, messages, _) in captured() {
        for (i, raw) in messages.iter().enumerate() {
            let msg = Message::decode(raw.clone()).unwrap();
            let again = Message::decode(Bytes::from(msg.encode().unwrap())).unwrap();
            assert_eq!(again, msg, "{name} #{i}: native re-encode");
            let mut j = json::message_to_json(&msg).unwrap();
            for endian in [Endian::Little, Endian::Big] {
                let swapped = json::message_from_json(&j, Some(endian)).unwrap();
                let back = Message::decode(Bytes::from(swapped.encode().unwrap())).unwrap();
                assert_eq!(back.endian(), endian);
                assert_eq!(
                    back.body_values().unwrap(),
                    msg.body_values().unwrap(),
                    "{name} #{i}"
                );
                j["endian"] = json::message_to_json(&back).unwrap()["endian"].clone();
                assert_eq!(
                    json::message_to_json(&back).unwrap(),
                    j,
                    "{name} #{i} as {endian:?}"
                );
            }
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("FASTBUS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn basic_type() -> impl Strategy<Value = SignatureType> {
    use SignatureType as T;
    prop_oneof![
        Just(T::Byte),
        Just(T::Boolean),
        Just(T::Int16),
        Just(T::UInt16),
        Just(T::Int32),
        Just(T::UInt32),
        Just(T::Int64),
        Just(T::UInt64),
        Just(T::Double),
        Just(T::String),
        Just(T::ObjectPath),
        Just(T::Signature),
        Just(T::UnixFd),
    ]
}

fn any_type() -> impl Strategy<Value = SignatureType> {
    use SignatureType as T;
    prop_oneof![basic_type(), Just(T::Variant)].prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| T::Array(Box::new(t))),
            (basic_type(), inner.clone()).prop_map(|(k, v)| T::Dict(Box::new(k), Box::new(v))),
            prop::collection::vec(inner, 1..4).prop_map(T::Struct),
        ]
    })
}

fn sig(t: &SignatureType) -> Signature<'static> {
    Signature::from_string(t.to_string()).unwrap()
}

fn object_path() -> impl Strategy<Value = ObjectPath<'static>> {
    prop::collection::vec("[A-Za-z0-9_]{1,6}", 0..4)
        .prop_map(|els| ObjectPath::from_string(format!("/{}", els.join("/"))).unwrap())
}

fn value_of(t: &SignatureType) -> BoxedStrategy<Value> {
    use SignatureType as T;
    match t {
        T::Byte => any::<u8>().prop_map(Value::Byte).boxed(),
        T::Boolean => any::<bool>().prop_map(Value::Bool).boxed(),
        T::Int16 => any::<i16>().prop_map(Value::I16).boxed(),
        T::UInt16 => any::<u16>().prop_map(Value::U16).boxed(),
        T::Int32 => any::<i32>().prop_map(Value::I32).boxed(),
        T::UInt32 => any::<u32>().prop_map(Value::U32).boxed(),
        T::Int64 => any::<i64>().prop_map(Value::I64).boxed(),
        T::UInt64 => any::<u64>().prop_map(Value::U64).boxed(),
        T::Double => any::<f64>()
            .prop_filter("NaN is not equal to itself", |x| !x.is_nan())
            .prop_map(Value::F64)
            .boxed(),
        T::String => "[^\u{0}]{0,12}".prop_map(Value::Str).boxed(),
        T::ObjectPath => object_path().prop_map(Value::ObjectPath).boxed(),
        T::Signature => prop::sample::select(vec!["", "i", "a{sv}", "(sa(ii))", "aav"])
            .prop_map(|s| Value::Signature(Signature::from_string(s.into()).unwrap()))
            .boxed(),
        T::UnixFd => (0u32..4).prop_map(|i| Value::Fd(Fd(i))).boxed(),
        T::Variant => prop_oneof![
            basic_type(),
            basic_type().prop_map(|t| T::Array(Box::new(t)))
        ]
        .prop_flat_map(|t| value_of(&t))
        .prop_map(|v| Value::Variant(Box::new(v)))
        .boxed(),
        T::Array(e) => {
            let e2 = (**e).clone();
            prop::collection::vec(value_of(e), 0..4)
                .prop_map(move |items| Value::Array(Array::new(sig(&e2), items).unwrap()))
                .boxed()
        }
        T::Dict(k, v) => {
            let (k2, v2) = ((**k).clone(), (**v).clone());
            prop::collection::vec((value_of(k), value_of(v)), 0..4)
                .prop_map(move |entries| {
                    Value::Dict(Dict::new(sig(&k2), sig(&v2), entries).unwrap())
                })
                .boxed()
        }
        T::Struct(fields) => fields
            .iter()
            .map(value_of)
            .collect::<Vec<_>>()
            .prop_map(Value::Struct)
            .boxed(),
    }
}

fn any_body() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(any_type(), 0..4)
        .prop_flat_map(|ts| ts.iter().map(value_of).collect::<Vec<_>>())
        .prop_filter("signature within 255 bytes", |vs| {
            Value::signature_of(vs).len() <= 255
        })
}

fn endian() -> impl Strategy<Value = Endian> {
    prop_oneof![Just(Endian::Little), Just(Endian::Big)]
}

fn any_message() -> impl Strategy<Value = Message> {
    (
        0usize..5,
        endian(),
        any::<u8>(),
        1u32..,
        object_path(),
        "[a-z][a-z0-9_]{0,5}(\\.[a-z][a-z0-9_]{0,5}){1,3}",
        "[A-Za-z_][A-Za-z0-9_]{0,10}",
        prop::option::of(":1\\.[0-9]{1,4}"),
        any_body(),
        prop::option::of((10u8.., any::<u32>())),
    )
        .prop_map(
            |(kind, endian, flags, serial, path, iface, member, dest, body, extra)| {
                let b = match kind {
                    0 => Message::method_call(&path, &member).interface(&iface),
                    1 => Message::signal(&path, &iface, &member),
                    2 => Message::builder(MessageType::METHOD_RETURN).reply_serial(serial ^ 1 | 1),
                    3 => Message::builder(MessageType::ERROR)
                        .reply_serial(7)
                        .error_name(&iface),
                    _ => Message::builder(MessageType(100)),
                };
                let mut b = b
                    .endian(endian)
                    .flags(Flags(flags))
                    .serial(serial)
                    .body_values(&body);
                if let Some(d) = dest {
                    b = b.destination(d);
                }
                if let Some((code, v)) = extra {
                    b = b.unknown_field(code, Value::U32(v));
                }
                let n_fds = body.iter().map(count_fds).sum::<u32>();
                if n_fds > 0 {
                    b = b.unix_fds(4);
                }
                b.build().unwrap()
            },
        )
}

fn count_fds(v: &Value) -> u32 {
    match v {
        Value::Fd(_) => 1,
        Value::Array(a) => a.items().iter().map(count_fds).sum(),
        Value::Dict(d) => d
            .entries()
            .iter()
            .map(|(k, v)| count_fds(k) + count_fds(v))
            .sum(),
        Value::Struct(f) => f.iter().map(count_fds).sum(),
        Value::Variant(v) => count_fds(v),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn any_value_round_trips_in_both_byte_orders(
        v in any_type().prop_flat_map(|t| value_of(&t)),
        e in endian(),
    ) {
        let bytes = fastbus_wire::to_bytes(&v, e).unwrap();
        let back: Value = fastbus_wire::from_bytes(&bytes, e, 4).unwrap();
        prop_assert_eq!(back, v);
    }

    #[test]
    fn any_message_round_trips_and_frames_to_its_length(msg in any_message()) {
        let bytes = msg.encode().unwrap();
        prop_assert_eq!(bytes.len() % 8, msg.body_bytes().len() % 8);
        prop_assert_eq!(frame_len(&bytes).unwrap(), Some(bytes.len()));
        for cut in [0, 1, 15] {
            let short = &bytes[..cut.min(bytes.len())];
            prop_assert_eq!(frame_len(short).unwrap(), None);
        }
        let back = Message::decode(Bytes::from(bytes)).unwrap();
        prop_assert_eq!(back.body_values().unwrap(), msg.body_values().unwrap());
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn signatures_print_back_to_themselves(t in prop::collection::vec(any_type(), 0..4)) {
        let text: String = t.iter().map(|t| t.to_string()).collect();
        prop_assume!(text.len() <= 255);
        let parsed = Signature::new(&text).unwrap();
        prop_assert_eq!(parsed.types(), t);
    }
}

/// A small deterministic generator (xorshift), so a failing mutation can be replayed by its
/// case number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    const INTERESTING: [u32; 8] = [
        0,
        1,
        0xFF,
        0xFFFF_FFFF,
        1 << 26,
        (1 << 26) + 1,
        1 << 27,
        0x8000_0000,
    ];
    for _ in 0..=rng.below(3) {
        let len = b.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = [0u8, 0xFF, 0x80, b'(', b'a', b'{', b'v'][rng.below(7)];
            }
            2 => b.truncate(rng.below(len + 1)),
            3 => b.extend((0..=rng.below(16)).map(|_| rng.next() as u8)),
            4 if len >= 4 => {
                let i = rng.below(len / 4) * 4;
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let bytes = if b[0] == b'B' {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                b[i..i + 4].copy_from_slice(&bytes);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                b.insert(i, rng.next() as u8);
            }
            _ if len > 0 => {
                let i = rng.below(len);
                b.remove(i);
            }
            _ => {}
        }
    }
    b
}

/// At least 100,000 cases in CI (`FASTBUS_MUTATION_CASES`); fewer by default.
#[test]
fn mutated_messages_never_panic_and_what_decodes_reencodes() {
    let n: u64 = std::env::var("FASTBUS_MUTATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seeds: Vec<Vec<u8>> = captured()
        .into_iter()
        .flat_map(|(_, msgs, _)| msgs)
        .filter(|m| m.len() <= 2048)
        .map(|m| m.to_vec())
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0u64;
    for case in 0..n {
        let seed = seeds[rng.below(seeds.len())].clone();
        let bytes = mutate(&mut rng, seed);
        let _ = frame_len(&bytes);
        if let Ok(msg) = Message::decode(Bytes::from(bytes)) {
            accepted += 1;
            let _ = msg.body_values();
            let again = msg
                .encode()
                .unwrap_or_else(|e| panic!("case {case}: re-encode: {e}"));
            let back = Message::decode(Bytes::from(again.clone()))
                .unwrap_or_else(|e| panic!("case {case}: decode of re-encoded: {e}"));
            // Compared on the bytes: a NaN double in an unknown header field is not equal to
            // itself as a value.
            assert_eq!(back.encode().unwrap(), again, "case {case}");
            assert_eq!(back.body_bytes(), msg.body_bytes(), "case {case}");
        }
    }
    println!("mutation test: {n} cases, {accepted} still decoded (FASTBUS_MUTATION_CASES)");
    assert!(
        accepted > 0 && accepted < n,
        "mutations should both break and keep messages"
    );
}

//! Codec benchmarks: zbus 6 and fastbus timed side by side in one run.
//!
//! Each criterion group holds one operation on one message, with a `zbus`
//! and a `fastbus` function (and, for the 1 MiB `ay`, memcpy baselines), so
//! the ratio of the two comes from the same run on the same machine.
//!
//! Both sides decode the very same bytes (the message as zbus encodes it),
//! and before anything is timed every decoded result is checked with
//! `assert!` against the fixtures in `fastbus_benches`; each library also
//! decodes the other's encoding, so no function can time a no-op or a wrong
//! answer.
//!
//! zbus offers two ways to turn bytes into a `Message`: the `unsafe`
//! `Message::from_bytes`, which our workspace forbids, and the
//! `ReadHalf::receive_message` that its own connections use. We drive the
//! latter over an in-memory read half that is handed the whole message up
//! front (see `zb::decode`); that path copies the message bytes once into
//! the buffer the `Message` owns, as it does when reading from a socket. The zbus decode
//! groups time that copy too (the buffer clone is set-up, outside the timing); the fastbus
//! ones clone a `Bytes` (a reference count).
//!
//! With `FASTBUS_CODEC_OP` set, the binary runs one operation of cases a or b in a loop instead
//! of criterion, for `valgrind --tool=callgrind` instruction counts (see `count_instructions`).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, SamplingMode, criterion_group};
use fastbus_benches::{
    BLOB_LEN, CALL_BODY, CALL_MEMBER, CALL_PATH, SIGNAL_MEMBER, SIGNAL_PATH, blob,
    expected_changed, pairs,
};

/// The zbus side: message construction and decoding through zbus 6's public, safe API.
mod zb {
    use std::collections::HashMap;
    use std::future::Future;
    use std::os::fd::OwnedFd;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use fastbus_benches::{
        BULK_INTERFACE, BULK_MEMBER, BULK_PATH, CALL_DESTINATION, CALL_INTERFACE, CALL_MEMBER,
        CALL_PATH, CHANGED_INTERFACE, Changed, INVALIDATED, PROP_ACTIVE, PROP_ACTIVE_VALUE,
        PROP_COUNT, PROP_COUNT_VALUE, PROP_NAME, PROP_NAME_VALUE, PROP_PARENT, PROP_PARENT_VALUE,
        PROP_UUID, PROP_UUID_VALUE, Prop, SIGNAL_INTERFACE, SIGNAL_MEMBER, SIGNAL_PATH,
    };
    use zbus::connection::socket::ReadHalf;
    use zbus::message::Message;
    use zbus::{ObjectPath, Variant};

    /// The `PropertiesChanged` body as zbus takes and gives it.
    pub(crate) type SignalBody<'a> = (&'a str, HashMap<&'a str, Variant<'a>>, Vec<&'a str>);

    /// A read half whose socket is empty: `receive_message` is always handed the whole
    /// message in `already_received_bytes`, so `recvmsg` is only reached for a truncated
    /// message, and then says so instead of waiting.
    #[derive(Debug)]
    struct InMemory;

    #[async_trait::async_trait]
    impl ReadHalf for InMemory {
        async fn recvmsg(&mut self, _buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
            Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "benchmark message is truncated",
            ))
        }
    }

    /// Decode one whole message from `bytes` (which is emptied) with zbus's own receive path:
    /// primary header, copy into the message buffer, header parsing and validation.
    pub(crate) fn decode(bytes: &mut Vec<u8>) -> zbus::Result<Message> {
        let mut reader = InMemory;
        let mut fds = Vec::new();
        let mut future = reader.receive_message(0, bytes, &mut fds);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut future).poll(&mut cx) {
            Poll::Ready(result) => result,
            // Nothing in the default receive path awaits once every byte is present.
            Poll::Pending => panic!("zbus receive_message wanted to wait on an in-memory message"),
        }
    }

    /// The whole bytes of a zbus message.
    pub(crate) fn bytes(msg: &Message) -> Vec<u8> {
        msg.data().bytes().to_vec()
    }

    /// The body values of case a (built outside the timed loop).
    pub(crate) fn signal_body() -> SignalBody<'static> {
        let mut props = HashMap::new();
        props.insert(PROP_NAME, Variant::from(PROP_NAME_VALUE));
        props.insert(PROP_COUNT, Variant::from(PROP_COUNT_VALUE));
        props.insert(PROP_ACTIVE, Variant::from(PROP_ACTIVE_VALUE));
        props.insert(PROP_UUID, Variant::from(PROP_UUID_VALUE.to_vec()));
        props.insert(
            PROP_PARENT,
            Variant::ObjectPath(ObjectPath::from_static_str(PROP_PARENT_VALUE).unwrap()),
        );
        (CHANGED_INTERFACE, props, vec![INVALIDATED])
    }

    /// Case a: build the signal (zbus serializes while building).
    pub(crate) fn signal(body: &SignalBody<'_>) -> Message {
        Message::signal(SIGNAL_PATH, SIGNAL_INTERFACE, SIGNAL_MEMBER)
            .build(body)
            .unwrap()
    }

    /// Case b: build the method call.
    pub(crate) fn call(body: &(&str, u32, bool)) -> Message {
        Message::method_call(CALL_PATH, CALL_MEMBER)
            .interface(CALL_INTERFACE)
            .destination(CALL_DESTINATION)
            .build(body)
            .unwrap()
    }

    /// Cases c and d: a method call carrying one big array.
    pub(crate) fn bulk<B>(body: &B) -> Message
    where
        B: zbus::export::serde::Serialize + zbus::wire::DynamicType,
    {
        Message::method_call(BULK_PATH, BULK_MEMBER)
            .interface(BULK_INTERFACE)
            .build(body)
            .unwrap()
    }

    /// Case a decoded to typed values.
    pub(crate) fn decode_signal_body(msg: &Message) -> zbus::Result<Changed> {
        let body = msg.body();
        let decoded: SignalBody<'_> = body.deserialize()?;
        Ok(changed(&decoded))
    }

    /// Case b decoded; the owned string makes the result outlive the message.
    pub(crate) fn decode_call_body(msg: &Message) -> zbus::Result<(String, u32, bool)> {
        let body = msg.body();
        let (s, u, b): (&str, u32, bool) = body.deserialize()?;
        Ok((s.to_owned(), u, b))
    }

    /// Convert one decoded property value to the neutral form.
    fn prop(value: &Variant<'_>) -> Prop {
        match value {
            Variant::Str(s) => Prop::Str(s.as_str().to_owned()),
            Variant::U32(n) => Prop::U32(*n),
            Variant::Bool(b) => Prop::Bool(*b),
            Variant::ObjectPath(p) => Prop::Path(p.as_str().to_owned()),
            Variant::Array(a) => Prop::Bytes(
                a.inner()
                    .iter()
                    .map(|v| match v {
                        Variant::U8(b) => *b,
                        other => panic!("unexpected array element {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("unexpected property value {other:?}"),
        }
    }

    /// Convert a decoded case-a body to the neutral form.
    fn changed(body: &SignalBody<'_>) -> Changed {
        let mut props: Vec<(String, Prop)> = body
            .1
            .iter()
            .map(|(k, v)| ((*k).to_owned(), prop(v)))
            .collect();
        props.sort();
        (
            body.0.to_owned(),
            props,
            body.2.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    /// Check that `(path, member)` of a decoded message are the expected ones.
    pub(crate) fn header_is(msg: &Message, path: &str, member: &str) -> bool {
        let h = msg.header();
        h.path().map(|p| p.as_str()) == Some(path) && h.member().map(|m| m.as_str()) == Some(member)
    }
}

/// The fastbus side: `fastbus_wire::Message` builders, `encode`, `decode` and `body::<T>()`.
mod fb {
    use std::collections::HashMap;

    use bytes::Bytes;
    use fastbus_benches::{
        BULK_INTERFACE, BULK_MEMBER, BULK_PATH, CALL_DESTINATION, CALL_INTERFACE, CALL_MEMBER,
        CALL_PATH, CHANGED_INTERFACE, Changed, INVALIDATED, PROP_ACTIVE, PROP_ACTIVE_VALUE,
        PROP_COUNT, PROP_COUNT_VALUE, PROP_NAME, PROP_NAME_VALUE, PROP_PARENT, PROP_PARENT_VALUE,
        PROP_UUID, PROP_UUID_VALUE, Prop, SIGNAL_INTERFACE, SIGNAL_MEMBER, SIGNAL_PATH,
    };
    use fastbus_wire::names::ObjectPath;
    use fastbus_wire::{Array, Encode, Message, Signature, Value, ValueRef};

    /// The `PropertiesChanged` body as fastbus takes it for encoding.
    pub(crate) type SignalBody<'a> = (&'a str, HashMap<&'a str, Value>, Vec<&'a str>);

    /// The `PropertiesChanged` body as fastbus decodes it: strings, object paths and the `ay`
    /// borrowed from the message, as zbus's `Variant<'_>` borrows its strings (zbus's `ay` is
    /// a `Vec` of one `Variant::U8` per byte; ours one slice).
    pub(crate) type SignalBodyRef<'a> = (&'a str, HashMap<&'a str, ValueRef<'a>>, Vec<&'a str>);

    /// The body values of case a (built outside the timed loop).
    pub(crate) fn signal_body() -> SignalBody<'static> {
        let uuid = PROP_UUID_VALUE.iter().map(|&b| Value::Byte(b)).collect();
        let uuid = Array::new(Signature::new("y").unwrap().into_owned(), uuid).unwrap();
        let mut props = HashMap::new();
        props.insert(PROP_NAME, Value::from(PROP_NAME_VALUE));
        props.insert(PROP_COUNT, Value::from(PROP_COUNT_VALUE));
        props.insert(PROP_ACTIVE, Value::from(PROP_ACTIVE_VALUE));
        props.insert(PROP_UUID, Value::Array(uuid));
        props.insert(
            PROP_PARENT,
            Value::from(ObjectPath::new(PROP_PARENT_VALUE).unwrap()),
        );
        (CHANGED_INTERFACE, props, vec![INVALIDATED])
    }

    /// Case a: build and encode the signal.
    pub(crate) fn signal(body: &SignalBody<'_>) -> Vec<u8> {
        Message::signal(SIGNAL_PATH, SIGNAL_INTERFACE, SIGNAL_MEMBER)
            .serial(1)
            .body(body)
            .build()
            .unwrap()
            .encode()
            .unwrap()
    }

    /// Case b: build and encode the method call.
    pub(crate) fn call(body: &(&str, u32, bool)) -> Vec<u8> {
        Message::method_call(CALL_PATH, CALL_MEMBER)
            .interface(CALL_INTERFACE)
            .destination(CALL_DESTINATION)
            .serial(1)
            .body(body)
            .build()
            .unwrap()
            .encode()
            .unwrap()
    }

    /// Cases c and d: build and encode a method call carrying one big array.
    pub(crate) fn bulk<B: Encode + ?Sized>(body: &B) -> Vec<u8> {
        Message::method_call(BULK_PATH, BULK_MEMBER)
            .interface(BULK_INTERFACE)
            .serial(1)
            .body(body)
            .build()
            .unwrap()
            .encode()
            .unwrap()
    }

    /// Decode one whole message (header and body validated) from shared bytes.
    pub(crate) fn decode(bytes: Bytes) -> fastbus_wire::Result<Message> {
        Message::decode(bytes)
    }

    /// Case a decoded to typed values.
    pub(crate) fn decode_signal_body(msg: &Message) -> fastbus_wire::Result<Changed> {
        let decoded: SignalBodyRef<'_> = msg.body()?;
        Ok(changed(&decoded))
    }

    /// Case b decoded; the owned string makes the result outlive the message.
    pub(crate) fn decode_call_body(msg: &Message) -> fastbus_wire::Result<(String, u32, bool)> {
        let (s, u, b): (&str, u32, bool) = msg.body()?;
        Ok((s.to_owned(), u, b))
    }

    /// Convert one decoded property value to the neutral form.
    fn prop(value: &ValueRef<'_>) -> Prop {
        match value {
            ValueRef::Str(s) => Prop::Str((*s).to_owned()),
            ValueRef::U32(n) => Prop::U32(*n),
            ValueRef::Bool(b) => Prop::Bool(*b),
            ValueRef::ObjectPath(p) => Prop::Path(p.as_str().to_owned()),
            ValueRef::Array(a) => Prop::Bytes(
                a.iter()
                    .map(|v| match v {
                        ValueRef::Byte(b) => b,
                        other => panic!("unexpected array element {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("unexpected property value {other:?}"),
        }
    }

    /// Convert a decoded case-a body to the neutral form.
    fn changed(body: &SignalBodyRef<'_>) -> Changed {
        let mut props: Vec<(String, Prop)> = body
            .1
            .iter()
            .map(|(k, v)| ((*k).to_owned(), prop(v)))
            .collect();
        props.sort();
        (
            body.0.to_owned(),
            props,
            body.2.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    /// Check that `(path, member)` of a decoded message are the expected ones.
    pub(crate) fn header_is(msg: &Message, path: &str, member: &str) -> bool {
        msg.path().is_some_and(|p| p.as_str() == path)
            && msg.member().is_some_and(|m| m.as_str() == member)
    }
}

/// Case a: `PropertiesChanged`, `sa{sv}as`, five properties, one invalidated name.
fn properties_changed(c: &mut Criterion) {
    let zbody = zb::signal_body();
    let fbody = fb::signal_body();
    let zbytes = zb::bytes(&zb::signal(&zbody));
    let fbytes = fb::signal(&fbody);
    let shared = Bytes::from(zbytes.clone());

    // Checked once, outside the timed loops: both decoders read both encodings right.
    for bytes in [&zbytes, &fbytes] {
        let zmsg = zb::decode(&mut bytes.clone()).unwrap();
        assert!(zb::header_is(&zmsg, SIGNAL_PATH, SIGNAL_MEMBER));
        assert_eq!(zb::decode_signal_body(&zmsg).unwrap(), expected_changed());
        let fmsg = fb::decode(Bytes::from(bytes.clone())).unwrap();
        assert!(fb::header_is(&fmsg, SIGNAL_PATH, SIGNAL_MEMBER));
        assert_eq!(fb::decode_signal_body(&fmsg).unwrap(), expected_changed());
    }
    println!(
        "case a: zbus message {} bytes, fastbus message {} bytes",
        zbytes.len(),
        fbytes.len()
    );

    let mut g = c.benchmark_group("a_properties_changed_encode");
    g.bench_function("zbus", |b| b.iter(|| zb::signal(black_box(&zbody))));
    g.bench_function("fastbus", |b| b.iter(|| fb::signal(black_box(&fbody))));
    g.finish();

    let mut g = c.benchmark_group("a_properties_changed_decode");
    g.bench_function("zbus", |b| {
        b.iter_batched_ref(
            || zbytes.clone(),
            |buf| {
                let msg = zb::decode(buf).unwrap();
                black_box(msg.header().member().is_some());
                let body = msg.body();
                let decoded: zb::SignalBody<'_> = body.deserialize().unwrap();
                black_box(&decoded);
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("fastbus", |b| {
        b.iter(|| {
            let msg = fb::decode(black_box(&shared).clone()).unwrap();
            black_box(msg.member().is_some());
            let decoded: fb::SignalBodyRef<'_> = msg.body().unwrap();
            black_box(&decoded);
        })
    });
    g.finish();
}

/// Case b: a method call with body `(s u b)`.
fn method_call(c: &mut Criterion) {
    let zbytes = zb::bytes(&zb::call(&CALL_BODY));
    let fbytes = fb::call(&CALL_BODY);
    let shared = Bytes::from(zbytes.clone());
    let expected = (CALL_BODY.0.to_owned(), CALL_BODY.1, CALL_BODY.2);
    for bytes in [&zbytes, &fbytes] {
        let zmsg = zb::decode(&mut bytes.clone()).unwrap();
        assert!(zb::header_is(&zmsg, CALL_PATH, CALL_MEMBER));
        assert_eq!(zb::decode_call_body(&zmsg).unwrap(), expected);
        let fmsg = fb::decode(Bytes::from(bytes.clone())).unwrap();
        assert!(fb::header_is(&fmsg, CALL_PATH, CALL_MEMBER));
        assert_eq!(fb::decode_call_body(&fmsg).unwrap(), expected);
    }
    println!(
        "case b: zbus message {} bytes, fastbus message {} bytes",
        zbytes.len(),
        fbytes.len()
    );

    let mut g = c.benchmark_group("b_method_call_encode");
    g.bench_function("zbus", |b| b.iter(|| zb::call(black_box(&CALL_BODY))));
    g.bench_function("fastbus", |b| b.iter(|| fb::call(black_box(&CALL_BODY))));
    g.finish();

    let mut g = c.benchmark_group("b_method_call_decode");
    g.bench_function("zbus", |b| {
        b.iter_batched_ref(
            || zbytes.clone(),
            |buf| {
                let msg = zb::decode(buf).unwrap();
                black_box(msg.header().member().is_some());
                let body = msg.body();
                let decoded: (&str, u32, bool) = body.deserialize().unwrap();
                black_box(decoded);
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("fastbus", |b| {
        b.iter(|| {
            let msg = fb::decode(black_box(&shared).clone()).unwrap();
            black_box(msg.member().is_some());
            let decoded: (&str, u32, bool) = msg.body().unwrap();
            black_box(decoded);
        })
    });
    g.finish();
}

/// Case c: `ay` of 1 MiB, with memcpy baselines in the decode group.
fn byte_array(c: &mut Criterion) {
    let data = blob();
    let zmsg = zb::bulk(&data.as_slice());
    let zbytes = zb::bytes(&zmsg);
    let fbytes = fb::bulk(data.as_slice());
    let shared = Bytes::from(zbytes.clone());
    let fmsg = fb::decode(shared.clone()).unwrap();
    for bytes in [&zbytes, &fbytes] {
        let zm = zb::decode(&mut bytes.clone()).unwrap();
        let body = zm.body();
        let borrowed: &[u8] = body.deserialize().unwrap();
        assert_eq!(borrowed, data.as_slice());
        let owned: Vec<u8> = body.deserialize().unwrap();
        assert_eq!(owned, data);
        let fm = fb::decode(Bytes::from(bytes.clone())).unwrap();
        assert_eq!(fm.body::<&[u8]>().unwrap(), data.as_slice());
        assert_eq!(fm.body::<Vec<u8>>().unwrap(), data);
    }

    let mut g = c.benchmark_group("c_byte_array_1mib_decode");
    g.sample_size(20);
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("memcpy_to_new_vec", |b| {
        b.iter(|| black_box(&data).to_vec())
    });
    let mut dst = vec![1u8; BLOB_LEN];
    g.bench_function("memcpy_into_existing", |b| {
        b.iter(|| dst.copy_from_slice(black_box(&data)))
    });
    g.bench_function("zbus_borrowed", |b| {
        b.iter_batched_ref(
            || zbytes.clone(),
            |buf| {
                let msg = zb::decode(buf).unwrap();
                let body = msg.body();
                let v: &[u8] = body.deserialize().unwrap();
                black_box(v.len());
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("fastbus_borrowed", |b| {
        b.iter(|| {
            let msg = fb::decode(black_box(&shared).clone()).unwrap();
            let v: &[u8] = msg.body().unwrap();
            black_box(v.len());
        })
    });
    g.bench_function("zbus_owned", |b| {
        b.iter_batched_ref(
            || zbytes.clone(),
            |buf| {
                let msg = zb::decode(buf).unwrap();
                let v: Vec<u8> = msg.body().deserialize().unwrap();
                v
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("fastbus_owned", |b| {
        b.iter(|| {
            let msg = fb::decode(black_box(&shared).clone()).unwrap();
            let v: Vec<u8> = msg.body().unwrap();
            v
        })
    });
    g.bench_function("zbus_body_only_borrowed", |b| {
        b.iter(|| {
            let body = zmsg.body();
            let v: &[u8] = body.deserialize().unwrap();
            black_box(v.len());
        })
    });
    g.bench_function("fastbus_body_only_borrowed", |b| {
        b.iter(|| {
            let v: &[u8] = black_box(&fmsg).body().unwrap();
            black_box(v.len());
        })
    });
    g.finish();

    let mut g = c.benchmark_group("c_byte_array_1mib_encode");
    g.sample_size(20);
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("zbus", |b| b.iter(|| zb::bulk(&black_box(data.as_slice()))));
    g.bench_function("fastbus", |b| {
        b.iter(|| fb::bulk(black_box(data.as_slice())))
    });
    g.finish();
}

/// Case d: `a(ii)` of 100,000 elements.
fn struct_array(c: &mut Criterion) {
    let data = pairs();
    let zbytes = zb::bytes(&zb::bulk(&data));
    let fbytes = fb::bulk(&data);
    let shared = Bytes::from(zbytes.clone());
    for bytes in [&zbytes, &fbytes] {
        let zm = zb::decode(&mut bytes.clone()).unwrap();
        let decoded: Vec<(i32, i32)> = zm.body().deserialize().unwrap();
        assert_eq!(decoded, data);
        let fm = fb::decode(Bytes::from(bytes.clone())).unwrap();
        assert_eq!(fm.body::<Vec<(i32, i32)>>().unwrap(), data);
    }

    let mut g = c.benchmark_group("d_struct_array_100k_encode");
    g.sample_size(20);
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("zbus", |b| b.iter(|| zb::bulk(black_box(&data))));
    g.bench_function("fastbus", |b| b.iter(|| fb::bulk(black_box(&data))));
    g.finish();

    let mut g = c.benchmark_group("d_struct_array_100k_decode");
    g.sample_size(20);
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("zbus", |b| {
        b.iter_batched_ref(
            || zbytes.clone(),
            |buf| {
                let msg = zb::decode(buf).unwrap();
                let v: Vec<(i32, i32)> = msg.body().deserialize().unwrap();
                v
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("fastbus", |b| {
        b.iter(|| {
            let msg = fb::decode(black_box(&shared).clone()).unwrap();
            let v: Vec<(i32, i32)> = msg.body().unwrap();
            v
        })
    });
    g.finish();
}

criterion_group!(
    codec,
    properties_changed,
    method_call,
    byte_array,
    struct_array
);

/// One operation of cases a and b, `n` times, outside criterion: for instruction counts with
/// `valgrind --tool=callgrind`, which are repeatable on a loaded machine where times are not.
/// `FASTBUS_CODEC_OP=<side>_<case>_<op>[:n]`, side `zbus` or `fastbus`, case `pc` (a) or
/// `call` (b), op `encode` or `decode`; `n` defaults to 10,000. Subtract the count of
/// `<side>_none` (set-up only) and divide by `n` for instructions per operation; for the zbus
/// decodes, also subtract `zbus_<case>_clone` (the copy of the input each iteration makes).
fn count_instructions(spec: &str) {
    let (op, n) = match spec.split_once(':') {
        Some((op, n)) => (op, n.parse().expect("FASTBUS_CODEC_OP count")),
        None => (spec, 10_000usize),
    };
    let zbody = zb::signal_body();
    let fbody = fb::signal_body();
    let zpc = zb::bytes(&zb::signal(&zbody));
    let zcall = zb::bytes(&zb::call(&CALL_BODY));
    let (fpc, fcall) = (Bytes::from(zpc.clone()), Bytes::from(zcall.clone()));
    // The operation is chosen once, so the loop times it and nothing else (a `match` on the
    // name in the loop would compare strings every iteration).
    let run: Box<dyn Fn() + '_> = match op {
        "zbus_none" | "fastbus_none" => Box::new(|| {}),
        // The buffer copy that the zbus decode loop makes before each decode.
        "zbus_pc_clone" => Box::new(|| drop(black_box(zpc.clone()))),
        "zbus_call_clone" => Box::new(|| drop(black_box(zcall.clone()))),
        "zbus_pc_encode" => Box::new(|| drop(black_box(zb::signal(black_box(&zbody))))),
        "fastbus_pc_encode" => Box::new(|| drop(black_box(fb::signal(black_box(&fbody))))),
        "zbus_call_encode" => Box::new(|| drop(black_box(zb::call(black_box(&CALL_BODY))))),
        "fastbus_call_encode" => Box::new(|| drop(black_box(fb::call(black_box(&CALL_BODY))))),
        "zbus_pc_decode" => Box::new(|| {
            let mut buf = zpc.clone();
            let msg = zb::decode(&mut buf).unwrap();
            black_box(msg.header().member().is_some());
            let body = msg.body();
            let decoded: zb::SignalBody<'_> = body.deserialize().unwrap();
            black_box(&decoded);
        }),
        "zbus_call_decode" => Box::new(|| {
            let mut buf = zcall.clone();
            let msg = zb::decode(&mut buf).unwrap();
            black_box(msg.header().member().is_some());
            let body = msg.body();
            let decoded: (&str, u32, bool) = body.deserialize().unwrap();
            black_box(decoded);
        }),
        "fastbus_pc_decode" => Box::new(|| {
            let msg = fb::decode(black_box(&fpc).clone()).unwrap();
            black_box(msg.member().is_some());
            let decoded: fb::SignalBodyRef<'_> = msg.body().unwrap();
            black_box(&decoded);
        }),
        "fastbus_call_decode" => Box::new(|| {
            let msg = fb::decode(black_box(&fcall).clone()).unwrap();
            black_box(msg.member().is_some());
            let decoded: (&str, u32, bool) = msg.body().unwrap();
            black_box(decoded);
        }),
        other => panic!("unknown FASTBUS_CODEC_OP {other:?}"),
    };
    for _ in 0..n {
        run();
    }
}

fn main() {
    if let Ok(spec) = std::env::var("FASTBUS_CODEC_OP") {
        return count_instructions(&spec);
    }
    codec();
    Criterion::default().configure_from_args().final_summary();
}

//! Bytes -> value decoder against fixed signatures (as zbus's `zvariant` fuzz target does), in
//! both byte orders: never panics; what decodes re-encodes to the same bytes.
#![no_main]

use fastbus_wire::{Decoder, Encoder, Endian, Signature, Value};
use libfuzzer_sys::fuzz_target;

const SIGNATURES: [&str; 8] = [
    "sa{sv}as",
    "(sub)",
    "ay",
    "a(ii)",
    "v",
    "a{oa{sa{sv}}}",
    "(ybnqiuxtdsogh)",
    "aav",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let sig = Signature::new(SIGNATURES[usize::from(selector) % SIGNATURES.len()])
        .expect("a valid signature");
    let endian = if selector & 0x80 != 0 {
        Endian::Big
    } else {
        Endian::Little
    };
    let mut dec = Decoder::new(body, endian, 4);
    let Ok(values) = Value::decode_all(&mut dec, &sig) else {
        return;
    };
    if dec.finish().is_err() {
        return;
    }
    let mut enc = Encoder::new(endian);
    Value::encode_all(&mut enc, &values).expect("decoded values re-encode");
    assert_eq!(&enc.into_inner()[..], body, "re-encoding changed the bytes");
});

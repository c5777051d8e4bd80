//! Bytes -> message -> re-encode -> decode gives the same message, and nothing panics.
#![no_main]

use bytes::Bytes;
use fastbus_wire::{Message, frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    if let Ok(msg) = Message::decode(Bytes::copy_from_slice(data)) {
        let _ = msg.body_values();
        let again = msg.encode().expect("a decoded message re-encodes");
        let back = Message::decode(Bytes::from(again)).expect("a re-encoded message decodes");
        assert_eq!(back, msg);
    }
});

//! Bytes -> message -> re-encode -> decode gives the same message, and nothing panics.
//!
//! "The same message" is checked on the bytes: re-encoding the re-decoded message gives exactly
//! the bytes of the first re-encoding (a comparison of values would fail on a NaN double in an
//! unknown header field, which is not equal to itself), and the header fields are compared too.
#![no_main]

use bytes::Bytes;
use fastbus_wire::{Message, frame_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Framing must agree with decoding: whatever decodes was framed to exactly its length.
    let framed = frame_len(data);
    let Ok(msg) = Message::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    assert_eq!(
        framed.ok().flatten(),
        Some(data.len()),
        "frame_len disagrees"
    );
    // Reading the body may fail only on `h` indexes past UNIX_FDS; it must never panic.
    let _ = msg.body_values();
    let again = msg.encode().expect("a decoded message re-encodes");
    assert_eq!(frame_len(&again).ok().flatten(), Some(again.len()));
    let back = Message::decode(Bytes::from(again.clone())).expect("a re-encoded message decodes");
    assert_eq!(back.encode().expect("re-encodes again"), again);
    assert_eq!(back.message_type(), msg.message_type());
    assert_eq!(back.flags(), msg.flags());
    assert_eq!(back.serial(), msg.serial());
    assert_eq!(back.path(), msg.path());
    assert_eq!(back.interface(), msg.interface());
    assert_eq!(back.member(), msg.member());
    assert_eq!(back.error_name(), msg.error_name());
    assert_eq!(back.reply_serial(), msg.reply_serial());
    assert_eq!(back.destination(), msg.destination());
    assert_eq!(back.sender(), msg.sender());
    assert_eq!(back.signature(), msg.signature());
    assert_eq!(back.unix_fds(), msg.unix_fds());
    assert_eq!(back.body_bytes(), msg.body_bytes());
});

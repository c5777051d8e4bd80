//! Bytes -> signature parser: never panics; a valid signature prints back to itself.
#![no_main]

use fastbus_wire::Signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(sig) = Signature::new(s) {
            let printed: String = sig.types().iter().map(|t| t.to_string()).collect();
            assert_eq!(printed, s);
        }
    }
});

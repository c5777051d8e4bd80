//! Bytes -> match-rule parser (as sd-bus `fuzz-bus-match` does): never panics; a rule that
//! parses prints as text that parses back to the same rule and prints the same again.
#![no_main]

use fastbus_wire::MatchRule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rule) = MatchRule::parse(text) else {
        return;
    };
    let printed = rule.to_string();
    // Printing may quote more than the input did, which can push it past the 1024-byte cap.
    if printed.len() <= 1024 {
        let back = MatchRule::parse(&printed).expect("a printed rule parses");
        assert_eq!(back, rule);
        assert_eq!(back.to_string(), printed);
    }
});

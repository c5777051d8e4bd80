//! Mutation tests of the auth state machines: random lines and random bytes,
//! fed in random pieces, never panic, never grow without bound, and a
//! conversation that is cut anywhere gives the same result.

use std::sync::Arc;

use bytes::BytesMut;
use fastbus_transport::Credentials;
use fastbus_transport::auth::{ClientAuth, ClientOptions, Mechanism, ServerAuth};
use proptest::prelude::*;

use crate::auth_server::config;

fn server() -> ServerAuth {
    let mut c = config(&[Mechanism::External, Mechanism::Anonymous]);
    c.max_line = 512;
    ServerAuth::new(Arc::new(c), Some(Credentials::from_uid(1000)), true)
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"AUTH\r\n".to_vec()),
        Just(b"AUTH EXTERNAL 31303030\r\n".to_vec()),
        Just(b"AUTH EXTERNAL\r\n".to_vec()),
        Just(b"AUTH ANONYMOUS\r\n".to_vec()),
        Just(b"DATA\r\n".to_vec()),
        Just(b"DATA 31303030\r\n".to_vec()),
        Just(b"CANCEL\r\n".to_vec()),
        Just(b"ERROR\r\n".to_vec()),
        Just(b"BEGIN\r\n".to_vec()),
        Just(b"NEGOTIATE_UNIX_FD\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        "[A-Z_ ]{0,20}\r\n".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn server_never_panics_on_random_lines(lines in proptest::collection::vec(line(), 0..20), cuts in proptest::collection::vec(1usize..40, 1..10)) {
        let mut s = server();
        let mut all = vec![0u8];
        for l in &lines { all.extend_from_slice(l); }
        let mut input = BytesMut::new();
        let mut out = Vec::new();
        let mut pos = 0;
        let mut ci = 0;
        while pos < all.len() {
            let n = cuts[ci % cuts.len()].min(all.len() - pos);
            ci += 1;
            input.extend_from_slice(&all[pos..pos + n]);
            pos += n;
            match s.feed(&mut input, &mut out) {
                Ok(None) => prop_assert!(input.len() <= 512, "unterminated input stays under the cap"),
                Ok(Some(_)) | Err(_) => break,
            }
        }
        // Every reply is a well-formed line.
        for l in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            prop_assert!(l.ends_with(b"\r"));
            prop_assert!(l.is_ascii());
        }
    }

    #[test]
    fn server_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut s = server();
        let mut input = BytesMut::from(&bytes[..]);
        let mut out = Vec::new();
        let _ = s.feed(&mut input, &mut out);
    }

    #[test]
    fn client_never_panics_on_random_server_lines(lines in proptest::collection::vec(line(), 0..20)) {
        let mut c = ClientAuth::new(&ClientOptions::default(), true, true, None);
        let mut out = Vec::new();
        c.start(&mut out).unwrap();
        let mut input = BytesMut::new();
        for l in lines {
            input.extend_from_slice(&l);
            match c.feed(&mut input, &mut out) {
                Ok(None) => {}
                _ => break,
            }
        }
    }
}

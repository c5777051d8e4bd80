//! Mutation tests of the auth state machines: random lines and random bytes,
//! fed in random pieces, never panic and never buffer more than the line cap.
//! (That a conversation cut anywhere gives the same result is a unit test of
//! the server, `bytes_split_anywhere_give_the_same_result`.)

use std::sync::Arc;

use bytes::BytesMut;
use fastbus_transport::Credentials;
use fastbus_transport::auth::{ClientAuth, ClientOptions, Mechanism, ServerAuth};
use proptest::prelude::*;

use crate::auth_server::config;

fn server() -> ServerAuth {
    let mut c = config(&[
        Mechanism::External,
        Mechanism::CookieSha1,
        Mechanism::Anonymous,
    ]);
    c.max_line = 512;
    // Not our uid: a cookie attempt is refused before any keyring is touched.
    c.own_uid = 4_000_000;
    ServerAuth::new(Arc::new(c), Some(Credentials::from_uid(1000)), true)
}

/// Feeds `all` in pieces of the sizes in `cuts` (cycled) and checks what must always hold.
fn feed_in_pieces(all: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut s = server();
    let mut input = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut ci = 0;
    while pos < all.len() {
        let n = cuts[ci % cuts.len()].clamp(1, all.len() - pos);
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
    Ok(())
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
    ]
}

fn apply(mut v: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match *e {
            Edit::Flip(i, b) if !v.is_empty() => {
                let i = i % v.len();
                v[i] ^= b | 1;
            }
            Edit::Insert(i, b) => {
                let i = i % (v.len() + 1);
                v.insert(i, b);
            }
            Edit::Delete(i) if !v.is_empty() => {
                let i = i % v.len();
                v.remove(i);
            }
            _ => {}
        }
    }
    v
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
        Just(b"AUTH DBUS_COOKIE_SHA1 31303030\r\n".to_vec()),
        "DATA [0-9a-fA-F]{0,40}\r\n".prop_map(String::into_bytes),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        "[A-Z_ ]{0,20}\r\n".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

/// Modest by default so the suite stays fast; `FASTBUS_PROPTEST_CASES=100000` for a long run.
fn cases() -> u32 {
    std::env::var("FASTBUS_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn server_never_panics_on_random_lines(lines in proptest::collection::vec(line(), 0..20), cuts in proptest::collection::vec(1usize..40, 1..10)) {
        let mut all = vec![0u8];
        for l in &lines { all.extend_from_slice(l); }
        feed_in_pieces(&all, &cuts)?;
    }

    #[test]
    fn server_never_panics_on_mutated_conversations(
        base in prop_oneof![
            Just(&b"\0AUTH EXTERNAL 31303030\r\nNEGOTIATE_UNIX_FD\r\nBEGIN\r\nl\x01\0\x01"[..]),
            Just(&b"\0AUTH EXTERNAL\r\nDATA\r\nBEGIN\r\n"[..]),
            Just(&b"\0AUTH\r\nAUTH ANONYMOUS 74657374\r\nCANCEL\r\nAUTH ANONYMOUS\r\nBEGIN\r\n"[..]),
            Just(&b"\0AUTH DBUS_COOKIE_SHA1 31303030\r\nDATA 6162\r\nERROR\r\n"[..]),
        ],
        edits in proptest::collection::vec(edit(), 1..8),
        cuts in proptest::collection::vec(1usize..40, 1..10),
    ) {
        feed_in_pieces(&apply(base.to_vec(), &edits), &cuts)?;
    }

    #[test]
    fn server_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), nul in any::<bool>()) {
        let mut s = server();
        let mut input = BytesMut::new();
        if nul {
            input.extend_from_slice(b"\0");
        }
        input.extend_from_slice(&bytes);
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

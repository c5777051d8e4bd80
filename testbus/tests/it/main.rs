//! End-to-end tests of fastbus-testbus (one test binary, modules below).

mod api;
mod binary;
mod clients;
mod conformance;
mod harness;
mod model;
mod security;

/// The README's quickstart, run as a test so that CI catches breakage.
#[path = "../../examples/quickstart.rs"]
#[allow(dead_code)] // its main() is for `cargo run --example quickstart` only
mod quickstart;

#[tokio::test]
async fn the_quickstart_runs_and_tells_what_happened() {
    let mut out = Vec::new();
    crate::harness::within("the quickstart", quickstart::run(&mut out))
        .await
        .expect("the quickstart succeeds");
    let text = String::from_utf8(out).expect("utf-8");
    for want in [
        "started a bus in this process",
        "owns org.example.Greeter",
        "got \"Hello, world!\"",
        "Greeted(\"world\", 1)",
        "the property Greetings = 1",
        "done",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

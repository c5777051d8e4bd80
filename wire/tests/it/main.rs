//! The end-to-end tests of `fastbus-wire`, in one test binary (one link on a 2-core machine
//! instead of one per file):
//!
//! - [`conformance`]: every numbered case of `shared/conformance/wire.md` and the codec rows of
//!   `shared/conformance/security.md`, in both byte orders, framed whole, 1 and 2 bytes at a time;
//! - [`typed`]: the `Type` / `Encode` / `Decode` implementations of Rust types (constants,
//!   tuples, maps, typed against dynamic encoding) and `Value`'s `Display`;
//! - [`roundtrip`]: captured real messages, proptest round trips, the mutation test;
//! - [`examples`]: the command-line contract of the `decode` and `encode` examples;
//! - [`match_rule_daemon`]: match rules against a private dbus-daemon;
//! - [`introspection`]: real introspection documents, errors, GLib and dbus-fast reading ours.
//!
//! Heavy counts read environment variables: `FASTBUS_PROPTEST_CASES` (proptest cases),
//! `FASTBUS_MUTATION_CASES` (the mutation test; CI sets 100,000), `FASTBUS_SLOW_TESTS=1` (the
//! 64 and 128 MiB boundary tests).

/// The JSON form of messages shared with the `decode` and `encode` examples.
#[path = "../../examples/json/mod.rs"]
mod json;

mod conformance;
mod examples;
mod introspection;
mod match_rule_daemon;
mod roundtrip;
mod typed;

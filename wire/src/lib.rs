//! The D-Bus wire format: names, signatures, values, messages and framing.
//!
//! This crate does no I/O and knows no async runtime: every function takes
//! bytes and returns values or an error, so it can be tested, fuzzed and
//! benchmarked on its own.

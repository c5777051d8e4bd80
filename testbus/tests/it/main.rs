//! End-to-end tests of fastbus-testbus (one test binary, modules below).

mod conformance;
mod harness;

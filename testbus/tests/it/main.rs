//! End-to-end tests of fastbus-testbus (one test binary, modules below).

mod api;
mod clients;
mod conformance;
mod harness;
mod model;
mod security;

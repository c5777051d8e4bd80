//! Conformance tests of the wire codec: every numbered case (1-56) of
//! `shared/conformance/wire.md`, section 1.7, and the codec rows of `conformance/security.md`
//! (CVE-2008-3834, CVE-2009-1189, CVE-2010-4352, CVE-2011-2200, CVE-2022-42010/42011/42012, the
//! zbus notes).
//!
//! Every case runs in both byte orders. Malformed messages are written byte by byte
//! ([`support::RawMsg`]) so that each case changes exactly one thing in an otherwise valid
//! message; every rejection asserts the specific [`fastbus_wire::ErrorKind`] (and the byte offset
//! where it means something). Where framing is involved, messages also go through a stream reader
//! ([`support::StreamReader`]) fed whole, one byte and two bytes at a time, which checks that a
//! rejected message drops the connection and that an accepted one lets the next message through.
//!
//! Decisions recorded here (wire.md asks for them):
//! - Duplicate *known* header fields are rejected; duplicate *unknown* ones are kept, both of them
//!   (case 18, `fields::accepts_unknown_header_field_appearing_twice`).
//! - REPLY_SERIAL on a signal or method call is accepted and kept, as the spec says (sd-bus
//!   rejects it) (case 24).
//! - Unique names: we produce only the spec's form (`:1.5`), and accept libdbus's lenient forms
//!   `:`, `:0`, `:a` in SENDER and DESTINATION of received messages (case 26 and 54).
//! - Duplicate dict keys: typed maps keep the last value; `Value::Dict` keeps every entry in wire
//!   order and `Dict::get` finds the first (case 51).
//! - Fewer fds than UNIX_FDS: the wire layer only exposes both counts; the transport enforces
//!   the rule (case 28). A `h` index past the fds fails when it is read (case 29).
//!
//! The slow boundary tests (cases 9, 44 and 53 with 64 and 128 MiB buffers) run only with
//! `FASTBUS_SLOW_TESTS=1`.

mod fields;
mod framing;
mod names;
mod security;
mod signatures;
mod support;
mod values;

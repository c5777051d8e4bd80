//! The D-Bus wire format: names, signatures, values, messages, framing, match rules and
//! introspection data.
//!
//! This crate does no I/O and knows no async runtime: every function takes bytes and returns
//! values or an error, so it can be tested, fuzzed and benchmarked on its own. Sockets,
//! authentication and connections live in `fastbus-transport` and `fastbus`.
//!
//! - [`names`]: validated bus, interface, member and error names and object paths.
//! - [`Signature`], [`SignatureType`] and the [`Type`] trait: signatures, parsed and checked.
//! - [`Encode`] / [`Decode`]: typed values; [`Value`]: dynamic values; [`ValueRef`]: dynamic
//!   values that borrow from the message.
//! - [`Message`]: header, builders, `encode`, validating `decode`; [`frame_len`] for streams.
//! - [`match_rule`]: match rules ([`MatchRule`]): parse, build, print, match messages.
//! - `introspection` (feature `xml`, on by default): introspection data, parsed from and written
//!   to XML, and the standard interfaces.
//!
//! ```
//! use bytes::Bytes;
//! use fastbus_wire::{Message, Value};
//! use std::collections::HashMap;
//!
//! let call = Message::method_call("/org/example/Thing", "SetProps")
//!     .interface("org.example.Thing")
//!     .destination("org.example.Service")
//!     .serial(1)
//!     .body(&("name", HashMap::from([("volume".to_owned(), Value::U32(11))])))
//!     .build()?;
//! let bytes = call.encode()?;
//! let back = Message::decode(Bytes::from(bytes))?;
//! let (name, props): (&str, HashMap<&str, Value>) = back.body()?; // borrows from the message
//! assert_eq!((name, &props["volume"]), ("name", &Value::U32(11)));
//! # Ok::<(), fastbus_wire::Error>(())
//! ```

mod codec;
mod error;
#[cfg(feature = "xml")]
pub mod introspection;
pub mod match_rule;
mod message;
pub mod names;
mod signature;
mod validate;
mod value;
mod value_ref;

/// How many cases the unit-test proptests run: `default`, or `FASTBUS_PROPTEST_CASES` when set
/// (CI and long runs raise it).
#[cfg(test)]
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("FASTBUS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub use codec::{
    Decode, Decoder, Encode, Encoder, Endian, Fd, MAX_ARRAY_LEN, Variant, from_bytes, to_bytes,
};
pub use error::{Error, ErrorKind, Result};
pub use match_rule::{MatchContext, MatchRule, MatchRuleBuilder, MessageArgs};
pub use message::{
    FIXED_HEADER_LEN, Flags, HeaderField, LOCAL_INTERFACE, LOCAL_PATH, MAX_MESSAGE_LEN, Message,
    MessageBuilder, MessageType, frame_len,
};
pub use names::{
    BusName, ErrorName, InterfaceName, MemberName, ObjectPath, UniqueName, WellKnownName,
};
pub use signature::{
    ConstSignature, MAX_ARRAY_DEPTH, MAX_SIGNATURE_LEN, MAX_STRUCT_DEPTH, MAX_TOTAL_DEPTH,
    Signature, SignatureType, Type,
};
pub use value::{Array, Dict, Value};
pub use value_ref::{ArrayRef, DictRef, ValueRef};

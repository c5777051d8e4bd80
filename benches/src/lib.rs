//! Shared fixtures for the fastbus codec benchmarks (`benches/codec.rs`).
//!
//! The benchmarks time zbus 6 and fastbus side by side on the same message
//! content; this crate holds that content, once, so both sides cannot drift
//! apart, plus a library-neutral form ([`Prop`]) that each side's decoded
//! values are converted to and compared against before anything is timed.
//! It does no encoding or decoding itself and is not published.

/// Object path of the `PropertiesChanged` signal (case a).
pub const SIGNAL_PATH: &str = "/org/example/Device/7";
/// Interface of the `PropertiesChanged` signal (case a).
pub const SIGNAL_INTERFACE: &str = "org.freedesktop.DBus.Properties";
/// Member of the signal (case a).
pub const SIGNAL_MEMBER: &str = "PropertiesChanged";
/// First body argument of the signal: the interface whose properties changed.
pub const CHANGED_INTERFACE: &str = "org.example.Device1";
/// The one invalidated property name of the signal (third argument, `as`).
pub const INVALIDATED: &str = "Firmware";

/// Name of the string property (case a).
pub const PROP_NAME: &str = "Name";
/// Value of the string property.
pub const PROP_NAME_VALUE: &str = "Living room thermostat";
/// Name of the `u32` property.
pub const PROP_COUNT: &str = "Count";
/// Value of the `u32` property.
pub const PROP_COUNT_VALUE: u32 = 4_242;
/// Name of the `bool` property.
pub const PROP_ACTIVE: &str = "Active";
/// Value of the `bool` property.
pub const PROP_ACTIVE_VALUE: bool = true;
/// Name of the 16-byte `ay` property.
pub const PROP_UUID: &str = "Uuid";
/// Value of the 16-byte `ay` property.
pub const PROP_UUID_VALUE: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];
/// Name of the object-path property.
pub const PROP_PARENT: &str = "Parent";
/// Value of the object-path property.
pub const PROP_PARENT_VALUE: &str = "/org/example/Hub/1";

/// Object path of the method call (case b).
pub const CALL_PATH: &str = "/org/example/Calculator";
/// Interface of the method call (case b).
pub const CALL_INTERFACE: &str = "org.example.Calculator1";
/// Member of the method call (case b).
pub const CALL_MEMBER: &str = "Compute";
/// Destination of the method call (case b).
pub const CALL_DESTINATION: &str = "org.example.Calculator";
/// Body of the method call, signature `(sub)`: a string, a `u32` and a `bool`.
pub const CALL_BODY: (&str, u32, bool) = ("the quick brown fox", 1_000_000, true);

/// Object path used by the bulk-array messages (cases c and d).
pub const BULK_PATH: &str = "/org/example/Bulk";
/// Interface used by the bulk-array messages (cases c and d).
pub const BULK_INTERFACE: &str = "org.example.Bulk1";
/// Member used by the bulk-array messages (cases c and d).
pub const BULK_MEMBER: &str = "Put";

/// Length of the `ay` body of case c: 1 MiB.
pub const BLOB_LEN: usize = 1 << 20;
/// Number of `(ii)` elements in the `a(ii)` body of case d.
pub const PAIRS_LEN: usize = 100_000;

/// The 1 MiB `ay` body of case c: a fixed, non-constant byte pattern.
pub fn blob() -> Vec<u8> {
    (0..BLOB_LEN)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}

/// The 100,000 `(ii)` elements of case d: fixed values covering negative numbers.
pub fn pairs() -> Vec<(i32, i32)> {
    (0..PAIRS_LEN as i32)
        .map(|i| (i.wrapping_mul(7919) - 50_000, -i))
        .collect()
}

/// One property value of the `PropertiesChanged` signal, in a form that
/// neither library owns, so that both sides' decoded values can be compared.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prop {
    /// A `s` value.
    Str(String),
    /// A `u` value.
    U32(u32),
    /// A `b` value.
    Bool(bool),
    /// An `ay` value.
    Bytes(Vec<u8>),
    /// An `o` value.
    Path(String),
}

/// The decoded content of the `PropertiesChanged` signal in neutral form:
/// interface name, properties sorted by name, invalidated names.
pub type Changed = (String, Vec<(String, Prop)>, Vec<String>);

/// The five properties of case a, sorted by name (dict order on the wire is
/// whatever the encoder chose, so comparisons sort first).
pub fn expected_props() -> Vec<(String, Prop)> {
    let mut props = vec![
        (PROP_NAME.to_owned(), Prop::Str(PROP_NAME_VALUE.to_owned())),
        (PROP_COUNT.to_owned(), Prop::U32(PROP_COUNT_VALUE)),
        (PROP_ACTIVE.to_owned(), Prop::Bool(PROP_ACTIVE_VALUE)),
        (PROP_UUID.to_owned(), Prop::Bytes(PROP_UUID_VALUE.to_vec())),
        (
            PROP_PARENT.to_owned(),
            Prop::Path(PROP_PARENT_VALUE.to_owned()),
        ),
    ];
    props.sort();
    props
}

/// The whole expected content of the case-a signal body in neutral form.
pub fn expected_changed() -> Changed {
    (
        CHANGED_INTERFACE.to_owned(),
        expected_props(),
        vec![INVALIDATED.to_owned()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_have_the_promised_sizes() {
        assert_eq!(blob().len(), BLOB_LEN);
        assert_eq!(pairs().len(), PAIRS_LEN);
        assert_eq!(expected_props().len(), 5);
        assert_eq!(PROP_UUID_VALUE.len(), 16);
    }

    #[test]
    fn blob_is_not_constant() {
        let b = blob();
        assert!(b.iter().any(|&x| x != b[0]));
    }
}

//! End-to-end tests of fastbus-transport (one binary, modules below).

mod auth_server;
mod connect;
mod dbus_daemon;
mod fds;
mod mutation;

use fastbus_wire::Message;

/// A `Hello` call with serial `serial`, encoded.
pub(crate) fn hello(serial: u32) -> Message {
    Message::method_call("/org/freedesktop/DBus", "Hello")
        .interface("org.freedesktop.DBus")
        .destination("org.freedesktop.DBus")
        .serial(serial)
        .build()
        .expect("a static Hello call builds")
}

/// The encoded bytes of `msg`.
pub(crate) fn encoded(msg: &Message) -> Vec<u8> {
    msg.encode().expect("test message encodes")
}

/// Our effective uid.
pub(crate) fn my_uid() -> u32 {
    fastbus_transport::Credentials::current_process()
        .uid
        .expect("own uid is known")
}

/// Lower-case hex.
pub(crate) fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

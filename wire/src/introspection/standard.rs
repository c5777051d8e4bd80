//! The standard interfaces of the specification ("Standard Interfaces") as ready-made
//! [`Interface`] values, with the argument names the specification uses, for the service layer
//! to add to every object it exports.
//!
//! These describe the interfaces; implementing them (answering `Get`, emitting
//! `PropertiesChanged`) is the service layer's job.

use std::borrow::Cow;

use super::{Annotation, Arg, ArgDirection, Interface, Method, Signal};
use crate::names::{InterfaceName, MemberName};
use crate::signature::Signature;

/// `org.freedesktop.DBus.Introspectable`.
pub const INTROSPECTABLE: &str = "org.freedesktop.DBus.Introspectable";
/// `org.freedesktop.DBus.Properties`.
pub const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
/// `org.freedesktop.DBus.Peer`.
pub const PEER: &str = "org.freedesktop.DBus.Peer";
/// `org.freedesktop.DBus.ObjectManager`.
pub const OBJECT_MANAGER: &str = "org.freedesktop.DBus.ObjectManager";

// Every name and type below is a literal checked by the tests (each interface is written and
// parsed back, which validates it), so they are wrapped without checking at run time.

fn interface(name: &'static str) -> Interface<'static> {
    Interface::new(InterfaceName::from_checked(name))
}

fn method(name: &'static str, args: Vec<Arg<'static>>) -> Method<'static> {
    Method {
        name: MemberName::from_checked(name),
        args,
        annotations: Vec::new(),
    }
}

fn signal(name: &'static str, args: Vec<Arg<'static>>) -> Signal<'static> {
    Signal {
        name: MemberName::from_checked(name),
        args,
        annotations: Vec::new(),
    }
}

fn arg(name: &'static str, ty: &'static str, direction: ArgDirection) -> Arg<'static> {
    Arg {
        name: Some(Cow::Borrowed(name)),
        signature: Signature::from_checked(ty),
        direction,
        annotations: Vec::new(),
    }
}

fn input(name: &'static str, ty: &'static str) -> Arg<'static> {
    arg(name, ty, ArgDirection::In)
}

fn output(name: &'static str, ty: &'static str) -> Arg<'static> {
    arg(name, ty, ArgDirection::Out)
}

/// `org.freedesktop.DBus.Introspectable`: `Introspect() -> s xml_data`.
pub fn introspectable() -> Interface<'static> {
    interface(INTROSPECTABLE).with_method(method("Introspect", vec![output("xml_data", "s")]))
}

/// `org.freedesktop.DBus.Properties`: `Get`, `GetAll`, `Set` and the `PropertiesChanged` signal.
pub fn properties() -> Interface<'static> {
    interface(PROPERTIES)
        .with_method(method(
            "Get",
            vec![
                input("interface_name", "s"),
                input("property_name", "s"),
                output("value", "v"),
            ],
        ))
        .with_method(method(
            "GetAll",
            vec![input("interface_name", "s"), output("props", "a{sv}")],
        ))
        .with_method(method(
            "Set",
            vec![
                input("interface_name", "s"),
                input("property_name", "s"),
                input("value", "v"),
            ],
        ))
        .with_signal(signal(
            "PropertiesChanged",
            vec![
                output("interface_name", "s"),
                output("changed_properties", "a{sv}"),
                output("invalidated_properties", "as"),
            ],
        ))
}

/// `org.freedesktop.DBus.Peer`: `Ping()` and `GetMachineId() -> s machine_uuid`.
pub fn peer() -> Interface<'static> {
    interface(PEER)
        .with_method(method("Ping", Vec::new()))
        .with_method(method("GetMachineId", vec![output("machine_uuid", "s")]))
}

/// `org.freedesktop.DBus.ObjectManager`: `GetManagedObjects` and the `InterfacesAdded` and
/// `InterfacesRemoved` signals.
pub fn object_manager() -> Interface<'static> {
    interface(OBJECT_MANAGER)
        .with_method(method(
            "GetManagedObjects",
            vec![output("objpath_interfaces_and_properties", "a{oa{sa{sv}}}")],
        ))
        .with_signal(signal(
            "InterfacesAdded",
            vec![
                output("object_path", "o"),
                output("interfaces_and_properties", "a{sa{sv}}"),
            ],
        ))
        .with_signal(signal(
            "InterfacesRemoved",
            vec![output("object_path", "o"), output("interfaces", "as")],
        ))
}

/// The annotation `org.freedesktop.DBus.Property.EmitsChangedSignal` with `value` (`true`,
/// `invalidates`, `const` or `false`), for properties.
pub fn emits_changed_signal(value: &'static str) -> Annotation<'static> {
    Annotation::new("org.freedesktop.DBus.Property.EmitsChangedSignal", value)
}

/// The annotation `org.freedesktop.DBus.Deprecated` = `true`.
pub fn deprecated() -> Annotation<'static> {
    Annotation::new("org.freedesktop.DBus.Deprecated", "true")
}

/// The annotation `org.freedesktop.DBus.Method.NoReply` = `true`, for methods that never reply.
pub fn no_reply() -> Annotation<'static> {
    Annotation::new("org.freedesktop.DBus.Method.NoReply", "true")
}

#[cfg(test)]
mod tests {
    use super::super::Node;
    use super::*;

    #[test]
    fn standard_interfaces_are_valid_and_round_trip() {
        let mut node = Node::new(Some("/".into()));
        node.interfaces = vec![introspectable(), properties(), peer(), object_manager()];
        let xml = node.to_xml();
        let back = Node::from_xml(&xml).unwrap();
        assert_eq!(back, node);
        let props = back.interface(PROPERTIES).unwrap();
        assert_eq!(props.method("Get").unwrap().in_signature(), "ss");
        assert_eq!(props.method("Get").unwrap().out_signature(), "v");
        assert_eq!(
            props.signal("PropertiesChanged").unwrap().signature(),
            "sa{sv}as"
        );
        let om = back.interface(OBJECT_MANAGER).unwrap();
        assert_eq!(
            om.method("GetManagedObjects").unwrap().out_signature(),
            "a{oa{sa{sv}}}"
        );
        assert_eq!(back.interface(PEER).unwrap().methods.len(), 2);
    }
}

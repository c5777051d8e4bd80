//! Introspection data: the object tree, interfaces, methods, signals and properties that
//! `org.freedesktop.DBus.Introspectable.Introspect` describes, parsed from and written to the XML
//! format of the specification ("Introspection Data Format").
//!
//! The model follows dbus-fast's `introspection` module: a [`Node`] holds [`Interface`]s and child
//! nodes; an interface holds [`Method`]s, [`Signal`]s, [`Property`]s and [`Annotation`]s; methods
//! and signals hold [`Arg`]s. Everything borrows from the parsed document where it can
//! (`Node<'a>`); [`Node::into_owned`] detaches it.
//!
//! Parsing ([`Node::from_xml`]) ignores the XML declaration, the DOCTYPE, comments, processing
//! instructions, text, and elements and attributes it does not know (such as Telepathy's
//! `tp:docstring`), and validates every interface and member name and every signature. Malformed
//! XML gives an [`ErrorKind::BadXml`](crate::ErrorKind::BadXml) error whose detail says the line
//! and column; well-formed XML that breaks the format (a `<method>` without `name`, an
//! `access="rw"`, a signal argument with `direction="in"`) gives
//! [`ErrorKind::BadIntrospection`](crate::ErrorKind::BadIntrospection).
//!
//! Writing ([`Node::to_xml`]) produces the standard DOCTYPE header and a document that
//! dbus-daemon, GDBus and dbus-fast read back.
//!
//! [`standard`] has the standard interfaces (`Introspectable`, `Properties`, `Peer`,
//! `ObjectManager`) as ready-made [`Interface`] values.

use std::borrow::Cow;

use crate::error::Result;
use crate::names::{InterfaceName, MemberName};
use crate::signature::Signature;

mod parse;
pub mod standard;
mod write;

/// A node of the object tree: the object the document describes (the root) or one of its children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node<'a> {
    /// The node's name: an absolute object path on the root (often absent), a relative path
    /// (`unit`, `hci0/dev_00_11`) on children.
    pub name: Option<Cow<'a, str>>,
    /// The interfaces of this object.
    pub interfaces: Vec<Interface<'a>>,
    /// The child nodes.
    pub nodes: Vec<Node<'a>>,
    /// Annotations on the node itself (GDBus extension; rare).
    pub annotations: Vec<Annotation<'a>>,
}

/// An interface: its name, members and annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface<'a> {
    /// The interface name, such as `org.freedesktop.DBus.Properties`.
    pub name: InterfaceName<'a>,
    /// The methods, in document order.
    pub methods: Vec<Method<'a>>,
    /// The signals, in document order.
    pub signals: Vec<Signal<'a>>,
    /// The properties, in document order.
    pub properties: Vec<Property<'a>>,
    /// Annotations on the interface (for example `org.freedesktop.DBus.Deprecated`).
    pub annotations: Vec<Annotation<'a>>,
}

/// A method: its name, its in and out arguments (in document order) and annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method<'a> {
    /// The method name, such as `GetAll`.
    pub name: MemberName<'a>,
    /// The arguments, in and out, in document order.
    pub args: Vec<Arg<'a>>,
    /// Annotations on the method (for example `org.freedesktop.DBus.Method.NoReply`).
    pub annotations: Vec<Annotation<'a>>,
}

/// A signal: its name, arguments and annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal<'a> {
    /// The signal name, such as `PropertiesChanged`.
    pub name: MemberName<'a>,
    /// The arguments; every one has direction [`ArgDirection::Out`].
    pub args: Vec<Arg<'a>>,
    /// Annotations on the signal.
    pub annotations: Vec<Annotation<'a>>,
}

/// A property: its name, type, access and annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property<'a> {
    /// The property name, such as `Version`.
    pub name: MemberName<'a>,
    /// The property's type: exactly one complete type.
    pub signature: Signature<'a>,
    /// Whether the property can be read, written or both.
    pub access: PropertyAccess,
    /// Annotations on the property (for example
    /// `org.freedesktop.DBus.Property.EmitsChangedSignal`).
    pub annotations: Vec<Annotation<'a>>,
}

/// An argument of a method or signal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arg<'a> {
    /// The argument's name, if the document gives one. Not validated: the specification sets no
    /// rules for it and real services use free-form names.
    pub name: Option<Cow<'a, str>>,
    /// The argument's type: exactly one complete type.
    pub signature: Signature<'a>,
    /// In (the caller sends it) or out (the method returns it; always out for signals).
    pub direction: ArgDirection,
    /// Annotations on the argument (GDBus extension, for example `org.gtk.GDBus.C.ForceGVariant`).
    pub annotations: Vec<Annotation<'a>>,
}

/// A name/value annotation such as `org.freedesktop.DBus.Deprecated` = `true`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Annotation<'a> {
    /// The annotation's name, such as `org.freedesktop.DBus.Property.EmitsChangedSignal`.
    pub name: Cow<'a, str>,
    /// Its value, such as `const`.
    pub value: Cow<'a, str>,
}

/// Whether a property can be read, written or both (`access="read|write|readwrite"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PropertyAccess {
    /// `read`: `Get` and `GetAll` only.
    Read,
    /// `write`: `Set` only.
    Write,
    /// `readwrite`.
    ReadWrite,
}

impl PropertyAccess {
    /// The attribute value: `read`, `write` or `readwrite`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::ReadWrite => "readwrite",
        }
    }

    /// Whether `Get` may read the property.
    pub fn readable(self) -> bool {
        matches!(self, Self::Read | Self::ReadWrite)
    }

    /// Whether `Set` may write the property.
    pub fn writable(self) -> bool {
        matches!(self, Self::Write | Self::ReadWrite)
    }
}

/// The direction of an argument (`direction="in|out"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgDirection {
    /// Sent by the caller (the default for method arguments).
    In,
    /// Returned by the method, or carried by a signal (the only direction of signal arguments).
    Out,
}

impl ArgDirection {
    /// The attribute value: `in` or `out`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

fn owned_cow(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

fn owned_annotations(v: Vec<Annotation<'_>>) -> Vec<Annotation<'static>> {
    v.into_iter().map(Annotation::into_owned).collect()
}

fn find_annotation<'s>(v: &'s [Annotation<'_>], name: &str) -> Option<&'s str> {
    v.iter().find(|a| a.name == name).map(|a| &*a.value)
}

fn concat_signatures<'s>(args: impl Iterator<Item = &'s Arg<'s>>) -> String {
    args.map(|a| a.signature.as_str()).collect()
}

impl<'a> Node<'a> {
    /// An empty node with an optional name.
    pub fn new(name: Option<Cow<'a, str>>) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// Parse an introspection document, borrowing names and values from `xml` where possible.
    ///
    /// # Errors
    /// [`ErrorKind::BadXml`](crate::ErrorKind::BadXml) for malformed XML,
    /// [`ErrorKind::BadIntrospection`](crate::ErrorKind::BadIntrospection) for a document that
    /// breaks the introspection format, and the name and signature kinds (`BadInterface`,
    /// `BadMember`, `BadPath`, signature kinds) for invalid names and types. Every error's detail
    /// starts with the line and column, and its offset is the byte where the element starts.
    pub fn from_xml(xml: &'a str) -> Result<Self> {
        parse::parse(xml)
    }

    /// The document: the standard DOCTYPE header, then this node.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(4096);
        write::write_document(self, &mut out);
        out
    }

    /// The interface called `name`, if this node has it.
    pub fn interface(&self, name: &str) -> Option<&Interface<'a>> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The child node called `name`, if any.
    pub fn node(&self, name: &str) -> Option<&Node<'a>> {
        self.nodes.iter().find(|n| n.name.as_deref() == Some(name))
    }

    /// An owned copy that no longer borrows the document.
    pub fn into_owned(self) -> Node<'static> {
        Node {
            name: self.name.map(owned_cow),
            interfaces: self
                .interfaces
                .into_iter()
                .map(Interface::into_owned)
                .collect(),
            nodes: self.nodes.into_iter().map(Node::into_owned).collect(),
            annotations: owned_annotations(self.annotations),
        }
    }
}

impl<'a> Interface<'a> {
    /// An interface with no members.
    pub fn new(name: InterfaceName<'a>) -> Self {
        Self {
            name,
            methods: Vec::new(),
            signals: Vec::new(),
            properties: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Add a method (builder style).
    pub fn with_method(mut self, method: Method<'a>) -> Self {
        self.methods.push(method);
        self
    }

    /// Add a signal (builder style).
    pub fn with_signal(mut self, signal: Signal<'a>) -> Self {
        self.signals.push(signal);
        self
    }

    /// Add a property (builder style).
    pub fn with_property(mut self, property: Property<'a>) -> Self {
        self.properties.push(property);
        self
    }

    /// Add an annotation (builder style).
    pub fn with_annotation(mut self, annotation: Annotation<'a>) -> Self {
        self.annotations.push(annotation);
        self
    }

    /// The method called `name`, if any.
    pub fn method(&self, name: &str) -> Option<&Method<'a>> {
        self.methods.iter().find(|m| m.name == name)
    }

    /// The signal called `name`, if any.
    pub fn signal(&self, name: &str) -> Option<&Signal<'a>> {
        self.signals.iter().find(|s| s.name == name)
    }

    /// The property called `name`, if any.
    pub fn property(&self, name: &str) -> Option<&Property<'a>> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// The value of the annotation called `name`, if any.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        find_annotation(&self.annotations, name)
    }

    /// An owned copy that no longer borrows the document.
    pub fn into_owned(self) -> Interface<'static> {
        Interface {
            name: self.name.into_owned(),
            methods: self.methods.into_iter().map(Method::into_owned).collect(),
            signals: self.signals.into_iter().map(Signal::into_owned).collect(),
            properties: self
                .properties
                .into_iter()
                .map(Property::into_owned)
                .collect(),
            annotations: owned_annotations(self.annotations),
        }
    }
}

impl<'a> Method<'a> {
    /// A method with no arguments.
    pub fn new(name: MemberName<'a>) -> Self {
        Self {
            name,
            args: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Add an argument (builder style).
    pub fn with_arg(mut self, arg: Arg<'a>) -> Self {
        self.args.push(arg);
        self
    }

    /// Add an annotation (builder style).
    pub fn with_annotation(mut self, annotation: Annotation<'a>) -> Self {
        self.annotations.push(annotation);
        self
    }

    /// The in arguments, in order.
    pub fn in_args(&self) -> impl Iterator<Item = &Arg<'a>> {
        self.args.iter().filter(|a| a.direction == ArgDirection::In)
    }

    /// The out arguments, in order.
    pub fn out_args(&self) -> impl Iterator<Item = &Arg<'a>> {
        self.args
            .iter()
            .filter(|a| a.direction == ArgDirection::Out)
    }

    /// The signature of a call's body: the in arguments' types, concatenated.
    pub fn in_signature(&self) -> String {
        concat_signatures(self.in_args())
    }

    /// The signature of the reply's body: the out arguments' types, concatenated.
    pub fn out_signature(&self) -> String {
        concat_signatures(self.out_args())
    }

    /// The value of the annotation called `name`, if any.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        find_annotation(&self.annotations, name)
    }

    /// An owned copy that no longer borrows the document.
    pub fn into_owned(self) -> Method<'static> {
        Method {
            name: self.name.into_owned(),
            args: self.args.into_iter().map(Arg::into_owned).collect(),
            annotations: owned_annotations(self.annotations),
        }
    }
}

impl<'a> Signal<'a> {
    /// A signal with no arguments.
    pub fn new(name: MemberName<'a>) -> Self {
        Self {
            name,
            args: Vec::new(),
            annotations: Vec::new(),
        }
    }

    /// Add an argument (builder style); its direction is set to [`ArgDirection::Out`].
    pub fn with_arg(mut self, mut arg: Arg<'a>) -> Self {
        arg.direction = ArgDirection::Out;
        self.args.push(arg);
        self
    }

    /// Add an annotation (builder style).
    pub fn with_annotation(mut self, annotation: Annotation<'a>) -> Self {
        self.annotations.push(annotation);
        self
    }

    /// The signature of the signal's body: the arguments' types, concatenated.
    pub fn signature(&self) -> String {
        concat_signatures(self.args.iter())
    }

    /// The value of the annotation called `name`, if any.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        find_annotation(&self.annotations, name)
    }

    /// An owned copy that no longer borrows the document.
    pub fn into_owned(self) -> Signal<'static> {
        Signal {
            name: self.name.into_owned(),
            args: self.args.into_iter().map(Arg::into_owned).collect(),
            annotations: owned_annotations(self.annotations),
        }
    }
}

impl<'a> Property<'a> {
    /// A property of type `signature`.
    ///
    /// # Errors
    /// [`ErrorKind::BadIntrospection`](crate::ErrorKind::BadIntrospection) when `signature` is
    /// not exactly one complete type.
    pub fn new(
        name: MemberName<'a>,
        signature: Signature<'a>,
        access: PropertyAccess,
    ) -> Result<Self> {
        parse::check_single_complete_type(signature.as_str())?;
        Ok(Self {
            name,
            signature,
            access,
            annotations: Vec::new(),
        })
    }

    /// Add an annotation (builder style).
    pub fn with_annotation(mut self, annotation: Annotation<'a>) -> Self {
        self.annotations.push(annotation);
        self
    }

    /// The value of the annotation called `name`, if any.
    pub fn annotation(&self, name: &str) -> Option<&str> {
        find_annotation(&self.annotations, name)
    }

    /// An owned copy that no longer borrows the document.
    pub fn into_owned(self) -> Property<'static> {
        Property {
            name: self.name.into_owned(),
            signature: self.signature.into_owned(),
            access: self.access,
            annotations: owned_annotations(self.annotations),
        }
    }
}

impl<'a> Arg<'a> {
    /// An unnamed argument of type `signature`.
    ///
    /// # Errors
    /// [`ErrorKind::BadIntrospection`](crate::ErrorKind::BadIntrospection) when `signature` is
    /// not exactly one complete type.
    pub fn new(signature: Signature<'a>, direction: ArgDirection) -> Result<Self> {
        parse::check_single_complete_type(signature.as_str())?;
        Ok(Self {
            name: None,
            signature,
            direction,
            annotations: Vec::new(),
        })
    }

    /// Give the argument a name (builder style).
    pub fn with_name(mut self, name: impl Into<Cow<'a, str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Add an annotation (builder style).
    pub fn with_annotation(mut self, annotation: Annotation<'a>) -> Self {
        self.annotations.push(annotation);
        self
    }

    /// An owned copy that no longer borrows the document.
    pub fn into_owned(self) -> Arg<'static> {
        Arg {
            name: self.name.map(owned_cow),
            signature: self.signature.into_owned(),
            direction: self.direction,
            annotations: owned_annotations(self.annotations),
        }
    }
}

impl<'a> Annotation<'a> {
    /// An annotation `name` = `value`.
    pub fn new(name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }

    /// An owned copy that no longer borrows the document.
    pub fn into_owned(self) -> Annotation<'static> {
        Annotation {
            name: owned_cow(self.name),
            value: owned_cow(self.value),
        }
    }
}

//! The introspection XML reader: one pass over quick-xml's events (a reader over the `&str`,
//! so every event borrows from the document), building the tree without recursion (a deeply
//! nested document cannot overflow the call stack). Attribute values are borrowed from the
//! document unless they hold references or line breaks.
//!
//! Where the time goes (benches/RESULTS.md has the numbers): quick-xml's tokenizer is over half
//! of it. Our share is kept small by
//! - reading each start tag's attributes once, eight bytes at a time, recognizing the known
//!   attributes by comparing one word with their `name="` prefix, and borrowing plain values
//!   (anything unusual goes to the general path, which also gives every error message);
//! - building the tree in place: only nodes nest, so besides the open nodes at most one
//!   interface is open at a time, in its own field; members and arguments go to their parent's
//!   list when they start (the open one is the list's last), so each moves once;
//! - a quick yes for member names and the common single types (`s`, `as`, `a{sv}`), with the
//!   full checks deciding every other case and giving the error messages.

use std::borrow::Cow;
use std::fmt;

use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use super::{
    Annotation, Arg, ArgDirection, Interface, Method, Node, Property, PropertyAccess, Signal,
};
use crate::error::{Error, ErrorKind, Result, shown};
use crate::names::{InterfaceName, MemberName, check_interface, check_member, check_object_path};
use crate::signature::{Signature, check_signature_bytes, check_single_type};

/// The deepest element nesting accepted. Real documents nest five levels
/// (node/interface/method/arg/annotation) plus one per child node.
const MAX_DEPTH: usize = 128;

/// 1-based line and column (in characters) of byte `pos`.
fn line_col(xml: &str, pos: usize) -> (usize, usize) {
    let mut pos = pos.min(xml.len());
    while !xml.is_char_boundary(pos) {
        pos -= 1;
    }
    let before = &xml[..pos];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Give `err` the position `pos`: its offset, and "line L, column C" in front of its detail.
fn located(xml: &str, pos: usize, err: Error) -> Error {
    let (line, column) = line_col(xml, pos);
    err.detail(format!("line {line}, column {column}"))
        .with_offset(pos)
}

fn bad_xml(xml: &str, pos: usize, what: impl fmt::Display) -> Error {
    located(
        xml,
        pos,
        Error::new(ErrorKind::BadXml).detail(what.to_string()),
    )
}

fn bad_introspection(xml: &str, pos: usize, what: impl fmt::Display) -> Error {
    located(
        xml,
        pos,
        Error::new(ErrorKind::BadIntrospection).detail(what.to_string()),
    )
}

fn to_usize(p: u64) -> usize {
    usize::try_from(p).unwrap_or(usize::MAX)
}

/// Parse a whole document.
pub(super) fn parse(xml: &str) -> Result<Node<'_>> {
    let mut reader = Reader::from_str(xml);
    // Whitespace between elements produces no events (the format has no text).
    reader.config_mut().trim_text(true);
    let mut builder = Builder::new(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => builder.start(&e, false)?,
            Ok(Event::Empty(e)) => builder.start(&e, true)?,
            Ok(Event::End(_)) => builder.end(),
            Ok(Event::Eof) => break,
            // Declaration, DOCTYPE, comments, processing instructions, text, CDATA and
            // entity references carry nothing the introspection format uses.
            Ok(_) => {}
            Err(e) => return Err(bad_xml(xml, to_usize(reader.error_position()), e)),
        }
    }
    builder.finish()
}

/// What an open element is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Node,
    Interface,
    Method,
    Signal,
    Property,
    /// An argument of a method.
    MethodArg,
    /// An argument of a signal.
    SignalArg,
    Annotation,
    /// An element we do not know (or know but not in this place), skipped with its children.
    Skip,
}

/// The tree under construction.
///
/// The format nests only nodes: an interface is only read inside a node, a method, signal or
/// property inside an interface, an argument inside a method or signal. So besides the open
/// nodes, at most one interface is open at a time, waiting in its own field; a member or an
/// argument goes to its parent's list when it starts, and while it is open it is the last
/// element of that list (nothing else can be added to the list before it closes), which is
/// where its annotations go.
struct Builder<'a> {
    xml: &'a str,
    /// The kinds of the open elements, outermost first.
    stack: Vec<Kind>,
    /// The open nodes, outermost first.
    nodes: Vec<Node<'a>>,
    interface: Option<Interface<'a>>,
    root: Option<Node<'a>>,
}

impl<'a> Builder<'a> {
    fn new(xml: &'a str) -> Self {
        Self {
            xml,
            stack: Vec::with_capacity(8),
            nodes: Vec::with_capacity(4),
            interface: None,
            root: None,
        }
    }

    fn finish(self) -> Result<Node<'a>> {
        let xml = self.xml;
        if !self.stack.is_empty() {
            return Err(bad_xml(
                xml,
                xml.len(),
                "the document ends before the root element is closed",
            ));
        }
        self.root
            .ok_or_else(|| bad_xml(xml, xml.len(), "the document has no root element"))
    }

    /// A start tag (`empty`: a self-closing one, which also ends the element).
    fn start(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<()> {
        let xml = self.xml;
        let content: &str = e;
        // The tag's content (after `<`) as a slice of the document; a reader over a `&str`
        // never hands out a copy.
        let Some((offset, content)) = borrow_from(xml, content) else {
            return Err(bad_xml(
                xml,
                0,
                "internal error: the XML reader copied a start tag",
            ));
        };
        // Errors point at the `<`.
        let pos = offset.saturating_sub(1);
        let (tag, attributes) = content
            .split_at_checked(e.name().0.len())
            .unwrap_or((content, ""));
        if !empty && self.stack.len() >= MAX_DEPTH {
            return Err(bad_introspection(
                xml,
                pos,
                format_args!("elements nested more than {MAX_DEPTH} deep"),
            ));
        }
        use Kind as K;
        let kind = match self.stack.last() {
            None if self.root.is_some() => {
                return Err(bad_xml(xml, pos, "more than one root element"));
            }
            None if tag == "node" => {
                self.node(pos, attributes, true, empty)?;
                K::Node
            }
            None => {
                return Err(bad_introspection(
                    xml,
                    pos,
                    format_args!("the root element is {}, not <node>", shown(tag)),
                ));
            }
            Some(&parent) => match (parent, tag.as_bytes()) {
                (K::Node, b"node") => {
                    self.node(pos, attributes, false, empty)?;
                    K::Node
                }
                (K::Node, b"interface") => {
                    self.interface(pos, attributes, empty)?;
                    K::Interface
                }
                (K::Interface, b"method") => {
                    self.method(pos, attributes)?;
                    K::Method
                }
                (K::Interface, b"signal") => {
                    self.signal(pos, attributes)?;
                    K::Signal
                }
                (K::Interface, b"property") => {
                    self.property(pos, attributes)?;
                    K::Property
                }
                (K::Method | K::Signal, b"arg") => {
                    let in_signal = parent == K::Signal;
                    self.arg(pos, attributes, in_signal)?;
                    if in_signal {
                        K::SignalArg
                    } else {
                        K::MethodArg
                    }
                }
                (
                    K::Node
                    | K::Interface
                    | K::Method
                    | K::Signal
                    | K::Property
                    | K::MethodArg
                    | K::SignalArg,
                    b"annotation",
                ) => {
                    self.annotation(pos, attributes, parent)?;
                    K::Annotation
                }
                _ => K::Skip,
            },
        };
        if !empty {
            self.stack.push(kind);
        }
        Ok(())
    }

    /// An end tag (quick-xml checked that it matches the open element).
    fn end(&mut self) {
        match self.stack.pop() {
            Some(Kind::Node) => {
                if let Some(node) = self.nodes.pop() {
                    self.add_node(node);
                }
            }
            Some(Kind::Interface) => {
                if let Some(interface) = self.interface.take() {
                    self.add_interface(interface);
                }
            }
            // Members and arguments are in their lists already.
            Some(
                Kind::Method
                | Kind::Signal
                | Kind::Property
                | Kind::MethodArg
                | Kind::SignalArg
                | Kind::Annotation
                | Kind::Skip,
            )
            | None => {}
        }
    }

    // Each `add_*` hands a finished element to its parent, which is open (the element was
    // opened in it and the parent cannot close first).

    fn add_node(&mut self, node: Node<'a>) {
        match self.nodes.last_mut() {
            Some(parent) => parent.nodes.push(node),
            None => self.root = Some(node),
        }
    }

    fn add_interface(&mut self, interface: Interface<'a>) {
        if let Some(node) = self.nodes.last_mut() {
            node.interfaces.push(interface);
        }
    }

    /// The open method (the last of the open interface's).
    fn open_method(&mut self) -> Option<&mut Method<'a>> {
        self.interface.as_mut()?.methods.last_mut()
    }

    /// The open signal (the last of the open interface's).
    fn open_signal(&mut self) -> Option<&mut Signal<'a>> {
        self.interface.as_mut()?.signals.last_mut()
    }

    fn node(&mut self, pos: usize, attributes: &'a str, is_root: bool, empty: bool) -> Result<()> {
        let xml = self.xml;
        let [name] = scan_attributes(xml, pos, attributes, [&NAME])?;
        if let Some(name) = &name {
            check_node_name(name, is_root).map_err(|err| located(xml, pos, err))?;
        }
        let node = Node::new(name);
        if empty {
            self.add_node(node);
        } else {
            self.nodes.push(node);
        }
        Ok(())
    }

    fn interface(&mut self, pos: usize, attributes: &'a str, empty: bool) -> Result<()> {
        let xml = self.xml;
        let [name] = scan_attributes(xml, pos, attributes, [&NAME])?;
        let name = required(xml, pos, name, "interface", "name")?;
        check_interface(&name).map_err(|err| located(xml, pos, err))?;
        let interface = Interface::new(InterfaceName::from_checked(name));
        if empty {
            self.add_interface(interface);
        } else {
            self.interface = Some(interface);
        }
        Ok(())
    }

    fn method(&mut self, pos: usize, attributes: &'a str) -> Result<()> {
        let xml = self.xml;
        let [name] = scan_attributes(xml, pos, attributes, [&NAME])?;
        let name = required(xml, pos, name, "method", "name")?;
        let method = Method::new(member_name(xml, pos, name)?);
        if let Some(interface) = &mut self.interface {
            push(&mut interface.methods, method, 8);
        }
        Ok(())
    }

    fn signal(&mut self, pos: usize, attributes: &'a str) -> Result<()> {
        let xml = self.xml;
        let [name] = scan_attributes(xml, pos, attributes, [&NAME])?;
        let name = required(xml, pos, name, "signal", "name")?;
        let signal = Signal::new(member_name(xml, pos, name)?);
        if let Some(interface) = &mut self.interface {
            push(&mut interface.signals, signal, 4);
        }
        Ok(())
    }

    fn property(&mut self, pos: usize, attributes: &'a str) -> Result<()> {
        let xml = self.xml;
        let [name, ty, access] = scan_attributes(xml, pos, attributes, [&NAME, &TYPE, &ACCESS])?;
        let name = member_name(xml, pos, required(xml, pos, name, "property", "name")?)?;
        let signature = single_type(xml, pos, required(xml, pos, ty, "property", "type")?)?;
        let access = match required(xml, pos, access, "property", "access")?.as_bytes() {
            b"read" => PropertyAccess::Read,
            b"write" => PropertyAccess::Write,
            b"readwrite" => PropertyAccess::ReadWrite,
            other => {
                return Err(bad_introspection(
                    xml,
                    pos,
                    format_args!(
                        "property access {} is none of read, write, readwrite",
                        shown(&String::from_utf8_lossy(other))
                    ),
                ));
            }
        };
        let property = Property {
            name,
            signature,
            access,
            annotations: Vec::new(),
        };
        if let Some(interface) = &mut self.interface {
            push(&mut interface.properties, property, 8);
        }
        Ok(())
    }

    fn arg(&mut self, pos: usize, attributes: &'a str, in_signal: bool) -> Result<()> {
        let xml = self.xml;
        let [name, ty, direction] =
            scan_attributes(xml, pos, attributes, [&NAME, &TYPE, &DIRECTION])?;
        let signature = single_type(xml, pos, required(xml, pos, ty, "arg", "type")?)?;
        let direction = match (direction.as_deref().map(str::as_bytes), in_signal) {
            (None | Some(b"in"), false) => ArgDirection::In,
            (None, true) | (Some(b"out"), _) => ArgDirection::Out,
            (Some(b"in"), true) => {
                return Err(bad_introspection(
                    xml,
                    pos,
                    "a signal argument cannot have direction=\"in\"",
                ));
            }
            (Some(other), _) => {
                return Err(bad_introspection(
                    xml,
                    pos,
                    format_args!(
                        "argument direction {} is neither in nor out",
                        shown(&String::from_utf8_lossy(other))
                    ),
                ));
            }
        };
        let arg = Arg {
            name,
            signature,
            direction,
            annotations: Vec::new(),
        };
        let args = if in_signal {
            self.open_signal().map(|s| &mut s.args)
        } else {
            self.open_method().map(|m| &mut m.args)
        };
        if let Some(args) = args {
            push(args, arg, 4);
        }
        Ok(())
    }

    /// An annotation goes to its parent (of kind `parent`) at once: nothing inside it is kept.
    fn annotation(&mut self, pos: usize, attributes: &'a str, parent: Kind) -> Result<()> {
        let xml = self.xml;
        let [name, value] = scan_attributes(xml, pos, attributes, [&NAME, &VALUE])?;
        let name = required(xml, pos, name, "annotation", "name")?;
        if name.is_empty() {
            return Err(bad_introspection(
                xml,
                pos,
                "<annotation> with an empty name",
            ));
        }
        let value = required(xml, pos, value, "annotation", "value")?;
        let annotation = Annotation { name, value };
        let list = match parent {
            Kind::Node => self.nodes.last_mut().map(|p| &mut p.annotations),
            Kind::Interface => self.interface.as_mut().map(|p| &mut p.annotations),
            Kind::Method => self.open_method().map(|p| &mut p.annotations),
            Kind::Signal => self.open_signal().map(|p| &mut p.annotations),
            Kind::Property => self
                .interface
                .as_mut()
                .and_then(|i| i.properties.last_mut())
                .map(|p| &mut p.annotations),
            Kind::MethodArg => self
                .open_method()
                .and_then(|m| m.args.last_mut())
                .map(|p| &mut p.annotations),
            Kind::SignalArg => self
                .open_signal()
                .and_then(|s| s.args.last_mut())
                .map(|p| &mut p.annotations),
            Kind::Annotation | Kind::Skip => None,
        };
        if let Some(list) = list {
            // Most elements have one annotation, if any: do not reserve room for four.
            push(list, annotation, 1);
        }
        Ok(())
    }
}

/// Push `x` onto `v`, allocating room for `first` elements when `v` has none (cheaper than
/// the growth path, which also handles reallocation).
#[inline(always)]
fn push<T>(v: &mut Vec<T>, x: T, first: usize) {
    if v.capacity() == 0 {
        *v = Vec::with_capacity(first);
    }
    v.push(x);
}

/// `part` as a slice of `xml` with `xml`'s lifetime, and its offset, when it lies inside `xml`
/// (it always does for a reader over a `&str`).
fn borrow_from<'a>(xml: &'a str, part: &str) -> Option<(usize, &'a str)> {
    let start = (part.as_ptr() as usize).checked_sub(xml.as_ptr() as usize)?;
    let s = xml.get(start..start.checked_add(part.len())?)?;
    std::ptr::eq(s.as_ptr(), part.as_ptr()).then_some((start, s))
}

// Word-at-a-time scanning (eight bytes per step, in safe code). In each mask the lowest set
// bit is exact (false positives can only appear above a true one), which is all we use.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that equals `c` (the lowest one exactly).
#[inline(always)]
fn eq_bytes(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// High bit set in each byte of `w` below `n` (`n` at most 0x80; the lowest one exactly).
#[inline(always)]
fn lt_bytes(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
}

/// The index of the first byte at or after `i` that `stop` marks (`stop` gives the mask of a
/// little-endian word, see [`eq_bytes`]), eight bytes at a time, then byte by byte
/// (`stop_byte`) for the last few; `b.len()` if none.
#[inline(always)]
fn find(
    b: &[u8],
    mut i: usize,
    stop: impl Fn(u64) -> u64,
    stop_byte: impl Fn(u8) -> bool,
) -> usize {
    while let Some(Ok(chunk)) = b.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let m = stop(u64::from_le_bytes(chunk));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if stop_byte(c) {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// An attribute the parser reads, with its `name="` prefix as a little-endian word (its first
/// eight bytes) for the fast path.
#[derive(Debug)]
struct Key {
    name: &'static str,
    prefix: u64,
    mask: u64,
}

impl Key {
    const fn new(name: &'static str) -> Self {
        let b = name.as_bytes();
        let mut prefix = 0u64;
        let mut i = 0;
        while i < 8 && i < b.len() + 2 {
            let c = if i < b.len() {
                b[i]
            } else if i == b.len() {
                b'='
            } else {
                b'"'
            };
            prefix |= (c as u64) << (8 * i);
            i += 1;
        }
        let mask = if b.len() + 2 >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * (b.len() + 2))) - 1
        };
        Self { name, prefix, mask }
    }

    /// Whether `doc` holds `name="` at `i`, given the eight bytes `w` there.
    #[inline(always)]
    fn at(&self, doc: &[u8], i: usize, w: u64) -> bool {
        let n = self.name.len();
        w & self.mask == self.prefix
            && (n + 2 <= 8
                || (doc.get(i..i + n) == Some(self.name.as_bytes())
                    && doc.get(i + n..i + n + 2) == Some(b"=\"")))
    }
}

const NAME: Key = Key::new("name");
const TYPE: Key = Key::new("type");
const ACCESS: Key = Key::new("access");
const DIRECTION: Key = Key::new("direction");
const VALUE: Key = Key::new("value");

/// Where the attribute value that starts at `start` ends: the index of its closing `quote`,
/// before `end`, when no `&`, `<` or control character comes first (`None` sends the tag to
/// the slow path).
#[inline(always)]
fn plain_value_end(doc: &[u8], start: usize, end: usize, quote: u8) -> Option<usize> {
    // Either quote differs from `&` in one bit, so one test finds both.
    let same = ONES * u64::from(!(quote ^ b'&'));
    let at = find(
        doc,
        start,
        |w| eq_bytes(w & same, quote & b'&') | eq_bytes(w, b'<') | lt_bytes(w, 0x20),
        |c| c == quote || c == b'&' || c == b'<' || c < 0x20,
    );
    (at < end && doc.get(at) == Some(&quote)).then_some(at)
}

/// The values of the attributes of `src` (a start tag after its name) named in `keys`, in their
/// order; other attributes are checked for syntax and ignored.
///
/// The fast path reads the common form, `name="value"` pairs each after one space, values
/// without references, `<` or control characters, and borrows every value from the document;
/// anything else goes to [`scan_attributes_slow`] (the full syntax, and every error message).
#[inline(always)]
fn scan_attributes<'a, const N: usize>(
    xml: &'a str,
    pos: usize,
    src: &'a str,
    keys: [&Key; N],
) -> Result<[Option<Cow<'a, str>>; N]> {
    match scan_attributes_fast(xml, src, &keys) {
        Some(values) => Ok(values.map(|v| v.map(Cow::Borrowed))),
        None => scan_attributes_slow(xml, pos, src, &keys),
    }
}

/// [`scan_attributes`]' fast path; `None` when the tag needs the slow path.
///
/// It scans the document rather than `src` (a slice of it), so that eight bytes can be read
/// at a time up to the end of the tag, and checks that what it finds lies inside `src`. A
/// known attribute is recognized by comparing the eight bytes where it starts with its
/// `name="` prefix; others are read up to their `=`.
#[inline(always)]
fn scan_attributes_fast<'a, const N: usize>(
    xml: &'a str,
    src: &'a str,
    keys: &[&Key; N],
) -> Option<[Option<&'a str>; N]> {
    let mut out: [Option<&'a str>; N] = [None; N];
    let doc = xml.as_bytes();
    let mut i = (src.as_ptr() as usize).checked_sub(xml.as_ptr() as usize)?;
    let end = i.checked_add(src.len())?;
    while i < end {
        if doc.get(i) != Some(&b' ') {
            return None;
        }
        i += 1;
        if i == end {
            // `<method name="M" />`
            break;
        }
        let word = doc
            .get(i..i + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes);
        let known = word.and_then(|w| keys.iter().position(|key| key.at(doc, i, w)));
        let (slot, value_start, value_end) = match known {
            Some(k) => {
                let start = i + keys.get(k)?.name.len() + 2;
                (Some(k), start, plain_value_end(doc, start, end, b'"')?)
            }
            None => {
                let name_start = i;
                // The name ends at `=`; white space, a control character or a quote first
                // means the slow path.
                i = find(
                    doc,
                    i,
                    |w| {
                        eq_bytes(w, b'=')
                            | lt_bytes(w, 0x21)
                            | eq_bytes(w, b'"')
                            | eq_bytes(w, b'\'')
                    },
                    |c| c == b'=' || c <= b' ' || c == b'"' || c == b'\'',
                );
                if i >= end || doc.get(i) != Some(&b'=') {
                    return None;
                }
                let name = doc.get(name_start..i)?;
                let quote = match doc.get(i + 1) {
                    Some(&q @ (b'"' | b'\'')) => q,
                    _ => return None,
                };
                let slot = keys.iter().position(|key| key.name.as_bytes() == name);
                (slot, i + 2, plain_value_end(doc, i + 2, end, quote)?)
            }
        };
        if let Some(k) = slot {
            let slot = out.get_mut(k)?;
            if slot.is_some() {
                return None;
            }
            // Both ends are ASCII (quotes), so this is a whole `str`.
            *slot = Some(xml.get(value_start..value_end)?);
        }
        i = value_end + 1;
    }
    Some(out)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Index of the first byte at or after `i` for which `stop_word` (eight bytes at a time) or
/// `stop_byte` (for the last few) says stop; `b.len()` if none.
fn scan(
    b: &[u8],
    mut i: usize,
    stop_word: impl Fn(u64) -> u64,
    stop_byte: impl Fn(u8) -> bool,
) -> usize {
    while let Some(Ok(chunk)) = b.get(i..i + 8).map(<[u8; 8]>::try_from) {
        let m = stop_word(u64::from_le_bytes(chunk));
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !stop_byte(b[i]) {
        i += 1;
    }
    i
}

/// [`scan_attributes`] for any tag: read `name="value"` pairs from `src`, with white space
/// around `=`, either quote, references and line breaks, and every syntax error.
///
/// Values without references and line breaks are borrowed as they are; the others are
/// unescaped and normalized into an owned string, as XML's attribute-value normalization says
/// (line breaks and tabs become spaces, `&lt;` `&gt;` `&amp;` `&apos;` `&quot;` and character
/// references are replaced).
#[inline(never)]
fn scan_attributes_slow<'a, const N: usize>(
    xml: &str,
    pos: usize,
    src: &'a str,
    keys: &[&Key; N],
) -> Result<[Option<Cow<'a, str>>; N]> {
    let mut out: [Option<Cow<'a, str>>; N] = [const { None }; N];
    let b = src.as_bytes();
    let mut i = 0;
    loop {
        let before = i;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i == b.len() {
            return Ok(out);
        }
        if i == before {
            return Err(bad_xml(
                xml,
                pos,
                "attributes must be separated by white space",
            ));
        }
        let name_start = i;
        i = scan(
            b,
            i,
            |w| eq_bytes(w, b'=') | lt_bytes(w, 0x21),
            |c| c == b'=' || c <= b' ',
        );
        let name = &src[name_start..i];
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            return Err(bad_xml(
                xml,
                pos,
                format_args!("attribute {} without a value", shown(name)),
            ));
        }
        i += 1;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        let quote = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => q,
            _ => {
                return Err(bad_xml(
                    xml,
                    pos,
                    format_args!("the value of attribute {} is not in quotes", shown(name)),
                ));
            }
        };
        i += 1;
        let value_start = i;
        let mut plain = true;
        loop {
            i = scan(
                b,
                i,
                |w| eq_bytes(w, quote) | eq_bytes(w, b'&') | eq_bytes(w, b'<') | lt_bytes(w, 0x20),
                |c| c == quote || c == b'&' || c == b'<' || c < 0x20,
            );
            match b.get(i) {
                None => {
                    return Err(bad_xml(
                        xml,
                        pos,
                        format_args!("the value of attribute {} is not closed", shown(name)),
                    ));
                }
                Some(&c) if c == quote => break,
                Some(b'<') => {
                    return Err(bad_xml(
                        xml,
                        pos,
                        format_args!("'<' in the value of attribute {}", shown(name)),
                    ));
                }
                Some(b'&' | b'\t' | b'\r' | b'\n') => plain = false,
                Some(_) => {
                    return Err(bad_xml(
                        xml,
                        pos,
                        format_args!(
                            "a control character in the value of attribute {}",
                            shown(name)
                        ),
                    ));
                }
            }
            i += 1;
        }
        let raw = &src[value_start..i];
        i += 1;
        let Some(slot) = keys
            .iter()
            .position(|key| key.name == name)
            .and_then(|k| out.get_mut(k))
        else {
            if !plain {
                // Check the references of attributes we ignore, too.
                normalize(raw).map_err(|what| bad_xml(xml, pos, what))?;
            }
            continue;
        };
        if slot.is_some() {
            return Err(bad_xml(
                xml,
                pos,
                format_args!("attribute {} repeated", shown(name)),
            ));
        }
        *slot = Some(if plain {
            Cow::Borrowed(raw)
        } else {
            Cow::Owned(normalize(raw).map_err(|what| {
                bad_xml(xml, pos, format_args!("attribute {}: {what}", shown(name)))
            })?)
        });
    }
}

/// XML attribute-value normalization of a raw value that holds references or line breaks.
fn normalize(raw: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\t', '\r', '\n']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("\r\n") {
            out.push(' ');
            rest = after;
            continue;
        }
        if !tail.starts_with('&') {
            out.push(' ');
            rest = &tail[1..];
            continue;
        }
        let Some(end) = tail.find(';') else {
            return Err("'&' without ';'".to_owned());
        };
        let entity = &tail[1..end];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    return Err(format!("unknown entity {}", shown(&format!("&{entity};"))));
                };
                match code.and_then(char::from_u32) {
                    Some(c) if c != '\0' => c,
                    _ => {
                        return Err(format!(
                            "invalid character reference {}",
                            shown(&format!("&{entity};"))
                        ));
                    }
                }
            }
        };
        out.push(c);
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn required<'a>(
    xml: &str,
    pos: usize,
    value: Option<Cow<'a, str>>,
    element: &str,
    attribute: &str,
) -> Result<Cow<'a, str>> {
    value.ok_or_else(|| {
        bad_introspection(
            xml,
            pos,
            format_args!("<{element}> without the {attribute} attribute"),
        )
    })
}

/// Per byte of `w` (all below 0x80): the high bit set where the byte is at least `lo`.
#[inline(always)]
fn ge_bytes(w: u64, lo: u8) -> u64 {
    (w | HIGHS).wrapping_sub(ONES * u64::from(lo)) & HIGHS
}

/// Per byte of `w` (all below 0x80): the high bit set where the byte is at most `hi`.
#[inline(always)]
fn le_bytes(w: u64, hi: u8) -> u64 {
    (ONES * u64::from(0x80 | hi)).wrapping_sub(w) & HIGHS
}

/// Whether all eight bytes of `w` are `[A-Za-z0-9_]`. Exact for every byte (unlike
/// [`eq_bytes`], no mask here relies on "the lowest bit only").
#[inline(always)]
fn all_name_bytes(w: u64) -> bool {
    if w & HIGHS != 0 {
        return false;
    }
    let lower = w | (ONES * 0x20);
    let letter = ge_bytes(lower, b'a') & le_bytes(lower, b'z');
    let digit = ge_bytes(w, b'0') & le_bytes(w, b'9');
    let x = w ^ (ONES * u64::from(b'_'));
    // Exact zero-byte test: the high bit set where `x` is zero, i.e. the byte is `_`.
    let underscore = !(((x & !HIGHS).wrapping_add(!HIGHS)) | x) & HIGHS;
    letter | digit | underscore == HIGHS
}

/// Whether `s` is a valid member name (1 to 255 bytes of `[A-Za-z0-9_]`, not starting with a
/// digit), eight bytes at a time. Only a quick yes: on `false`, [`check_member`] decides and
/// says what is wrong.
fn is_member_name(s: &[u8]) -> bool {
    if s.len() > crate::names::MAX_NAME_LEN || s.first().is_none_or(u8::is_ascii_digit) {
        return false;
    }
    if s.len() < 8 {
        return s.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    }
    let word = |at: usize| {
        s.get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    let mut at = 0;
    while at + 8 <= s.len() {
        if !word(at).is_some_and(all_name_bytes) {
            return false;
        }
        at += 8;
    }
    // The last eight bytes (overlapping the words already checked) hold the rest.
    at == s.len() || word(s.len() - 8).is_some_and(all_name_bytes)
}

#[inline(always)]
fn member_name<'a>(xml: &str, pos: usize, v: Cow<'a, str>) -> Result<MemberName<'a>> {
    if !is_member_name(v.as_bytes()) {
        check_member(&v).map_err(|e| located(xml, pos, e))?;
    }
    Ok(MemberName::from_checked(v))
}

/// Check that `s` is a valid signature holding exactly one complete type (an argument or a
/// property type).
pub(super) fn check_single_complete_type(s: &str) -> Result<()> {
    match check_single_type(s.as_bytes()) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::VariantSignatureEmpty
                    | ErrorKind::VariantSignatureSpecifiesMultipleValues
            ) =>
        {
            // An invalid signature says what is invalid; a valid one is the wrong length.
            check_signature_bytes(s.as_bytes())
                .map_err(|e| e.detail(format!("type {}", shown(s))))?;
            Err(Error::new(ErrorKind::BadIntrospection).detail(format!(
                "type {} is not exactly one complete type",
                shown(s)
            )))
        }
        Err(e) => Err(e.detail(format!("type {}", shown(s)))),
    }
}

/// Whether `s` is one of the short single complete types most arguments and properties have:
/// a basic type or a variant (`s`, `v`), an array of one (`as`, `av`) or a dict of them
/// (`a{sv}`). Anything else gets the full check.
#[inline(always)]
fn is_common_single_type(s: &[u8]) -> bool {
    // One lookup per byte: bit 0 for a basic type, bit 1 for a basic type or a variant.
    const CLASS: [u8; 128] = {
        let mut t = [0u8; 128];
        let basic = b"ybnqiuxtdsogh";
        let mut i = 0;
        while i < basic.len() {
            t[basic[i] as usize] = 3;
            i += 1;
        }
        t[b'v' as usize] = 2;
        t
    };
    let class = |c: u8| CLASS.get(usize::from(c)).copied().unwrap_or(0);
    match *s {
        [c] => class(c) & 2 != 0,
        [b'a', c] => class(c) & 2 != 0,
        [b'a', b'{', k, v, b'}'] => class(k) & 1 != 0 && class(v) & 2 != 0,
        _ => false,
    }
}

#[inline(always)]
fn single_type<'a>(xml: &str, pos: usize, v: Cow<'a, str>) -> Result<Signature<'a>> {
    if !is_common_single_type(v.as_bytes()) {
        check_single_complete_type(&v).map_err(|e| located(xml, pos, e))?;
    }
    Ok(Signature::from_checked(v))
}

/// A node name: an absolute object path (root only) or a relative one (`a`, `a/b`).
fn check_node_name(s: &str, is_root: bool) -> Result<()> {
    if s.starts_with('/') {
        if !is_root {
            return Err(Error::new(ErrorKind::BadPath).detail(format!(
                "node name {}: the name of a child node must be a relative path",
                shown(s)
            )));
        }
        return check_object_path(s);
    }
    let element_ok =
        |el: &str| !el.is_empty() && el.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if s.split('/').all(element_ok) {
        Ok(())
    } else {
        Err(Error::new(ErrorKind::BadPath).detail(format!(
            "node name {}: must be a path of non-empty [A-Za-z0-9_] elements separated by '/'",
            shown(s)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let xml = "ab\ncdé\nxyz";
        assert_eq!(line_col(xml, 0), (1, 1));
        assert_eq!(line_col(xml, 3), (2, 1));
        // 'é' is two bytes; the byte after it is column 4.
        assert_eq!(line_col(xml, 7), (2, 4));
        assert_eq!(line_col(xml, 8), (3, 1));
        assert_eq!(line_col(xml, 1000), (3, 4));
    }

    #[test]
    fn borrowed_attribute_values_point_into_the_document() {
        let xml = r#"<node><interface name="a.b"/></node>"#;
        let node = parse(xml).unwrap();
        let name = node.interfaces[0].name.as_str();
        assert!(borrow_from(xml, name).is_some());
    }

    #[test]
    fn annotations_go_to_the_open_element() {
        let xml = r#"<node><interface name="a.b">
            <method name="M1"><arg type="s" direction="in"><annotation name="x" value="arg1"/></arg>
              <annotation name="x" value="m1"/><arg type="u" direction="out"/></method>
            <method name="M2"><x><annotation name="x" value="skipped"/></x>
              <annotation name="x" value="m2"/></method>
            <signal name="S"><arg type="s"/><arg type="i"><annotation name="x" value="sarg"/></arg>
              <annotation name="x" value="s"/></signal>
            <property name="P" type="s" access="read"><annotation name="x" value="p"/></property>
            <property name="Q" type="s" access="write"/>
            <annotation name="x" value="i"/></interface></node>"#;
        let node = parse(xml).unwrap();
        let i = &node.interfaces[0];
        let values =
            |v: &[Annotation<'_>]| v.iter().map(|a| a.value.to_string()).collect::<Vec<_>>();
        assert_eq!(values(&i.annotations), ["i"]);
        assert_eq!(values(&i.methods[0].annotations), ["m1"]);
        assert_eq!(values(&i.methods[0].args[0].annotations), ["arg1"]);
        assert!(i.methods[0].args[1].annotations.is_empty());
        assert_eq!(i.methods[0].args.len(), 2);
        assert_eq!(values(&i.methods[1].annotations), ["m2"]);
        assert!(i.methods[1].args.is_empty());
        assert_eq!(values(&i.signals[0].annotations), ["s"]);
        assert!(i.signals[0].args[0].annotations.is_empty());
        assert_eq!(values(&i.signals[0].args[1].annotations), ["sarg"]);
        assert_eq!(values(&i.properties[0].annotations), ["p"]);
        assert!(i.properties[1].annotations.is_empty());
    }

    #[test]
    fn escaped_values_are_unescaped() {
        let xml = r#"<node><interface name="a.b"><annotation name="x" value="&lt;a &amp; &quot;b&quot;&gt;&#10;"/></interface></node>"#;
        let node = parse(xml).unwrap();
        assert_eq!(node.interfaces[0].annotations[0].value, "<a & \"b\">\n");
    }

    #[test]
    fn word_scan_finds_the_first_stop_byte() {
        let stop_w =
            |w| eq_bytes(w, b'"') | eq_bytes(w, b'&') | eq_bytes(w, b'<') | lt_bytes(w, 0x20);
        let stop_b = |c: u8| c == b'"' || c == b'&' || c == b'<' || c < 0x20;
        let cases = [
            "",
            "\"",
            "abc\"",
            "abcdefgh\"",
            "abcdefghijklmnop&x",
            "é€😀abcdefgh<",
            "ab\ncd\"",
            "\u{1}\u{0}",
            "abcdefgh",
            "xxxxxxx\u{1f}\"",
            "#\"#'&'%\"$",
            "abcdefg'hijklmn\"",
            "\"#\"#\"#\"#\"#",
        ];
        for s in cases {
            let b = s.as_bytes();
            for start in 0..=b.len() {
                let naive = (start..b.len()).find(|&i| stop_b(b[i])).unwrap_or(b.len());
                assert_eq!(scan(b, start, stop_w, stop_b), naive, "{s:?} from {start}");
                assert_eq!(find(b, start, stop_w, stop_b), naive, "{s:?} from {start}");
            }
        }
        // The value scan of the fast path: either quote and `&` found by one masked test.
        for quote in [b'"', b'\''] {
            let same = ONES * u64::from(!(quote ^ b'&'));
            let stop_w =
                |w| eq_bytes(w & same, quote & b'&') | eq_bytes(w, b'<') | lt_bytes(w, 0x20);
            let stop_b = |c: u8| c == quote || c == b'&' || c == b'<' || c < 0x20;
            for s in cases {
                let b = s.as_bytes();
                for start in 0..=b.len() {
                    let naive = (start..b.len()).find(|&i| stop_b(b[i])).unwrap_or(b.len());
                    assert_eq!(find(b, start, stop_w, stop_b), naive, "{s:?} from {start}");
                }
            }
        }
    }

    #[test]
    fn attribute_normalization() {
        assert_eq!(
            normalize("a&amp;b&lt;&gt;&apos;&quot;").unwrap(),
            "a&b<>'\""
        );
        assert_eq!(normalize("x\r\ny\tz\n").unwrap(), "x y z ");
        assert_eq!(normalize("&#65;&#x42;&#x1F600;").unwrap(), "AB\u{1F600}");
        assert!(normalize("&nope;").is_err());
        assert!(normalize("&amp").is_err());
        assert!(normalize("&#0;").is_err());
        assert!(normalize("&#xD800;").is_err());
    }

    #[test]
    fn attribute_syntax() {
        let ok = |x: &str| parse(x).map(|_| ());
        assert!(ok(r#"<node><interface name = 'a.b' other="x&amp;y"/></node>"#).is_ok());
        for bad in [
            r#"<node><interface name="a.b"other="1"/></node>"#,
            r#"<node><interface name/></node>"#,
            r#"<node><interface name=a.b/></node>"#,
            r#"<node><interface name="a<b"/></node>"#,
            r#"<node><interface other="&bad;" name="a.b"/></node>"#,
        ] {
            assert_eq!(ok(bad).unwrap_err().kind(), ErrorKind::BadXml, "{bad}");
        }
    }

    #[test]
    fn node_names() {
        assert!(check_node_name("/", true).is_ok());
        assert!(check_node_name("/org/a", true).is_ok());
        assert!(check_node_name("a/b_1", false).is_ok());
        assert!(check_node_name("/org/a", false).is_err());
        assert!(check_node_name("a//b", false).is_err());
        assert!(check_node_name("a/", false).is_err());
        assert!(check_node_name("", false).is_err());
        assert!(check_node_name("a-b", false).is_err());
    }

    /// The values of `name`, `type` and `direction`.
    type Values = [Option<String>; 3];

    /// The fast attribute path and the slow one (`xml` holds `src` as a start tag's attributes).
    fn both_paths(src: &str) -> (Option<Values>, Result<Values>) {
        let xml = format!("<arg{src}/>");
        let attributes = &xml[4..4 + src.len()];
        let keys = [&NAME, &TYPE, &DIRECTION];
        let owned = |v: [Option<&str>; 3]| v.map(|v| v.map(str::to_owned));
        let fast = scan_attributes_fast(&xml, attributes, &keys).map(owned);
        let slow = scan_attributes_slow(&xml, 0, attributes, &keys)
            .map(|v| v.map(|v| v.map(Cow::into_owned)));
        (fast, slow)
    }

    #[test]
    fn fast_attribute_path_agrees_with_the_slow_one() {
        for src in [
            "",
            " ",
            r#" name="a""#,
            r#" name="a" "#,
            r#" type="s" name="x" direction="out""#,
            r#" direction="in" type='a{sv}'"#,
            r#" name="it's" type="s""#,
            r#" other="x" name="y""#,
            r#" directio="x" direction="y" directionx="z""#,
            r#" name="a"name="b""#,
            r#"  name="a""#,
            r#" name ="a""#,
            r#" name= "a""#,
            r#" name="a&amp;b""#,
            r#" name="a<b""#,
            " name=\"a\tb\"",
            " name=\"a\"\n",
            r#" name="a" name="b""#,
            r#" name="a"#,
            r#" name=a"#,
            r#" name"#,
            r#" na"me="a""#,
            r#" name="é€😀" type="s""#,
        ] {
            let (fast, slow) = both_paths(src);
            if let Some(fast) = fast {
                assert_eq!(Ok(fast), slow.map_err(|e| e.to_string()), "{src:?}");
            }
        }
        // The common forms take the fast path.
        assert!(
            both_paths(r#" type="s" name="x" direction="out""#)
                .0
                .is_some()
        );
        assert!(
            both_paths(r#" name="x" />"#.trim_end_matches("/>"))
                .0
                .is_some()
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn attribute() -> impl Strategy<Value = String> {
            let name = prop_oneof![
                Just("name".to_owned()),
                Just("type".to_owned()),
                Just("direction".to_owned()),
                "[a-z\"'= ]{0,10}",
            ];
            // Mostly the common form (which the fast path takes), sometimes anything.
            let value = prop_oneof![4 => "[a-z.' é]{0,12}", 1 => "[a-z.\"'&;<> \t\n#0-9é]{0,12}"];
            let space =
                prop_oneof![6 => Just(" "), 1 => Just("  "), 1 => Just("\t"), 1 => Just("")];
            let quote = prop_oneof![6 => Just("\""), 2 => Just("'"), 1 => Just("")];
            (space, name, quote.clone(), value, quote)
                .prop_map(|(sp, n, q1, v, q2)| format!("{sp}{n}={q1}{v}{q2}"))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(256)))]

            /// Wherever the fast path answers, it answers what the slow path does.
            #[test]
            fn fast_path_agrees(attributes in proptest::collection::vec(attribute(), 0..4), tail in "[ ]{0,2}") {
                let src = format!("{}{tail}", attributes.concat());
                let (fast, slow) = both_paths(&src);
                if let Some(fast) = fast {
                    prop_assert_eq!(Ok(fast), slow.map_err(|e| e.to_string()), "{:?}", src);
                }
            }
        }
    }

    #[test]
    fn quick_member_check_agrees_with_check_member() {
        let mut cases: Vec<String> = [
            "",
            "a",
            "A",
            "_",
            "0",
            "0a",
            "a0",
            "Get",
            "GetAll",
            "get_all_2",
            "a.b",
            "a-b",
            "a b",
            "é",
            "aé",
            "abcdefgh",
            "abcdefghi",
            "abcdefg.",
            "abcdefgh.",
            "abcdefghijklmnop_",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_",
            "a\u{0}",
            "a`",
            "a@",
            "a[",
            "a{",
            "a/",
            "a:",
            "a\u{7f}",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        cases.push("a".repeat(255));
        cases.push("a".repeat(256));
        // Every byte in every position of a word, after a valid first byte.
        for b in 0..=0x7fu8 {
            for at in 1..10 {
                let mut s = vec![b'x'; 10];
                s[at] = b;
                cases.push(String::from_utf8(s).unwrap());
            }
            cases.push(String::from_utf8(vec![b]).unwrap());
        }
        for s in &cases {
            let quick = is_member_name(s.as_bytes());
            let full = check_member(s).is_ok();
            assert_eq!(quick, full, "{s:?}");
        }
    }

    #[test]
    fn common_single_types_are_valid_single_types() {
        let codes = b"ybnqiuxtdsoghvaz{}()";
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for &a in codes {
            cases.push(vec![a]);
            for &b in codes {
                cases.push(vec![a, b]);
                for &c in codes {
                    for &d in codes {
                        cases.push(vec![b'a', b'{', c, d, b'}']);
                        cases.push(vec![a, b, c, d]);
                    }
                }
            }
        }
        for s in &cases {
            let s = std::str::from_utf8(s).unwrap();
            if is_common_single_type(s.as_bytes()) {
                assert!(check_single_complete_type(s).is_ok(), "{s:?}");
            }
        }
        for common in ["s", "v", "as", "av", "a{sv}", "a{oa}"] {
            let expect = common != "a{oa}";
            assert_eq!(is_common_single_type(common.as_bytes()), expect, "{common}");
        }
    }

    #[test]
    fn single_complete_types() {
        assert!(check_single_complete_type("a{sv}").is_ok());
        let e = check_single_complete_type("ss").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadIntrospection);
        let e = check_single_complete_type("").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadIntrospection);
        let e = check_single_complete_type("a{vs}").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DictKeyMustBeBasicType);
        let e = check_single_complete_type("i)").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::StructEndedButNotStarted);
    }
}

//! The introspection XML reader: one pass over quick-xml's borrowed events, building the tree
//! on an explicit stack (no recursion, so a deeply nested document cannot overflow the call
//! stack), with attribute values borrowed from the document unless they contain escapes.

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

/// An element being read, waiting for its children.
enum Frame<'a> {
    Node(Node<'a>),
    Interface(Interface<'a>),
    Method(Method<'a>),
    Signal(Signal<'a>),
    Property(Property<'a>),
    Arg(Arg<'a>),
    Annotation(Annotation<'a>),
    /// An element we do not know (or know but not in this place), skipped with its children.
    Skip,
}

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
    let mut stack: Vec<Frame<'_>> = Vec::with_capacity(8);
    let mut root: Option<Node<'_>> = None;
    loop {
        // Where the next event starts (or the white space before it); replaced by the exact
        // position of the `<` for elements.
        let before = to_usize(reader.buffer_position());
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(bad_xml(xml, to_usize(reader.error_position()), e)),
        };
        match event {
            Event::Start(e) => {
                let pos = element_pos(xml, &e).unwrap_or(before);
                if stack.len() >= MAX_DEPTH {
                    return Err(bad_introspection(
                        xml,
                        pos,
                        format_args!("elements nested more than {MAX_DEPTH} deep"),
                    ));
                }
                let frame = open(xml, pos, &e, stack.last(), root.is_some())?;
                stack.push(frame);
            }
            Event::Empty(e) => {
                let pos = element_pos(xml, &e).unwrap_or(before);
                let frame = open(xml, pos, &e, stack.last(), root.is_some())?;
                close(frame, &mut stack, &mut root);
            }
            Event::End(_) => {
                if let Some(frame) = stack.pop() {
                    close(frame, &mut stack, &mut root);
                }
            }
            Event::Eof => break,
            // Declaration, DOCTYPE, comments, processing instructions, text, CDATA and
            // entity references carry nothing the introspection format uses.
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(bad_xml(
            xml,
            xml.len(),
            "the document ends before the root element is closed",
        ));
    }
    root.ok_or_else(|| bad_xml(xml, xml.len(), "the document has no root element"))
}

/// Build the frame for a start (or empty) element inside `parent`.
fn open<'a>(
    xml: &'a str,
    pos: usize,
    e: &BytesStart<'_>,
    parent: Option<&Frame<'a>>,
    have_root: bool,
) -> Result<Frame<'a>> {
    use Frame as F;
    let tag = e.name().0;
    match (parent, tag) {
        (None, _) if have_root => Err(bad_xml(xml, pos, "more than one root element")),
        (None, "node") => node(xml, pos, e, true).map(F::Node),
        (None, _) => Err(bad_introspection(
            xml,
            pos,
            format_args!("the root element is {}, not <node>", shown(tag)),
        )),
        (Some(F::Node(_)), "node") => node(xml, pos, e, false).map(F::Node),
        (Some(F::Node(_)), "interface") => interface(xml, pos, e).map(F::Interface),
        (Some(F::Interface(_)), "method") => method(xml, pos, e).map(F::Method),
        (Some(F::Interface(_)), "signal") => signal(xml, pos, e).map(F::Signal),
        (Some(F::Interface(_)), "property") => property(xml, pos, e).map(F::Property),
        (Some(F::Method(_)), "arg") => arg(xml, pos, e, false).map(F::Arg),
        (Some(F::Signal(_)), "arg") => arg(xml, pos, e, true).map(F::Arg),
        (
            Some(
                F::Node(_)
                | F::Interface(_)
                | F::Method(_)
                | F::Signal(_)
                | F::Property(_)
                | F::Arg(_),
            ),
            "annotation",
        ) => annotation(xml, pos, e).map(F::Annotation),
        _ => Ok(F::Skip),
    }
}

/// Hand a finished element to its parent (or make it the root).
fn close<'a>(frame: Frame<'a>, stack: &mut [Frame<'a>], root: &mut Option<Node<'a>>) {
    use Frame as F;
    match (frame, stack.last_mut()) {
        (F::Node(n), None) => *root = Some(n),
        (F::Node(n), Some(F::Node(p))) => p.nodes.push(n),
        (F::Interface(i), Some(F::Node(p))) => p.interfaces.push(i),
        (F::Method(m), Some(F::Interface(p))) => p.methods.push(m),
        (F::Signal(s), Some(F::Interface(p))) => p.signals.push(s),
        (F::Property(x), Some(F::Interface(p))) => p.properties.push(x),
        (F::Arg(a), Some(F::Method(p))) => p.args.push(a),
        (F::Arg(a), Some(F::Signal(p))) => p.args.push(a),
        (F::Annotation(a), Some(parent)) => match parent {
            F::Node(p) => p.annotations.push(a),
            F::Interface(p) => p.annotations.push(a),
            F::Method(p) => p.annotations.push(a),
            F::Signal(p) => p.annotations.push(a),
            F::Property(p) => p.annotations.push(a),
            F::Arg(p) => p.annotations.push(a),
            F::Annotation(_) | F::Skip => {}
        },
        // `open` only builds frames that fit their parent; skipped elements vanish here.
        _ => {}
    }
}

/// The byte offset of the `<` that starts the element whose tag content is `e`.
fn element_pos(xml: &str, e: &BytesStart<'_>) -> Option<usize> {
    let content: &str = e;
    let start = (content.as_ptr() as usize).checked_sub(xml.as_ptr() as usize)?;
    start.checked_sub(1).filter(|&p| p < xml.len())
}

/// `part` as a slice of `xml` with `xml`'s lifetime, when it lies inside `xml` (it always does
/// for a reader over a `&str`).
fn borrow_from<'a>(xml: &'a str, part: &str) -> Option<&'a str> {
    let start = (part.as_ptr() as usize).checked_sub(xml.as_ptr() as usize)?;
    let s = xml.get(start..start.checked_add(part.len())?)?;
    std::ptr::eq(s.as_ptr(), part.as_ptr()).then_some(s)
}

/// The values of the attributes named in `keys` (others are checked for syntax and ignored),
/// borrowed from the document unless they hold references or line breaks.
fn attrs<'a, const N: usize>(
    xml: &'a str,
    pos: usize,
    e: &BytesStart<'_>,
    keys: [&str; N],
) -> Result<[Option<Cow<'a, str>>; N]> {
    let content: &str = e;
    let rest = content.get(e.name().0.len()..).unwrap_or("");
    let mut out: [Option<Cow<'a, str>>; N] = std::array::from_fn(|_| None);
    match borrow_from(xml, rest) {
        Some(src) => scan_attributes(xml, pos, src, &keys, &mut out, Cow::Borrowed)?,
        // Only when quick-xml hands out a copy (never for a reader over a `&str`).
        None => scan_attributes(xml, pos, rest, &keys, &mut out, |v: &str| {
            Cow::Owned(v.to_owned())
        })?,
    }
    Ok(out)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

// Word-at-a-time scanning (eight bytes per step, in safe code). In each mask the lowest set
// bit is exact (false positives can only appear above a true one), which is all we use.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that equals `c` (the lowest one exactly).
fn eq_bytes(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * u64::from(c));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// High bit set in each byte of `w` below `n` (`n` at most 0x80; the lowest one exactly).
fn lt_bytes(w: u64, n: u8) -> u64 {
    w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS
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

/// Whether `name` is `key` (the first byte compared inline; most keys differ there).
fn key_is(key: &str, name: &str) -> bool {
    key.len() == name.len() && key.as_bytes().first() == name.as_bytes().first() && key == name
}

/// Read `name="value"` pairs from `src` (a start tag after its name), filling `out` for `keys`.
///
/// Values without references and line breaks (nearly all) are handed to `borrow` as they are;
/// the others are unescaped and normalized into an owned string, as XML's attribute-value
/// normalization says (line breaks and tabs become spaces, `&lt;` `&gt;` `&amp;` `&apos;`
/// `&quot;` and character references are replaced).
fn scan_attributes<'s, 'a, const N: usize>(
    xml: &str,
    pos: usize,
    src: &'s str,
    keys: &[&str; N],
    out: &mut [Option<Cow<'a, str>>; N],
    borrow: impl Fn(&'s str) -> Cow<'a, str>,
) -> Result<()> {
    let b = src.as_bytes();
    let mut i = 0;
    loop {
        let before = i;
        while i < b.len() && is_space(b[i]) {
            i += 1;
        }
        if i == b.len() {
            return Ok(());
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
        let mut found = None;
        for (k, key) in keys.iter().enumerate() {
            if key_is(key, name) {
                found = Some(k);
                break;
            }
        }
        let Some(k) = found else {
            if !plain {
                // Check the references of attributes we ignore, too.
                normalize(raw).map_err(|what| bad_xml(xml, pos, what))?;
            }
            continue;
        };
        let Some(slot) = out.get_mut(k) else {
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
            borrow(raw)
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

fn member_name<'a>(xml: &str, pos: usize, v: Cow<'a, str>) -> Result<MemberName<'a>> {
    check_member(&v).map_err(|e| located(xml, pos, e))?;
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

fn single_type<'a>(xml: &str, pos: usize, v: Cow<'a, str>) -> Result<Signature<'a>> {
    check_single_complete_type(&v).map_err(|e| located(xml, pos, e))?;
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

fn node<'a>(xml: &'a str, pos: usize, e: &BytesStart<'_>, is_root: bool) -> Result<Node<'a>> {
    let [name] = attrs(xml, pos, e, ["name"])?;
    if let Some(name) = &name {
        check_node_name(name, is_root).map_err(|err| located(xml, pos, err))?;
    }
    Ok(Node::new(name))
}

fn interface<'a>(xml: &'a str, pos: usize, e: &BytesStart<'_>) -> Result<Interface<'a>> {
    let [name] = attrs(xml, pos, e, ["name"])?;
    let name = required(xml, pos, name, "interface", "name")?;
    check_interface(&name).map_err(|err| located(xml, pos, err))?;
    Ok(Interface::new(InterfaceName::from_checked(name)))
}

fn method<'a>(xml: &'a str, pos: usize, e: &BytesStart<'_>) -> Result<Method<'a>> {
    let [name] = attrs(xml, pos, e, ["name"])?;
    let name = required(xml, pos, name, "method", "name")?;
    Ok(Method::new(member_name(xml, pos, name)?))
}

fn signal<'a>(xml: &'a str, pos: usize, e: &BytesStart<'_>) -> Result<Signal<'a>> {
    let [name] = attrs(xml, pos, e, ["name"])?;
    let name = required(xml, pos, name, "signal", "name")?;
    Ok(Signal::new(member_name(xml, pos, name)?))
}

fn property<'a>(xml: &'a str, pos: usize, e: &BytesStart<'_>) -> Result<Property<'a>> {
    let [name, ty, access] = attrs(xml, pos, e, ["name", "type", "access"])?;
    let name = member_name(xml, pos, required(xml, pos, name, "property", "name")?)?;
    let signature = single_type(xml, pos, required(xml, pos, ty, "property", "type")?)?;
    let access = match required(xml, pos, access, "property", "access")?.as_ref() {
        "read" => PropertyAccess::Read,
        "write" => PropertyAccess::Write,
        "readwrite" => PropertyAccess::ReadWrite,
        other => {
            return Err(bad_introspection(
                xml,
                pos,
                format_args!(
                    "property access {} is none of read, write, readwrite",
                    shown(other)
                ),
            ));
        }
    };
    Ok(Property {
        name,
        signature,
        access,
        annotations: Vec::new(),
    })
}

fn arg<'a>(xml: &'a str, pos: usize, e: &BytesStart<'_>, in_signal: bool) -> Result<Arg<'a>> {
    let [name, ty, direction] = attrs(xml, pos, e, ["name", "type", "direction"])?;
    let signature = single_type(xml, pos, required(xml, pos, ty, "arg", "type")?)?;
    let direction = match (direction.as_deref(), in_signal) {
        (None, false) | (Some("in"), false) => ArgDirection::In,
        (None, true) | (Some("out"), _) => ArgDirection::Out,
        (Some("in"), true) => {
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
                format_args!("argument direction {} is neither in nor out", shown(other)),
            ));
        }
    };
    Ok(Arg {
        name,
        signature,
        direction,
        annotations: Vec::new(),
    })
}

fn annotation<'a>(xml: &'a str, pos: usize, e: &BytesStart<'_>) -> Result<Annotation<'a>> {
    let [name, value] = attrs(xml, pos, e, ["name", "value"])?;
    let name = required(xml, pos, name, "annotation", "name")?;
    if name.is_empty() {
        return Err(bad_introspection(
            xml,
            pos,
            "<annotation> with an empty name",
        ));
    }
    let value = required(xml, pos, value, "annotation", "value")?;
    Ok(Annotation { name, value })
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
        for s in [
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
        ] {
            let b = s.as_bytes();
            for start in 0..=b.len() {
                let naive = (start..b.len()).find(|&i| stop_b(b[i])).unwrap_or(b.len());
                assert_eq!(scan(b, start, stop_w, stop_b), naive, "{s:?} from {start}");
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

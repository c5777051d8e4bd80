//! The introspection XML writer. The layout is dbus-daemon's (two spaces per level, one element
//! per line, the DOCTYPE of the specification on top); attribute values are escaped so that any
//! string reads back unchanged, line breaks and tabs included.

use super::{Annotation, Arg, Interface, Method, Node, Property, Signal};

/// The DOCTYPE header of the specification, as dbus-daemon and GDBus write it.
pub(super) const DOCTYPE: &str = "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n";

pub(super) fn write_document(node: &Node<'_>, out: &mut String) {
    out.push_str(DOCTYPE);
    write_node(node, 0, out);
}

fn indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// Append `s` escaped for a double-quoted attribute value.
fn escape_into(s: &str, out: &mut String) {
    let needs = |b: u8| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | b'\n' | b'\r' | b'\t');
    if !s.bytes().any(needs) {
        out.push_str(s);
        return;
    }
    let mut rest = s;
    while let Some(i) = rest.bytes().position(needs) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            b'\n' => "&#10;",
            b'\r' => "&#13;",
            _ => "&#9;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

fn attr(name: &str, value: &str, out: &mut String) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_into(value, out);
    out.push('"');
}

/// Close the start tag: `/>` when there are no children, otherwise `>` and a line break.
fn end_start_tag(empty: bool, out: &mut String) {
    out.push_str(if empty { "/>\n" } else { ">\n" });
}

fn close_tag(tag: &str, depth: usize, out: &mut String) {
    indent(depth, out);
    out.push_str("</");
    out.push_str(tag);
    out.push_str(">\n");
}

fn write_annotations(annotations: &[Annotation<'_>], depth: usize, out: &mut String) {
    for a in annotations {
        indent(depth, out);
        out.push_str("<annotation");
        attr("name", &a.name, out);
        attr("value", &a.value, out);
        out.push_str("/>\n");
    }
}

fn write_node(node: &Node<'_>, depth: usize, out: &mut String) {
    indent(depth, out);
    out.push_str("<node");
    if let Some(name) = &node.name {
        attr("name", name, out);
    }
    let empty = node.interfaces.is_empty() && node.nodes.is_empty() && node.annotations.is_empty();
    end_start_tag(empty, out);
    if empty {
        return;
    }
    write_annotations(&node.annotations, depth + 1, out);
    for i in &node.interfaces {
        write_interface(i, depth + 1, out);
    }
    for n in &node.nodes {
        write_node(n, depth + 1, out);
    }
    close_tag("node", depth, out);
}

fn write_interface(i: &Interface<'_>, depth: usize, out: &mut String) {
    indent(depth, out);
    out.push_str("<interface");
    attr("name", &i.name, out);
    let empty = i.methods.is_empty()
        && i.signals.is_empty()
        && i.properties.is_empty()
        && i.annotations.is_empty();
    end_start_tag(empty, out);
    if empty {
        return;
    }
    write_annotations(&i.annotations, depth + 1, out);
    for m in &i.methods {
        write_method(m, depth + 1, out);
    }
    for s in &i.signals {
        write_signal(s, depth + 1, out);
    }
    for p in &i.properties {
        write_property(p, depth + 1, out);
    }
    close_tag("interface", depth, out);
}

fn write_method(m: &Method<'_>, depth: usize, out: &mut String) {
    indent(depth, out);
    out.push_str("<method");
    attr("name", &m.name, out);
    let empty = m.args.is_empty() && m.annotations.is_empty();
    end_start_tag(empty, out);
    if empty {
        return;
    }
    write_annotations(&m.annotations, depth + 1, out);
    for a in &m.args {
        write_arg(a, true, depth + 1, out);
    }
    close_tag("method", depth, out);
}

fn write_signal(s: &Signal<'_>, depth: usize, out: &mut String) {
    indent(depth, out);
    out.push_str("<signal");
    attr("name", &s.name, out);
    let empty = s.args.is_empty() && s.annotations.is_empty();
    end_start_tag(empty, out);
    if empty {
        return;
    }
    write_annotations(&s.annotations, depth + 1, out);
    for a in &s.args {
        // Signal arguments carry no direction (they are all out); GDBus rejects `in`.
        write_arg(a, false, depth + 1, out);
    }
    close_tag("signal", depth, out);
}

fn write_property(p: &Property<'_>, depth: usize, out: &mut String) {
    indent(depth, out);
    out.push_str("<property");
    attr("name", &p.name, out);
    attr("type", &p.signature, out);
    attr("access", p.access.as_str(), out);
    let empty = p.annotations.is_empty();
    end_start_tag(empty, out);
    if empty {
        return;
    }
    write_annotations(&p.annotations, depth + 1, out);
    close_tag("property", depth, out);
}

fn write_arg(a: &Arg<'_>, with_direction: bool, depth: usize, out: &mut String) {
    indent(depth, out);
    out.push_str("<arg");
    if let Some(name) = &a.name {
        attr("name", name, out);
    }
    attr("type", &a.signature, out);
    if with_direction {
        attr("direction", a.direction.as_str(), out);
    }
    let empty = a.annotations.is_empty();
    end_start_tag(empty, out);
    if empty {
        return;
    }
    write_annotations(&a.annotations, depth + 1, out);
    close_tag("arg", depth, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        let mut out = String::new();
        escape_into("a&b<c>d\"e'f\ng\rh\ti", &mut out);
        assert_eq!(out, "a&amp;b&lt;c&gt;d&quot;e&apos;f&#10;g&#13;h&#9;i");
        out.clear();
        escape_into("plain", &mut out);
        assert_eq!(out, "plain");
    }
}

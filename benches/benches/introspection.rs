//! Introspection XML: parsing the systemd Manager document (systemd 255, 36.5 KB, 4
//! interfaces, 93 methods, 123 properties) with fastbus-wire and with zbus 6's parser
//! (`zbus_xml` 6) in the same run, plus fastbus's writer.
//!
//! Both parsers build a borrowed tree and validate every name and signature. Before anything is
//! timed, both trees are checked to hold the same interfaces with the same numbers of methods,
//! signals and properties and the same signatures, so neither side times a no-op.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const SYSTEMD_MANAGER: &str =
    include_str!("../../wire/testdata/introspection/org.freedesktop.systemd1.Manager.xml");

/// A library-neutral summary: per interface, its name and the signatures of its members.
fn summary_fastbus(node: &fastbus_wire::introspection::Node<'_>) -> Vec<(String, Vec<String>)> {
    node.interfaces
        .iter()
        .map(|i| {
            let mut members: Vec<String> = Vec::new();
            for m in &i.methods {
                members.push(format!(
                    "m {} {} {}",
                    m.name,
                    m.in_signature(),
                    m.out_signature()
                ));
            }
            for s in &i.signals {
                members.push(format!("s {} {}", s.name, s.signature()));
            }
            for p in &i.properties {
                members.push(format!(
                    "p {} {} {}",
                    p.name,
                    p.signature,
                    p.access.as_str()
                ));
            }
            (i.name.to_string(), members)
        })
        .collect()
}

fn summary_zbus(node: &zbus_xml::Node<'_>) -> Vec<(String, Vec<String>)> {
    use zbus_xml::{ArgDirection, PropertyAccess};
    let sig = |args: &[zbus_xml::Arg<'_>], dir: Option<ArgDirection>| -> String {
        args.iter()
            .filter(|a| {
                dir.is_none()
                    || a.direction() == dir
                    || (a.direction().is_none() && dir == Some(ArgDirection::In))
            })
            .map(|a| a.ty().to_string())
            .collect()
    };
    node.interfaces()
        .iter()
        .map(|i| {
            let mut members: Vec<String> = Vec::new();
            for m in i.methods() {
                members.push(format!(
                    "m {} {} {}",
                    m.name(),
                    sig(m.args(), Some(ArgDirection::In)),
                    sig(m.args(), Some(ArgDirection::Out))
                ));
            }
            for s in i.signals() {
                members.push(format!("s {} {}", s.name(), sig(s.args(), None)));
            }
            for p in i.properties() {
                let access = match p.access() {
                    PropertyAccess::Read => "read",
                    PropertyAccess::Write => "write",
                    PropertyAccess::ReadWrite => "readwrite",
                };
                members.push(format!("p {} {} {}", p.name(), p.ty(), access));
            }
            (i.name().to_string(), members)
        })
        .collect()
}

fn benchmarks(c: &mut Criterion) {
    let ours = fastbus_wire::introspection::Node::from_xml(SYSTEMD_MANAGER).expect("fastbus parse");
    let theirs = zbus_xml::Node::try_from(SYSTEMD_MANAGER).expect("zbus_xml parse");
    let summary = summary_fastbus(&ours);
    assert_eq!(summary, summary_zbus(&theirs), "the two parsers disagree");
    let manager = &summary[3];
    assert_eq!(manager.0, "org.freedesktop.systemd1.Manager");
    assert_eq!(manager.1.len(), 87 + 7 + 123);
    assert_eq!(ours.nodes.len(), theirs.nodes().len());

    let mut group = c.benchmark_group("introspection_parse_systemd_manager");
    group.throughput(criterion::Throughput::Bytes(SYSTEMD_MANAGER.len() as u64));
    group.bench_function("zbus", |b| {
        b.iter(|| zbus_xml::Node::try_from(black_box(SYSTEMD_MANAGER)).expect("parse"))
    });
    group.bench_function("fastbus", |b| {
        b.iter(|| {
            fastbus_wire::introspection::Node::from_xml(black_box(SYSTEMD_MANAGER)).expect("parse")
        })
    });
    group.finish();

    let mut group = c.benchmark_group("introspection_write_systemd_manager");
    group.bench_function("zbus", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(SYSTEMD_MANAGER.len());
            black_box(&theirs).to_writer(&mut out).expect("write");
            out
        })
    });
    group.bench_function("fastbus", |b| b.iter(|| black_box(&ours).to_xml()));
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);

//! Introspection XML: parsing the systemd Manager document (systemd 255, 36.5 KB, 4
//! interfaces, 93 methods, 123 properties) with fastbus-wire and with zbus 6's parser
//! (`zbus_xml` 6) in the same run, plus fastbus's writer.
//!
//! Both parsers build a borrowed tree and validate every name and signature. Before anything is
//! timed, both trees are checked to hold the same interfaces with the same numbers of methods,
//! signals and properties and the same signatures, so neither side times a no-op.

use std::hint::black_box;

use criterion::{Criterion, criterion_group};

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
    group.bench_function("zbus", |b| b.iter(parse_zbus));
    group.bench_function("fastbus", |b| b.iter(parse_fastbus));
    // Not a parser: quick-xml's reader handing out every event of the document with nothing
    // done on them, the floor under fastbus's parser (which takes its events from it).
    group.bench_function("quick_xml_events_only", |b| b.iter(events_only));
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

/// quick-xml's reader over `xml` with the configuration fastbus's parser uses, every event
/// read and dropped; returns the number of events (so the loop cannot be optimized away).
fn quick_xml_events(xml: &str) -> usize {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut events = 0;
    loop {
        match reader.read_event().expect("well-formed") {
            quick_xml::events::Event::Eof => return events,
            event => {
                black_box(&event);
                events += 1;
            }
        }
    }
}

/// One parse of the systemd Manager document by fastbus: what criterion times and what
/// `FASTBUS_XML_OP` runs are the same call.
fn parse_fastbus() -> fastbus_wire::introspection::Node<'static> {
    fastbus_wire::introspection::Node::from_xml(black_box(SYSTEMD_MANAGER)).expect("parse")
}

/// The same parse by zbus.
fn parse_zbus() -> zbus_xml::Node<'static> {
    zbus_xml::Node::try_from(black_box(SYSTEMD_MANAGER)).expect("parse")
}

/// quick-xml's events over the same document (the floor).
fn events_only() -> usize {
    quick_xml_events(black_box(SYSTEMD_MANAGER))
}

/// One parse of the systemd Manager document by `op` (`fastbus`, `zbus` or `events`).
fn run_op(op: &str) {
    match op {
        "fastbus" => {
            black_box(parse_fastbus());
        }
        "zbus" => {
            black_box(parse_zbus());
        }
        "events" => {
            black_box(events_only());
        }
        other => panic!("unknown FASTBUS_XML_OP {other:?} (fastbus, zbus, events, interleaved)"),
    }
}

/// `FASTBUS_XML_OP=<op>[:<count>]` runs only `<op>` (`fastbus`, `zbus` or `events`) `count`
/// times (default 20) and exits, for instruction counts under
/// `valgrind --tool=callgrind` without criterion's own work in the profile.
///
/// `FASTBUS_XML_OP=interleaved[:<rounds>]` (default 200) instead times the three parsers in
/// turns, a batch of 20 parses each per round, and prints each one's median batch and the
/// median of the per-round ratios: on a loaded machine the load changes between criterion's
/// groups, but hardly within one round.
fn count_instructions(spec: &str) {
    let (op, count) = spec.split_once(':').unwrap_or((spec, ""));
    let count_or = |default: usize| {
        if count.is_empty() {
            default
        } else {
            count.parse().expect("FASTBUS_XML_OP count")
        }
    };
    if op == "interleaved" {
        return interleaved(count_or(200));
    }
    for _ in 0..count_or(20) {
        run_op(op);
    }
}

fn interleaved(rounds: usize) {
    const OPS: [&str; 3] = ["zbus", "fastbus", "events"];
    const BATCH: u32 = 20;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut times: [Vec<f64>; 3] = Default::default();
    let mut ratios: [Vec<f64>; 2] = Default::default();
    for _ in 0..rounds.max(1) {
        let mut round = [0.0; 3];
        for (k, op) in OPS.iter().enumerate() {
            let start = std::time::Instant::now();
            for _ in 0..BATCH {
                run_op(op);
            }
            round[k] = start.elapsed().as_secs_f64() * 1e6 / f64::from(BATCH);
            times[k].push(round[k]);
        }
        ratios[0].push(round[0] / round[1]);
        ratios[1].push(round[0] / round[2]);
    }
    for (k, op) in OPS.iter().enumerate() {
        println!("{op:>8}: median {:.1} µs per parse", median(&mut times[k]));
    }
    println!("zbus / fastbus: median ratio {:.2}", median(&mut ratios[0]));
    println!("zbus / events:  median ratio {:.2}", median(&mut ratios[1]));
}

criterion_group!(benches, benchmarks);

fn main() {
    if let Ok(spec) = std::env::var("FASTBUS_XML_OP") {
        return count_instructions(&spec);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

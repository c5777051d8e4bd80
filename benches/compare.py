#!/usr/bin/env python3
"""Print the zbus-vs-fastbus tables of benches/RESULTS.md from criterion's output.

Run after `cargo bench -p fastbus-benches --bench codec` (and `--bench
introspection`) with the same CARGO_TARGET_DIR; reads
<target>/criterion/<group>/<function>/new/estimates.json and prints one Markdown
table per case, with the median of each function and the ratio zbus / fastbus
from that one run, checked against the issues' targets (issue 2 for the codec,
issue 3 for introspection XML). Cases whose bench has not run print n/a.

Usage: benches/compare.py [TARGET_DIR]   (default: $CARGO_TARGET_DIR or target)
"""

import json
import os
import sys

# (case title, [(operation, group, zbus fn, fastbus fn, target)])
# A target is ("ratio", x): zbus / fastbus >= x; ("under_ns", n): fastbus median < n ns;
# ("memcpy", fn): fastbus within 1.5x of baseline fn in the same group; None: no target.
CASES = [
    ("(a) PropertiesChanged `sa{sv}as`, 5 properties + 1 invalidated", [
        ("encode", "a_properties_changed_encode", "zbus", "fastbus", ("ratio", 5)),
        ("decode", "a_properties_changed_decode", "zbus", "fastbus", ("ratio", 5)),
    ]),
    ("(b) method call `(sub)`", [
        ("encode", "b_method_call_encode", "zbus", "fastbus", ("ratio", 5)),
        ("decode", "b_method_call_decode", "zbus", "fastbus", ("ratio", 5)),
    ]),
    ("(c) `ay` of 1 MiB", [
        ("encode", "c_byte_array_1mib_encode", "zbus", "fastbus", None),
        ("decode borrowed (`&[u8]`), whole message", "c_byte_array_1mib_decode",
         "zbus_borrowed", "fastbus_borrowed", ("under_ns", 1000)),
        ("decode owned (`Vec<u8>`), whole message", "c_byte_array_1mib_decode",
         "zbus_owned", "fastbus_owned", ("memcpy", "memcpy_to_new_vec")),
        ("body only, borrowed (message already decoded)", "c_byte_array_1mib_decode",
         "zbus_body_only_borrowed", "fastbus_body_only_borrowed", None),
    ]),
    ("(d) `a(ii)` of 100,000 elements", [
        ("encode", "d_struct_array_100k_encode", "zbus", "fastbus", ("ratio", 20)),
        ("decode into `Vec<(i32, i32)>`", "d_struct_array_100k_decode", "zbus", "fastbus",
         ("ratio", 20)),
    ]),
    ("Introspection XML: systemd Manager document (36.5 KB), zbus_xml 6 vs fastbus", [
        ("parse (names and signatures validated)", "introspection_parse_systemd_manager",
         "zbus", "fastbus", ("ratio", 3)),
        ("write", "introspection_write_systemd_manager", "zbus", "fastbus", None),
    ]),
]

BASELINES = [("c_byte_array_1mib_decode", "memcpy_to_new_vec", "1 MiB `to_vec` (alloc + memcpy)"),
             ("c_byte_array_1mib_decode", "memcpy_into_existing",
              "1 MiB `copy_from_slice` into an existing buffer"),
             ("introspection_parse_systemd_manager", "quick_xml_events_only",
              "quick-xml's reader alone over the systemd Manager document (the floor under "
              "fastbus's parse)")]


def median_ns(target, group, function):
    path = os.path.join(target, "criterion", group, function, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def fmt(ns):
    if ns is None:
        return "n/a"
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    target = (sys.argv[1] if len(sys.argv) > 1
              else os.environ.get("CARGO_TARGET_DIR", "target"))
    for title, rows in CASES:
        print(f"### {title}\n")
        peer = "zbus_xml 6" if title.startswith("Introspection") else "zbus 6"
        print(f"| operation | {peer} | fastbus | zbus / fastbus | target | met |")
        print("|---|---|---|---|---|---|")
        for op, group, zf, ff, tgt in rows:
            z, b = median_ns(target, group, zf), median_ns(target, group, ff)
            ratio = z / b if z and b else None
            met, want = "", ""
            if tgt and b is not None:
                kind, val = tgt
                if kind == "ratio":
                    want = f">= {val}x"
                    met = "yes" if ratio and ratio >= val else "**no**"
                elif kind == "under_ns":
                    want = f"< {fmt(val)}"
                    met = "yes" if b < val else "**no**"
                elif kind == "memcpy":
                    base = median_ns(target, group, val)
                    want = f"memcpy speed ({fmt(base)})"
                    met = "yes" if base and b <= 1.5 * base else "**no**"
            r = f"{ratio:.1f}x" if ratio else "n/a"
            print(f"| {op} | {fmt(z)} | {fmt(b)} | {r} | {want} | {met} |")
        print()
    print("Baselines:\n")
    for group, fn, what in BASELINES:
        print(f"- {what}: {fmt(median_ns(target, group, fn))}")


if __name__ == "__main__":
    main()

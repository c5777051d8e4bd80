#!/usr/bin/python3
"""Decode D-Bus messages with GLib (an independent decoder) into the JSON
lines of the `decode --json` example contract (issue 2, point 9).

Usage:
  /usr/bin/python3 to_json.py FILE.bin            print one JSON object per message
  /usr/bin/python3 to_json.py --write FILE.bin..  write FILE.expected.jsonl beside each
  /usr/bin/python3 to_json.py --check DIR         re-derive every DIR/*.expected.jsonl
                                                  from its .bin and fail on any difference

Needs PyGObject with GLib's introspection data (Debian: python3-gi,
gir1.2-glib-2.0), so run it with the system /usr/bin/python3.
"""

import glob
import json
import os
import struct
import sys

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

TYPE_NAMES = {1: "method_call", 2: "method_return", 3: "error", 4: "signal"}

H = Gio.DBusMessageHeaderField


def split_messages(data):
    """Split concatenated whole messages (length from the fixed header)."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 16:
            raise ValueError("trailing %d bytes are not a whole message" % (len(data) - pos))
        fmt = {b"l": "<I", b"B": ">I"}.get(data[pos : pos + 1])
        if fmt is None:
            raise ValueError("bad endianness byte at offset %d" % pos)
        (body_len,) = struct.unpack_from(fmt, data, pos + 4)
        (fields_len,) = struct.unpack_from(fmt, data, pos + 12)
        header_len = 16 + fields_len
        header_len += (-header_len) % 8
        n = header_len + body_len
        if pos + n > len(data):
            raise ValueError("message at offset %d is truncated" % pos)
        out.append(data[pos : pos + n])
        pos += n
    return out


def value_to_json(v):
    """Convert one GLib.Variant holding a D-Bus value to the contract's JSON form."""
    t = v.get_type_string()
    c = t[0]
    if c == "y":
        return v.get_byte()
    if c == "b":
        return bool(v.get_boolean())
    if c == "n":
        return v.get_int16()
    if c == "q":
        return v.get_uint16()
    if c == "i":
        return v.get_int32()
    if c == "u":
        return v.get_uint32()
    if c == "x":
        return v.get_int64()
    if c == "t":
        return v.get_uint64()
    if c == "d":
        d = v.get_double()
        if d != d or d in (float("inf"), float("-inf")):
            raise ValueError("NaN/inf cannot be written as a JSON number")
        return d
    if c == "h":
        return {"fd": v.get_handle()}
    if c in "sog":
        return v.get_string()
    if c == "v":
        inner = v.get_variant()
        return {"signature": inner.get_type_string(), "value": value_to_json(inner)}
    if t.startswith("a{"):
        pairs = []
        for i in range(v.n_children()):
            entry = v.get_child_value(i)
            pairs.append(
                [value_to_json(entry.get_child_value(0)), value_to_json(entry.get_child_value(1))]
            )
        return pairs
    if c == "a" or c == "(":
        return [value_to_json(v.get_child_value(i)) for i in range(v.n_children())]
    raise ValueError("type %r is not a D-Bus type" % t)


def header_str(msg, field):
    v = msg.get_header(field)
    return None if v is None else v.get_string()


def header_u32(msg, field):
    v = msg.get_header(field)
    return None if v is None else v.get_uint32()


def message_to_json(blob):
    msg = Gio.DBusMessage.new_from_blob(blob, Gio.DBusCapabilityFlags.UNIX_FD_PASSING)
    order = msg.get_byte_order()
    endian = "B" if order == Gio.DBusMessageByteOrder.BIG_ENDIAN else "l"
    if endian != chr(blob[0]):
        raise ValueError("GLib reports a byte order that is not the message's")
    mtype = int(msg.get_message_type())
    sig = msg.get_header(H.SIGNATURE)
    body = msg.get_body()
    if body is None:
        args = []
    else:
        # GLib holds the body as a tuple of the arguments.
        args = [value_to_json(body.get_child_value(i)) for i in range(body.n_children())]
    return {
        "endian": endian,
        "type": TYPE_NAMES.get(mtype, mtype),
        "flags": int(msg.get_flags()),
        "serial": msg.get_serial(),
        "path": header_str(msg, H.PATH),
        "interface": header_str(msg, H.INTERFACE),
        "member": header_str(msg, H.MEMBER),
        "error_name": header_str(msg, H.ERROR_NAME),
        "reply_serial": header_u32(msg, H.REPLY_SERIAL),
        "destination": header_str(msg, H.DESTINATION),
        "sender": header_str(msg, H.SENDER),
        "signature": "" if sig is None else sig.get_string(),
        "unix_fds": header_u32(msg, H.NUM_UNIX_FDS),
        "body": args,
    }


def file_to_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    return [
        json.dumps(message_to_json(m), ensure_ascii=False, separators=(", ", ": "))
        for m in split_messages(data)
    ]


def expected_path(bin_path):
    assert bin_path.endswith(".bin")
    return bin_path[: -len(".bin")] + ".expected.jsonl"


def main(argv):
    if len(argv) >= 2 and argv[0] == "--write":
        for p in argv[1:]:
            with open(expected_path(p), "w", encoding="utf-8") as f:
                f.write("\n".join(file_to_lines(p)) + "\n")
        return 0
    if len(argv) == 2 and argv[0] == "--check":
        bins = sorted(glob.glob(os.path.join(argv[1], "*.bin")))
        if not bins:
            print("no .bin files in %s" % argv[1], file=sys.stderr)
            return 1
        bad = 0
        for p in bins:
            want = file_to_lines(p)
            try:
                with open(expected_path(p), encoding="utf-8") as f:
                    have = f.read().splitlines()
            except FileNotFoundError:
                print("%s: no .expected.jsonl" % p, file=sys.stderr)
                bad += 1
                continue
            if [json.loads(x) for x in have] != [json.loads(x) for x in want]:
                print("%s: .expected.jsonl differs from GLib's decoding" % p, file=sys.stderr)
                bad += 1
        print("GLib re-decoding: %d of %d testdata files match their .expected.jsonl" % (len(bins) - bad, len(bins)))
        return 1 if bad else 0
    if len(argv) == 1 and not argv[0].startswith("-"):
        for line in file_to_lines(argv[0]):
            print(line)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

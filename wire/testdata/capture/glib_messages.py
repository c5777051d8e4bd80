#!/usr/bin/python3
"""Build messages with GLib's own D-Bus serializer (Gio.DBusMessage.to_blob)
in big-endian and in little-endian byte order.

Usage: /usr/bin/python3 glib_messages.py OUT_DIR
Writes OUT_DIR/gdbus-big-endian-types.bin and gdbus-little-endian-types.bin:
the same messages (same serials, headers and bodies) in the two byte orders.

Needs PyGObject (Debian: python3-gi, gir1.2-glib-2.0).
"""

import os
import sys

import gi

gi.require_version("Gio", "2.0")
gi.require_version("GLib", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

V = GLib.Variant


def messages():
    """(message, description) pairs; serials are set by the caller."""
    out = []

    m = Gio.DBusMessage.new_method_call(
        "org.fastbus.Test", "/org/fastbus/Test", "org.fastbus.Test", "AllIntegers"
    )
    m.set_body(
        V(
            "(ybnqiuxtd)",
            (
                0xFF,
                True,
                -32768,
                65535,
                -2147483648,
                4294967295,
                -9223372036854775808,
                18446744073709551615,
                -1.5e300,
            ),
        )
    )
    out.append((m, "method call: every fixed-size basic type at its extreme"))

    m = Gio.DBusMessage.new_method_call(
        "org.fastbus.Test", "/org/fastbus/Test/Obj_1", "org.fastbus.Test", "Strings"
    )
    m.set_body(
        V(
            "(sogsdd)",
            ("grüße ✓", "/org/fastbus/Test/Obj_1", "a{sv}(iu)ah", "", 0.1, -0.0),
        )
    )
    out.append((m, "method call: string (UTF-8), object path, signature, empty string, doubles"))

    m = Gio.DBusMessage.new_signal("/org/fastbus/Test", "org.freedesktop.DBus.Properties", "PropertiesChanged")
    m.set_body(
        V(
            "(sa{sv}as)",
            (
                "org.fastbus.Test",
                {
                    "Name": V("s", "fastbus"),
                    "Count": V("u", 7),
                    "Enabled": V("b", False),
                    "Blob": V("ay", bytes(range(16))),
                    "Where": V("o", "/org/fastbus/Test"),
                },
                ["Stale"],
            ),
        )
    )
    out.append((m, "signal: PropertiesChanged sa{sv}as"))

    m = Gio.DBusMessage.new_method_call(
        "org.fastbus.Test", "/org/fastbus/Test", "org.fastbus.Test", "Nested"
    )
    m.set_body(
        V(
            "(va(is)axa{sa{sv}}aav)",
            (
                V("v", V("v", V("(sai)", ("deep", [1, 2, 3])))),
                [(1, "one"), (-2, "two"), (3, "")],
                [],
                {"outer": {"inner": V("ad", [1.0, 2.5, -3.25]), "g": V("g", "(yv)")}},
                [[V("x", -1), V("t", 1)], [], [V("as", ["a", "b"])]],
            ),
        )
    )
    out.append((m, "method call: nested variants, array of structs, empty ax, dict of dicts, arrays of arrays"))

    m = Gio.DBusMessage.new_method_call(
        "org.fastbus.Test", "/org/fastbus/Test", "org.fastbus.Test", "PassFds"
    )
    m.set_body(V("(hsh)", (0, "two fds", 1)))
    # to_blob insists that the UNIX_FDS header matches an attached fd list;
    # the fds themselves never travel in the blob.
    fds = Gio.UnixFDList.new()
    for _ in range(2):
        fd = os.open(os.devnull, os.O_RDONLY)
        fds.append(fd)
        os.close(fd)
    m.set_unix_fd_list(fds)
    out.append((m, "method call: two h values and the UNIX_FDS header"))

    call = Gio.DBusMessage.new_method_call(
        "org.fastbus.Test", "/org/fastbus/Test", "org.fastbus.Test", "GetStruct"
    )
    call.set_serial(41)
    call.set_sender(":1.7")
    m = call.new_method_reply()
    m.set_sender(":1.8")
    m.set_body(V("((sib)a(yv)y)", (("s", -1, True), [(1, V("i", 5)), (2, V("s", "x"))], 0)))
    out.append((m, "method return: structs, array of (yv)"))

    m = call.new_method_error_literal("org.fastbus.Error.Failed", "it failed: ünïcode")
    out.append((m, "error reply with text"))

    m = Gio.DBusMessage.new_method_call(None, "/", None, "Ping")
    m.set_flags(Gio.DBusMessageFlags.NO_REPLY_EXPECTED | Gio.DBusMessageFlags.NO_AUTO_START)
    out.append((m, "method call: no body, no interface, no destination, flags 3"))

    return out


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = argv[0]
    for order, name in (
        (Gio.DBusMessageByteOrder.BIG_ENDIAN, "gdbus-big-endian-types.bin"),
        (Gio.DBusMessageByteOrder.LITTLE_ENDIAN, "gdbus-little-endian-types.bin"),
    ):
        blob = bytearray()
        for serial, (m, _desc) in enumerate(messages(), start=100):
            m.set_serial(serial)
            m.set_byte_order(order)
            blob += m.to_blob(Gio.DBusCapabilityFlags.UNIX_FD_PASSING)
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Capture real D-Bus messages for fastbus-wire's tests.

Usage:
  /usr/bin/python3 capture.py --python VENV_PYTHON [--out DIR]

VENV_PYTHON is a Python with dbus-fast installed (default: $FASTBUS_PYTHON).
This script itself needs the system Python with PyGObject (python3-gi,
gir1.2-glib-2.0): GLib decodes every captured message to pick the ones kept
and to write the .expected.jsonl files.

What it does:
  1. starts a private dbus-daemon (own config in a temp dir: session type,
     a Unix socket in that dir, EXTERNAL auth, permissive policy) - never the
     machine's own buses;
  2. puts a recording proxy (proxy.py) in front of it, so every client's
     post-SASL byte stream and everything the daemon sent back is kept exactly;
  3. drives dbus-send, gdbus, dbus-fast (dbus_fast_peer.py) through the proxy;
  4. writes selected messages to OUT_DIR/<source>-<what>.bin (concatenated raw
     messages), plus GLib-built big/little-endian messages (glib_messages.py),
     and a .expected.jsonl beside each .bin (to_json.py).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import glib_messages  # noqa: E402
import to_json  # noqa: E402
from proxy import RecordingProxy  # noqa: E402

CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={sock}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


def log(*args):
    print("capture:", *args, file=sys.stderr, flush=True)


class Capture:
    def __init__(self, venv_python):
        self.venv_python = venv_python
        self.tmp = tempfile.mkdtemp(prefix="fastbus-capture-")
        conf = os.path.join(self.tmp, "bus.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(sock=os.path.join(self.tmp, "bus.sock")))
        self.daemon = subprocess.Popen(
            ["dbus-daemon", "--nofork", "--nopidfile", "--print-address", "--config-file=" + conf],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        address = self.daemon.stdout.readline().strip()
        if not address:
            raise SystemExit("dbus-daemon did not start")
        log("private dbus-daemon at", address)
        self.proxy = RecordingProxy(
            os.path.join(self.tmp, "proxy.sock"), os.path.join(self.tmp, "bus.sock")
        )
        self.env = dict(os.environ)
        self.env["DBUS_SESSION_BUS_ADDRESS"] = self.proxy.address
        # Anything that would try the system bus fails instead of touching it.
        self.env["DBUS_SYSTEM_BUS_ADDRESS"] = "unix:path=" + os.path.join(self.tmp, "no-system-bus")
        self.env.pop("DBUS_STARTER_ADDRESS", None)
        self.env["XDG_RUNTIME_DIR"] = self.tmp
        self.service = None

    def run(self, label, argv, ok=True):
        """Run one client program; its connections get `label`."""
        self.proxy.label = label
        before = len(self.proxy.connections)
        res = subprocess.run(argv, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        log("[%s] %s -> exit %d %s" % (label, " ".join(argv[:6]), res.returncode, (res.stdout + res.stderr).strip()[:160]))
        if ok and res.returncode != 0:
            raise SystemExit("%s failed: %s" % (argv, res.stderr))
        for conn in self.proxy.connections[before:]:
            if not conn.closed.wait(10):
                raise SystemExit("connection of %s did not close" % label)
        self.proxy.label = "unlabelled"

    def start_service(self):
        self.proxy.label = "dbus-fast-service"
        self.service = subprocess.Popen(
            [self.venv_python, os.path.join(HERE, "dbus_fast_peer.py"), "service", self.proxy.address],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.service.stdout.readline().strip()
        if line != "READY":
            raise SystemExit("dbus-fast service did not start")
        self.proxy.label = "unlabelled"

    def stop_service(self):
        self.service.stdin.close()
        self.service.wait(10)
        for conn in self.proxy.connections_labelled("dbus-fast-service"):
            conn.closed.wait(10)

    def close(self):
        self.proxy.close()
        self.daemon.terminate()
        self.daemon.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # Selection helpers -------------------------------------------------
    def sent(self, label):
        """(bytes, json) of every message the clients with `label` sent."""
        return [(m, to_json.message_to_json(m)) for c in self.proxy.connections_labelled(label) for m in c.client_messages()]

    def received(self, label):
        """(bytes, json) of every message the daemon sent to clients with `label`."""
        return [(m, to_json.message_to_json(m)) for c in self.proxy.connections_labelled(label) for m in c.daemon_messages()]


def pick(pairs, **want):
    out = []
    for raw, j in pairs:
        if all(j.get(k) == v for k, v in want.items()):
            out.append(raw)
    return out


def one(pairs, **want):
    got = pick(pairs, **want)
    if not got:
        raise SystemExit("no captured message matches %r" % (want,))
    return got[:1]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=os.environ.get("FASTBUS_PYTHON"), help="Python with dbus-fast")
    ap.add_argument("--out", default=os.path.dirname(HERE), help="output dir (default: wire/testdata)")
    args = ap.parse_args(argv)
    if not args.python:
        ap.error("--python (or FASTBUS_PYTHON) must name a Python with dbus-fast installed")

    cap = Capture(args.python)
    files = {}
    try:
        cap.start_service()

        # dbus-send: one connection per invocation (Hello, then the message).
        dest = ["--dest=org.fastbus.Test", "/org/fastbus/Test"]
        ds = ["dbus-send", "--session", "--print-reply"]
        cap.run("dbus-send", ds + dest + [
            "org.fastbus.Raw.Basic", "string:hello", "int32:-42", "uint64:18446744073709551615",
            "double:3.5", "boolean:true", "byte:255", "objpath:/org/fastbus/Test/child",
        ])
        cap.run("dbus-send", ds + dest + [
            "org.fastbus.Raw.Containers", "array:string:one,two,three",
            "dict:string:int32:alpha,1,beta,-2",
            "dict:string:string:k1,v1,k2,v2",
        ])
        # dbus-send 1.14 cannot put variants inside a dict (dict:string:variant
        # is "Unknown type"); top-level variants work.
        cap.run("dbus-send", ds + dest + ["org.fastbus.Raw.Variants", "variant:uint32:42", "variant:string:boxed", "variant:double:-0.25"])
        cap.run("dbus-send", ["dbus-send", "--session", "--type=method_call"] + dest + ["org.fastbus.Raw.SmallInts", "int16:-7", "uint16:7", "int64:-9007199254740993"])
        cap.run("dbus-send-signal", ["dbus-send", "--session", "--type=signal", "/org/fastbus/Test",
                                     "org.fastbus.Raw.Changed", "string:it changed", "uint32:3", "array:int32:1,-2,3"])

        # dbus-daemon's own replies and errors.
        bus = ["--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"]
        cap.run("daemon-getid", ds + bus + ["org.freedesktop.DBus.GetId"])
        cap.run("daemon-listnames", ds + bus + ["org.freedesktop.DBus.ListNames"])
        cap.run("daemon-requestname", ds + bus + ["org.freedesktop.DBus.RequestName", "string:org.fastbus.Extra", "uint32:4"])
        cap.run("daemon-errors", ds + ["--dest=org.fastbus.Nobody", "/org/fastbus/Nobody", "org.fastbus.Nobody.Call"], ok=False)
        cap.run("daemon-errors", ds + bus + ["org.freedesktop.DBus.NoSuchMethod", "string:x"], ok=False)
        cap.run("daemon-errors", ds + bus + ["org.freedesktop.DBus.RequestName", "string:not a bus name", "uint32:0"], ok=False)

        # gdbus
        gd = ["gdbus"]
        cap.run("gdbus-call", gd + ["call", "--session", "--dest", "org.fastbus.Test", "--object-path", "/org/fastbus/Test",
                                     "--method", "org.fastbus.Test.Nested", "(['a', 'b'], {'k': <int32 5>})"])
        cap.run("gdbus-emit", gd + ["emit", "--session", "--object-path", "/org/fastbus/Test",
                                     "--signal", "org.fastbus.Test.Changed", "'hello'", "[1, 2, 3]", "{'a': <true>, 'b': <@ay [0x01, 0x02]>}"])
        cap.run("gdbus-introspect", gd + ["introspect", "--session", "--dest", "org.fastbus.Test", "--object-path", "/org/fastbus/Test"])
        cap.run("gdbus-introspect-daemon", gd + ["introspect", "--session", "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus"])

        # dbus-fast client (the service answers it and emits PropertiesChanged)
        cap.run("dbus-fast-client", [args.python, os.path.join(HERE, "dbus_fast_peer.py"), "client", cap.proxy.address])
        cap.stop_service()
        big_endian_relay(cap)

        DBUS = "org.freedesktop.DBus"
        first = cap.proxy.connections_labelled("dbus-send")[0]
        hello = [(m, to_json.message_to_json(m)) for m in first.daemon_messages()]
        files["dbus-daemon-hello.bin"] = (
            one(hello, type="method_return", reply_serial=1, sender=DBUS, signature="s")
            + one(hello, type="signal", member="NameAcquired", sender=DBUS)
        )
        files["dbus-daemon-bus-replies.bin"] = (
            one(cap.received("daemon-getid"), type="method_return", reply_serial=2, sender=DBUS)
            + one(cap.received("daemon-listnames"), type="method_return", reply_serial=2, sender=DBUS)
            + one(cap.received("daemon-requestname"), type="method_return", reply_serial=2, sender=DBUS)
            + pick(cap.received("daemon-requestname"), type="signal", member="NameAcquired", body=["org.fastbus.Extra"])
            + one(cap.received("dbus-fast-service"), type="signal", member="NameOwnerChanged", body=["org.fastbus.Extra", "", cap_unique(cap, "daemon-requestname")])
            + one(cap.received("dbus-fast-service"), type="signal", member="NameOwnerChanged", body=["org.fastbus.Extra", cap_unique(cap, "daemon-requestname"), ""])
        )
        files["dbus-daemon-errors.bin"] = pick(cap.received("daemon-errors"), type="error")
        files["dbus-daemon-introspect-reply.bin"] = one(
            cap.received("gdbus-introspect-daemon"), type="method_return", sender=DBUS, signature="s", reply_serial=2
        )
        files["dbus-daemon-relayed-calls.bin"] = pick(cap.received("dbus-fast-service"), interface="org.fastbus.Raw")
        files["dbus-send-method-calls.bin"] = (
            one(cap.sent("dbus-send"), member="Hello")
            + pick(cap.sent("dbus-send"), interface="org.fastbus.Raw")
        )
        files["dbus-send-signal.bin"] = pick(cap.sent("dbus-send-signal"), type="signal")
        files["gdbus-call-nested.bin"] = cap_all(cap.sent("gdbus-call"))
        files["gdbus-emit-signal.bin"] = pick(cap.sent("gdbus-emit"), type="signal")
        files["gdbus-introspect-call.bin"] = cap_all(cap.sent("gdbus-introspect"))
        files["dbus-fast-introspect-reply.bin"] = pick(cap.sent("dbus-fast-service"), type="method_return", signature="s", reply_serial=2) and [
            raw for raw, j in cap.sent("dbus-fast-service")
            if j["type"] == "method_return" and j["signature"] == "s" and j["body"] and j["body"][0].startswith("<!DOCTYPE")
        ][:1]
        files["dbus-fast-client-calls.bin"] = pick(cap.sent("dbus-fast-client"), type="method_call")
        files["dbus-fast-service-replies.bin"] = [
            raw for raw, j in cap.sent("dbus-fast-service")
            if j["type"] in ("method_return", "signal") and not (j["body"] and isinstance(j["body"][0], str) and j["body"][0].startswith("<!DOCTYPE"))
        ]
        files["dbus-daemon-relayed-big-endian.bin"] = pick(cap.received("gdbus-be-receiver"), endian="B")
        files["dbus-fast-properties-changed.bin"] = pick(cap.sent("dbus-fast-service"), type="signal", member="PropertiesChanged")
        for label in ("dbus-fast-client",):
            for c in cap.proxy.connections_labelled(label):
                log("%s connection %d passed %d fds to the daemon" % (label, c.index, c.fds_c2s))
    finally:
        if cap.service is not None and cap.service.poll() is None:
            cap.service.kill()
        cap.close()

    os.makedirs(args.out, exist_ok=True)
    written = []
    for name, msgs in files.items():
        if not msgs:
            raise SystemExit("nothing captured for " + name)
        path = os.path.join(args.out, name)
        with open(path, "wb") as f:
            f.write(b"".join(msgs))
        written.append(path)
    glib_messages.main([args.out])
    written += [os.path.join(args.out, n) for n in ("gdbus-big-endian-types.bin", "gdbus-little-endian-types.bin")]
    to_json.main(["--write"] + written)
    for p in sorted(written):
        log("%-40s %6d bytes, %d messages" % (os.path.basename(p), os.path.getsize(p), len(to_json.split_messages(open(p, "rb").read()))))
    return 0


def big_endian_relay(cap):
    """Send big-endian messages (GDBus, in this process) through the real
    daemon to a second GDBus connection, to record what dbus-daemon relays
    (it adds the SENDER field in the message's own byte order)."""
    from gi.repository import Gio, GLib

    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    cap.proxy.label = "gdbus-be-receiver"
    rx = Gio.DBusConnection.new_for_address_sync(cap.proxy.address, flags, None, None)
    cap.proxy.label = "gdbus-be-sender"
    tx = Gio.DBusConnection.new_for_address_sync(cap.proxy.address, flags, None, None)
    cap.proxy.label = "unlabelled"
    target = rx.get_unique_name()
    msgs = []
    m = Gio.DBusMessage.new_signal("/org/fastbus/Test", "org.fastbus.Test", "BigEndianSignal")
    m.set_destination(target)
    m.set_body(GLib.Variant("(sa{sv}ax)", ("big", {"n": GLib.Variant("q", 0x1234)}, [1, -1])))
    msgs.append(m)
    m = Gio.DBusMessage.new_method_call(target, "/org/fastbus/Test", "org.fastbus.Test", "BigEndianCall")
    m.set_flags(Gio.DBusMessageFlags.NO_REPLY_EXPECTED)
    m.set_body(GLib.Variant("(a(yd)v)", ([(1, 0.5), (2, -2.0)], GLib.Variant("(ot)", ("/a/b", 2**40)))))
    msgs.append(m)
    for m in msgs:
        m.set_byte_order(Gio.DBusMessageByteOrder.BIG_ENDIAN)
        tx.send_message(m, Gio.DBusSendMessageFlags.NONE)
    tx.flush_sync(None)
    # Wait until the daemon has relayed both to the receiver.
    rx_conn = cap.proxy.connections_labelled("gdbus-be-receiver")[0]
    for _ in range(100):
        try:
            if sum(1 for x in rx_conn.daemon_messages() if x[:1] == b"B") >= len(msgs):
                break
        except ValueError:
            pass
        time.sleep(0.05)
    tx.close_sync(None)
    rx.close_sync(None)


def cap_unique(cap, label):
    """The unique name the daemon gave the (first) client with `label`."""
    for raw, j in cap.received(label):
        if j["type"] == "method_return" and j["reply_serial"] == 1:
            return j["body"][0]
    raise SystemExit("no Hello reply for " + label)


def cap_all(pairs):
    return [raw for raw, _ in pairs]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

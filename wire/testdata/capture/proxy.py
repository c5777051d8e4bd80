"""A recording Unix-socket proxy between D-Bus clients and a private dbus-daemon.

Every accepted client connection is paired with a fresh connection to the
daemon's socket. Bytes (and SCM_RIGHTS file descriptors) are forwarded
unchanged in both directions, and both raw streams are kept in memory so
that, after the SASL handshake is stripped, they hold exactly the D-Bus
messages the client wrote and the daemon wrote.

The proxy never looks inside messages while forwarding; splitting into
messages happens afterwards (`split_messages`).
"""

import array
import os
import socket
import struct
import threading

MAX_FDS = 64


class Connection:
    """One proxied client connection and the bytes seen in each direction."""

    def __init__(self, index, label):
        self.index = index
        self.label = label
        self.c2s = bytearray()  # client -> daemon, raw (SASL included)
        self.s2c = bytearray()  # daemon -> client, raw (SASL included)
        self.fds_c2s = 0
        self.fds_s2c = 0
        self.closed = threading.Event()

    def client_messages(self):
        """Messages the client sent, after the SASL exchange."""
        data, _ = strip_sasl(bytes(self.c2s), bytes(self.s2c))
        return split_messages(data)

    def daemon_messages(self):
        """Messages the daemon sent to this client, after the SASL exchange."""
        _, data = strip_sasl(bytes(self.c2s), bytes(self.s2c))
        return split_messages(data)


class RecordingProxy:
    """Listens on `listen_path`, forwards to `daemon_path`, records everything."""

    def __init__(self, listen_path, daemon_path):
        self.listen_path = listen_path
        self.daemon_path = daemon_path
        self.label = "unlabelled"
        self.connections = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(listen_path)
        self._sock.listen(16)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def address(self):
        return "unix:path=" + self.listen_path

    def _accept_loop(self):
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.daemon_path)
            with self._lock:
                conn = Connection(len(self.connections), self.label)
                self.connections.append(conn)
            done = [0]
            for src, dst, to_daemon in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump,
                    args=(conn, src, dst, to_daemon, done),
                    daemon=True,
                ).start()

    def _pump(self, conn, src, dst, to_daemon, done):
        fd_size = array.array("i").itemsize
        try:
            while True:
                data, ancdata, _flags, _addr = src.recvmsg(
                    65536, socket.CMSG_SPACE(MAX_FDS * fd_size)
                )
                fds = []
                for level, kind, payload in ancdata:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        usable = len(payload) - (len(payload) % fd_size)
                        fds.extend(array.array("i", payload[:usable]))
                if not data:
                    break
                with self._lock:
                    if to_daemon:
                        conn.c2s += data
                        conn.fds_c2s += len(fds)
                    else:
                        conn.s2c += data
                        conn.fds_s2c += len(fds)
                if fds:
                    dst.sendmsg(
                        [data],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))],
                    )
                    for fd in fds:
                        os.close(fd)
                else:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            with self._lock:
                done[0] += 1
                if done[0] == 2:
                    src.close()
                    dst.close()
                    conn.closed.set()

    def connections_labelled(self, label):
        with self._lock:
            return [c for c in self.connections if c.label == label]

    def close(self):
        self._sock.close()


def strip_sasl(c2s, s2c):
    """Return (client binary stream, daemon binary stream) after SASL.

    The client starts with one NUL byte, then CRLF-terminated commands up to
    and including BEGIN. The daemon answers every command but BEGIN with
    exactly one CRLF-terminated line; its binary stream starts after those.
    """
    if not c2s.startswith(b"\0"):
        raise ValueError("client stream does not start with the SASL NUL byte")
    pos = 1
    commands = 0
    while True:
        end = c2s.find(b"\r\n", pos)
        if end < 0:
            raise ValueError("client never sent BEGIN")
        line = c2s[pos:end]
        pos = end + 2
        if line == b"BEGIN":
            break
        commands += 1
    client_bin = c2s[pos:]
    spos = 0
    for _ in range(commands):
        end = s2c.find(b"\r\n", spos)
        if end < 0:
            raise ValueError("daemon answered fewer SASL commands than were sent")
        spos = end + 2
    return client_bin, s2c[spos:]


def message_length(buf, pos=0):
    """Total length of the message starting at buf[pos] (header must be there)."""
    endian = buf[pos : pos + 1]
    if endian == b"l":
        fmt = "<I"
    elif endian == b"B":
        fmt = ">I"
    else:
        raise ValueError("bad endianness byte %r at offset %d" % (endian, pos))
    (body_len,) = struct.unpack_from(fmt, buf, pos + 4)
    (fields_len,) = struct.unpack_from(fmt, buf, pos + 12)
    header_len = 16 + fields_len
    header_len += (-header_len) % 8
    return header_len + body_len


def split_messages(data):
    """Split a stream of whole concatenated messages into a list of bytes."""
    out = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 16:
            raise ValueError("trailing %d bytes are not a whole message" % (len(data) - pos))
        n = message_length(data, pos)
        if pos + n > len(data):
            raise ValueError("message at offset %d is truncated" % pos)
        out.append(bytes(data[pos : pos + n]))
        pos += n
    return out

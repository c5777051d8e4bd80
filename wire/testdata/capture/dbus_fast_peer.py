"""dbus-fast peers for the capture: a service and a client.

Usage (with a Python that has dbus-fast installed):
  python dbus_fast_peer.py service ADDRESS   export org.fastbus.Test, print READY,
                                             serve until stdin closes
  python dbus_fast_peer.py client ADDRESS    call the service's methods, then exit

The service owns the name org.fastbus.Test and exports the interface
org.fastbus.Test at /org/fastbus/Test (used by dbus-fast and gdbus calls).
Method calls on the interface org.fastbus.Raw (any member, any signature:
the dbus-send calls) get a method return with one string.
"""

import asyncio
import os
import sys

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, dbus_property, method

NAME = "org.fastbus.Test"
PATH = "/org/fastbus/Test"


class TestInterface(ServiceInterface):
    def __init__(self):
        super().__init__("org.fastbus.Test")
        self._name = "fastbus"
        self._count = 7

    @method()
    def Configure(self, options: "a{sv}") -> "u":  # noqa: F821
        return len(options)

    @method()
    def GetStruct(self) -> "(sib)":  # noqa: F821
        return ["fastbus", -7, True]

    @method()
    def TakeFd(self, fd: "h") -> "t":  # noqa: F821
        try:
            return os.fstat(fd).st_ino
        finally:
            os.close(fd)

    @method()
    def Nested(self, arg: "(asa{sv})") -> "s":  # noqa: F821
        return "%d strings, %d entries" % (len(arg[0]), len(arg[1]))

    @method()
    def Touch(self) -> "":
        self._name = "changed"
        self._count += 1
        self.emit_properties_changed({"Name": self._name, "Count": self._count}, ["Stale"])

    @dbus_property()
    def Name(self) -> "s":  # noqa: F821
        return self._name

    @Name.setter
    def Name(self, value: "s"):  # noqa: F821
        self._name = value

    @dbus_property()
    def Count(self) -> "u":  # noqa: F821
        return self._count

    @Count.setter
    def Count(self, value: "u"):  # noqa: F821
        self._count = value


def raw_handler(msg):
    if msg.message_type == MessageType.METHOD_CALL and msg.interface == "org.fastbus.Raw":
        return Message.new_method_return(msg, "s", ["got " + msg.signature])
    return None


async def service(address):
    bus = await MessageBus(bus_address=address, negotiate_unix_fd=True).connect()
    bus.add_message_handler(raw_handler)
    # Subscribe to NameOwnerChanged so that the daemon sends us some.
    await bus.call(
        Message(
            destination="org.freedesktop.DBus",
            path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus",
            member="AddMatch",
            signature="s",
            body=["type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged'"],
        )
    )
    bus.export(PATH, TestInterface())
    await bus.request_name(NAME)
    print("READY", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    bus.disconnect()
    try:
        await bus.wait_for_disconnect()
    except EOFError:
        pass


async def client(address):
    bus = await MessageBus(bus_address=address, negotiate_unix_fd=True).connect()

    async def call(member, signature="", body=(), unix_fds=()):
        reply = await bus.call(
            Message(
                destination=NAME,
                path=PATH,
                interface="org.fastbus.Test",
                member=member,
                signature=signature,
                body=list(body),
                unix_fds=list(unix_fds),
            )
        )
        if reply.message_type != MessageType.METHOD_RETURN:
            raise SystemExit("%s failed: %s %s" % (member, reply.error_name, reply.body))
        return reply.body

    print(
        await call(
            "Configure",
            "a{sv}",
            [
                {
                    "Name": Variant("s", "fastbus"),
                    "Count": Variant("u", 3),
                    "Ratio": Variant("d", 0.75),
                    "Enabled": Variant("b", True),
                    "Tags": Variant("as", ["x", "y"]),
                    "Inner": Variant("a{sv}", {"k": Variant("x", -5)}),
                }
            ],
        )
    )
    r, w = os.pipe()
    try:
        print(await call("TakeFd", "h", [0], unix_fds=[r]))
    finally:
        os.close(r)
        os.close(w)
    print(await call("GetStruct"))
    print(await call("Touch"))
    bus.disconnect()
    await bus.wait_for_disconnect()


def main(argv):
    if len(argv) != 2 or argv[0] not in ("service", "client"):
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(service(argv[1]) if argv[0] == "service" else client(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

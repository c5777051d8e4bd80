//! Real clients against the `fastbus-testbus` binary: dbus-send, gdbus,
//! busctl, Python dbus-fast, dbus-run-session, and the way GTestDBus and
//! python-dbusmock start their daemon. Each skips with a message when its
//! tool is not installed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_fastbus-testbus");

fn have(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        .unwrap_or(false);
    if !found {
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// `fastbus-testbus --address=... --print-address`, killed on drop.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Bus {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(BIN)
            .arg(format!("--address=unix:dir={}", dir.path().display()))
            .arg("--print-address")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fastbus-testbus");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("address line");
        let address = line.trim().to_owned();
        assert!(address.starts_with("unix:path="), "{address}");
        assert!(address.contains(",guid="), "{address}");
        Bus {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dbus_send_calls_the_driver() {
    if !have("dbus-send") {
        return;
    }
    let bus = Bus::start();
    let out = output(Command::new("dbus-send").args([
        &format!("--bus={}", bus.address),
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ListNames",
    ]));
    assert!(out.contains("string \"org.freedesktop.DBus\""), "{out}");
}

#[test]
fn gdbus_calls_and_introspects() {
    if !have("gdbus") {
        return;
    }
    let bus = Bus::start();
    let out = output(Command::new("gdbus").args([
        "call",
        "--address",
        &bus.address,
        "-d",
        "org.freedesktop.DBus",
        "-o",
        "/org/freedesktop/DBus",
        "-m",
        "org.freedesktop.DBus.NameHasOwner",
        "org.freedesktop.DBus",
    ]));
    assert_eq!(out.trim(), "(true,)");
    let out = output(Command::new("gdbus").args([
        "introspect",
        "--address",
        &bus.address,
        "-d",
        "org.freedesktop.DBus",
        "-o",
        "/org/freedesktop/DBus",
    ]));
    assert!(out.contains("RequestName"), "{out}");
}

#[test]
fn busctl_lists_names() {
    if !have("busctl") {
        return;
    }
    let bus = Bus::start();
    let out = output(Command::new("busctl").args([
        &format!("--address={}", bus.address),
        "list",
        "--no-pager",
    ]));
    assert!(out.contains("org.freedesktop.DBus"), "{out}");
}

#[test]
fn python_dbus_fast_round_trip() {
    let py = std::env::var("FASTBUS_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python").to_owned());
    if !Path::new(&py).exists() {
        eprintln!(
            "SKIPPED: no Python with dbus-fast at {py} (set FASTBUS_PYTHON; .ci/run makes one)"
        );
        return;
    }
    let bus = Bus::start();
    let script = r#"
import asyncio, sys
from dbus_fast.aio import MessageBus
from dbus_fast import Message, MessageType
async def main(addr):
    a = await MessageBus(bus_address=addr).connect()
    b = await MessageBus(bus_address=addr).connect()
    await b.request_name("org.example.Py")
    def handler(msg):
        if msg.member == "Echo":
            b.send(Message.new_method_return(msg, "s", [msg.body[0]]))
            return True
    b.add_message_handler(handler)
    r = await a.call(Message(destination="org.example.Py", path="/e", interface="org.example.E", member="Echo", signature="s", body=["hi"]))
    assert r.message_type == MessageType.METHOD_RETURN, r
    print(r.body[0])
asyncio.run(main(sys.argv[1]))
"#;
    let out = output(Command::new(&py).args(["-c", script, &bus.address]));
    assert_eq!(out.trim(), "hi");
}

#[test]
fn run_sets_the_address_and_returns_the_status() {
    let out = Command::new(BIN)
        .args([
            "run",
            "--",
            "sh",
            "-c",
            "case \"$DBUS_SESSION_BUS_ADDRESS\" in unix:path=*) exit 7;; *) exit 1;; esac",
        ])
        .status()
        .expect("run");
    assert_eq!(out.code(), Some(7));
    if have("dbus-send") {
        let out = output(Command::new(BIN).args([
            "run",
            "--",
            "dbus-send",
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetId",
        ]));
        assert!(out.contains("string \""), "{out}");
    }
}

#[test]
fn dbus_run_session_drives_it_as_its_daemon() {
    if !have("dbus-run-session") || !have("dbus-send") {
        return;
    }
    let out = output(Command::new("dbus-run-session").args([
        &format!("--dbus-daemon={BIN}"),
        "--",
        "dbus-send",
        "--session",
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ListNames",
    ]));
    assert!(out.contains("org.freedesktop.DBus"), "{out}");
}

/// GTestDBus / python-dbusmock: `--config-file=FILE --print-address=FD`, and `--fork` with `--print-pid`.
#[test]
fn started_like_gtestdbus_and_dbusmock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("session.conf");
    std::fs::write(
        &conf,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n  <type>session</type>\n  <listen>unix:dir={}</listen>\n  <policy context=\"default\">\n    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n  </policy>\n  <limit name=\"max_names_per_connection\">10</limit>\n</busconfig>\n",
            dir.path().display()
        ),
    )
    .expect("config");
    let addr_file = dir.path().join("address");
    // The address goes to fd 3, as GTestDBus asks with --print-address=FD.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {BIN} --config-file={} --print-address=3 --nofork 3>{}",
            conf.display(),
            addr_file.display()
        ))
        .spawn()
        .expect("spawn");
    let address = loop {
        let s = std::fs::read_to_string(&addr_file).unwrap_or_default();
        if s.ends_with('\n') {
            break s.trim().to_owned();
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("exited early: {st}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(address.starts_with("unix:path="), "{address}");
    if have("dbus-send") {
        output(Command::new("dbus-send").args([
            &format!("--bus={address}"),
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetId",
        ]));
    }
    let _ = child.kill();
    let _ = child.wait();

    // --fork: the command returns once the bus is up, after printing address and pid.
    let out = Command::new(BIN)
        .arg(format!("--config-file={}", conf.display()))
        .args(["--print-address", "--print-pid", "--fork"])
        .output()
        .expect("fork");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let address = lines.next().expect("address").to_owned();
    let pid: u32 = lines
        .next()
        .expect("pid")
        .trim()
        .parse()
        .expect("pid number");
    assert!(address.starts_with("unix:path="));
    if have("dbus-send") {
        output(Command::new("dbus-send").args([
            &format!("--bus={address}"),
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetId",
        ]));
    }
    let _ = Command::new("kill").arg(pid.to_string()).status();
}

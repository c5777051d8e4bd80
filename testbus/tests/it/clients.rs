//! Real clients against the `fastbus-testbus` binary: dbus-send, gdbus,
//! busctl, Python dbus-fast, dbus-run-session, and the way GTestDBus and
//! python-dbusmock start their daemon. Each skips with a message when its
//! tool is not installed.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{WAIT, pipe};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_fastbus-testbus");

/// Reads one line from `r` on a thread; panics after [`WAIT`].
pub(crate) fn read_line_within(r: impl Read + Send + 'static, what: &str) -> String {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(r).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(WAIT) {
        Ok(l) => l,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// Runs `cmd` to completion with stdout and stderr captured; kills it and
/// panics after [`WAIT`].
pub(crate) fn run_within(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("timed out after {WAIT:?}: {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let join = |h: std::thread::JoinHandle<Vec<u8>>| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(h.join().unwrap_or_default());
        });
        rx.recv_timeout(WAIT).unwrap_or_else(|_| {
            panic!("{what} exited but its output stays open (a child holds it)")
        })
    };
    Output {
        status,
        stdout: join(out),
        stderr: join(err),
    }
}

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
        let child = Command::new(BIN)
            .arg(format!("--address=unix:dir={}", dir.path().display()))
            .arg("--print-address")
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fastbus-testbus");
        // Killed on drop from here on, even when an assertion below fails.
        let mut bus = Bus {
            child,
            address: String::new(),
            _dir: dir,
        };
        let line = read_line_within(
            bus.child.stdout.take().expect("stdout"),
            "fastbus-testbus prints its address",
        );
        bus.address = line.trim().to_owned();
        assert!(bus.address.starts_with("unix:path="), "{}", bus.address);
        assert!(bus.address.contains(",guid="), "{}", bus.address);
        bus
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn output(cmd: &mut Command) -> String {
    let out = run_within(cmd);
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
    let out = run_within(Command::new(BIN).args([
        "run",
        "--",
        "sh",
        "-c",
        "case \"$DBUS_SESSION_BUS_ADDRESS\" in unix:path=*) exit 7;; *) exit 1;; esac",
    ]));
    assert_eq!(out.status.code(), Some(7));
    // A command killed by a signal: 128 + the signal, as a shell reports it.
    let out = run_within(Command::new(BIN).args(["run", "--", "sh", "-c", "kill -TERM $$"]));
    assert_eq!(out.status.code(), Some(128 + 15));
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

fn session_conf(dir: &Path, listen: &str) -> std::path::PathBuf {
    let conf = dir.join("session.conf");
    std::fs::write(
        &conf,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n  <type>session</type>\n  <keep_umask/>\n  <listen>{listen}</listen>\n  <servicedir>{}</servicedir>\n  <policy context=\"default\">\n    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n  </policy>\n  <limit name=\"max_names_per_connection\">10</limit>\n</busconfig>\n",
            dir.display()
        ),
    )
    .expect("config");
    conf
}

fn get_id(address: &str) {
    if have("dbus-send") {
        output(Command::new("dbus-send").args([
            &format!("--bus={address}"),
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetId",
        ]));
    }
}

/// A child process killed and reaped when the test ends, even by a panic.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills a daemon that a test started by pid (the `--fork` ways).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.0.to_string())
            .stderr(Stdio::null())
            .status();
    }
}

/// GLib's GTestDBus (`G_TEST_DBUS_DAEMON`): `--config-file=FILE
/// --print-address=FD` with FD the write end of a pipe, read line by line;
/// the daemon closes FD after the address, as dbus-daemon does.
#[test]
fn started_like_gtestdbus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = session_conf(dir.path(), &format!("unix:dir={}", dir.path().display()));
    let (rd, wr) = pipe();
    // The pipe goes to fd 3 of the daemon, through a shell (std cannot map fds).
    let child = Reaped(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec {BIN} --config-file={} --print-address=3 3>&1 1>/dev/null",
                conf.display()
            ))
            .stdout(Stdio::from(wr))
            .spawn()
            .expect("spawn"),
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = String::new();
        let _ = BufReader::new(rd).read_to_string(&mut all);
        let _ = tx.send(all);
    });
    let all = rx
        .recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("fd 3: no end of file after the address"));
    assert_eq!(all.lines().count(), 1, "{all:?}");
    let address = all.trim().to_owned();
    assert!(address.starts_with("unix:path="), "{address}");
    get_id(&address);
    drop(child);
}

/// `dbus-run-session`'s way: `--nofork --print-address FD --session`, and the
/// address is read until end of file, so the daemon must close FD after it
/// (it takes the fd at startup and drops it once printed; no re-exec, so the
/// pid it prints is the one its parent started). FD 0 too: standard input,
/// which the daemon then points at `/dev/null`.
#[test]
fn print_address_fd_is_closed_after_printing() {
    for fd in [0, 4, 12] {
        if fd > 9 && !Path::new("/bin/bash").exists() {
            eprintln!(
                "SKIPPED: fd {fd}: no /bin/bash to hand the daemon an fd above 9 (sh cannot)"
            );
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut rd, wr) = pipe();
        let shell = if fd > 9 { "/bin/bash" } else { "sh" };
        let child = Reaped(Command::new(shell)
            .arg("-c")
            .arg(format!(
                "exec {BIN} --nofork --print-address {fd} --print-pid={fd} --address=unix:dir={} {fd}>&1 1>/dev/null",
                dir.path().display()
            ))
            .stdout(Stdio::from(wr))
            .spawn()
            .expect("spawn"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut all = String::new();
            let _ = rd.read_to_string(&mut all);
            let _ = tx.send(all);
        });
        let all = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("fd {fd}: no end of file after the address"));
        let mut lines = all.lines();
        let address = lines.next().expect("address").to_owned();
        let pid: u32 = lines.next().expect("pid").parse().expect("pid number");
        assert_eq!(pid, child.0.id(), "the pid is the daemon's own");
        assert!(address.starts_with("unix:path="), "{address}");
        get_id(&address);
        drop(child);
    }
}

/// python-dbusmock's `start_dbus`: `--fork --print-address=1 --print-pid=1`
/// read with `check_output` (stdout until end of file), then SIGTERM by pid.
#[test]
fn started_like_dbusmock_start_dbus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = session_conf(dir.path(), &format!("unix:dir={}", dir.path().display()));
    let out = run_within(Command::new(BIN).args([
        "--fork",
        "--print-address=1",
        "--print-pid=1",
        &format!("--config-file={}", conf.display()),
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.trim().lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let pid: u32 = lines[1].parse().expect("pid");
    let _kill = KillOnDrop(pid);
    assert!(lines[0].starts_with("unix:path="), "{text}");
    get_id(lines[0]);
    let st = run_within(Command::new("kill").arg(pid.to_string()));
    assert!(st.status.success());
    // Gone: the address no longer answers (bounded wait for the exit).
    let deadline = Instant::now() + WAIT;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "the forked bus ignores SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// python-dbusmock's `PrivateDBus`: `--config-file=FILE` only (no fork, no
/// print), wait until the socket of `<listen>unix:path=` exists, call
/// `ReloadConfig`, then SIGTERM.
#[test]
fn started_like_dbusmock_private_dbus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("session_bus.socket");
    let conf = session_conf(dir.path(), &format!("unix:path={}", socket.display()));
    let mut reaped = Reaped(
        Command::new(BIN)
            .arg(format!("--config-file={}", conf.display()))
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn"),
    );
    let child = &mut reaped.0;
    let deadline = Instant::now() + WAIT;
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the socket never appeared");
        if let Ok(Some(st)) = child.try_wait() {
            panic!("exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let address = format!("unix:path={}", socket.display());
    if have("dbus-send") {
        output(Command::new("dbus-send").args([
            &format!("--bus={address}"),
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.ReloadConfig",
        ]));
    }
    let st = run_within(Command::new("kill").arg(child.id().to_string()));
    assert!(st.status.success());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the bus");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// `--fork --print-address=FD --print-pid=FD2` with two pipes, read to end of
/// file once the command has returned (as scripts that fork dbus-daemon do):
/// the forked bus keeps neither pipe open.
#[test]
fn fork_prints_to_inherited_fds_and_lets_them_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr_r, addr_w) = pipe();
    let (pid_r, pid_w) = pipe();
    // The shell's stdout and stderr are the pipes; it moves them to fds 3 and 4.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {BIN} --fork --session --print-address=3 --print-pid=4 --address=unix:dir={} 3>&1 4>&2 1>/dev/null 2>/dev/null",
            dir.path().display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::from(addr_w))
        .stderr(Stdio::from(pid_w))
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(Instant::now() < deadline, "--fork did not return");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    let read_all = |mut r: std::fs::File, what: &'static str| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            let _ = tx.send(s);
        });
        rx.recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{what}: the forked bus keeps the pipe open"))
    };
    let pid: u32 = read_all(pid_r, "pid").trim().parse().expect("a pid");
    let _kill = KillOnDrop(pid);
    let address = read_all(addr_r, "address").trim().to_owned();
    assert!(address.starts_with("unix:path="), "{address}");
    get_id(&address);
}

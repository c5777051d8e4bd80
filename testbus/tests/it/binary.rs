//! The `fastbus-testbus` binary (issue 6 point 5): logging, busconfig
//! elements, the usage errors; real clients against it are in `clients.rs`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use fastbus_transport::ClientOptions;
use fastbus_transport::auth::ClientMechanism;

use crate::clients::{BIN, read_line_within, run_within};
use crate::harness::{Client, error_name};

/// The binary, killed on drop; its stderr goes to a file.
struct Running {
    child: Child,
    address: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(args: &[String]) -> Running {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("stderr.log");
        let child = Command::new(BIN)
            .args(args)
            .arg("--print-address")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start fastbus-testbus");
        let mut r = Running {
            child,
            address: String::new(),
            log,
            _dir: dir,
        };
        let out = r.child.stdout.take().expect("stdout");
        r.address = read_line_within(out, "the address").trim().to_owned();
        r
    }

    /// Stops the bus with SIGTERM and returns what it logged.
    fn stop(self) -> String {
        self.stop_with("-TERM")
    }

    /// Stops the bus with `signal` (`-TERM`, `-INT`) and returns what it logged.
    fn stop_with(mut self, signal: &str) -> String {
        let st = run_within(
            Command::new("kill")
                .arg(signal)
                .arg(self.child.id().to_string()),
        );
        assert!(st.status.success());
        let deadline = std::time::Instant::now() + crate::harness::WAIT;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                assert!(st.success(), "exit status after {signal}: {st}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{signal} did not stop the bus"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn unix_address(&self) -> String {
        self.address
            .split(';')
            .find(|a| a.starts_with("unix:"))
            .expect("a unix address")
            .to_owned()
    }
}

fn conf(dir: &Path, body: &str) -> String {
    let path = dir.join("bus.conf");
    std::fs::write(
        &path,
        format!("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n{body}\n</busconfig>\n"),
    )
    .expect("config");
    format!("--config-file={}", path.display())
}

#[tokio::test]
async fn verbose_logs_every_routed_message_and_the_default_is_quiet() {
    for verbose in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec![format!("--address=unix:dir={}", dir.path().display())];
        if verbose {
            args.push("-v".into());
        }
        let bus = Running::start(&args);
        let mut c = Client::connect(&bus.address).await;
        assert_eq!(c.bus_error("GetId", &()).await, "");
        // Still connected at the stop: a normal shutdown logs nothing either.
        // SIGINT and SIGTERM both stop it cleanly.
        let log = bus.stop_with(if verbose { "-INT" } else { "-TERM" });
        if verbose {
            assert!(
                log.contains("call serial=") && log.contains("org.freedesktop.DBus.GetId"),
                "{log}"
            );
        } else {
            assert_eq!(log, "", "quiet by default");
        }
        c.expect_closed().await;
    }
}

#[tokio::test]
async fn busconfig_listen_limit_type_and_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = conf(
        dir.path(),
        &format!(
            "  <type>session</type>\n  <listen>unix:dir={}</listen>\n  <listen>tcp:host=127.0.0.1,port=0</listen>\n  <auth>EXTERNAL</auth>\n  <policy context=\"default\"><allow own=\"*\"/></policy>\n  <policy user=\"root\"><allow send_destination=\"*\"/></policy>\n  <limit name=\"max_names_per_connection\">2</limit>\n  <limit name=\"pending_fd_timeout\">150000</limit>",
            dir.path().display()
        ),
    );
    let bus = Running::start(&[cfg, "-v".into()]);
    let parts: Vec<&str> = bus.address.split(';').collect();
    assert_eq!(parts.len(), 2, "{}", bus.address);
    assert!(parts[0].starts_with("unix:path=") && parts[1].starts_with("tcp:"));
    let mut c = Client::connect(&bus.unix_address()).await;
    // The unique name counts toward the limit, as in dbus-daemon: one more name fits.
    assert_eq!(
        c.bus_error("RequestName", &("org.example.A", 0u32)).await,
        ""
    );
    assert_eq!(
        c.bus_error("RequestName", &("org.example.B", 0u32)).await,
        "org.freedesktop.DBus.Error.LimitsExceeded"
    );
    drop(c);
    let log = bus.stop();
    assert_eq!(
        log.matches("parsed and not enforced").count(),
        1,
        "the policy notice, once: {log}"
    );
}

#[tokio::test]
async fn busconfig_auth_anonymous_over_tcp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = conf(
        dir.path(),
        "  <listen>tcp:host=127.0.0.1,port=0</listen>\n  <auth>ANONYMOUS</auth>\n  <allow_anonymous/>",
    );
    let bus = Running::start(&[cfg]);
    assert!(bus.address.starts_with("tcp:"), "{}", bus.address);
    let opts = ClientOptions {
        mechanisms: vec![ClientMechanism::Anonymous],
        ..ClientOptions::default()
    };
    let mut c = Client::connect_raw_with(&bus.address, &opts).await;
    c.hello().await;
    let me = c.name.clone();
    let r = c.call_bus("GetConnectionUnixUser", &(me.as_str(),)).await;
    assert_eq!(
        error_name(&r),
        "org.freedesktop.DBus.Error.Failed",
        "an anonymous client has no uid"
    );
    drop(c);
    bus.stop();
}

#[test]
fn usage_errors_help_and_version() {
    let out = run_within(Command::new(BIN).arg("--no-such-option"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option"));
    let out = run_within(Command::new(BIN).arg("--help"));
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for flag in [
        "--address",
        "--print-address",
        "--print-pid",
        "--config-file",
        "--fork",
        "run [OPTIONS] -- COMMAND",
        "-v",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let out = run_within(Command::new(BIN).arg("--version"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("fastbus-testbus "));
    // Never a stand-in for the machine's system bus without an address of its own.
    let out = run_within(Command::new(BIN).arg("--system"));
    assert!(!out.status.success());
    // Flags dbus-daemon harnesses pass are accepted.
    let dir = tempfile::tempdir().expect("tempdir");
    let bus = Running::start(&[
        "--session".into(),
        "--nofork".into(),
        "--nopidfile".into(),
        "--syslog".into(),
        "--syslog-only".into(),
        "--nosyslog".into(),
        format!("--address=unix:dir={}", dir.path().display()),
    ]);
    assert!(bus.address.starts_with("unix:path="));
    bus.stop();
}

/// `--print-address=FD` / `--print-pid=FD` with an FD that is not open: a
/// clear error at startup, not a bus that runs without telling its address.
#[test]
fn a_print_fd_that_is_not_open_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for opt in ["--print-address=987", "--print-pid=987"] {
        let out = run_within(
            Command::new(BIN)
                .arg(opt)
                .arg(format!("--address=unix:dir={}", dir.path().display())),
        );
        assert_eq!(out.status.code(), Some(1), "{opt}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains(opt) && err.contains("987"), "{opt}: {err}");
    }
}

#[test]
fn a_busconfig_that_is_not_xml_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.conf");
    std::fs::write(&path, "<busconfig><listen>unix:tmpdir=/tmp</busconfig").expect("write");
    let out = run_within(Command::new(BIN).arg(format!("--config-file={}", path.display())));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("bad.conf"), "{err}");
}

/// `ReloadConfig` re-reads the `<limit>`s of `--config-file`; a broken file
/// fails the call with `Failed` and the limits stay (python-dbusmock reloads
/// after it changes the services directory).
#[tokio::test]
async fn reload_config_rereads_the_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = format!("  <listen>unix:dir={}</listen>\n", dir.path().display());
    let limit = |n: u32| format!("{listen}  <limit name=\"max_names_per_connection\">{n}</limit>");
    let cfg = conf(dir.path(), &limit(2));
    let bus = Running::start(&[cfg]);
    let mut c = Client::connect(&bus.address).await;
    let ask = |n: &'static str| (n, 0u32);
    assert_eq!(c.bus_error("RequestName", &ask("org.example.A")).await, "");
    assert_eq!(
        c.bus_error("RequestName", &ask("org.example.B")).await,
        "org.freedesktop.DBus.Error.LimitsExceeded"
    );
    conf(dir.path(), &limit(3));
    assert_eq!(c.bus_error("ReloadConfig", &()).await, "");
    assert_eq!(c.bus_error("RequestName", &ask("org.example.B")).await, "");
    std::fs::write(dir.path().join("bus.conf"), "<busconfig><limit").expect("write");
    assert_eq!(
        c.bus_error("ReloadConfig", &()).await,
        "org.freedesktop.DBus.Error.Failed"
    );
    assert_eq!(
        c.bus_error("RequestName", &ask("org.example.C")).await,
        "org.freedesktop.DBus.Error.LimitsExceeded",
        "the old limits stay"
    );
    drop(c);
    bus.stop();
}

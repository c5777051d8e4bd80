//! The `fastbus-testbus` binary: a D-Bus message bus for tests that accepts
//! dbus-daemon's command line (see `fastbus_testbus::config`), plus
//! `fastbus-testbus run -- COMMAND...` (like `dbus-run-session`).

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitCode, Stdio};

use fastbus_testbus::config::{self, CommandLine, PrintTo};
use fastbus_testbus::{Error, Limits, Result, TestBus};
use fastbus_transport::auth::Mechanism;

fn main() -> ExitCode {
    let raw: Vec<OsString> = std::env::args_os().skip(1).collect();
    let cl = match config::parse_args(raw.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fastbus-testbus: {e}\n\n{}", config::USAGE);
            return ExitCode::from(2);
        }
    };
    if cl.help {
        print!("{}", config::USAGE);
        return ExitCode::SUCCESS;
    }
    if cl.version {
        println!("fastbus-testbus {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let level = match cl.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .init();
    if cl.fork && cl.run.is_none() {
        return match fork_child(&cl, &raw) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fastbus-testbus: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match reexec_closing_print_fds(&cl, &raw) {
        Ok(None) => {}
        Ok(Some(mut cmd)) => {
            use std::os::unix::process::CommandExt;
            let e = cmd.exec();
            eprintln!("fastbus-testbus: cannot re-execute to close the print fds: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("fastbus-testbus: {e}");
            return ExitCode::FAILURE;
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fastbus-testbus: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(cl)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fastbus-testbus: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes one line to stdout or to an inherited fd (reopened through /proc,
/// which needs no unsafe code).
fn print_to(to: PrintTo, line: &str) -> Result<()> {
    let io = |e| Error::Io {
        context: "printing the address or pid",
        source: e,
    };
    match to {
        PrintTo::Stdout | PrintTo::Fd(1) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}").map_err(io)?;
            out.flush().map_err(io)
        }
        PrintTo::Fd(2) => {
            let mut err = std::io::stderr().lock();
            writeln!(err, "{line}").map_err(io)
        }
        PrintTo::Fd(fd) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/self/fd/{fd}"))
                .map_err(io)?;
            writeln!(f, "{line}").map_err(io)
        }
    }
}

/// The fd number of a print target that is neither stdout nor stderr.
fn inherited_fd(to: Option<PrintTo>) -> Option<u32> {
    match to {
        Some(PrintTo::Fd(n)) if n > 2 => Some(n),
        _ => None,
    }
}

fn same_target(a: Option<PrintTo>, b: Option<PrintTo>) -> bool {
    let norm = |t: Option<PrintTo>| match t {
        Some(PrintTo::Fd(1)) => Some(PrintTo::Stdout),
        t => t,
    };
    a.is_some() && norm(a) == norm(b)
}

fn print_option(name: &str, to: Option<PrintTo>) -> Option<String> {
    match to? {
        PrintTo::Stdout => Some(format!("--{name}")),
        PrintTo::Fd(n) => Some(format!("--{name}={n}")),
    }
}

/// `raw` without `--print-address[=FD]`, `--print-pid[=FD]` (with a separate
/// FD argument) and `--fork`, with `extra` put before a `--` so that a
/// `run -- COMMAND` keeps its command last.
fn rebuild_args(raw: &[OsString], extra: &[String]) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    let mut skip_number = false;
    let mut it = raw.iter();
    for a in it.by_ref() {
        let s = a.to_string_lossy();
        if s == "--" {
            out.extend(extra.iter().map(OsString::from));
            out.push(a.clone());
            out.extend(it.cloned());
            return out;
        }
        if std::mem::take(&mut skip_number)
            && !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
        {
            continue;
        }
        if s == "--fork" || s.starts_with("--print-address=") || s.starts_with("--print-pid=") {
            continue;
        }
        if s == "--print-address" || s == "--print-pid" {
            skip_number = true;
            continue;
        }
        out.push(a.clone());
    }
    out.extend(extra.iter().map(OsString::from));
    out
}

/// A shell that can redirect and close fd `max` (dash only knows fds 0-9).
fn shell_for(max: u32) -> Option<&'static str> {
    if max <= 9 {
        Some("/bin/sh")
    } else if std::path::Path::new("/bin/bash").exists() {
        Some("/bin/bash")
    } else {
        None
    }
}

/// `exec "$0" "$@"` through a shell that applies `redirects` first.
fn shell_exec(shell: &str, redirects: &str, exe: &std::path::Path, args: &[OsString]) -> Command {
    let mut c = Command::new(shell);
    c.arg("-c")
        .arg(format!("exec \"$0\" \"$@\"{redirects}"))
        .arg(exe)
        .args(args);
    c
}

fn own_exe() -> Result<std::path::PathBuf> {
    std::env::current_exe().map_err(|e| Error::Io {
        context: "finding our own executable",
        source: e,
    })
}

/// dbus-daemon closes a `--print-address=FD` / `--print-pid=FD` pipe once it
/// has written to it, and `dbus-run-session` reads the address until that end
/// of file. Safe Rust cannot close an inherited fd by number, so when one is
/// given the binary re-executes itself (same pid) through a shell that moves
/// the address fd to standard output (the original standard output waits on
/// standard input) and closes the others; the new image prints to standard
/// output and then puts the original back (`--x-restore-stdout`). A pid that
/// goes to another target than the address is printed here, before.
///
/// Returns the command to `exec`, or `None` when there is nothing to close.
fn reexec_closing_print_fds(cl: &CommandLine, raw: &[OsString]) -> Result<Option<Command>> {
    let addr_fd = inherited_fd(cl.print_address);
    let pid_fd = inherited_fd(cl.print_pid);
    let Some(max) = addr_fd.max(pid_fd) else {
        return Ok(None);
    };
    let Some(shell) = shell_for(max) else {
        tracing::warn!(
            "fd {max} stays open after printing to it: no shell here can close fds above 9"
        );
        return Ok(None);
    };
    let same = same_target(cl.print_address, cl.print_pid);
    let mut extra: Vec<String> = Vec::new();
    let mut redirects = String::new();
    if let Some(a) = addr_fd {
        let stdout_open = rustix::fs::fstat(std::io::stdout()).is_ok();
        redirects.push_str(if stdout_open { " 0>&1" } else { " 0</dev/null" });
        redirects.push_str(&format!(" 1>&{a}"));
        extra.push("--print-address=1".into());
        extra.push("--x-restore-stdout".into());
        if same {
            extra.push("--print-pid=1".into());
        }
    } else {
        extra.extend(print_option("print-address", cl.print_address));
    }
    if let Some(p) = cl.print_pid {
        match (addr_fd, pid_fd) {
            // Same pipe as the address: printed after it, by the new image.
            (Some(_), _) if same => {}
            // Another target than a moved address, or a pipe of its own: now.
            (Some(_), _) | (None, Some(_)) => print_to(p, &std::process::id().to_string())?,
            (None, None) => extra.extend(print_option("print-pid", Some(p))),
        }
    }
    for n in [addr_fd, pid_fd].into_iter().flatten() {
        let close = format!(" {n}>&-");
        if !redirects.contains(&close) {
            redirects.push_str(&close);
        }
    }
    let args = rebuild_args(raw, &extra);
    Ok(Some(shell_exec(shell, &redirects, &own_exe()?, &args)))
}

/// After printing: standard output becomes what standard input is (the
/// original standard output, or `/dev/null` for a `--fork` child), standard
/// error goes to `/dev/null` for a quiet `--fork` child, and standard input is
/// `/dev/null`. This closes the pipes that the address and pid went through.
fn finish_stdio(cl: &CommandLine) {
    let _ = std::io::stdout().flush();
    let result = (|| -> std::io::Result<()> {
        if cl.restore_stdout {
            rustix::stdio::dup2_stdout(std::io::stdin())?;
        }
        if cl.detach && cl.verbose == 0 {
            rustix::stdio::dup2_stderr(std::io::stdin())?;
        }
        let null = std::fs::File::open("/dev/null")?;
        rustix::stdio::dup2_stdin(&null)?;
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!("cannot reset standard input and output after printing: {e}");
    }
}

/// `--fork`: run the bus in a detached child (its own process group, standard
/// input and output on `/dev/null`, inherited print fds closed), print what it
/// printed, exit.
fn fork_child(cl: &CommandLine, raw: &[OsString]) -> Result<()> {
    let exe = own_exe()?;
    let extra: Vec<String> = [
        "--nofork",
        "--print-address=1",
        "--print-pid=1",
        "--x-detach",
        "--x-restore-stdout",
    ]
    .map(String::from)
    .to_vec();
    let args = rebuild_args(raw, &extra);
    let fds: Vec<u32> = [inherited_fd(cl.print_address), inherited_fd(cl.print_pid)]
        .into_iter()
        .flatten()
        .collect();
    let mut cmd = match fds.iter().max().and_then(|m| shell_for(*m)) {
        Some(shell) => {
            let redirects: String = fds.iter().map(|n| format!(" {n}>&-")).collect();
            shell_exec(shell, &redirects, &exe, &args)
        }
        None => {
            let mut c = Command::new(&exe);
            c.args(&args);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if cl.verbose > 0 {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| Error::Io {
        context: "starting the bus process",
        source: e,
    })?;
    let Some(stdout) = child.stdout.take() else {
        return Err(Error::Usage("no pipe to the bus process".into()));
    };
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut next = || lines.next().and_then(std::result::Result::ok);
    let (Some(address), Some(pid)) = (next(), next()) else {
        let mut why = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut why);
        }
        let _ = child.wait();
        return Err(Error::Usage(format!(
            "the bus process exited before printing its address: {}",
            why.trim()
        )));
    };
    if let Some(to) = cl.print_address {
        print_to(to, &address)?;
    }
    if let Some(to) = cl.print_pid {
        print_to(to, &pid)?;
    }
    Ok(())
}

async fn serve(cl: CommandLine) -> Result<ExitCode> {
    let stop = match cl.run {
        Some(_) => None,
        None => Some(StopSignals::install()?),
    };
    let mut limits = Limits::default();
    let mut listen: Vec<String> = Vec::new();
    let mut builder = TestBus::builder();
    if let Some(file) = &cl.config_file {
        let cfg = config::read_busconfig(file)?;
        if cfg.has_policy {
            tracing::info!(
                "{}: <policy> rules are parsed and not enforced",
                file.display()
            );
        }
        if cfg.bus_type.as_deref() == Some("system")
            && cl.addresses.is_empty()
            && cfg.listen.is_empty()
        {
            return Err(Error::Usage(
                "refusing to stand in for the system bus without an address".into(),
            ));
        }
        for (name, value) in &cfg.limits {
            if !limits.set_by_name(name, *value) {
                tracing::info!("ignoring <limit name=\"{name}\">");
            }
        }
        listen.clone_from(&cfg.listen);
        if !cfg.auth.is_empty() {
            let mechs: Vec<Mechanism> = cfg
                .auth
                .iter()
                .filter_map(|a| match a.as_str() {
                    "EXTERNAL" => Some(Mechanism::External),
                    "DBUS_COOKIE_SHA1" => Some(Mechanism::CookieSha1),
                    "ANONYMOUS" => Some(Mechanism::Anonymous),
                    other => {
                        tracing::warn!("unknown <auth> mechanism {other}");
                        None
                    }
                })
                .collect();
            builder = builder.mechanisms(mechs);
        }
        builder = builder
            .allow_anonymous(cfg.allow_anonymous)
            .reload_config_from(file);
    } else if cl.system && cl.addresses.is_empty() {
        return Err(Error::Usage(
            "--system needs --address: this bus never stands in for the machine's system bus"
                .into(),
        ));
    }
    if !cl.addresses.is_empty() {
        listen.clone_from(&cl.addresses);
    }
    if listen.is_empty() {
        listen.push("unix:tmpdir=/tmp".into());
    }
    builder = builder.limits(limits);
    for a in &listen {
        builder = builder.listen(a)?;
    }
    let bus = builder.start().await?;
    let address = bus.address().unwrap_or_default();
    tracing::info!("listening on {address}");
    if let Some(to) = cl.print_address {
        print_to(to, &address)?;
    }
    if let Some(to) = cl.print_pid {
        print_to(to, &std::process::id().to_string())?;
    }
    if cl.restore_stdout || cl.detach {
        finish_stdio(&cl);
    }
    let code = match &cl.run {
        Some(cmd) => {
            let Some((prog, args)) = cmd.split_first() else {
                return Err(Error::Usage("run needs a COMMAND after --".into()));
            };
            let status = tokio::process::Command::new(prog)
                .args(args)
                .env("DBUS_SESSION_BUS_ADDRESS", &address)
                .env_remove("DBUS_STARTER_ADDRESS")
                .env_remove("DBUS_STARTER_BUS_TYPE")
                .status()
                .await
                .map_err(|e| Error::Io {
                    context: "running the command",
                    source: e,
                })?;
            use std::os::unix::process::ExitStatusExt;
            let code = match (status.code(), status.signal()) {
                (Some(c), _) => c,
                (None, Some(sig)) => 128 + sig,
                (None, None) => 1,
            };
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        None => {
            if let Some(stop) = stop {
                stop.wait().await;
            }
            ExitCode::SUCCESS
        }
    };
    bus.shutdown().await;
    Ok(code)
}

/// SIGTERM and SIGINT, caught from before the address is printed: a harness
/// that signals the bus as soon as it has read the address must not kill it
/// by the default action.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        let io = |e| Error::Io {
            context: "installing signal handlers",
            source: e,
        };
        Ok(StopSignals {
            term: signal(SignalKind::terminate()).map_err(io)?,
            int: signal(SignalKind::interrupt()).map_err(io)?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn rebuilt_arguments_drop_print_options_and_keep_the_command_last() {
        let raw = os(&[
            "run",
            "--print-address",
            "5",
            "-v",
            "--print-pid=6",
            "--fork",
            "--",
            "sh",
            "--print-address",
            "3",
        ]);
        let extra = vec!["--print-address=1".to_owned()];
        assert_eq!(
            rebuild_args(&raw, &extra),
            os(&[
                "run",
                "-v",
                "--print-address=1",
                "--",
                "sh",
                "--print-address",
                "3"
            ])
        );
        // A number after a print option is its fd only when it is all digits.
        let raw = os(&["--print-address", "--session", "--config-file=/x"]);
        assert_eq!(
            rebuild_args(&raw, &[]),
            os(&["--session", "--config-file=/x"])
        );
    }

    #[test]
    fn print_targets_compare_with_fd_1_as_stdout() {
        assert!(same_target(Some(PrintTo::Stdout), Some(PrintTo::Fd(1))));
        assert!(same_target(Some(PrintTo::Fd(5)), Some(PrintTo::Fd(5))));
        assert!(!same_target(Some(PrintTo::Fd(5)), Some(PrintTo::Fd(6))));
        assert!(!same_target(None, None));
        assert_eq!(inherited_fd(Some(PrintTo::Fd(2))), None);
        assert_eq!(inherited_fd(Some(PrintTo::Fd(9))), Some(9));
        assert_eq!(shell_for(9), Some("/bin/sh"));
    }
}

//! The `fastbus-testbus` binary: a D-Bus message bus for tests that accepts
//! dbus-daemon's command line (see `fastbus_testbus::config`), plus
//! `fastbus-testbus run -- COMMAND...` (like `dbus-run-session`).

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::os::fd::AsFd as _;
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
    // First, before anything opens a file that could take a number the parent passed.
    let print = match PrintFds::take(&cl) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("fastbus-testbus: {e}");
            return ExitCode::FAILURE;
        }
    };
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
        return match fork_child(&raw, &cl, print) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fastbus-testbus: {e}");
                ExitCode::FAILURE
            }
        };
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
    match rt.block_on(serve(cl, print)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fastbus-testbus: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The targets of `--print-address[=FD]` and `--print-pid[=FD]`, taken at
/// startup: an inherited fd (FD > 2) is owned here from then on, written to
/// once, and closed after printing, as dbus-daemon does (`dbus-run-session`
/// reads the address until that end of file). FD 0 is written through a
/// close-on-exec copy, and standard input becomes `/dev/null` after printing.
/// Standard output and error stay open and are written through std's handles.
struct PrintFds {
    address: Option<PrintTo>,
    pid: Option<PrintTo>,
    /// The inherited fds (and the copy of standard input), by number (one
    /// entry when both print to the same fd).
    taken: Vec<(u32, std::fs::File)>,
}

impl PrintFds {
    /// Takes the inherited fds the command line names. Call it first thing,
    /// before anything in the process opens a file.
    fn take(cl: &CommandLine) -> Result<PrintFds> {
        let mut taken: Vec<(u32, std::fs::File)> = Vec::new();
        for (opt, to) in [
            ("--print-address", cl.print_address),
            ("--print-pid", cl.print_pid),
        ] {
            let Some(PrintTo::Fd(n)) = to else { continue };
            if n == 1 || n == 2 || taken.iter().any(|(m, _)| *m == n) {
                continue;
            }
            let fd = if n == 0 {
                // Standard input stays std's; the copy is closed with the others.
                std::io::stdin().as_fd().try_clone_to_owned()
            } else {
                let Ok(raw) = i32::try_from(n) else {
                    return Err(Error::Usage(format!(
                        "{opt}={n}: not a file descriptor number"
                    )));
                };
                fastbus_transport::take_inherited_fd(raw)
            }
            .map_err(|e| Error::Usage(format!("{opt}={n}: {e}")))?;
            taken.push((n, std::fs::File::from(fd)));
        }
        Ok(PrintFds {
            address: cl.print_address,
            pid: cl.print_pid,
            taken,
        })
    }

    /// Prints the address, then the pid, each where the command line said,
    /// then closes the inherited fds.
    fn print(mut self, address: &str, pid: &str) -> Result<()> {
        if let Some(to) = self.address {
            self.write(to, address)?;
        }
        if let Some(to) = self.pid {
            self.write(to, pid)?;
        }
        let stdin = [self.address, self.pid].contains(&Some(PrintTo::Fd(0)));
        // Dropping them closes them.
        self.taken.clear();
        if stdin {
            // Standard input belongs to std: close what it was by putting /dev/null there.
            let null = std::fs::File::open("/dev/null").map_err(|e| Error::Io {
                context: "opening /dev/null",
                source: e,
            })?;
            rustix::stdio::dup2_stdin(&null).map_err(|e| Error::Io {
                context: "closing standard input after printing to it",
                source: e.into(),
            })?;
        }
        Ok(())
    }

    fn write(&mut self, to: PrintTo, line: &str) -> Result<()> {
        let io = |e| Error::Io {
            context: "printing the address or pid",
            source: e,
        };
        let line = format!("{line}\n");
        match to {
            PrintTo::Stdout | PrintTo::Fd(1) => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes()).map_err(io)?;
                out.flush().map_err(io)
            }
            PrintTo::Fd(2) => std::io::stderr()
                .lock()
                .write_all(line.as_bytes())
                .map_err(io),
            PrintTo::Fd(n) => match self.taken.iter_mut().find(|(m, _)| *m == n) {
                Some((_, f)) => f.write_all(line.as_bytes()).map_err(io),
                None => Err(Error::Usage(format!("fd {n} was not taken at startup"))),
            },
        }
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

/// The `--fork` child, once it has printed its address and pid to standard
/// output (the pipe to its parent): standard output, and standard error
/// unless `-v`, go to `/dev/null`, so that the pipes close when the parent
/// exits. Standard input is `/dev/null` already.
fn detach_stdio(cl: &CommandLine) {
    let _ = std::io::stdout().flush();
    let result = (|| -> std::io::Result<()> {
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        rustix::stdio::dup2_stdout(&null)?;
        if cl.verbose == 0 {
            rustix::stdio::dup2_stderr(&null)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!("cannot detach standard output and error after printing: {e}");
    }
}

/// `--fork`: run the bus in a detached child (its own process group, standard
/// input and output on `/dev/null`), print what it printed, exit. The print
/// fds are this process's (taken with close-on-exec), so the child never
/// holds them; they close when this process has printed.
fn fork_child(raw: &[OsString], cl: &CommandLine, print: PrintFds) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::Io {
        context: "finding our own executable",
        source: e,
    })?;
    let extra: Vec<String> = [
        "--nofork",
        "--print-address=1",
        "--print-pid=1",
        "--x-detach",
    ]
    .map(String::from)
    .to_vec();
    let mut cmd = Command::new(&exe);
    cmd.args(rebuild_args(raw, &extra))
        .stdin(Stdio::null())
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
    print.print(&address, &pid)
}

async fn serve(cl: CommandLine, print: PrintFds) -> Result<ExitCode> {
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
    print.print(&address, &std::process::id().to_string())?;
    if cl.detach {
        detach_stdio(&cl);
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
}

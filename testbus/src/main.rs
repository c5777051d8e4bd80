//! The `fastbus-testbus` binary: a D-Bus message bus for tests that accepts
//! dbus-daemon's command line (see `fastbus_testbus::config`), plus
//! `fastbus-testbus run -- COMMAND...` (like `dbus-run-session`).

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::{ExitCode, Stdio};

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
        PrintTo::Stdout => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}").map_err(io)?;
            out.flush().map_err(io)
        }
        PrintTo::Fd(1) => print_to(PrintTo::Stdout, line),
        PrintTo::Fd(fd) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/self/fd/{fd}"))
                .map_err(io)?;
            writeln!(f, "{line}").map_err(io)
        }
    }
}

/// `--fork`: run the bus in a detached child, print what it printed, exit.
fn fork_child(cl: &CommandLine, raw: &[OsString]) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| Error::Io {
        context: "finding our own executable",
        source: e,
    })?;
    let mut args: Vec<OsString> = Vec::new();
    let mut skip_number = false;
    for a in raw {
        let s = a.to_string_lossy();
        if skip_number {
            skip_number = false;
            if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
                continue;
            }
        }
        if s == "--fork" || s.starts_with("--print-address=") || s.starts_with("--print-pid=") {
            continue;
        }
        if s == "--print-address" || s == "--print-pid" {
            skip_number = true;
            continue;
        }
        args.push(a.clone());
    }
    args.extend(["--nofork", "--print-address=1", "--print-pid=1"].map(OsString::from));
    let mut child = std::process::Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error::Io {
            context: "starting the bus process",
            source: e,
        })?;
    let Some(stdout) = child.stdout.take() else {
        return Err(Error::Usage("no pipe to the bus process".into()));
    };
    let mut lines = std::io::BufReader::new(stdout).lines();
    let mut next = || -> Result<String> {
        lines
            .next()
            .and_then(std::result::Result::ok)
            .ok_or_else(|| {
                Error::Usage("the bus process exited before printing its address".into())
            })
    };
    let address = next()?;
    let pid = next()?;
    if let Some(to) = cl.print_address {
        print_to(to, &address)?;
    }
    if let Some(to) = cl.print_pid {
        print_to(to, &pid)?;
    }
    Ok(())
}

async fn serve(cl: CommandLine) -> Result<ExitCode> {
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
        builder = builder.allow_anonymous(cfg.allow_anonymous);
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
            wait_for_signal().await?;
            ExitCode::SUCCESS
        }
    };
    bus.shutdown().await;
    Ok(code)
}

async fn wait_for_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let io = |e| Error::Io {
        context: "installing signal handlers",
        source: e,
    };
    let mut term = signal(SignalKind::terminate()).map_err(io)?;
    let mut int = signal(SignalKind::interrupt()).map_err(io)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

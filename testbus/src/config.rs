//! dbus-daemon's command line and busconfig files, so that the
//! `fastbus-testbus` binary drops in wherever a test harness starts a
//! dbus-daemon (`dbus-run-session --dbus-daemon=...`, GLib's `GTestDBus`,
//! python-dbusmock).
//!
//! Only parsing lives here; nothing is started. Of busconfig, the elements
//! that change what a test bus does are read (`<type>`, `<listen>`, `<auth>`,
//! `<allow_anonymous/>`, `<limit>`, `<include>`, `<includedir>`); policy is
//! parsed and not enforced; the rest (`<servicedir>`, `<user>`, `<pidfile>`,
//! `<syslog/>`, ...) is accepted and ignored.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::error::{Error, Result};

/// Where to print the address or pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintTo {
    /// Standard output.
    Stdout,
    /// An inherited file descriptor (`--print-address=FD`).
    Fd(u32),
}

/// The parsed command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandLine {
    /// `--address=ADDR` (may be given several times; each entry may be a `;` list).
    pub addresses: Vec<String>,
    /// `--print-address[=FD]`.
    pub print_address: Option<PrintTo>,
    /// `--print-pid[=FD]`.
    pub print_pid: Option<PrintTo>,
    /// `--config-file=FILE`.
    pub config_file: Option<PathBuf>,
    /// `--session`.
    pub session: bool,
    /// `--system` (refused unless an address is given: this bus never stands in for the system bus).
    pub system: bool,
    /// `--fork`: detach after printing the address, as dbus-daemon does.
    pub fork: bool,
    /// `-v` count: 1 logs every routed message, 2 adds tracing detail.
    pub verbose: u8,
    /// `run -- COMMAND ARGS...`.
    pub run: Option<Vec<OsString>>,
    /// `--help`.
    pub help: bool,
    /// `--version`.
    pub version: bool,
    /// Internal (`--x-detach`, set for the `--fork` child): once the address
    /// and pid are printed to standard output, standard output and (unless
    /// `-v`) standard error go to `/dev/null`.
    #[doc(hidden)]
    pub detach: bool,
}

/// The usage text of the binary.
pub const USAGE: &str = "\
fastbus-testbus: a D-Bus message bus for tests (drop-in for dbus-daemon)

usage:
  fastbus-testbus [OPTIONS]                  serve until SIGINT/SIGTERM
  fastbus-testbus run [OPTIONS] -- COMMAND…  run COMMAND with DBUS_SESSION_BUS_ADDRESS set,
                                             exit with its status (like dbus-run-session)
options:
  --address=ADDR          listen on ADDR (default unix:tmpdir=/tmp); may be repeated
  --print-address[=FD]    print the address as the first line of stdout (or to FD)
  --print-pid[=FD]        print the process id
  --config-file=FILE      read <listen>, <auth>, <type>, <limit> from a busconfig file
  --session               session bus defaults (the default)
  --nofork --fork --nopidfile --syslog --syslog-only --nosyslog
                          accepted for dbus-daemon compatibility
  -v, --verbose           log every routed message (twice: more)
  --help, --version
";

fn parse_fd(s: &str, opt: &str) -> Result<PrintTo> {
    s.parse::<u32>()
        .map(PrintTo::Fd)
        .map_err(|_| Error::Usage(format!("{opt} expects a file descriptor number, got {s:?}")))
}

/// Parses the arguments after the program name.
///
/// # Errors
/// [`Error::Usage`] for unknown options or missing values.
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<CommandLine> {
    let mut cl = CommandLine::default();
    let mut it = args.into_iter().peekable();
    let mut first = true;
    while let Some(raw) = it.next() {
        let Some(arg) = raw.to_str().map(str::to_owned) else {
            return Err(Error::Usage(format!("argument is not UTF-8: {raw:?}")));
        };
        if first && arg == "run" {
            first = false;
            cl.run = Some(Vec::new());
            continue;
        }
        first = false;
        if arg == "--" {
            let rest: Vec<OsString> = it.by_ref().collect();
            match &mut cl.run {
                Some(cmd) => cmd.extend(rest),
                None => cl.run = Some(rest),
            }
            break;
        }
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut take_value = |what: &str| -> Result<String> {
            if let Some(v) = &value {
                return Ok(v.clone());
            }
            it.next()
                .and_then(|v| v.to_str().map(str::to_owned))
                .ok_or_else(|| Error::Usage(format!("{what} needs a value")))
        };
        match key.as_str() {
            "--address" => {
                let v = take_value("--address")?;
                cl.addresses.push(v);
            }
            "--config-file" => cl.config_file = Some(PathBuf::from(take_value("--config-file")?)),
            "--print-address" | "--print-pid" => {
                let to = match &value {
                    Some(v) => parse_fd(v, &key)?,
                    None => {
                        // dbus-daemon also takes the fd as the next argument when it is a number.
                        let next_is_fd = it.peek().and_then(|n| n.to_str()).is_some_and(|n| {
                            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
                        });
                        if next_is_fd {
                            let n = it
                                .next()
                                .and_then(|n| n.into_string().ok())
                                .unwrap_or_default();
                            parse_fd(&n, &key)?
                        } else {
                            PrintTo::Stdout
                        }
                    }
                };
                if key == "--print-address" {
                    cl.print_address = Some(to);
                } else {
                    cl.print_pid = Some(to);
                }
            }
            "--session" => cl.session = true,
            "--system" => cl.system = true,
            "--fork" => cl.fork = true,
            "--nofork" => cl.fork = false,
            "--nopidfile"
            | "--syslog"
            | "--syslog-only"
            | "--nosyslog"
            | "--systemd-activation"
            | "--introspect" => {}
            "-v" | "--verbose" => cl.verbose = cl.verbose.saturating_add(1),
            "-vv" => cl.verbose = cl.verbose.saturating_add(2),
            "-h" | "--help" => cl.help = true,
            "--version" => cl.version = true,
            "--x-detach" => cl.detach = true,
            _ => return Err(Error::Usage(format!("unknown option {arg:?}"))),
        }
    }
    Ok(cl)
}

/// What a busconfig file says that a test bus uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusConfig {
    /// `<type>`: `session`, `system` or anything else.
    pub bus_type: Option<String>,
    /// `<listen>` addresses, in order.
    pub listen: Vec<String>,
    /// `<auth>` mechanisms, in order (empty: the default set).
    pub auth: Vec<String>,
    /// `<allow_anonymous/>`.
    pub allow_anonymous: bool,
    /// `<limit name="...">value</limit>`, in order.
    pub limits: Vec<(String, u64)>,
    /// Whether `<policy>` elements were present (parsed, not enforced).
    pub has_policy: bool,
    /// `<fork/>`.
    pub fork: bool,
}

/// Reads a busconfig file, following `<include>` and `<includedir>`.
///
/// # Errors
/// [`Error::Config`] when the file cannot be read or is not well-formed.
pub fn read_busconfig(path: &Path) -> Result<BusConfig> {
    let mut cfg = BusConfig::default();
    read_into(path, &mut cfg, 0)?;
    Ok(cfg)
}

fn config_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Config {
        file: path.display().to_string(),
        reason: reason.into(),
    }
}

fn read_into(path: &Path, cfg: &mut BusConfig, depth: u32) -> Result<()> {
    if depth > 16 {
        return Err(config_err(path, "includes nested more than 16 deep"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| config_err(path, e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse_into(&text, base, path, cfg, depth)
}

/// Parses busconfig text; relative `<include>` paths are taken from `base`.
///
/// # Errors
/// [`Error::Config`] when the XML is not well-formed, a `<limit>` value is not
/// a number, or an included file is missing (unless `ignore_missing="yes"`).
pub fn parse_busconfig(text: &str, base: &Path) -> Result<BusConfig> {
    let mut cfg = BusConfig::default();
    parse_into(text, base, Path::new("(text)"), &mut cfg, 0)?;
    Ok(cfg)
}

fn parse_into(text: &str, base: &Path, path: &Path, cfg: &mut BusConfig, depth: u32) -> Result<()> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut attrs: Vec<(String, String)> = Vec::new();
    let mut content = String::new();
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| config_err(path, format!("not well-formed XML: {e}")))?;
        match ev {
            Event::Start(e) => {
                let name = AsRef::<str>::as_ref(&e.name()).to_owned();
                attrs = e
                    .attributes()
                    .filter_map(std::result::Result::ok)
                    .map(|a| {
                        (
                            AsRef::<str>::as_ref(&a.key).to_owned(),
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map(|v| v.into_owned())
                                .unwrap_or_default(),
                        )
                    })
                    .collect();
                if name == "policy" {
                    cfg.has_policy = true;
                }
                stack.push(name);
                content.clear();
            }
            Event::Empty(e) => {
                let name = AsRef::<str>::as_ref(&e.name()).to_owned();
                match name.as_str() {
                    "allow_anonymous" => cfg.allow_anonymous = true,
                    "fork" => cfg.fork = true,
                    "policy" => cfg.has_policy = true,
                    _ => {}
                }
            }
            Event::Text(t) => {
                content.push_str(&t.xml_content(quick_xml::XmlVersion::Implicit1_0));
            }
            Event::GeneralRef(r) => {
                let s = AsRef::<str>::as_ref(&r).to_owned();
                let c = match s.as_str() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "apos" => "'",
                    "quot" => "\"",
                    _ => "",
                };
                content.push_str(c);
            }
            Event::CData(t) => content.push_str(&t.xml_content(quick_xml::XmlVersion::Implicit1_0)),
            Event::End(_) => {
                let Some(name) = stack.pop() else { continue };
                let value = content.trim().to_owned();
                content.clear();
                let attr = |k: &str| attrs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
                match name.as_str() {
                    "type" => cfg.bus_type = Some(value),
                    "listen" => cfg.listen.push(value),
                    "auth" => cfg.auth.push(value),
                    "limit" => {
                        let n =
                            attr("name").ok_or_else(|| config_err(path, "<limit> without name"))?;
                        let v: u64 = value.parse().map_err(|_| {
                            config_err(
                                path,
                                format!("<limit name=\"{n}\"> is not a number: {value:?}"),
                            )
                        })?;
                        cfg.limits.push((n, v));
                    }
                    "include" => {
                        let ignore_missing = attr("ignore_missing").as_deref() == Some("yes");
                        let p = base.join(&value);
                        if p.exists() {
                            read_into(&p, cfg, depth + 1)?;
                        } else if !ignore_missing {
                            return Err(config_err(
                                path,
                                format!("included file {value} is missing"),
                            ));
                        }
                    }
                    "includedir" => {
                        let dir = base.join(&value);
                        if let Ok(rd) = std::fs::read_dir(&dir) {
                            let mut files: Vec<PathBuf> = rd
                                .filter_map(std::result::Result::ok)
                                .map(|e| e.path())
                                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                                .collect();
                            files.sort();
                            for f in files {
                                read_into(&f, cfg, depth + 1)?;
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<CommandLine> {
        parse_args(a.iter().map(OsString::from))
    }

    #[test]
    fn dbus_daemon_command_lines_parse() {
        let c = args(&["--config-file=/x.conf", "--print-address=5", "--nofork"]).unwrap();
        assert_eq!(c.config_file.as_deref(), Some(Path::new("/x.conf")));
        assert_eq!(c.print_address, Some(PrintTo::Fd(5)));
        let c = args(&["--session", "--print-address", "--print-pid", "7", "--fork"]).unwrap();
        assert!(c.session && c.fork);
        assert_eq!(c.print_address, Some(PrintTo::Stdout));
        assert_eq!(c.print_pid, Some(PrintTo::Fd(7)));
        let c = args(&[
            "--address",
            "unix:tmpdir=/tmp",
            "--nopidfile",
            "--syslog-only",
        ])
        .unwrap();
        assert_eq!(c.addresses, ["unix:tmpdir=/tmp"]);
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--print-address=x"]).is_err());
    }

    #[test]
    fn run_takes_the_command_after_the_double_dash() {
        let c = args(&["run", "-v", "--", "sh", "-c", "exit 3"]).unwrap();
        assert_eq!(c.verbose, 1);
        assert_eq!(
            c.run.unwrap(),
            ["sh", "-c", "exit 3"].map(OsString::from).to_vec()
        );
    }

    #[test]
    fn busconfig_elements_that_matter_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("extra.conf"),
            "<busconfig><limit name=\"max_match_rules_per_connection\">7</limit></busconfig>",
        )
        .unwrap();
        let xml = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <listen>tcp:host=127.0.0.1,port=0</listen>
  <auth>EXTERNAL</auth>
  <allow_anonymous/>
  <standard_session_servicedirs />
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <limit name="max_names_per_connection">3</limit>
  <include ignore_missing="yes">missing.conf</include>
  <include>extra.conf</include>
</busconfig>"#;
        let c = parse_busconfig(xml, dir.path()).unwrap();
        assert_eq!(c.bus_type.as_deref(), Some("session"));
        assert_eq!(c.listen, ["unix:tmpdir=/tmp", "tcp:host=127.0.0.1,port=0"]);
        assert_eq!(c.auth, ["EXTERNAL"]);
        assert!(c.allow_anonymous && c.has_policy);
        assert_eq!(
            c.limits,
            [
                ("max_names_per_connection".to_owned(), 3),
                ("max_match_rules_per_connection".to_owned(), 7)
            ]
        );
        assert!(
            parse_busconfig(
                "<busconfig><include>nope.conf</include></busconfig>",
                dir.path()
            )
            .is_err()
        );
        assert!(
            parse_busconfig(
                "<busconfig><limit name=\"x\">many</limit></busconfig>",
                dir.path()
            )
            .is_err()
        );
    }

    /// CVE-2022-31213 (dbus-broker crashed on malformed busconfig XML): any
    /// text, and any mutation of a real config, is parsed or refused with an
    /// error, never a panic; the same for any command line.
    mod never_panics {
        use super::*;
        use proptest::prelude::*;

        const REAL: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <allow_anonymous/>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow own="*"/></policy>
  <limit name="max_names_per_connection">3</limit>
  <include ignore_missing="yes">missing.conf</include>
  <includedir>nowhere.d</includedir>
</busconfig>"#;

        proptest! {
            #[test]
            fn arbitrary_text(text in ".{0,400}") {
                let _ = parse_busconfig(&text, Path::new("/nonexistent"));
            }

            #[test]
            fn mutated_real_config(edits in proptest::collection::vec((0..REAL.len(), any::<u8>()), 1..12)) {
                let mut bytes = REAL.as_bytes().to_vec();
                for (at, b) in edits {
                    bytes[at] = b;
                }
                let text = String::from_utf8_lossy(&bytes);
                let _ = parse_busconfig(&text, Path::new("/nonexistent"));
            }

            #[test]
            fn arbitrary_command_lines(args in proptest::collection::vec("(--[a-z-]{0,14}(=[0-9a-z:/]{0,8})?|[0-9]{1,3}|run|--)", 0..6)) {
                let _ = parse_args(args.into_iter().map(OsString::from));
            }
        }

        #[test]
        fn includes_that_loop_are_an_error() {
            let dir = tempfile::tempdir().unwrap();
            let a = dir.path().join("a.conf");
            std::fs::write(&a, "<busconfig><include>a.conf</include></busconfig>").unwrap();
            let e = read_busconfig(&a).unwrap_err();
            assert!(e.to_string().contains("nested"), "{e}");
        }
    }
}

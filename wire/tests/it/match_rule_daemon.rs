//! Pins `fastbus_wire::match_rule` to dbus-daemon: a private dbus-daemon (own config file, own
//! socket in a fresh temporary directory; never the machine's buses) must accept exactly the rules
//! we accept, and must consider the rule we print equal to the text it came from (checked with
//! AddMatch of our printed text followed by RemoveMatch of another spelling, which dbus-daemon
//! compares by parsed rule). Skipped when dbus-daemon is not installed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use fastbus_wire::match_rule::ArgKind;
use fastbus_wire::{ErrorKind, MatchRule, Message, MessageType, frame_len};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

struct Daemon {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon() -> Option<Daemon> {
    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("dbus-daemon not installed: skipping");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("fastbus-match-rule-")
        .tempdir()
        .expect("temporary directory");
    let socket = dir.path().join("bus");
    let config = dir.path().join("bus.conf");
    std::fs::write(
        &config,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .expect("write config");
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", config.display()))
        .arg("--nofork")
        .arg("--nopidfile")
        .arg("--print-address")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dbus-daemon");
    // The address is printed once the socket listens.
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read address");
    assert!(line.starts_with("unix:"), "dbus-daemon printed {line:?}");
    Some(Daemon {
        child,
        socket,
        _dir: dir,
    })
}

/// Just enough of a client: EXTERNAL auth, Hello, and calls to the bus with one string argument.
struct Conn {
    s: UnixStream,
    serial: u32,
}

impl Conn {
    fn connect(daemon: &Daemon) -> Conn {
        let mut s = UnixStream::connect(&daemon.socket).expect("connect");
        // A guard against hanging forever on a broken bus, not a timing assertion.
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"\0AUTH EXTERNAL\r\n").unwrap();
        assert_eq!(read_line(&mut s), "DATA");
        s.write_all(b"DATA\r\n").unwrap();
        let ok = read_line(&mut s);
        assert!(ok.starts_with("OK "), "{ok}");
        s.write_all(b"BEGIN\r\n").unwrap();
        let mut c = Conn { s, serial: 0 };
        let hello = c.call_raw("Hello", None);
        assert_eq!(hello, Ok(()));
        c
    }

    fn call_raw(&mut self, member: &str, arg: Option<&str>) -> Result<(), String> {
        self.serial += 1;
        let b = Message::method_call("/org/freedesktop/DBus", member)
            .interface("org.freedesktop.DBus")
            .destination("org.freedesktop.DBus")
            .serial(self.serial);
        let msg = match arg {
            Some(a) => b.body(&(a,)),
            None => b,
        }
        .build()
        .unwrap();
        self.s.write_all(&msg.encode().unwrap()).unwrap();
        loop {
            let reply = read_message(&mut self.s);
            if reply.reply_serial() != Some(self.serial) {
                continue; // NameAcquired and other signals
            }
            return match reply.message_type() {
                MessageType::METHOD_RETURN => Ok(()),
                _ => Err(reply
                    .error_name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()),
            };
        }
    }

    fn add_match(&mut self, rule: &str) -> Result<(), String> {
        self.call_raw("AddMatch", Some(rule))
    }

    fn remove_match(&mut self, rule: &str) -> Result<(), String> {
        self.call_raw("RemoveMatch", Some(rule))
    }
}

fn read_line(s: &mut UnixStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8];
    while !out.ends_with(b"\r\n") {
        s.read_exact(&mut b).expect("auth line");
        out.push(b[0]);
    }
    out.truncate(out.len() - 2);
    String::from_utf8(out).expect("auth line is ASCII")
}

fn read_message(s: &mut UnixStream) -> Message {
    let mut buf = vec![0u8; 16];
    s.read_exact(&mut buf).expect("header");
    let total = frame_len(&buf).expect("frame").expect("16 bytes suffice");
    buf.resize(total, 0);
    s.read_exact(&mut buf[16..]).expect("message");
    Message::decode(Bytes::from(buf)).expect("decode")
}

const INVALID: &str = "org.freedesktop.DBus.Error.MatchRuleInvalid";
const NOT_FOUND: &str = "org.freedesktop.DBus.Error.MatchRuleNotFound";
const LIMITS: &str = "org.freedesktop.DBus.Error.LimitsExceeded";

/// `text` and our printed form of it are the same rule to dbus-daemon.
fn assert_daemon_agrees(c: &mut Conn, text: &str) {
    let rule = MatchRule::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    let printed = rule.to_string();
    assert_eq!(
        c.add_match(&printed),
        Ok(()),
        "dbus-daemon rejects {printed:?}"
    );
    assert_eq!(
        c.remove_match(text),
        Ok(()),
        "dbus-daemon reads {printed:?} and {text:?} as different rules"
    );
    assert_eq!(c.remove_match(text), Err(NOT_FOUND.to_owned()));
}

#[test]
fn dbus_daemon_accepts_and_rejects_what_we_do() {
    let Some(daemon) = start_daemon() else {
        return;
    };
    let mut c = Conn::connect(&daemon);
    let mut valid: Vec<String> = [
        "",
        "type='signal'",
        "type='method_call'",
        "type='method_return'",
        "type='error'",
        "sender='org.freedesktop.DBus'",
        "sender=':1.42'",
        "sender=':1'",
        "interface='org.freedesktop.DBus.Properties'",
        "member='PropertiesChanged'",
        "path='/org/freedesktop/DBus'",
        "path_namespace='/org/freedesktop'",
        "path_namespace='/'",
        "destination=':1.0'",
        "arg0namespace='org.example'",
        "arg0namespace='com'",
        "eavesdrop='true'",
        "eavesdrop='false'",
        "eavesdrop='true',eavesdrop='false'",
        "arg0=''",
        "arg07='x'",
        " type ='signal',\n\tmember='Foo'",
        "type=signal,member=Foo",
        "member=Na'me'",
        "arg0='a,b',arg1='x=y',arg2='it'\\''s'",
        "arg3='C:\\path\\'",
        "arg0=Time: 8 o\\'clock",
        "arg0=escap\\e",
        "arg0=a\\,b",
        "arg0= x y ",
        "arg0='a\\'",
        "type='signal',",
        "    type='signal',  \tsender='org.freedes''ktop.DBusSender',   \
         interface='org.freedesktop.DBusInterface''''', \tmember='Foo',\
         path='/bar/foo',destination=':452345.34'''''",
        "arg0='comma,type=comma',type=signal",
    ]
    .map(String::from)
    .to_vec();
    for n in [0, 1, 9, 10, 40, 63] {
        valid.push(format!("arg{n}='x'"));
        valid.push(format!("arg{n}path='/x/'"));
    }
    for text in &valid {
        assert_daemon_agrees(&mut c, text);
    }

    let invalid = [
        "blah='signal'",
        "type='signal',type='method_call'",
        "member='A',member='B'",
        "arg0='foo',arg0='bar'",
        "arg0='foo',arg0path='/bar'",
        "arg0namespace='a.b',arg0='x'",
        "arg64='foo'",
        "arg300='foo'",
        "arg='foo'",
        "argv='foo'",
        "arg3junk='foo'",
        "arg0pathx='foo'",
        "arg1namespace='foo'",
        "arg00namespace='foo'",
        "arg 1='foo'",
        "arg0namespace=''",
        "arg0namespace='foo.'",
        "arg0namespace='foo..'",
        "arg0namespace='1foo'",
        "path_namespace='/foo/'",
        "path='/foo',path_namespace='/foo'",
        "sender='org'",
        "sender=':a..b'",
        "sender=''",
        "interface='abc@def++'",
        "interface='org'",
        "member='a.b'",
        "member=''",
        "path='foo'",
        "path='/a/'",
        "destination='x'",
        "type='chouin'",
        "type= 'signal'",
        "type='signal' ",
        "type",
        "type 'signal'",
        "member='Foo",
        "arg0=x'",
        "eavesdrop='yes'",
        "type='signal',,member='x'",
    ];
    for text in invalid {
        let ours = MatchRule::parse(text).map_err(|e| e.kind());
        assert_eq!(ours, Err(ErrorKind::BadMatchRule), "{text:?}");
        assert_eq!(c.add_match(text), Err(INVALID.to_owned()), "{text:?}");
    }
    // Where we are deliberately stricter (dbus-broker rejects these too): dbus-daemon skips a
    // '=' with no key, and reads the argument number with strtoul, which takes a sign.
    assert!(MatchRule::parse("='signal'").is_err());
    assert_eq!(c.add_match("='signal'"), Ok(()));
    assert_eq!(c.remove_match(""), Ok(()));
    assert!(MatchRule::parse("arg+1='foo'").is_err());
    assert_eq!(c.add_match("arg+1='foo'"), Ok(()));
    assert_eq!(c.remove_match("arg1='foo'"), Ok(()));

    let too_long = format!("arg0='{}'", "x".repeat(1019));
    assert_eq!(
        MatchRule::parse(&too_long).map_err(|e| e.kind()),
        Err(ErrorKind::MatchRuleTooLong)
    );
    assert_eq!(c.add_match(&too_long), Err(LIMITS.to_owned()));
    let at_limit = format!("arg0='{}'", "x".repeat(1017));
    assert_daemon_agrees(&mut c, &at_limit);
}

/// Another spelling of the same rule: keys in reverse order, values unquoted where possible.
fn respelled(rule: &MatchRule) -> String {
    fn value(v: &str) -> String {
        let mut out = String::new();
        for ch in v.chars() {
            match ch {
                '\'' => out.push_str("\\'"),
                ',' => out.push_str("','"),
                '\\' => out.push_str("'\\'"),
                ' ' | '\t' | '\n' | '\r' => {
                    out.push('\'');
                    out.push(ch);
                    out.push('\'');
                }
                _ => out.push(ch),
            }
        }
        if out.is_empty() { "''".to_owned() } else { out }
    }
    let mut keys: Vec<String> = Vec::new();
    if let Some(t) = rule.message_type() {
        keys.push(format!("type={}", t.name().unwrap_or_default()));
    }
    if let Some(s) = rule.sender() {
        keys.push(format!("sender={}", value(s)));
    }
    if let Some(i) = rule.interface() {
        keys.push(format!("interface={}", value(i)));
    }
    if let Some(m) = rule.member() {
        keys.push(format!("member={}", value(m)));
    }
    if let Some(p) = rule.path() {
        keys.push(format!("path={}", value(p)));
    }
    if let Some(p) = rule.path_namespace() {
        keys.push(format!("path_namespace={}", value(p)));
    }
    if let Some(d) = rule.destination() {
        keys.push(format!("destination={}", value(d)));
    }
    for a in rule.args() {
        let suffix = match a.kind() {
            ArgKind::Str => "",
            ArgKind::Path => "path",
            ArgKind::Namespace => "namespace",
        };
        keys.push(format!("arg{}{suffix}={}", a.index(), value(a.value())));
    }
    if rule.eavesdrop() {
        keys.push("eavesdrop=true".to_owned());
    }
    keys.reverse();
    keys.join(",\t ")
}

#[test]
fn dbus_daemon_reads_our_printed_rules_as_the_same_rules() {
    let Some(daemon) = start_daemon() else {
        return;
    };
    let c = std::cell::RefCell::new(Conn::connect(&daemon));
    let cases = std::env::var("FASTBUS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let value = prop_oneof!["[',\\\\= a\\t]{0,6}", "[^\\x00]{0,8}"];
    let strategy = (
        proptest::option::of(prop_oneof![
            Just(MessageType::SIGNAL),
            Just(MessageType::METHOD_CALL),
            Just(MessageType::ERROR),
        ]),
        proptest::option::of("[a-z_-][a-z0-9_-]{0,4}(\\.[a-z_-][a-z0-9_-]{0,4}){1,2}"),
        proptest::option::of("[a-zA-Z_][a-zA-Z0-9_]{0,6}"),
        proptest::option::of(("/|(/[a-zA-Z0-9_]{1,4}){1,3}", any::<bool>())),
        proptest::collection::vec((0usize..64, any::<bool>(), value), 0..5),
        any::<bool>(),
    );
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    });
    runner
        .run(&strategy, |(t, sender, member, path, args, eavesdrop)| {
            let mut b = MatchRule::builder().eavesdrop(eavesdrop);
            if let Some(t) = t {
                b = b.msg_type(t);
            }
            if let Some(s) = sender {
                b = b.sender(s);
            }
            if let Some(m) = member {
                b = b.member(m);
            }
            match path {
                Some((p, true)) => b = b.path_namespace(p),
                Some((p, false)) => b = b.path(p),
                None => {}
            }
            for (i, is_path, v) in args {
                b = if is_path {
                    b.arg_path(i, v)
                } else {
                    b.arg(i, v)
                };
            }
            let rule = b.build().expect("generated values are valid");
            let printed = rule.to_string();
            let other = respelled(&rule);
            prop_assert_eq!(MatchRule::parse(&other), Ok(rule.clone()), "{}", other);
            let mut c = c.borrow_mut();
            prop_assert_eq!(c.add_match(&printed), Ok(()), "{}", printed);
            prop_assert_eq!(c.remove_match(&other), Ok(()), "{} vs {}", printed, other);
            Ok(())
        })
        .expect("dbus-daemon agrees with our printing");
}

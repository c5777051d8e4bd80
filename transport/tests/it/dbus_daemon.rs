//! Against the real `/usr/bin/dbus-daemon`, started with its own config file
//! in a temp dir (never the machine's buses): Unix path, abstract socket and
//! TCP; authenticate, `Hello`, read the reply.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use fastbus_transport::auth::{ClientMechanism, ClientOptions};
use fastbus_transport::{Address, AddressKind, ClientConnection, connect};
use fastbus_wire::MessageType;

use crate::{encoded, hello};

const DAEMON: &str = "/usr/bin/dbus-daemon";

struct Daemon {
    child: Child,
    addresses: Vec<Address>,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_daemon() -> Option<Daemon> {
    if !Path::new(DAEMON).exists() {
        println!("SKIPPED: {DAEMON} is not installed (Debian package dbus-daemon)");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bus");
    let abs = format!("fastbus-daemon-test-{}", std::process::id());
    let conf = dir.path().join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <listen>unix:abstract={abs}</listen>
  <listen>tcp:host=127.0.0.1,port=0</listen>
  <auth>EXTERNAL</auth>
  <auth>ANONYMOUS</auth>
  <allow_anonymous/>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
            sock.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(DAEMON)
        .arg(format!("--config-file={}", conf.display()))
        .arg("--print-address=1")
        .arg("--nofork")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addresses = fastbus_transport::address::parse_list(line.trim()).unwrap();
    println!("dbus-daemon listens on {}", line.trim());
    Some(Daemon {
        child,
        addresses,
        _dir: dir,
    })
}

async fn hello_on(addr: &Address, opts: &ClientOptions) -> ClientConnection {
    let first = encoded(&hello(1));
    let mut c = connect(std::slice::from_ref(addr), opts, Some(&first))
        .await
        .unwrap();
    loop {
        let m = c
            .reader
            .next_message()
            .await
            .unwrap()
            .expect("reply before end of stream");
        if m.message_type() == MessageType::METHOD_RETURN && m.reply_serial() == Some(1) {
            let name: &str = m.body().unwrap();
            assert!(name.starts_with(':'), "unique name {name}");
            break;
        }
        assert_ne!(m.message_type(), MessageType::ERROR, "Hello failed: {m:?}");
    }
    c
}

#[tokio::test]
async fn hello_over_unix_path_abstract_and_tcp() {
    let Some(d) = start_daemon() else { return };
    let find = |f: &dyn Fn(&AddressKind) -> bool| {
        d.addresses
            .iter()
            .find(|a| f(&a.kind))
            .cloned()
            .expect("dbus-daemon prints every listen address")
    };
    let path = find(&|k| matches!(k, AddressKind::UnixPath(_)));
    let abs = find(&|k| matches!(k, AddressKind::UnixAbstract(_)));
    let tcp = find(&|k| matches!(k, AddressKind::Tcp(_)));
    // The printed addresses carry guid=, which the client checks against OK.
    assert!(path.guid.is_some());
    for a in [&path, &abs] {
        let c = hello_on(a, &ClientOptions::default()).await;
        assert!(
            c.unix_fd,
            "{a}: dbus-daemon agrees to fd passing on Unix sockets"
        );
        assert!(c.guid.as_str().len() == 32);
    }
    // Non-pipelined EXTERNAL too.
    let opts = ClientOptions {
        pipeline: false,
        ..Default::default()
    };
    hello_on(&path, &opts).await;
    // EXTERNAL cannot work over TCP (no credentials): the client falls back to
    // ANONYMOUS, which this config allows.
    let opts = ClientOptions {
        mechanisms: vec![ClientMechanism::External, ClientMechanism::Anonymous],
        ..Default::default()
    };
    let c = hello_on(&tcp, &opts).await;
    assert!(!c.unix_fd);
}

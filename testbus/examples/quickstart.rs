//! The quickstart: a D-Bus bus daemon inside this process, two `MessageBus`
//! clients on it, a small exported interface (a method, a property, a
//! signal), a well-known name, a call and the signal it emits. Nothing of
//! the machine's D-Bus is used, or needed.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::error::Error;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fastbus::{
    DBusError, Interface, MatchRule, Message, MessageBus, MethodResult, RequestNameFlags,
    async_trait,
};
use fastbus_testbus::TestBus;
use fastbus_wire::introspection::{
    self as intro, Arg, ArgDirection, Method, Property, PropertyAccess, Signal, standard,
};
use fastbus_wire::{InterfaceName, MemberName, Signature, Value, Variant};

/// The well-known name, object path and interface of the service.
const NAME: &str = "org.example.Greeter";
const PATH: &str = "/org/example/Greeter";
const IFACE: &str = "org.example.Greeter";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// `org.example.Greeter`: `Greet(s name) -> s`, the read-only property
/// `Greetings` (u: how many greetings so far) and the signal
/// `Greeted(s name, u count)`, emitted by every `Greet`.
#[derive(Debug, Default)]
struct Greeter {
    greetings: AtomicU32,
}

fn arg(sig: &'static str, dir: ArgDirection, name: &'static str) -> Arg<'static> {
    Arg::new(Signature::new(sig).expect("signature"), dir)
        .expect("one complete type")
        .with_name(name)
}

fn invalid_args(e: fastbus_wire::Error) -> DBusError {
    DBusError::invalid_args(e.to_string())
}

#[async_trait]
impl Interface for Greeter {
    fn name(&self) -> &str {
        IFACE
    }

    fn introspect(&self) -> intro::Interface<'static> {
        let member = |m: &'static str| MemberName::new(m).expect("member name");
        intro::Interface::new(InterfaceName::new(IFACE).expect("interface name"))
            .with_method(
                Method::new(member("Greet"))
                    .with_arg(arg("s", ArgDirection::In, "name"))
                    .with_arg(arg("s", ArgDirection::Out, "greeting")),
            )
            .with_property(
                Property::new(
                    member("Greetings"),
                    Signature::new("u").expect("signature"),
                    PropertyAccess::Read,
                )
                .expect("one complete type"),
            )
            .with_signal(
                Signal::new(member("Greeted"))
                    .with_arg(arg("s", ArgDirection::Out, "name"))
                    .with_arg(arg("u", ArgDirection::Out, "count")),
            )
    }

    async fn call(&self, bus: &MessageBus, call: &Message) -> MethodResult {
        // Only "Greet" gets here: the bus answers UnknownMethod for the rest.
        let name: &str = call.body().map_err(invalid_args)?;
        let count = self.greetings.fetch_add(1, Ordering::Relaxed) + 1;
        let signal = Message::signal(PATH, IFACE, "Greeted")
            .body(&(name, count))
            .build()
            .map_err(|e| DBusError::failed(e.to_string()))?;
        bus.send(signal)
            .map_err(|e| DBusError::failed(e.to_string()))?;
        let reply = Message::method_return(call)
            .body(&(format!("Hello, {name}!"),))
            .build()
            .map_err(|e| DBusError::failed(e.to_string()))?;
        Ok(Some(reply))
    }
}

/// `org.freedesktop.DBus.Properties` for the same object: `Get` and `GetAll`
/// read the greeter's counter; `Set` is refused (the property is read-only).
#[derive(Debug)]
struct GreeterProperties {
    greeter: Arc<Greeter>,
}

impl GreeterProperties {
    fn all(&self, iface: &str) -> Result<Vec<(&'static str, Value)>, DBusError> {
        if iface != IFACE {
            return Err(DBusError::new(
                "org.freedesktop.DBus.Error.UnknownInterface",
                format!("no interface {iface} here"),
            ));
        }
        let n = self.greeter.greetings.load(Ordering::Relaxed);
        Ok(vec![("Greetings", Value::U32(n))])
    }
}

#[async_trait]
impl Interface for GreeterProperties {
    fn name(&self) -> &str {
        PROPERTIES
    }

    fn introspect(&self) -> intro::Interface<'static> {
        standard::properties()
    }

    async fn call(&self, _bus: &MessageBus, call: &Message) -> MethodResult {
        let ret = Message::method_return(call);
        let reply = match call.member().as_ref().map(|m| m.as_str()) {
            Some("Get") => {
                let (iface, prop): (&str, &str) = call.body().map_err(invalid_args)?;
                let value = self
                    .all(iface)?
                    .into_iter()
                    .find(|(name, _)| *name == prop)
                    .map(|(_, v)| v)
                    .ok_or_else(|| {
                        DBusError::new(
                            "org.freedesktop.DBus.Error.UnknownProperty",
                            format!("no property {prop}"),
                        )
                    })?;
                // A `Value` travels as a variant (`v`) holding its own type.
                ret.body(&(value,))
            }
            Some("GetAll") => {
                let iface: &str = call.body().map_err(invalid_args)?;
                let all: std::collections::BTreeMap<&str, Value> =
                    self.all(iface)?.into_iter().collect();
                ret.body(&(all,))
            }
            _ => {
                return Err(DBusError::new(
                    "org.freedesktop.DBus.Error.PropertyReadOnly",
                    "the greeter's properties are read-only",
                ));
            }
        };
        Ok(Some(
            reply
                .build()
                .map_err(|e| DBusError::failed(e.to_string()))?,
        ))
    }
}

/// Everything the quickstart does, writing what happened to `out`.
///
/// # Errors
/// Whatever the bus or a client reports; the quickstart exits non-zero then.
pub(crate) async fn run(out: &mut dyn Write) -> Result<(), Box<dyn Error>> {
    // A bus daemon in this process, with in-memory connections only (no socket at all).
    let bus = TestBus::builder().memory_only().start().await?;
    writeln!(out, "started a bus in this process (bus id {})", bus.id())?;

    // Two clients: they authenticate and say Hello exactly as over a socket.
    let service = MessageBus::builder()
        .transport(bus.connect_memory()?)
        .connect()
        .await?;
    let client = MessageBus::builder()
        .transport(bus.connect_memory()?)
        .connect()
        .await?;
    let (s, c) = (
        service.unique_name().unwrap_or("?"),
        client.unique_name().unwrap_or("?"),
    );
    writeln!(out, "connected two clients: service {s}, client {c}")?;

    // The service exports its interface and takes a well-known name.
    let greeter = Arc::new(Greeter::default());
    service.export(PATH, greeter.clone())?;
    service.export(PATH, Arc::new(GreeterProperties { greeter }))?;
    let reply = service.request_name(NAME, RequestNameFlags::NONE).await?;
    writeln!(
        out,
        "the service exports {IFACE} at {PATH} and owns {NAME} ({reply:?})"
    )?;

    // The client subscribes to the signal (before the call, so nothing slips by) and calls.
    let rule = MatchRule::parse(&format!(
        "type='signal',sender='{NAME}',interface='{IFACE}',member='Greeted'"
    ))?;
    let mut greeted = client.subscribe(rule).await?;
    let greeting: String = client
        .call_method(NAME, PATH, IFACE, "Greet", &("world",))
        .await?;
    writeln!(
        out,
        "the client called Greet(\"world\") and got {greeting:?}"
    )?;

    let signal = tokio::time::timeout(Duration::from_secs(10), greeted.next())
        .await
        .map_err(|_| "no Greeted signal within 10 s")?
        .ok_or("the signal stream ended")?
        .map_err(|lagged| format!("signals were dropped: {lagged:?}"))?;
    let (name, count): (&str, u32) = signal.body()?;
    writeln!(
        out,
        "the client received the signal Greeted({name:?}, {count}) from {}",
        signal.sender().map(|s| s.to_string()).unwrap_or_default()
    )?;

    // The property, through org.freedesktop.DBus.Properties.
    let Variant(greetings): Variant<u32> = client
        .call_method(NAME, PATH, PROPERTIES, "Get", &(IFACE, "Greetings"))
        .await?;
    let all: std::collections::BTreeMap<String, Value> = client
        .call_method(NAME, PATH, PROPERTIES, "GetAll", &(IFACE,))
        .await?;
    let names: Vec<&str> = all.keys().map(String::as_str).collect();
    writeln!(
        out,
        "the client read the property Greetings = {greetings} (GetAll lists {names:?})"
    )?;

    client.disconnect().await;
    service.disconnect().await;
    bus.shutdown().await;
    writeln!(out, "shut the bus down; done")?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    run(&mut std::io::stdout()).await
}

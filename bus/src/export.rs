//! The object registry: which [`Interface`]s are exported at which paths, and the routing of
//! incoming method calls to them.
//!
//! This module knows nothing of how an interface is built (methods, properties and signals
//! come from the `fastbus-service` crate, which implements [`Interface`]); it routes calls,
//! keeps calls to one object in their arrival order, and answers what the bus itself must:
//!
//! - `org.freedesktop.DBus.Introspectable.Introspect` on every exported path and on each of
//!   its parents (listing the child nodes), unless the object exports that interface itself;
//! - `org.freedesktop.DBus.Peer.Ping` and `GetMachineId` on any path;
//! - `UnknownObject`, `UnknownInterface` and `UnknownMethod` error replies.
//!
//! # Calls without INTERFACE (CVE-2008-0595)
//!
//! The INTERFACE field of a method call is optional. Such a call is never guessed at: it goes
//! to the one interface of the object that has a method of that name, counting the standard
//! interfaces the bus answers there (`Peer` everywhere, `Introspectable` on exported paths and
//! their parents) unless the object exports its own. When no interface has the member, the
//! answer is `UnknownMethod`; when several have it, it is `UnknownMethod` too, saying which
//! interfaces to choose from, and nothing is called. (The specification leaves the choice open
//! between an error and an arbitrary pick; an arbitrary pick is how dbus-daemon's policy was
//! bypassed in CVE-2008-0595, so we refuse.)
//!
//! # User code that panics
//!
//! A message handler or an exported method that panics does not take the connection down:
//! the panic is caught, a method call gets an `org.freedesktop.DBus.Error.Failed` reply saying
//! so, and the object goes on handling its next calls.
//!
//! # Order and the reader
//!
//! A call is polled once, in the reader, when its object has no call in progress: a method
//! that finishes without waiting costs no task hop. A method that has to wait moves to a task
//! of its object, and every later call to that object queues behind it there, so the calls
//! to one object are handled one at a time in the order they arrived. Calls to different
//! objects run concurrently. An interface must never block the thread.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::BuildHasherDefault;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Waker};

use async_trait::async_trait;
use fastbus_wire::Message;
use fastbus_wire::introspection::{Node, standard};
use fastbus_wire::names::{InterfaceName, ObjectPath};

use crate::bus::MessageBus;
use crate::connection::{Core, SerialHasher, lock};
use crate::error::{DBusError, Error, Result, names};

/// `org.freedesktop.DBus.Introspectable`.
pub const INTROSPECTABLE: &str = "org.freedesktop.DBus.Introspectable";
/// `org.freedesktop.DBus.Peer`.
pub const PEER: &str = "org.freedesktop.DBus.Peer";

/// What an exported method returns: a reply to send (`Ok(Some(..))`, usually built with
/// `Message::method_return(call)`), nothing (`Ok(None)`: the interface replies later by
/// itself, or the call expects no reply), or an error that the bus sends as an error reply.
pub type MethodResult = std::result::Result<Option<Message>, DBusError>;

/// An exported D-Bus interface: handles the calls for its interface name and describes itself
/// for introspection.
///
/// The bus calls [`Interface::call`] only for members [`Interface::has_method`] accepts; other
/// members get `UnknownMethod` without reaching it. The `fastbus-service` crate builds these
/// from ordinary Rust methods, properties and signals; implement it by hand for full control.
#[async_trait]
pub trait Interface: Send + Sync + 'static {
    /// The interface name, e.g. `org.example.Echo` (checked by [`MessageBus::export`]).
    fn name(&self) -> &str;

    /// The interface's description, as `Introspect` shows it.
    fn introspect(&self) -> fastbus_wire::introspection::Interface<'static>;

    /// Whether the interface has a method called `member`. The default looks it up in
    /// [`Interface::introspect`]; override it when that is expensive.
    fn has_method(&self, member: &str) -> bool {
        self.introspect().method(member).is_some()
    }

    /// Handles one method call to this interface. `bus` is the connection it came in on (to
    /// emit signals or make calls); `call` is the message (arguments: `call.body::<T>()`).
    async fn call(&self, bus: &MessageBus, call: &Message) -> MethodResult;
}

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Default)]
struct LaneState {
    running: bool,
    queue: VecDeque<Job>,
}

/// The calls of one object, handled one at a time in arrival order.
#[derive(Default)]
struct Lane {
    state: Mutex<LaneState>,
}

impl Lane {
    /// Runs `job` now if the object is idle and it finishes without waiting; otherwise it
    /// runs on the object's task after the calls before it.
    fn submit(self: &Arc<Self>, mut job: Job) {
        {
            let mut s = lock(&self.state);
            if s.running {
                s.queue.push_back(job);
                return;
            }
        }
        // Only the reader submits, and `running` is false: no task of this lane exists.
        let mut cx = Context::from_waker(Waker::noop());
        if job.as_mut().poll(&mut cx).is_ready() {
            return;
        }
        lock(&self.state).running = true;
        let lane = Arc::clone(self);
        // The task polls the job again at once, with its own waker.
        tokio::spawn(async move {
            job.await;
            loop {
                let next = {
                    let mut s = lock(&lane.state);
                    match s.queue.pop_front() {
                        Some(j) => j,
                        None => {
                            s.running = false;
                            return;
                        }
                    }
                };
                next.await;
            }
        });
    }
}

struct Object {
    interfaces: Vec<Arc<dyn Interface>>,
    lane: Arc<Lane>,
}

impl Object {
    fn find(&self, name: &str) -> Option<&Arc<dyn Interface>> {
        self.interfaces.iter().find(|i| i.name() == name)
    }
}

/// Objects by path, hashed cheaply: the keys are the paths this process exported, so the
/// paths in a peer's calls only look up and cannot flood the table.
type Objects = HashMap<String, Object, BuildHasherDefault<SerialHasher>>;

/// Exported objects by path.
#[derive(Default)]
pub(crate) struct Registry {
    objects: Mutex<Objects>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let objects = lock(&self.objects);
        let mut m = f.debug_map();
        for (path, o) in objects.iter() {
            let names: Vec<&str> = o.interfaces.iter().map(|i| i.name()).collect();
            m.entry(path, &names);
        }
        m.finish()
    }
}

enum Route {
    Call(Arc<dyn Interface>, Arc<Lane>),
    Ping,
    MachineId,
    Introspect(String),
    Error(&'static str, String),
}

/// Catches a panic while polling the inner future (user code must not kill the reader or an
/// object's task).
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> std::task::Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// `s`, cut to a length fit for an error text (paths and names come from the peer and may be
/// megabytes long: CVE-2019-6454).
fn shown(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 256;
    if s.len() <= MAX {
        return s.into();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &s[..end], s.len()).into()
}

/// The paths strictly below `path`, one level down (child node names).
fn children<'a>(path: &str, all: impl Iterator<Item = &'a String>) -> BTreeSet<String> {
    let prefix = if path == "/" {
        "/".to_owned()
    } else {
        format!("{path}/")
    };
    all.filter_map(|p| p.strip_prefix(prefix.as_str()))
        .filter(|rest| !rest.is_empty())
        .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
        .collect()
}

impl Registry {
    pub(crate) fn export(&self, path: &str, iface: Arc<dyn Interface>) -> Result<()> {
        ObjectPath::new(path)?;
        InterfaceName::new(iface.name())?;
        let mut objects = lock(&self.objects);
        let obj = objects.entry(path.to_owned()).or_insert_with(|| Object {
            interfaces: Vec::new(),
            lane: Arc::default(),
        });
        if obj.find(iface.name()).is_some() {
            return Err(Error::AlreadyExported {
                path: path.to_owned(),
                interface: iface.name().to_owned(),
            });
        }
        obj.interfaces.push(iface);
        Ok(())
    }

    pub(crate) fn unexport(&self, path: &str, interface: Option<&str>) -> bool {
        let mut objects = lock(&self.objects);
        let Some(obj) = objects.get_mut(path) else {
            return false;
        };
        let removed = match interface {
            None => {
                obj.interfaces.clear();
                true
            }
            Some(name) => {
                let before = obj.interfaces.len();
                obj.interfaces.retain(|i| i.name() != name);
                obj.interfaces.len() != before
            }
        };
        if obj.interfaces.is_empty() {
            objects.remove(path);
        }
        removed
    }

    pub(crate) fn interfaces(&self, path: &str) -> Vec<Arc<dyn Interface>> {
        lock(&self.objects)
            .get(path)
            .map(|o| o.interfaces.clone())
            .unwrap_or_default()
    }

    /// The introspection data the bus answers for `path` (`None`: nothing there).
    fn introspect_in(objects: &Objects, path: &str) -> Option<Node<'static>> {
        let obj = objects.get(path);
        let kids = children(path, objects.keys());
        if obj.is_none() && kids.is_empty() {
            return None;
        }
        let mut node = Node::new(None);
        if let Some(o) = obj {
            node.interfaces
                .extend(o.interfaces.iter().map(|i| i.introspect()));
        }
        let has = |n: &str| node.interfaces.iter().any(|i| i.name.as_str() == n);
        let (intro, peer) = (has(INTROSPECTABLE), has(PEER));
        if !intro {
            node.interfaces.push(standard::introspectable());
        }
        if !peer {
            node.interfaces.push(standard::peer());
        }
        node.nodes = kids
            .into_iter()
            .map(|k| Node::new(Some(k.into())))
            .collect();
        Some(node)
    }

    fn route(&self, path: &str, iface: Option<&str>, member: &str) -> Route {
        let objects = lock(&self.objects);
        let obj = objects.get(path);
        let exported = |name: &str| obj.and_then(|o| o.find(name));
        let call = |i: &Arc<dyn Interface>| {
            let lane = obj.map(|o| Arc::clone(&o.lane)).unwrap_or_default();
            Route::Call(Arc::clone(i), lane)
        };
        let no_method = |what: &str| {
            Route::Error(
                names::UNKNOWN_METHOD,
                format!("no method {} in {what} at {}", shown(member), shown(path)),
            )
        };
        if let Some(name) = iface {
            if let Some(i) = exported(name) {
                return if i.has_method(member) {
                    call(i)
                } else {
                    no_method(&format!("interface {name}"))
                };
            }
            return match name {
                PEER => match member {
                    "Ping" => Route::Ping,
                    "GetMachineId" => Route::MachineId,
                    _ => no_method(PEER),
                },
                INTROSPECTABLE => match Self::introspect_in(&objects, path) {
                    Some(node) if member == "Introspect" => Route::Introspect(node.to_xml()),
                    Some(_) => no_method(INTROSPECTABLE),
                    None => Route::Error(
                        names::UNKNOWN_OBJECT,
                        format!("no object at {}", shown(path)),
                    ),
                },
                _ if obj.is_none() => Route::Error(
                    names::UNKNOWN_OBJECT,
                    format!("no object at {}", shown(path)),
                ),
                _ => Route::Error(
                    names::UNKNOWN_INTERFACE,
                    format!("no interface {name} at {}", shown(path)),
                ),
            };
        }
        // No INTERFACE: the one interface here that has the member, or an error (see the
        // module docs). The standard interfaces count unless the object exports its own.
        let mut users = obj
            .into_iter()
            .flat_map(|o| o.interfaces.iter())
            .filter(|i| i.has_method(member));
        let user = users.next();
        let mut candidates: Vec<&str> = user.iter().map(|i| i.name()).collect();
        candidates.extend(users.map(|i| i.name()));
        let peer = exported(PEER).is_none() && matches!(member, "Ping" | "GetMachineId");
        if peer {
            candidates.push(PEER);
        }
        let node = if exported(INTROSPECTABLE).is_none() && member == "Introspect" {
            Self::introspect_in(&objects, path)
        } else {
            None
        };
        if node.is_some() {
            candidates.push(INTROSPECTABLE);
        }
        match (candidates.len(), user) {
            (1, Some(i)) => call(i),
            (1, None) if peer => {
                if member == "Ping" {
                    Route::Ping
                } else {
                    Route::MachineId
                }
            }
            (1, None) => match node {
                Some(n) => Route::Introspect(n.to_xml()),
                None => no_method("any interface"),
            },
            (0, _) if obj.is_none() => Route::Error(
                names::UNKNOWN_OBJECT,
                format!("no object at {}", shown(path)),
            ),
            (0, _) => no_method("any interface"),
            _ => Route::Error(
                names::UNKNOWN_METHOD,
                format!(
                    "the call names no interface, and {} at {} have a method {}: \
                     set INTERFACE to choose",
                    candidates.join(", "),
                    shown(path),
                    shown(member)
                ),
            ),
        }
    }
}

/// This machine's id (`/etc/machine-id`, or libdbus's `/var/lib/dbus/machine-id`).
fn machine_id() -> Option<&'static str> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        ["/etc/machine-id", "/var/lib/dbus/machine-id"]
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .map(|s| s.trim().to_owned())
            .find(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    })
    .as_deref()
}

/// Sends the reply an exported method produced (if the caller wants one).
fn respond(core: &Core, call: &Message, r: MethodResult) {
    if !call.expects_reply() {
        return;
    }
    let reply = match r {
        Ok(Some(reply)) => Ok(reply),
        Ok(None) => return,
        Err(e) => Message::error(call, e.name(), e.text())
            .build()
            .or_else(|_| Message::error(call, names::FAILED, &e.to_string()).build()),
    };
    if let Ok(reply) = reply {
        core.send_reply(reply);
    }
}

/// Routes an incoming method call (the reader calls this).
pub(crate) fn dispatch(core: &Arc<Core>, msg: Message) {
    let (Some(path), Some(member)) = (msg.path(), msg.member()) else {
        return;
    };
    let iface = msg.interface();
    let route = core.objects.route(
        path.as_str(),
        iface.as_ref().map(InterfaceName::as_str),
        member.as_str(),
    );
    let reply = match route {
        Route::Call(iface, lane) => {
            let Some(bus) = core.bus() else {
                return; // the last handle is gone: the connection is closing
            };
            let core = Arc::clone(core);
            lane.submit(Box::pin(async move {
                let r = match CatchUnwind(iface.call(&bus, &msg)).await {
                    Ok(r) => r,
                    Err(panic) => Err(DBusError::failed(format!(
                        "{}.{} panicked: {}",
                        iface.name(),
                        msg.member()
                            .map(|m| m.as_str().to_owned())
                            .unwrap_or_default(),
                        panic_text(&*panic)
                    ))),
                };
                respond(&core, &msg, r);
            }));
            return;
        }
        Route::Ping => Ok(Some(Message::method_return(&msg).build())),
        Route::MachineId => match machine_id() {
            Some(id) => Ok(Some(Message::method_return(&msg).body(&(id,)).build())),
            None => Err(DBusError::failed("this machine has no machine id")),
        },
        Route::Introspect(xml) => Ok(Some(
            Message::method_return(&msg).body(&(xml.as_str(),)).build(),
        )),
        Route::Error(name, text) => Err(DBusError::new(name, text)),
    };
    let reply = match reply {
        Ok(Some(Ok(m))) => Ok(Some(m)),
        Ok(Some(Err(e))) => Err(DBusError::failed(e.to_string())),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    respond(core, &msg, reply);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_one_level_down() {
        let all: Vec<String> = ["/a/b/c", "/a/d", "/a", "/ab", "/x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let got: Vec<String> = children("/a", all.iter()).into_iter().collect();
        assert_eq!(got, ["b", "d"]);
        let root: Vec<String> = children("/", all.iter()).into_iter().collect();
        assert_eq!(root, ["a", "ab", "x"]);
        assert!(children("/x", all.iter()).is_empty());
    }
}

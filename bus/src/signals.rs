//! Signal subscriptions: a match rule in, a [`SignalStream`] out.
//!
//! The bus is told each distinct rule once (`AddMatch` when its first subscriber arrives,
//! `RemoveMatch` when its last one is dropped). A subscription is registered before its
//! `AddMatch` is sent, so no matching signal that the bus sends after adding the rule can slip
//! past it. [`crate::MessageBus::subscribe`] returns once the bus has answered the `AddMatch`
//! (a later subscriber to the same rule waits for that same answer, and gets the same error
//! if the bus refused the rule).
//!
//! # Overflow policy
//!
//! The reader never waits for a subscriber. Each subscription has a bounded queue (see
//! [`crate::MessageBusBuilder::signal_queue_capacity`], default 1024 signals). When it is full,
//! newly arriving signals for that subscription are **dropped** (the queued ones are kept, so
//! what you do receive stays in order), and the stream then yields `Err(Lagged { dropped })`
//! at the place of the gap before the next signal that did fit.
//!
//! # Senders given as well-known names (CVE-2024-34397)
//!
//! A bus stamps every message it routes with the sender's *unique* name (`:1.42`), and no
//! client can choose what it says there. A rule `sender='org.example.App'` is therefore
//! matched here against the unique name that owns `org.example.App` right now: the first
//! subscription naming it asks the bus for that name's `NameOwnerChanged` signals and for
//! `GetNameOwner`, before the rule's own `AddMatch`, and the owner is updated in the order the
//! bus's answers arrive. A signal matches only if its SENDER is that owner; a signal from any
//! other connection (even one that reached us through another, broader rule) does not, and
//! while the name has no owner nothing matches. This is what GLib got wrong in
//! CVE-2024-34397 (it trusted the sender string). In peer-to-peer mode there is no bus to ask
//! and no unique names: SENDER is compared as the peer wrote it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use fastbus_wire::names::BusName;
use fastbus_wire::{MatchContext, MatchRule, Message, MessageArgs, MessageType};

use tokio::sync::watch;

use crate::bus::{DBUS_INTERFACE, DBUS_NAME, DBUS_PATH};
use crate::connection::{Core, ReplyCallback, lock};
use crate::error::{DBusError, DisconnectReason, Error, Result, check_reply};

/// Signals were dropped because a subscription's queue was full (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged {
    /// How many signals were dropped at this point of the stream.
    pub dropped: u64,
}

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} signals dropped: the subscriber fell behind",
            self.dropped
        )
    }
}

impl std::error::Error for Lagged {}

// Queued signals are the common item; boxing them would cost an allocation per signal.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Item {
    Msg(Message),
    Lagged(u64),
}

#[derive(Debug, Default)]
struct QueueState {
    buf: VecDeque<Item>,
    msgs: usize,
    dropped: u64,
    waker: Option<Waker>,
    closed: bool,
}

/// One subscription's bounded queue.
#[derive(Debug)]
pub(crate) struct SubQueue {
    state: Mutex<QueueState>,
    cap: usize,
}

impl SubQueue {
    fn new(cap: usize) -> Self {
        SubQueue {
            state: Mutex::default(),
            cap: cap.max(1),
        }
    }

    fn push(&self, msg: &Message) {
        let waker = {
            let mut s = lock(&self.state);
            if s.closed {
                return;
            }
            if s.msgs >= self.cap {
                s.dropped += 1;
                return;
            }
            if s.dropped > 0 {
                let n = std::mem::take(&mut s.dropped);
                s.buf.push_back(Item::Lagged(n));
            }
            s.buf.push_back(Item::Msg(msg.clone()));
            s.msgs += 1;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn close(&self) {
        let waker = {
            let mut s = lock(&self.state);
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll_next(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Message, Lagged>>> {
        let mut s = lock(&self.state);
        match s.buf.pop_front() {
            Some(Item::Msg(m)) => {
                s.msgs -= 1;
                return Poll::Ready(Some(Ok(m)));
            }
            Some(Item::Lagged(n)) => return Poll::Ready(Some(Err(Lagged { dropped: n }))),
            None => {}
        }
        if s.dropped > 0 {
            let dropped = std::mem::take(&mut s.dropped);
            return Poll::Ready(Some(Err(Lagged { dropped })));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            s.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Where the bus stands on a rule we asked it to add (or on the owner tracking of a name).
#[derive(Debug, Clone)]
enum Added {
    /// `AddMatch` is sent; no answer yet.
    Pending,
    /// The bus added it (or there is no bus: peer-to-peer).
    Yes,
    /// The bus refused, or the connection ended first.
    Failed(Failure),
}

/// Why an `AddMatch` did not succeed (kept to hand the same error to every subscriber).
#[derive(Debug, Clone)]
enum Failure {
    Refused(DBusError),
    Disconnected(DisconnectReason),
    Other(String),
}

impl Failure {
    fn from_error(e: Error) -> Self {
        match e {
            Error::MethodError(d) => Failure::Refused(d),
            Error::Disconnected(r) => Failure::Disconnected(r),
            e => Failure::Other(e.to_string()),
        }
    }

    fn to_error(&self) -> Error {
        match self {
            Failure::Refused(d) => Error::MethodError(d.clone()),
            Failure::Disconnected(r) => Error::Disconnected(r.clone()),
            Failure::Other(s) => Error::Protocol(s.clone()),
        }
    }
}

type AddState = Arc<watch::Sender<Added>>;

/// The subscribers of one rule, and whether the bus has the rule.
#[derive(Debug)]
struct RuleSubs {
    subs: Vec<(u64, Arc<SubQueue>)>,
    added: AddState,
}

/// A well-known name that rules use as their sender, and who owns it.
#[derive(Debug)]
struct Owner {
    /// How many subscriptions have a rule with this sender.
    refs: usize,
    /// The unique name that owns it, as the bus last said (`GetNameOwner`, then every
    /// `NameOwnerChanged`, in the order they arrive, so the latest word wins).
    owner: Option<String>,
    /// Whether the bus sends us this name's `NameOwnerChanged`.
    added: AddState,
}

#[derive(Debug, Default)]
struct Inner {
    rules: HashMap<MatchRule, RuleSubs>,
    owners: HashMap<String, Owner>,
    next: u64,
    closed: bool,
}

/// Every subscription of a connection, by rule.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    inner: Mutex<Inner>,
    any: AtomicBool,
}

/// The well-known name in a rule's `sender` key, if it has one.
fn well_known_sender(rule: &MatchRule) -> Option<String> {
    let s = rule.sender()?.as_str();
    (!s.starts_with(':') && s != DBUS_NAME).then(|| s.to_owned())
}

fn owner_rule(name: &str) -> Result<MatchRule> {
    Ok(MatchRule::builder()
        .msg_type(MessageType::SIGNAL)
        .sender(DBUS_NAME)
        .interface(DBUS_INTERFACE)
        .member("NameOwnerChanged")
        .path(DBUS_PATH)
        .arg(0, name)
        .build()?)
}

/// What a new subscription must see done before it is live.
struct Registration {
    id: u64,
    rule_state: AddState,
    /// The first subscriber of its rule sends `AddMatch`.
    first: bool,
    /// The rule's sender is a well-known name: its owner tracking, and whether this
    /// subscription starts it.
    owner: Option<(String, AddState, bool)>,
}

impl Subscriptions {
    /// Hands `msg` to every subscription whose rule matches it.
    pub(crate) fn dispatch(&self, msg: &Message, peer_to_peer: bool) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let mut inner = lock(&self.inner);
        if !inner.owners.is_empty() {
            track_owner(&mut inner, msg);
        }
        let sender = msg.sender();
        let owners = &inner.owners;
        let owns = |name: &BusName<'_>| {
            let Some(s) = &sender else { return false };
            match owners.get(name.as_str()) {
                // A well-known name: only its current owner's signals match (a bus stamps
                // SENDER with the unique name, which no peer can forge).
                Some(o) if !peer_to_peer => o.owner.as_deref() == Some(s.as_str()),
                // A unique name, the bus's own name, or no bus to ask: SENDER as written.
                _ => s.as_str() == name.as_str(),
            }
        };
        let ctx = MatchContext::received().with_sender_owns(&owns);
        let args = MessageArgs::new(msg);
        for (rule, entry) in &inner.rules {
            if rule.matches_in(msg, &args, &ctx) {
                for (_, q) in &entry.subs {
                    q.push(msg);
                }
            }
        }
    }

    /// Ends every stream (the connection closed).
    pub(crate) fn close_all(&self) {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        for entry in inner.rules.values() {
            for (_, q) in &entry.subs {
                q.close();
            }
        }
    }

    /// Registers a subscriber (`None`: the connection is closed).
    fn add(&self, rule: &MatchRule, q: Arc<SubQueue>, peer_to_peer: bool) -> Option<Registration> {
        let initial = || {
            Arc::new(watch::Sender::new(if peer_to_peer {
                Added::Yes
            } else {
                Added::Pending
            }))
        };
        let mut inner = lock(&self.inner);
        if inner.closed {
            return None;
        }
        let id = inner.next;
        inner.next += 1;
        let entry = inner.rules.entry(rule.clone()).or_insert_with(|| RuleSubs {
            subs: Vec::new(),
            added: initial(),
        });
        let first = entry.subs.is_empty();
        entry.subs.push((id, q));
        let rule_state = Arc::clone(&entry.added);
        let owner = well_known_sender(rule).map(|name| {
            let o = inner.owners.entry(name.clone()).or_insert_with(|| Owner {
                refs: 0,
                owner: None,
                added: initial(),
            });
            o.refs += 1;
            (name, Arc::clone(&o.added), o.refs == 1)
        });
        self.any.store(true, Ordering::Release);
        Some(Registration {
            id,
            rule_state,
            first,
            owner,
        })
    }

    /// Removes a subscriber; returns the rules to send `RemoveMatch` for (the rule if this was
    /// its last subscriber, and the owner tracking of a name no rule uses any more), unless
    /// the bus refused them in the first place.
    fn remove(&self, rule: &MatchRule, id: u64) -> Vec<String> {
        let on_bus = |a: &AddState| !matches!(*a.borrow(), Added::Failed(_));
        let mut inner = lock(&self.inner);
        let mut gone = Vec::new();
        if let Some(entry) = inner.rules.get_mut(rule) {
            entry.subs.retain(|(i, _)| *i != id);
            if entry.subs.is_empty() {
                if let Some(e) = inner.rules.remove(rule) {
                    if on_bus(&e.added) {
                        gone.push(rule.to_string());
                    }
                }
            }
        }
        if let Some(name) = well_known_sender(rule) {
            if let Some(o) = inner.owners.get_mut(&name) {
                o.refs -= 1;
                if o.refs == 0 {
                    if let Some(o) = inner.owners.remove(&name) {
                        if on_bus(&o.added) {
                            if let Ok(r) = owner_rule(&name) {
                                gone.push(r.to_string());
                            }
                        }
                    }
                }
            }
        }
        self.any.store(!inner.rules.is_empty(), Ordering::Release);
        gone
    }

    /// The answer to `GetNameOwner(name)`.
    fn seed_owner(&self, name: &str, owner: Option<String>) {
        if let Some(o) = lock(&self.inner).owners.get_mut(name) {
            o.owner = owner;
        }
    }
}

/// Follows `NameOwnerChanged` for the names that rules use as senders.
fn track_owner(inner: &mut Inner, msg: &Message) {
    if msg.message_type() != MessageType::SIGNAL
        || msg
            .member()
            .is_none_or(|m| m.as_str() != "NameOwnerChanged")
        || msg.sender().is_none_or(|s| s.as_str() != DBUS_NAME)
        || msg.interface().is_none_or(|i| i.as_str() != DBUS_INTERFACE)
    {
        return;
    }
    let Ok((name, _old, new)) = msg.body::<(&str, &str, &str)>() else {
        return;
    };
    if let Some(o) = inner.owners.get_mut(name) {
        o.owner = (!new.is_empty()).then(|| new.to_owned());
    }
}

/// A stream of the signals that match one rule. Dropping it unsubscribes.
///
/// Yields `Ok(message)` for each matching signal, `Err(Lagged)` where signals were dropped
/// because this subscriber fell behind (see the module docs), and ends when the connection
/// ends. Use [`SignalStream::next`], or the [`futures_core::Stream`] implementation.
#[derive(Debug)]
pub struct SignalStream {
    core: Arc<Core>,
    rule: MatchRule,
    id: u64,
    queue: Arc<SubQueue>,
}

impl SignalStream {
    /// The next signal; `None` once the connection has ended.
    ///
    /// # Cancel safety
    /// Cancel safe: a signal is taken from the queue only when this returns it.
    pub async fn next(&mut self) -> Option<std::result::Result<Message, Lagged>> {
        std::future::poll_fn(|cx| self.queue.poll_next(cx)).await
    }

    /// The rule this stream was subscribed with.
    pub fn rule(&self) -> &MatchRule {
        &self.rule
    }
}

impl futures_core::Stream for SignalStream {
    type Item = std::result::Result<Message, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.queue.poll_next(cx)
    }
}

impl Drop for SignalStream {
    fn drop(&mut self) {
        let gone = self.core.subs.remove(&self.rule, self.id);
        if self.core.opts.peer_to_peer || !self.core.is_connected() {
            return;
        }
        for r in gone {
            // Fire and forget: the reply (or error) is dropped by the reader.
            if let Ok(mut m) = bus_call("RemoveMatch").body(&(r.as_str(),)).build() {
                let _ = self.core.send(&mut m);
            }
        }
    }
}

fn bus_call(member: &str) -> fastbus_wire::MessageBuilder {
    Message::method_call(DBUS_PATH, member)
        .interface(DBUS_INTERFACE)
        .destination(DBUS_NAME)
}

/// Sends `AddMatch(rule)`; its answer lands in `state` (in the reader, whoever waits).
fn add_match(core: &Core, rule: &str, state: &AddState) {
    let st = Arc::clone(state);
    let sent = bus_call("AddMatch")
        .body(&(rule,))
        .build()
        .map_err(Error::from)
        .and_then(|m| {
            core.call_with_callback(
                m,
                Box::new(move |r| {
                    let added = match r.and_then(check_reply) {
                        Ok(_) => Added::Yes,
                        Err(e) => Added::Failed(Failure::from_error(e)),
                    };
                    st.send_replace(added);
                }),
            )
        });
    if let Err(e) = sent {
        state.send_replace(Added::Failed(Failure::from_error(e)));
    }
}

/// Waits until the bus has answered for `state`.
async fn added(state: &AddState) -> Result<()> {
    let mut rx = state.subscribe();
    let outcome = rx.wait_for(|a| !matches!(a, Added::Pending)).await;
    match outcome {
        Ok(a) => match &*a {
            Added::Failed(f) => Err(f.to_error()),
            _ => Ok(()),
        },
        // Nobody can answer any more: the connection is gone.
        Err(_) => Err(Error::Disconnected(DisconnectReason::ByUs)),
    }
}

/// Subscribes to `rule` (see the module docs).
pub(crate) async fn subscribe(core: &Arc<Core>, rule: MatchRule) -> Result<SignalStream> {
    let queue = Arc::new(SubQueue::new(core.opts.signal_queue));
    let p2p = core.opts.peer_to_peer;
    let Some(reg) = core.subs.add(&rule, Arc::clone(&queue), p2p) else {
        return Err(core.disconnected());
    };
    // From here on, dropping the stream undoes the registration (and sends RemoveMatch).
    let stream = SignalStream {
        core: Arc::clone(core),
        rule,
        id: reg.id,
        queue,
    };
    if p2p {
        return Ok(stream);
    }
    // In this order on the wire, so that the bus answers in this order too: the owner is
    // known (GetNameOwner, then every NameOwnerChanged after it) before any signal of the
    // rule can arrive.
    if let Some((name, state, true)) = &reg.owner {
        add_match(core, &owner_rule(name)?.to_string(), state);
        let subs = Arc::clone(core);
        let n = name.clone();
        let seed: ReplyCallback = Box::new(move |r| {
            let owner = r
                .and_then(check_reply)
                .ok()
                .and_then(|m| m.body::<&str>().ok().map(str::to_owned));
            subs.subs.seed_owner(&n, owner);
        });
        let m = bus_call("GetNameOwner").body(&(name.as_str(),)).build()?;
        // No owner yet is an error reply: the seed is then "nobody", as it should be.
        core.call_with_callback(m, seed)?;
    }
    if reg.first {
        add_match(core, &stream.rule.to_string(), &reg.rule_state);
    }
    let timeout = core.opts.default_timeout;
    let ready = async {
        if let Some((_, state, _)) = &reg.owner {
            added(state).await?;
        }
        added(&reg.rule_state).await
    };
    match tokio::time::timeout(timeout, ready).await {
        Ok(r) => r?,
        Err(_) => return Err(Error::Timeout { timeout }),
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(n: u32) -> Message {
        Message::signal("/a", "org.example.I", "S")
            .serial(n)
            .body(&(n,))
            .build()
            .unwrap()
    }

    fn poll(q: &SubQueue) -> Poll<Option<std::result::Result<Message, Lagged>>> {
        q.poll_next(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn full_queue_drops_newest_and_reports_the_gap_in_place() {
        let q = SubQueue::new(2);
        for n in 1..=5 {
            q.push(&signal(n));
        }
        let got = |p: Poll<Option<std::result::Result<Message, Lagged>>>| match p {
            Poll::Ready(Some(Ok(m))) => Ok(m.body::<u32>().unwrap()),
            Poll::Ready(Some(Err(l))) => Err(l.dropped),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(got(poll(&q)), Ok(1));
        q.push(&signal(6));
        assert_eq!(got(poll(&q)), Ok(2));
        assert_eq!(got(poll(&q)), Err(3));
        assert_eq!(got(poll(&q)), Ok(6));
        assert!(poll(&q).is_pending());
        q.push(&signal(7));
        q.push(&signal(8));
        q.push(&signal(9));
        q.close();
        assert_eq!(got(poll(&q)), Ok(7));
        assert_eq!(got(poll(&q)), Ok(8));
        assert_eq!(got(poll(&q)), Err(1));
        assert!(matches!(poll(&q), Poll::Ready(None)));
    }
}

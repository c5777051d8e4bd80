//! Signal subscriptions: a match rule in, a [`SignalStream`] out.
//!
//! The bus is told each distinct rule once (`AddMatch` when its first subscriber arrives,
//! `RemoveMatch` when its last one is dropped). A subscription is registered before its
//! `AddMatch` is sent, so no matching signal that the bus sends after adding the rule can slip
//! past it.
//!
//! # Overflow policy
//!
//! The reader never waits for a subscriber. Each subscription has a bounded queue (see
//! [`crate::MessageBusBuilder::signal_queue_capacity`], default 1024 signals). When it is full,
//! newly arriving signals for that subscription are **dropped** (the queued ones are kept, so
//! what you do receive stays in order), and the stream then yields `Err(Lagged { dropped })`
//! at the place of the gap before the next signal that did fit.
//!
//! # Senders given as well-known names
//!
//! A bus stamps every message with the sender's unique name, so a rule
//! `sender='org.example.App'` is matched against the unique name that owns `org.example.App`.
//! For such rules the connection also asks the bus for `NameOwnerChanged` of that name and
//! seeds the owner with `GetNameOwner`, as dbus-fast does.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use fastbus_wire::names::BusName;
use fastbus_wire::{MatchContext, MatchRule, Message, MessageArgs, MessageType};

use crate::bus::{DBUS_INTERFACE, DBUS_NAME, DBUS_PATH};
use crate::connection::{Core, lock};
use crate::error::{Result, check_reply};

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

#[derive(Debug, Default)]
struct Owner {
    /// How many subscriptions have a rule with this sender.
    refs: usize,
    owner: Option<String>,
    /// A `NameOwnerChanged` was seen: `GetNameOwner`'s answer is older, ignore it.
    changed: bool,
}

#[derive(Debug, Default)]
struct Inner {
    rules: HashMap<MatchRule, Vec<(u64, Arc<SubQueue>)>>,
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

impl Subscriptions {
    /// Hands `msg` to every subscription whose rule matches it.
    pub(crate) fn dispatch(&self, msg: &Message) {
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
            match owners.get(name.as_str()).and_then(|o| o.owner.as_deref()) {
                Some(o) => o == s.as_str(),
                None => s.as_str() == name.as_str(),
            }
        };
        let ctx = MatchContext::received().with_sender_owns(&owns);
        let args = MessageArgs::new(msg);
        for (rule, subs) in &inner.rules {
            if rule.matches_in(msg, &args, &ctx) {
                for (_, q) in subs {
                    q.push(msg);
                }
            }
        }
    }

    /// Ends every stream (the connection closed).
    pub(crate) fn close_all(&self) {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        for subs in inner.rules.values() {
            for (_, q) in subs {
                q.close();
            }
        }
    }

    /// Registers a subscriber; says whether it is the first for its rule and, if the rule's
    /// sender is a well-known name seen for the first time, that name.
    fn add(&self, rule: &MatchRule, q: Arc<SubQueue>) -> Option<(u64, bool, Option<String>)> {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return None;
        }
        let id = inner.next;
        inner.next += 1;
        let subs = inner.rules.entry(rule.clone()).or_default();
        let first = subs.is_empty();
        subs.push((id, q));
        let mut new_name = None;
        if let Some(name) = well_known_sender(rule) {
            let o = inner.owners.entry(name.clone()).or_default();
            o.refs += 1;
            if o.refs == 1 {
                new_name = Some(name);
            }
        }
        self.any.store(true, Ordering::Release);
        Some((id, first, new_name))
    }

    /// Removes a subscriber; says whether it was the last of its rule and which tracked name
    /// lost its last rule.
    fn remove(&self, rule: &MatchRule, id: u64) -> (bool, Option<String>) {
        let mut inner = lock(&self.inner);
        let mut last = false;
        if let Some(subs) = inner.rules.get_mut(rule) {
            subs.retain(|(i, _)| *i != id);
            if subs.is_empty() {
                inner.rules.remove(rule);
                last = true;
            }
        }
        let mut gone = None;
        if let Some(name) = well_known_sender(rule) {
            if let Some(o) = inner.owners.get_mut(&name) {
                o.refs -= 1;
                if o.refs == 0 {
                    inner.owners.remove(&name);
                    gone = Some(name);
                }
            }
        }
        self.any.store(!inner.rules.is_empty(), Ordering::Release);
        (last, gone)
    }

    fn seed_owner(&self, name: &str, owner: Option<String>) {
        let mut inner = lock(&self.inner);
        if let Some(o) = inner.owners.get_mut(name) {
            if !o.changed {
                o.owner = owner;
            }
        }
    }
}

/// Follows `NameOwnerChanged` for the names that rules use as senders.
fn track_owner(inner: &mut Inner, msg: &Message) {
    if msg
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
        o.changed = true;
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
        let (last, gone) = self.core.subs.remove(&self.rule, self.id);
        if self.core.opts.peer_to_peer || !self.core.is_connected() {
            return;
        }
        let mut rules = Vec::new();
        if last {
            rules.push(self.rule.to_string());
        }
        if let Some(name) = gone {
            if let Ok(r) = owner_rule(&name) {
                rules.push(r.to_string());
            }
        }
        for r in rules {
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

async fn add_match(core: &Core, rule: &str) -> Result<()> {
    let m = bus_call("AddMatch").body(&(rule,)).build()?;
    check_reply(core.call_raw(m, core.opts.default_timeout).await?)?;
    Ok(())
}

/// Subscribes to `rule` (see the module docs).
pub(crate) async fn subscribe(core: &Arc<Core>, rule: MatchRule) -> Result<SignalStream> {
    let queue = Arc::new(SubQueue::new(core.opts.signal_queue));
    let Some((id, first, new_name)) = core.subs.add(&rule, Arc::clone(&queue)) else {
        return Err(crate::error::Error::Disconnected(
            core.end_reason()
                .unwrap_or(crate::error::DisconnectReason::ByUs),
        ));
    };
    // From here on, dropping the stream undoes the registration (and sends RemoveMatch).
    let stream = SignalStream {
        core: Arc::clone(core),
        rule,
        id,
        queue,
    };
    if core.opts.peer_to_peer {
        return Ok(stream);
    }
    if let Some(name) = &new_name {
        add_match(core, &owner_rule(name)?.to_string()).await?;
        let m = bus_call("GetNameOwner").body(&(name.as_str(),)).build()?;
        let owner = match check_reply(core.call_raw(m, core.opts.default_timeout).await?) {
            Ok(reply) => reply.body::<&str>().ok().map(str::to_owned),
            Err(_) => None, // no owner yet: NameOwnerChanged will tell
        };
        core.subs.seed_owner(name, owner);
    }
    if first {
        add_match(core, &stream.rule.to_string()).await?;
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

//! The bus state and the routing decisions: connections, name ownership with
//! queues, match rules (indexed), pending replies (indexed), monitors.
//!
//! Everything here is synchronous and does no I/O: [`BusState::handle`]
//! takes one message from one connection and returns the encoded messages to
//! queue on which connections, in order ([`Output`]). The connection tasks
//! then push them into the outboxes.
//!
//! Routing cost does not grow with what does not concern a message: rules
//! are indexed by their `arg0` string, then member, then interface, then
//! sender, then path (a rule sits in the first bucket its keys allow), so a
//! signal looks at the rules of its own first argument, member, interface,
//! sender and path plus the few rules that name none of these; pending replies
//! are a hash set keyed by (caller, serial, callee).

use std::collections::{HashMap, HashSet, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use fastbus_transport::Credentials;
use fastbus_wire::match_rule::{Arg, ArgKind};
use fastbus_wire::{
    BusName, Encode, Flags, LOCAL_INTERFACE, LOCAL_PATH, MatchContext, MatchRule, Message,
    MessageArgs, MessageType,
};

use crate::limits::Limits;
use crate::outbox::Outbox;

/// The bus driver's name.
pub(crate) const BUS_NAME: &str = "org.freedesktop.DBus";
/// The bus driver's object path.
pub(crate) const BUS_PATH: &str = "/org/freedesktop/DBus";
/// The bus driver's interface.
pub(crate) const BUS_IFACE: &str = "org.freedesktop.DBus";

/// RequestName flags.
pub(crate) const ALLOW_REPLACEMENT: u32 = 0x1;
pub(crate) const REPLACE_EXISTING: u32 = 0x2;
pub(crate) const DO_NOT_QUEUE: u32 = 0x4;

/// A connection's id inside this bus (never reused).
pub(crate) type ConnId = u64;
type RuleId = usize;

/// One message to queue on one connection.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub(crate) to: Arc<Outbox>,
    pub(crate) bytes: Bytes,
    pub(crate) fds: Vec<OwnedFd>,
}

/// What handling one message produced.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Messages to queue, in this order.
    pub(crate) deliveries: Vec<Delivery>,
    /// The sender broke the protocol and must be disconnected, for this reason.
    pub(crate) disconnect: Option<String>,
}

/// A D-Bus error to answer a call with.
#[derive(Debug)]
pub(crate) struct DbusError {
    pub(crate) name: &'static str,
    pub(crate) text: String,
}

impl DbusError {
    pub(crate) fn new(name: &'static str, text: impl Into<String>) -> Self {
        DbusError {
            name,
            text: text.into(),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) outbox: Arc<Outbox>,
    pub(crate) unique: Option<Arc<str>>,
    pub(crate) creds: Option<Credentials>,
    pub(crate) unix_fd: bool,
    /// Names this connection owns or waits for.
    pub(crate) names: HashSet<Arc<str>>,
    pub(crate) rules: HashSet<RuleId>,
    /// `Some(rules)` once the connection became a monitor (empty = everything).
    pub(crate) monitor: Option<Vec<MatchRule>>,
    /// Calls this connection made that await a reply: (serial, callee).
    calls_out: HashSet<(u32, ConnId)>,
    /// Calls this connection must answer: (caller, serial).
    calls_in: HashSet<(ConnId, u32)>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    pub(crate) conn: ConnId,
    pub(crate) flags: u32,
}

/// The bucket a rule is filed under: its first key in this order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum IndexKey {
    /// `arg0='...'` (string equality only; `arg0path` and `arg0namespace` are not).
    Arg0(Arc<str>),
    Member(Arc<str>),
    Interface(Arc<str>),
    Sender(Arc<str>),
    Path(Arc<str>),
    Any,
}

/// Positions of the keyed maps in [`RuleIndex::keyed`].
const ARG0: usize = 0;
const MEMBER: usize = 1;
const INTERFACE: usize = 2;
const SENDER: usize = 3;
const PATH: usize = 4;

impl IndexKey {
    /// Which keyed map, and the value; `None` for [`IndexKey::Any`].
    fn parts(&self) -> Option<(usize, &Arc<str>)> {
        match self {
            IndexKey::Arg0(v) => Some((ARG0, v)),
            IndexKey::Member(v) => Some((MEMBER, v)),
            IndexKey::Interface(v) => Some((INTERFACE, v)),
            IndexKey::Sender(v) => Some((SENDER, v)),
            IndexKey::Path(v) => Some((PATH, v)),
            IndexKey::Any => None,
        }
    }
}

/// Rule ids by bucket: one map per kind of key, so that a message looks its own
/// values up as `&str`, without building a key.
#[derive(Debug, Default)]
struct RuleIndex {
    keyed: [HashMap<Arc<str>, HashSet<RuleId>>; 5],
    /// Rules with none of the indexed keys.
    any: HashSet<RuleId>,
}

impl RuleIndex {
    fn insert(&mut self, key: &IndexKey, id: RuleId) {
        match key.parts() {
            Some((k, v)) => {
                self.keyed[k].entry(Arc::clone(v)).or_default().insert(id);
            }
            None => {
                self.any.insert(id);
            }
        }
    }

    fn remove(&mut self, key: &IndexKey, id: RuleId) {
        match key.parts() {
            Some((k, v)) => {
                if let Some(set) = self.keyed[k].get_mut(&**v) {
                    set.remove(&id);
                    if set.is_empty() {
                        self.keyed[k].remove(&**v);
                    }
                }
            }
            None => {
                self.any.remove(&id);
            }
        }
    }

    fn bucket(&self, key: &IndexKey) -> Option<&HashSet<RuleId>> {
        match key.parts() {
            Some((k, v)) => self.keyed[k].get(&**v),
            None => Some(&self.any),
        }
    }

    /// The rules filed under value `v` of the keyed map `k`.
    fn get(&self, k: usize, v: &str) -> Option<&HashSet<RuleId>> {
        self.keyed[k].get(v)
    }

    fn is_empty(&self) -> bool {
        self.any.is_empty() && self.keyed.iter().all(HashMap::is_empty)
    }
}

#[derive(Debug)]
struct RuleEntry {
    conn: ConnId,
    rule: MatchRule,
    key: IndexKey,
}

/// Values kept once each, in the order first added: the recipients of a
/// broadcast, the outboxes a batch of routed messages touched. A short list is
/// scanned; past [`Distinct::SCAN`] a set of the same values answers instead.
#[derive(Debug)]
pub(crate) struct Distinct<T> {
    list: Vec<T>,
    /// The same values, once `list` is too long to scan.
    set: HashSet<T>,
}

impl<T> Default for Distinct<T> {
    fn default() -> Self {
        Distinct {
            list: Vec::new(),
            set: HashSet::new(),
        }
    }
}

impl<T: Copy + Eq + std::hash::Hash> Distinct<T> {
    const SCAN: usize = 16;

    pub(crate) fn contains(&self, v: T) -> bool {
        if self.list.len() <= Self::SCAN {
            self.list.contains(&v)
        } else {
            self.set.contains(&v)
        }
    }

    /// Adds `v` unless it is there already; whether it was added.
    pub(crate) fn insert(&mut self, v: T) -> bool {
        if self.list.len() < Self::SCAN {
            if self.list.contains(&v) {
                return false;
            }
        } else {
            if self.set.is_empty() {
                self.set.extend(self.list.iter().copied());
            }
            if !self.set.insert(v) {
                return false;
            }
        }
        self.list.push(v);
        true
    }

    /// The values, in the order they were first added.
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.list
    }

    pub(crate) fn clear(&mut self) {
        self.list.clear();
        self.set.clear();
    }
}

/// Everything the bus knows, behind one lock.
#[derive(Debug)]
pub(crate) struct BusState {
    pub(crate) limits: Limits,
    /// The busconfig file that `ReloadConfig` re-reads, if any.
    pub(crate) config_file: Option<std::path::PathBuf>,
    pub(crate) bus_id: String,
    pub(crate) conns: HashMap<ConnId, Conn>,
    pub(crate) uniques: HashMap<Arc<str>, ConnId>,
    /// Well-known names: the queue, primary owner first.
    pub(crate) names: HashMap<Arc<str>, VecDeque<Owner>>,
    rules: Vec<Option<RuleEntry>>,
    free_rules: Vec<RuleId>,
    index: RuleIndex,
    eavesdrop: HashSet<RuleId>,
    monitors: HashSet<ConnId>,
    pending: HashSet<(ConnId, u32, ConnId)>,
    next_conn: ConnId,
    next_unique: (u64, u64),
    serial: u32,
    /// Connections that finished Hello.
    pub(crate) active: usize,
    pub(crate) per_user: HashMap<u32, usize>,
}

fn encode(msg: &Message) -> Option<Bytes> {
    let mut b = BytesMut::with_capacity(128 + msg.body_bytes().len());
    match msg.encode_into(&mut b) {
        Ok(()) => Some(b.freeze()),
        Err(e) => {
            tracing::warn!("cannot encode a message to relay: {e}");
            None
        }
    }
}

/// Copies of `msg`'s fds for one receiver; `None` when the bus cannot make
/// them (out of fds): the receiver then gets nothing rather than a message
/// whose fds are missing (CVE-2014-3532: the failure is not blamed on it).
fn dup_fds(msg: &Message) -> Option<Vec<OwnedFd>> {
    msg.fds().iter().map(|f| f.try_clone().ok()).collect()
}

impl BusState {
    pub(crate) fn new(limits: Limits, bus_id: String, first_minor: u64) -> Self {
        BusState {
            limits,
            config_file: None,
            bus_id,
            conns: HashMap::new(),
            uniques: HashMap::new(),
            names: HashMap::new(),
            rules: Vec::new(),
            free_rules: Vec::new(),
            index: RuleIndex::default(),
            eavesdrop: HashSet::new(),
            monitors: HashSet::new(),
            pending: HashSet::new(),
            next_conn: 1,
            next_unique: (1, first_minor),
            serial: 0,
            active: 0,
            per_user: HashMap::new(),
        }
    }

    /// Registers a new (authenticated) connection; it has no unique name until Hello.
    pub(crate) fn add_conn(
        &mut self,
        outbox: Arc<Outbox>,
        creds: Option<Credentials>,
        unix_fd: bool,
    ) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                outbox,
                unique: None,
                creds,
                unix_fd,
                names: HashSet::new(),
                rules: HashSet::new(),
                monitor: None,
                calls_out: HashSet::new(),
                calls_in: HashSet::new(),
            },
        );
        id
    }

    /// The connections' outboxes (for shutdown and fault injection).
    pub(crate) fn outboxes(&self) -> Vec<(ConnId, Option<Arc<str>>, Arc<Outbox>)> {
        self.conns
            .iter()
            .map(|(id, c)| (*id, c.unique.clone(), Arc::clone(&c.outbox)))
            .collect()
    }

    pub(crate) fn next_serial(&mut self) -> u32 {
        self.serial = self.serial.wrapping_add(1);
        if self.serial == 0 {
            self.serial = 1;
        }
        self.serial
    }

    pub(crate) fn new_unique_name(&mut self) -> Arc<str> {
        let (major, minor) = self.next_unique;
        self.next_unique = if minor == u64::from(u32::MAX) {
            (major + 1, 0)
        } else {
            (major, minor + 1)
        };
        Arc::from(format!(":{major}.{minor}"))
    }

    /// The connection that owns `name` (unique or well-known) right now.
    pub(crate) fn owner_of(&self, name: &str) -> Option<ConnId> {
        if name.starts_with(':') {
            self.uniques.get(name).copied()
        } else {
            self.names.get(name).and_then(|q| q.front()).map(|o| o.conn)
        }
    }

    pub(crate) fn unique_of(&self, conn: ConnId) -> Option<&Arc<str>> {
        self.conns.get(&conn).and_then(|c| c.unique.as_ref())
    }

    // ------------------------------------------------------------------
    // Building and sending messages from the bus.

    /// A signal from the bus driver, to `dest` or broadcast.
    pub(crate) fn bus_signal<T: Encode + ?Sized>(
        &mut self,
        member: &str,
        dest: Option<&str>,
        body: &T,
    ) -> Option<Message> {
        let serial = self.next_serial();
        let mut b = Message::signal(BUS_PATH, BUS_IFACE, member)
            .sender(BUS_NAME)
            .serial(serial)
            .body(body);
        if let Some(d) = dest {
            b = b.destination(d);
        }
        b.build().ok()
    }

    /// Queues a message from the bus: to its destination (and eavesdroppers),
    /// or by match rules when it has none; monitors get a copy.
    pub(crate) fn send_from_bus(&mut self, msg: Message, out: &mut Output) {
        let Some(bytes) = encode(&msg) else { return };
        self.capture(&msg, &bytes, None, out);
        match msg.destination() {
            Some(d) => {
                if let Some(to) = self.owner_of(d.as_str()) {
                    self.push_to(to, &bytes, &msg, out);
                    self.eavesdroppers(&msg, &bytes, None, Some(to), out);
                }
            }
            None => self.broadcast(&msg, &bytes, None, out),
        }
    }

    /// Sends the reply `body` to `call` (when the caller wants one).
    pub(crate) fn reply<T: Encode + ?Sized>(&mut self, call: &Message, body: &T, out: &mut Output) {
        if call.flags().contains(Flags::NO_REPLY_EXPECTED) {
            return;
        }
        let serial = self.next_serial();
        if let Ok(m) = Message::method_return(call)
            .sender(BUS_NAME)
            .serial(serial)
            .body(body)
            .build()
        {
            self.send_from_bus(m, out);
        }
    }

    /// Sends an error reply to `call` (when the caller wants one).
    pub(crate) fn error(&mut self, call: &Message, err: &DbusError, out: &mut Output) {
        if call.message_type() != MessageType::METHOD_CALL
            || call.flags().contains(Flags::NO_REPLY_EXPECTED)
        {
            return;
        }
        let serial = self.next_serial();
        let built = Message::error(call, err.name, &err.text)
            .sender(BUS_NAME)
            .serial(serial)
            .build();
        match built {
            Ok(m) => self.send_from_bus(m, out),
            Err(e) => tracing::warn!("cannot build error reply {}: {e}", err.name),
        }
    }

    /// Sends an error reply straight to connection `to`, whatever the call's
    /// SENDER says (before Hello nothing was stamped, so it cannot be trusted).
    pub(crate) fn error_direct(
        &mut self,
        to: ConnId,
        call: &Message,
        err: &DbusError,
        out: &mut Output,
    ) {
        if call.flags().contains(Flags::NO_REPLY_EXPECTED) {
            return;
        }
        let serial = self.next_serial();
        if let Ok(mut m) = Message::error(call, err.name, &err.text)
            .sender(BUS_NAME)
            .serial(serial)
            .build()
        {
            m.set_destination(None);
            self.push_raw(to, &m, out);
        }
    }

    /// Queues `bytes` on connection `to`, with copies of `msg`'s fds when it
    /// takes fds and its fd queue has room (`max_outgoing_unix_fds`).
    fn push_to(&self, to: ConnId, bytes: &Bytes, msg: &Message, out: &mut Output) {
        if let Some(c) = self.conns.get(&to) {
            let fds = if msg.fds().is_empty() {
                Vec::new()
            } else if !c.unix_fd {
                return;
            } else if !c.outbox.reserve_fds(msg.fds().len()) {
                // Before copying the fds: a full receiver costs no dup and close per fd.
                tracing::debug!(
                    "not delivering a message with fds: the receiver's fd queue is full (max_outgoing_unix_fds)"
                );
                return;
            } else if let Some(fds) = dup_fds(msg) {
                fds
            } else {
                c.outbox.release_fds(msg.fds().len());
                tracing::warn!("cannot copy the fds of a message (out of fds?): not delivered");
                return;
            };
            out.deliveries.push(Delivery {
                to: Arc::clone(&c.outbox),
                bytes: bytes.clone(),
                fds,
            });
        }
    }

    /// Queues a message directly for a connection that may not have a unique name yet.
    pub(crate) fn push_raw(&self, to: ConnId, msg: &Message, out: &mut Output) {
        if let Some(bytes) = encode(msg) {
            self.capture(msg, &bytes, None, out);
            self.push_to(to, &bytes, msg, out);
        }
    }

    // ------------------------------------------------------------------
    // Match rules.

    fn sender_owns(&self, sender: Option<ConnId>, name: &BusName<'_>) -> bool {
        match sender {
            None => name.as_str() == BUS_NAME,
            Some(c) => self.owner_of(name.as_str()) == Some(c),
        }
    }

    fn index_key(rule: &MatchRule) -> IndexKey {
        if let Some(a) = rule.arg(0).filter(|a| a.kind() == ArgKind::Str) {
            IndexKey::Arg0(Arc::from(a.value()))
        } else if let Some(m) = rule.member() {
            IndexKey::Member(Arc::from(m.as_str()))
        } else if let Some(i) = rule.interface() {
            IndexKey::Interface(Arc::from(i.as_str()))
        } else if let Some(s) = rule.sender() {
            IndexKey::Sender(Arc::from(s.as_str()))
        } else if let Some(p) = rule.path() {
            IndexKey::Path(Arc::from(p.as_str()))
        } else {
            IndexKey::Any
        }
    }

    /// Adds a rule for `conn` (limits checked by the caller).
    pub(crate) fn add_rule(&mut self, conn: ConnId, rule: MatchRule) {
        let key = Self::index_key(&rule);
        let eavesdrop = rule.eavesdrop();
        let entry = RuleEntry {
            conn,
            rule,
            key: key.clone(),
        };
        let id = match self.free_rules.pop() {
            Some(id) => {
                self.rules[id] = Some(entry);
                id
            }
            None => {
                self.rules.push(Some(entry));
                self.rules.len() - 1
            }
        };
        self.index.insert(&key, id);
        if eavesdrop {
            self.eavesdrop.insert(id);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.rules.insert(id);
        }
    }

    /// Removes one instance of `rule` owned by `conn`; false if it has none.
    pub(crate) fn remove_rule(&mut self, conn: ConnId, rule: &MatchRule) -> bool {
        let key = Self::index_key(rule);
        let found = self.index.bucket(&key).and_then(|set| {
            set.iter().copied().find(|id| {
                self.rules[*id]
                    .as_ref()
                    .is_some_and(|e| e.conn == conn && e.rule == *rule)
            })
        });
        match found {
            Some(id) => {
                self.drop_rule(id);
                true
            }
            None => false,
        }
    }

    fn drop_rule(&mut self, id: RuleId) {
        let Some(entry) = self.rules.get_mut(id).and_then(Option::take) else {
            return;
        };
        self.index.remove(&entry.key, id);
        self.eavesdrop.remove(&id);
        if let Some(c) = self.conns.get_mut(&entry.conn) {
            c.rules.remove(&id);
        }
        self.free_rules.push(id);
    }

    /// Removes every rule of `conn`.
    pub(crate) fn drop_rules_of(&mut self, conn: ConnId) {
        let ids: Vec<RuleId> = self
            .conns
            .get(&conn)
            .map(|c| c.rules.iter().copied().collect())
            .unwrap_or_default();
        for id in ids {
            self.drop_rule(id);
        }
    }

    /// Delivers a message without DESTINATION to every connection with a matching rule.
    fn broadcast(&self, msg: &Message, bytes: &Bytes, sender: Option<ConnId>, out: &mut Output) {
        if self.index.is_empty() {
            return;
        }
        let args = MessageArgs::new(msg);
        let owns = |n: &BusName<'_>| self.sender_owns(sender, n);
        let ctx = MatchContext::bus().with_sender_owns(&owns);
        let mut recipients = Distinct::default();
        let mut check = |set: Option<&HashSet<RuleId>>| {
            for id in set.into_iter().flatten() {
                if let Some(e) = &self.rules[*id] {
                    if !recipients.contains(e.conn) && e.rule.matches_in(msg, &args, &ctx) {
                        recipients.insert(e.conn);
                    }
                }
            }
        };
        // Only rules with an `arg0` string key sit there, so only a string first
        // argument can match them (and only then is the body looked at).
        if !self.index.keyed[ARG0].is_empty() {
            if let Some(Arg::Str(a)) = args.get(0) {
                check(self.index.get(ARG0, a));
            }
        }
        if let Some(m) = msg.member() {
            check(self.index.get(MEMBER, m.as_str()));
        }
        if let Some(i) = msg.interface() {
            check(self.index.get(INTERFACE, i.as_str()));
        }
        // Sender keys: the rule's name must be owned by the sender; look up
        // only the names the sender owns (or, when fewer, the indexed names).
        match sender {
            None => check(self.index.get(SENDER, BUS_NAME)),
            Some(c) => {
                if let Some(conn) = self.conns.get(&c) {
                    if let Some(u) = &conn.unique {
                        check(self.index.get(SENDER, u));
                    }
                    for n in &conn.names {
                        if self.owner_of(n) == Some(c) {
                            check(self.index.get(SENDER, n));
                        }
                    }
                }
            }
        }
        if let Some(p) = msg.path() {
            check(self.index.get(PATH, p.as_str()));
        }
        check(Some(&self.index.any));
        for &to in recipients.as_slice() {
            self.push_to(to, bytes, msg, out);
        }
    }

    /// Copies a message with DESTINATION to connections whose eavesdrop rules match it.
    fn eavesdroppers(
        &self,
        msg: &Message,
        bytes: &Bytes,
        sender: Option<ConnId>,
        addressee: Option<ConnId>,
        out: &mut Output,
    ) {
        if self.eavesdrop.is_empty() {
            return;
        }
        let args = MessageArgs::new(msg);
        let owns = |n: &BusName<'_>| self.sender_owns(sender, n);
        let rowns = |n: &BusName<'_>| addressee.is_some() && self.owner_of(n.as_str()) == addressee;
        let ctx = MatchContext::bus()
            .with_sender_owns(&owns)
            .with_recipient_owns(&rowns);
        let mut recipients = Distinct::default();
        for id in &self.eavesdrop {
            if let Some(e) = &self.rules[*id] {
                if Some(e.conn) != addressee
                    && !recipients.contains(e.conn)
                    && e.rule.matches_in(msg, &args, &ctx)
                {
                    recipients.insert(e.conn);
                }
            }
        }
        for &to in recipients.as_slice() {
            self.push_to(to, bytes, msg, out);
        }
    }

    /// Copies every message the bus handles to monitors whose rules match.
    fn capture(&self, msg: &Message, bytes: &Bytes, sender: Option<ConnId>, out: &mut Output) {
        if self.monitors.is_empty() {
            return;
        }
        let args = MessageArgs::new(msg);
        let owns = |n: &BusName<'_>| self.sender_owns(sender, n);
        let ctx = MatchContext::received().with_sender_owns(&owns);
        for m in &self.monitors {
            let Some(c) = self.conns.get(m) else { continue };
            let Some(rules) = &c.monitor else { continue };
            if rules.is_empty() || rules.iter().any(|r| r.matches_in(msg, &args, &ctx)) {
                self.push_to(*m, bytes, msg, out);
            }
        }
    }

    /// Turns `conn` into a monitor with `rules` (its names are already gone).
    pub(crate) fn make_monitor(&mut self, conn: ConnId, rules: Vec<MatchRule>) {
        self.drop_rules_of(conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.monitor = Some(rules);
        }
        self.monitors.insert(conn);
    }

    // ------------------------------------------------------------------
    // Names.

    /// RequestName for `conn` (name already validated). Returns the reply code.
    pub(crate) fn request_name(
        &mut self,
        conn: ConnId,
        name: &str,
        flags: u32,
        out: &mut Output,
    ) -> Result<u32, DbusError> {
        let Some(unique) = self.unique_of(conn).cloned() else {
            return Err(DbusError::new(
                "org.freedesktop.DBus.Error.Failed",
                "not registered",
            ));
        };
        let stored = flags & (ALLOW_REPLACEMENT | DO_NOT_QUEUE);
        let queued_here = self
            .names
            .get(name)
            .and_then(|q| q.iter().position(|o| o.conn == conn));
        // The unique name counts, as in dbus-daemon.
        if queued_here.is_none()
            && self.conns.get(&conn).map_or(0, |c| c.names.len()) + 1
                >= self.limits.max_names_per_connection
        {
            return Err(DbusError::new(
                "org.freedesktop.DBus.Error.LimitsExceeded",
                format!(
                    "Connection \"{unique}\" is not allowed to own the service \"{name}\" because it is at its limit of {} names",
                    self.limits.max_names_per_connection
                ),
            ));
        }
        let key: Arc<str> = match self.names.get_key_value(name) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(name),
        };
        let Some(queue) = self.names.get_mut(name) else {
            // Free: take it.
            self.names.insert(
                Arc::clone(&key),
                VecDeque::from([Owner {
                    conn,
                    flags: stored,
                }]),
            );
            if let Some(c) = self.conns.get_mut(&conn) {
                c.names.insert(Arc::clone(&key));
            }
            self.owner_changed(&key, None, Some(conn), out);
            return Ok(1);
        };
        let primary = queue[0];
        if primary.conn == conn {
            queue[0].flags = stored;
            return Ok(4);
        }
        let replace = primary.flags & ALLOW_REPLACEMENT != 0 && flags & REPLACE_EXISTING != 0;
        if !replace {
            if flags & DO_NOT_QUEUE != 0 {
                if let Some(pos) = queued_here {
                    queue.remove(pos);
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.names.remove(name);
                    }
                }
                return Ok(3);
            }
            match queued_here {
                Some(pos) => queue[pos].flags = stored,
                None => {
                    queue.push_back(Owner {
                        conn,
                        flags: stored,
                    });
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.names.insert(Arc::clone(&key));
                    }
                }
            }
            return Ok(2);
        }
        // Replacement: the caller jumps the queue; the old owner goes second or leaves.
        if let Some(pos) = queued_here {
            queue.remove(pos);
        }
        queue.pop_front();
        let old_leaves = primary.flags & DO_NOT_QUEUE != 0;
        if !old_leaves {
            queue.push_front(primary);
        }
        queue.push_front(Owner {
            conn,
            flags: stored,
        });
        if old_leaves {
            if let Some(c) = self.conns.get_mut(&primary.conn) {
                c.names.remove(name);
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.names.insert(Arc::clone(&key));
        }
        self.owner_changed(&key, Some(primary.conn), Some(conn), out);
        Ok(1)
    }

    /// ReleaseName for `conn`: 1 released, 2 no such name, 3 not an owner.
    pub(crate) fn release_name(&mut self, conn: ConnId, name: &str, out: &mut Output) -> u32 {
        let Some(queue) = self.names.get_mut(name) else {
            return 2;
        };
        let Some(pos) = queue.iter().position(|o| o.conn == conn) else {
            return 3;
        };
        queue.remove(pos);
        let key = match self.names.get_key_value(name) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(name),
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.names.remove(name);
        }
        if pos == 0 {
            let next = self.names.get(name).and_then(|q| q.front()).map(|o| o.conn);
            if next.is_none() {
                self.names.remove(name);
            }
            self.owner_changed(&key, Some(conn), next, out);
        }
        1
    }

    /// NameLost to the old owner, NameOwnerChanged to all, NameAcquired to the new owner.
    fn owner_changed(
        &mut self,
        name: &str,
        old: Option<ConnId>,
        new: Option<ConnId>,
        out: &mut Output,
    ) {
        let old_u = old.and_then(|c| self.unique_of(c).cloned());
        let new_u = new.and_then(|c| self.unique_of(c).cloned());
        if let Some(o) = &old_u {
            if let Some(m) = self.bus_signal("NameLost", Some(o), &(name,)) {
                self.send_from_bus(m, out);
            }
        }
        let o = old_u.as_deref().unwrap_or("");
        let n = new_u.as_deref().unwrap_or("");
        if let Some(m) = self.bus_signal("NameOwnerChanged", None, &(name, o, n)) {
            self.send_from_bus(m, out);
        }
        if let Some(nu) = &new_u {
            if let Some(m) = self.bus_signal("NameAcquired", Some(nu), &(name,)) {
                self.send_from_bus(m, out);
            }
        }
    }

    /// Releases every name `conn` owns or waits for, with the signals others must see.
    /// `tell_self`: send NameLost to `conn` too (it is still connected: BecomeMonitor).
    pub(crate) fn drop_names_of(&mut self, conn: ConnId, tell_self: bool, out: &mut Output) {
        let names: Vec<Arc<str>> = self
            .conns
            .get(&conn)
            .map(|c| {
                let mut v: Vec<_> = c.names.iter().cloned().collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        for name in names {
            let Some(queue) = self.names.get_mut(&*name) else {
                continue;
            };
            let Some(pos) = queue.iter().position(|o| o.conn == conn) else {
                continue;
            };
            queue.remove(pos);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.names.remove(&*name);
            }
            if pos != 0 {
                continue;
            }
            let next = queue.front().map(|o| o.conn);
            if next.is_none() {
                self.names.remove(&*name);
            }
            if tell_self {
                self.owner_changed(&name, Some(conn), next, out);
            } else {
                // The old owner is gone: no NameLost for it.
                let old_u = self.unique_of(conn).cloned();
                let new_u = next.and_then(|c| self.unique_of(c).cloned());
                let o = old_u.as_deref().unwrap_or("");
                let n = new_u.as_deref().unwrap_or("");
                if let Some(m) = self.bus_signal("NameOwnerChanged", None, &(&*name, o, n)) {
                    self.send_from_bus(m, out);
                }
                if let Some(nu) = &new_u {
                    if let Some(m) = self.bus_signal("NameAcquired", Some(nu), &(&*name,)) {
                        self.send_from_bus(m, out);
                    }
                }
            }
        }
    }

    /// Takes away `conn`'s unique name (NameOwnerChanged(":1.N", ":1.N", "")).
    pub(crate) fn drop_unique(&mut self, conn: ConnId, tell_self: bool, out: &mut Output) {
        let Some(u) = self.conns.get_mut(&conn).and_then(|c| c.unique.take()) else {
            return;
        };
        if tell_self {
            if let Some(m) = self.bus_signal("NameLost", Some(&u), &(&*u,)) {
                if let Some(b) = encode(&m) {
                    self.capture(&m, &b, None, out);
                    self.push_to(conn, &b, &m, out);
                }
            }
        }
        self.uniques.remove(&u);
        self.active = self.active.saturating_sub(1);
        if let Some(uid) = self
            .conns
            .get(&conn)
            .and_then(|c| c.creds)
            .and_then(|c| c.uid)
        {
            if let Some(n) = self.per_user.get_mut(&uid) {
                *n = n.saturating_sub(1);
            }
        }
        if let Some(m) = self.bus_signal("NameOwnerChanged", None, &(&*u, &*u, "")) {
            self.send_from_bus(m, out);
        }
    }

    // ------------------------------------------------------------------
    // Connections coming and going.

    /// Cleans up after a connection that went away: its names move on, its
    /// callers get NoReply, its unique name goes.
    pub(crate) fn remove_conn(&mut self, conn: ConnId) -> Output {
        let mut out = Output::default();
        if !self.conns.contains_key(&conn) {
            return out;
        }
        self.drop_names_of(conn, false, &mut out);
        // Callers waiting for this connection get NoReply.
        let calls_in: Vec<(ConnId, u32)> = self
            .conns
            .get(&conn)
            .map(|c| c.calls_in.iter().copied().collect())
            .unwrap_or_default();
        let me = self.unique_of(conn).cloned();
        for (caller, serial) in calls_in {
            self.pending.remove(&(caller, serial, conn));
            if let Some(c) = self.conns.get_mut(&caller) {
                c.calls_out.remove(&(serial, conn));
            }
            let Some(caller_u) = self.unique_of(caller).cloned() else {
                continue;
            };
            let s = self.next_serial();
            let _ = &me;
            let b = Message::builder(MessageType::ERROR)
                .error_name("org.freedesktop.DBus.Error.NoReply")
                .reply_serial(serial)
                .destination(&*caller_u)
                .sender(BUS_NAME)
                .serial(s)
                .body(&("Message recipient disconnected from message bus without replying",));
            if let Ok(m) = b.build() {
                self.send_from_bus(m, &mut out);
            }
        }
        let calls_out: Vec<(u32, ConnId)> = self
            .conns
            .get(&conn)
            .map(|c| c.calls_out.iter().copied().collect())
            .unwrap_or_default();
        for (serial, callee) in calls_out {
            self.pending.remove(&(conn, serial, callee));
            if let Some(c) = self.conns.get_mut(&callee) {
                c.calls_in.remove(&(conn, serial));
            }
        }
        self.drop_rules_of(conn);
        self.monitors.remove(&conn);
        self.drop_unique(conn, false, &mut out);
        self.conns.remove(&conn);
        out
    }

    // ------------------------------------------------------------------
    // Routing.

    /// Handles one message that connection `from` sent.
    pub(crate) fn handle(&mut self, from: ConnId, mut msg: Message) -> Output {
        let mut out = Output::default();
        let Some(conn) = self.conns.get(&from) else {
            return out;
        };
        if conn.monitor.is_some() {
            out.disconnect = Some("a monitor sent a message".into());
            return out;
        }
        if msg.path().is_some_and(|p| p.as_str() == LOCAL_PATH)
            || msg
                .interface()
                .is_some_and(|i| i.as_str() == LOCAL_INTERFACE)
        {
            out.disconnect =
                Some("sent a message with the reserved local path or interface".into());
            return out;
        }
        if msg.fds().len() > self.limits.max_message_unix_fds {
            out.disconnect = Some(format!(
                "sent {} fds in one message (limit {})",
                msg.fds().len(),
                self.limits.max_message_unix_fds
            ));
            return out;
        }
        let to_bus = msg.destination().is_some_and(|d| d.as_str() == BUS_NAME);
        let Some(unique) = conn.unique.clone() else {
            if to_bus {
                crate::driver::handle_before_hello(self, from, &msg, &mut out);
            } else {
                out.disconnect = Some("sent a message to a peer before Hello".into());
            }
            return out;
        };
        if let Ok(u) = BusName::new(&unique) {
            msg.set_sender(Some(&u));
        }
        msg.strip_unknown_fields();
        if to_bus {
            if let Some(bytes) = encode(&msg) {
                self.capture(&msg, &bytes, Some(from), &mut out);
                crate::driver::handle(self, from, &msg, &mut out);
                self.eavesdroppers(&msg, &bytes, Some(from), None, &mut out);
            }
            return out;
        }
        let dest = msg.destination().map(|d| d.as_str().to_owned());
        let Some(dest) = dest else {
            let Some(bytes) = encode(&msg) else {
                return out;
            };
            self.capture(&msg, &bytes, Some(from), &mut out);
            if msg.message_type() == MessageType::METHOD_CALL
                && msg
                    .interface()
                    .is_some_and(|i| i.as_str() == "org.freedesktop.DBus.Peer")
            {
                // Peer methods without a destination are answered by the bus
                // (dbus-daemon's connection answers them before routing).
                crate::driver::handle(self, from, &msg, &mut out);
                return out;
            }
            self.broadcast(&msg, &bytes, Some(from), &mut out);
            return out;
        };
        let Some(to) = self.owner_of(&dest) else {
            let bytes = encode(&msg);
            if let Some(b) = &bytes {
                self.capture(&msg, b, Some(from), &mut out);
            }
            let err = if msg.flags().contains(Flags::NO_AUTO_START) {
                DbusError::new(
                    "org.freedesktop.DBus.Error.NameHasNoOwner",
                    format!("Name \"{dest}\" does not exist"),
                )
            } else {
                DbusError::new(
                    "org.freedesktop.DBus.Error.ServiceUnknown",
                    format!("The name {dest} was not provided by any .service files"),
                )
            };
            self.error(&msg, &err, &mut out);
            return out;
        };
        if !msg.fds().is_empty() && !self.conns.get(&to).is_some_and(|c| c.unix_fd) {
            self.error(
                &msg,
                &DbusError::new(
                    "org.freedesktop.DBus.Error.NotSupported",
                    "Tried to send message with Unix file descriptors to a client that doesn't support that.",
                ),
                &mut out,
            );
            return out;
        }
        // CVE-2014-3636: a receiver that does not read cannot make the bus hold fds without end.
        if !msg.fds().is_empty() && self.conns.get(&to).is_some_and(|c| c.outbox.fds_full()) {
            self.error(
                &msg,
                &DbusError::new(
                    "org.freedesktop.DBus.Error.LimitsExceeded",
                    "Rejected: destination has a full message queue",
                ),
                &mut out,
            );
            return out;
        }
        let mtype = msg.message_type();
        if mtype == MessageType::METHOD_CALL && msg.expects_reply() {
            let serial = msg.serial();
            let n = self.conns.get(&from).map_or(0, |c| c.calls_out.len());
            if n >= self.limits.max_replies_per_connection {
                self.error(
                    &msg,
                    &DbusError::new(
                        "org.freedesktop.DBus.Error.LimitsExceeded",
                        "The maximum number of pending replies per connection has been reached",
                    ),
                    &mut out,
                );
                return out;
            }
            if self.pending.insert((from, serial, to)) {
                if let Some(c) = self.conns.get_mut(&from) {
                    c.calls_out.insert((serial, to));
                }
                if let Some(c) = self.conns.get_mut(&to) {
                    c.calls_in.insert((from, serial));
                }
            }
        } else if mtype == MessageType::METHOD_RETURN || mtype == MessageType::ERROR {
            let Some(rs) = msg.reply_serial() else {
                return out;
            };
            if !self.pending.remove(&(to, rs, from)) {
                tracing::debug!(
                    "dropping a reply from {unique} to {dest} (serial {rs}) that nobody asked for"
                );
                return out;
            }
            if let Some(c) = self.conns.get_mut(&to) {
                c.calls_out.remove(&(rs, from));
            }
            if let Some(c) = self.conns.get_mut(&from) {
                c.calls_in.remove(&(to, rs));
            }
        }
        let Some(bytes) = encode(&msg) else {
            return out;
        };
        self.capture(&msg, &bytes, Some(from), &mut out);
        self.push_to(to, &bytes, &msg, &mut out);
        self.eavesdroppers(&msg, &bytes, Some(from), Some(to), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> IndexKey {
        BusState::index_key(&MatchRule::parse(text).expect("rule"))
    }

    fn arc(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn a_rule_is_filed_under_its_first_indexed_key() {
        let full =
            "type='signal',sender='org.a.S',interface='org.a.I',member='M',path='/p',arg0='v'";
        assert_eq!(key(full), IndexKey::Arg0(arc("v")));
        // Only plain string equality on arg0 is indexed.
        for rule in [
            "type='signal',member='M',arg0namespace='org.a'",
            "type='signal',member='M',arg0path='/a/'",
            "type='signal',member='M',arg1='v'",
        ] {
            assert_eq!(key(rule), IndexKey::Member(arc("M")), "{rule}");
        }
        assert_eq!(
            key("interface='org.a.I',sender='org.a.S',path='/p'"),
            IndexKey::Interface(arc("org.a.I"))
        );
        assert_eq!(
            key("sender='org.a.S',path='/p'"),
            IndexKey::Sender(arc("org.a.S"))
        );
        assert_eq!(key("path='/p'"), IndexKey::Path(arc("/p")));
        assert_eq!(key("path_namespace='/p'"), IndexKey::Any);
        assert_eq!(key("type='signal'"), IndexKey::Any);
    }

    #[test]
    fn the_index_finds_a_rule_by_its_value_until_it_is_removed() {
        let mut ix = RuleIndex::default();
        assert!(ix.is_empty());
        let a0 = IndexKey::Arg0(arc("org.a.Name"));
        let m = IndexKey::Member(arc("Changed"));
        ix.insert(&a0, 1);
        ix.insert(&a0, 2);
        ix.insert(&m, 3);
        ix.insert(&IndexKey::Any, 4);
        assert!(!ix.is_empty());
        assert_eq!(ix.get(ARG0, "org.a.Name").map(HashSet::len), Some(2));
        assert!(ix.get(ARG0, "org.a.Other").is_none());
        // The same text under another kind of key is another bucket.
        assert!(ix.get(MEMBER, "org.a.Name").is_none());
        assert!(ix.get(MEMBER, "Changed").is_some_and(|s| s.contains(&3)));
        assert!(ix.bucket(&IndexKey::Any).is_some_and(|s| s.contains(&4)));
        ix.remove(&a0, 1);
        ix.remove(&a0, 2);
        assert!(ix.get(ARG0, "org.a.Name").is_none(), "empty buckets go");
        ix.remove(&m, 3);
        ix.remove(&IndexKey::Any, 4);
        assert!(ix.is_empty());
    }

    #[test]
    fn recipients_are_kept_once_each_in_order_past_the_scan_limit() {
        let mut r = Distinct::default();
        for c in 0..40u64 {
            assert!(!r.contains(c));
            assert!(r.insert(c));
            assert!(r.contains(c));
            assert!(!r.insert(c), "{c} added twice");
        }
        for c in 0..40u64 {
            assert!(r.contains(c));
            assert!(!r.insert(c), "{c} added twice");
        }
        assert!(!r.contains(40));
        assert_eq!(r.as_slice(), (0..40).collect::<Vec<_>>());
        r.clear();
        assert!(r.as_slice().is_empty());
        for c in 0..40u64 {
            assert!(!r.contains(c), "{c} kept after clear");
        }
        assert!(r.insert(39));
        assert_eq!(r.as_slice(), [39]);
    }
}

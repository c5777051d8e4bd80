//! A proptest state machine: random connect, disconnect, RequestName (random
//! flags), ReleaseName, AddMatch and emit (broadcast and unicast), checked
//! against a simple model of name ownership and signal delivery.
//!
//! After every step the bus's queues (ListQueuedOwners) must equal the
//! model's; every client's NameAcquired / NameLost signals must be exactly the
//! ownership changes the model predicts for it, in order; and an emitted
//! signal must reach exactly the clients the model says (its rules for a
//! broadcast, the addressee for a unicast).

use std::collections::{BTreeSet, HashMap, VecDeque};

use fastbus_testbus::TestBus;
use fastbus_wire::{Message, MessageType};
use proptest::prelude::*;

use crate::harness::{Client, member_is};

const NAMES: [&str; 3] = ["org.example.A", "org.example.B", "org.example.C"];
const MEMBERS: [&str; 3] = ["Red", "Green", "Blue"];
const ALLOW_REPLACEMENT: u32 = 0x1;
const REPLACE_EXISTING: u32 = 0x2;
const DO_NOT_QUEUE: u32 = 0x4;

#[derive(Debug, Clone)]
enum Op {
    Connect,
    Disconnect(usize),
    Request(usize, usize, u32),
    Release(usize, usize),
    AddMatch(usize, usize),
    Emit(usize, usize),
    EmitTo(usize, usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Connect),
        1 => (0..6usize).prop_map(Op::Disconnect),
        4 => (0..6usize, 0..3usize, 0..8u32).prop_map(|(c, n, f)| Op::Request(c, n, f)),
        2 => (0..6usize, 0..3usize).prop_map(|(c, n)| Op::Release(c, n)),
        2 => (0..6usize, 0..3usize).prop_map(|(c, m)| Op::AddMatch(c, m)),
        2 => (0..6usize, 0..3usize).prop_map(|(c, m)| Op::Emit(c, m)),
        1 => (0..6usize, 0..6usize, 0..3usize).prop_map(|(c, t, m)| Op::EmitTo(c, t, m)),
    ]
}

/// An ownership change a client must be told about.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Told {
    Acquired(&'static str),
    Lost(&'static str),
}

#[derive(Default)]
struct Model {
    /// Per name: the queue of (client, stored flags), primary owner first.
    names: HashMap<usize, VecDeque<(usize, u32)>>,
    /// Per client: the members it subscribed to.
    rules: HashMap<usize, BTreeSet<usize>>,
    /// Per client: the NameAcquired / NameLost it must receive, in order.
    told: HashMap<usize, Vec<Told>>,
}

impl Model {
    fn primary(&self, n: usize) -> Option<usize> {
        self.names.get(&n).and_then(|q| q.front()).map(|e| e.0)
    }

    /// Records the signals for a change of primary owner of name `n`.
    fn owner_changed(&mut self, n: usize, old: Option<usize>, gone: Option<usize>) {
        let new = self.primary(n);
        if old == new {
            return;
        }
        if let Some(o) = old.filter(|o| Some(*o) != gone) {
            self.told.entry(o).or_default().push(Told::Lost(NAMES[n]));
        }
        if let Some(nw) = new {
            self.told
                .entry(nw)
                .or_default()
                .push(Told::Acquired(NAMES[n]));
        }
    }

    fn request(&mut self, c: usize, n: usize, flags: u32) -> u32 {
        let old = self.primary(n);
        let code = self.request_inner(c, n, flags);
        self.owner_changed(n, old, None);
        code
    }

    fn request_inner(&mut self, c: usize, n: usize, flags: u32) -> u32 {
        let stored = flags & (ALLOW_REPLACEMENT | DO_NOT_QUEUE);
        let q = self.names.entry(n).or_default();
        if q.is_empty() {
            q.push_back((c, stored));
            return 1;
        }
        if q[0].0 == c {
            q[0].1 = stored;
            return 4;
        }
        let pos = q.iter().position(|e| e.0 == c);
        if q[0].1 & ALLOW_REPLACEMENT != 0 && flags & REPLACE_EXISTING != 0 {
            if let Some(p) = pos {
                q.remove(p);
            }
            let old = q.pop_front().expect("owner");
            if old.1 & DO_NOT_QUEUE == 0 {
                q.push_front(old);
            }
            q.push_front((c, stored));
            return 1;
        }
        if flags & DO_NOT_QUEUE != 0 {
            if let Some(p) = pos {
                q.remove(p);
            }
            return 3;
        }
        match pos {
            Some(p) => q[p].1 = stored,
            None => q.push_back((c, stored)),
        }
        2
    }

    fn release(&mut self, c: usize, n: usize) -> u32 {
        let old = self.primary(n);
        let Some(q) = self.names.get_mut(&n).filter(|q| !q.is_empty()) else {
            return 2;
        };
        let Some(p) = q.iter().position(|e| e.0 == c) else {
            return 3;
        };
        q.remove(p);
        self.owner_changed(n, old, None);
        1
    }

    fn disconnect(&mut self, c: usize) {
        for n in 0..NAMES.len() {
            let old = self.primary(n);
            if let Some(q) = self.names.get_mut(&n) {
                q.retain(|e| e.0 != c);
            }
            self.owner_changed(n, old, Some(c));
        }
        self.rules.remove(&c);
        self.told.remove(&c);
    }
}

/// What a client received so far: ownership signals in order, and counts of
/// the test's signals by member.
#[derive(Default)]
struct Seen {
    told: Vec<Told>,
    signals: HashMap<String, usize>,
}

fn told_of(m: &Message) -> Option<Told> {
    if m.message_type() != MessageType::SIGNAL
        || m.sender()
            .is_none_or(|s| s.as_str() != "org.freedesktop.DBus")
    {
        return None;
    }
    let name: &str = m.body().ok()?;
    let n = NAMES.iter().find(|x| **x == name)?;
    if member_is(m, "NameAcquired") {
        Some(Told::Acquired(n))
    } else if member_is(m, "NameLost") {
        Some(Told::Lost(n))
    } else {
        None
    }
}

struct Peer {
    client: Client,
    seen: Seen,
}

impl Peer {
    /// A barrier (Ping of the bus): everything sent to this client before is in.
    async fn sync(&mut self) {
        for m in self.client.drain().await {
            if let Some(t) = told_of(&m) {
                self.seen.told.push(t);
            } else if let Some(member) = m.member() {
                if m.message_type() == MessageType::SIGNAL && MEMBERS.contains(&member.as_str()) {
                    *self.seen.signals.entry(member.to_string()).or_default() += 1;
                }
            }
        }
    }
}

async fn connect(bus: &TestBus) -> Peer {
    let (r, w) = bus.connect_framed().expect("framed");
    let mut client = Client::over(r, w);
    client.hello().await;
    Peer {
        client,
        seen: Seen::default(),
    }
}

/// Syncs every live client and checks what each was told against the model.
async fn check_all(peers: &mut [Option<Peer>], model: &Model) {
    for (j, p) in peers.iter_mut().enumerate() {
        let Some(p) = p else { continue };
        p.sync().await;
        let want = model.told.get(&j).cloned().unwrap_or_default();
        assert_eq!(p.seen.told, want, "ownership signals of client {j}");
    }
}

async fn run(ops: Vec<Op>) {
    let bus = TestBus::builder()
        .memory_only()
        .start()
        .await
        .expect("start");
    let mut peers: Vec<Option<Peer>> = Vec::new();
    let mut model = Model::default();
    let mut unique: Vec<String> = Vec::new();
    for _ in 0..2 {
        let p = connect(&bus).await;
        unique.push(p.client.name.clone());
        peers.push(Some(p));
    }
    for op in ops {
        let live: Vec<usize> = (0..peers.len()).filter(|i| peers[*i].is_some()).collect();
        let pick = |i: usize| live.get(i % live.len().max(1)).copied();
        match op {
            Op::Connect => {
                let p = connect(&bus).await;
                unique.push(p.client.name.clone());
                peers.push(Some(p));
            }
            Op::Disconnect(i) => {
                let Some(ci) = pick(i) else { continue };
                peers[ci] = None;
                model.disconnect(ci);
                // The bus must have seen the close before the next step: wait
                // until the unique name is gone (bounded), then sync everyone.
                let gone = &unique[ci];
                crate::harness::within("the bus drops a closed connection", async {
                    while bus.unique_names().contains(gone) {
                        tokio::task::yield_now().await;
                    }
                })
                .await;
            }
            Op::Request(i, n, flags) => {
                let Some(ci) = pick(i) else { continue };
                let c = &mut peers[ci].as_mut().expect("live").client;
                let r = c.call_bus("RequestName", &(NAMES[n], flags)).await;
                let want = model.request(ci, n, flags);
                assert_eq!(
                    r.body::<u32>().ok(),
                    Some(want),
                    "RequestName({}, {flags:#x}) by client {ci}",
                    NAMES[n]
                );
            }
            Op::Release(i, n) => {
                let Some(ci) = pick(i) else { continue };
                let c = &mut peers[ci].as_mut().expect("live").client;
                let r = c.call_bus("ReleaseName", &(NAMES[n],)).await;
                let want = model.release(ci, n);
                assert_eq!(r.body::<u32>().ok(), Some(want), "ReleaseName by {ci}");
            }
            Op::AddMatch(i, m) => {
                let Some(ci) = pick(i) else { continue };
                if model.rules.entry(ci).or_default().insert(m) {
                    let c = &mut peers[ci].as_mut().expect("live").client;
                    c.add_match(&format!("type='signal',member='{}'", MEMBERS[m]))
                        .await;
                }
            }
            Op::Emit(i, m) | Op::EmitTo(i, _, m) => {
                let Some(ci) = pick(i) else { continue };
                let to = match op {
                    Op::EmitTo(_, t, _) => pick(t),
                    _ => None,
                };
                let mut b = Message::signal("/m", "org.example.M", MEMBERS[m]);
                if let Some(t) = to {
                    b = b.destination(unique[t].as_str());
                }
                let before: Vec<usize> = peers
                    .iter()
                    .map(|p| {
                        p.as_ref()
                            .and_then(|p| p.seen.signals.get(MEMBERS[m]).copied())
                            .unwrap_or(0)
                    })
                    .collect();
                peers[ci].as_mut().expect("live").client.send(b).await;
                // The sender's own barrier first: the bus has routed the signal.
                peers[ci].as_mut().expect("live").sync().await;
                check_all(&mut peers, &model).await;
                for (j, p) in peers.iter().enumerate() {
                    let Some(p) = p else { continue };
                    let got = p.seen.signals.get(MEMBERS[m]).copied().unwrap_or(0) - before[j];
                    let want = match to {
                        Some(t) => usize::from(t == j),
                        None => usize::from(model.rules.get(&j).is_some_and(|r| r.contains(&m))),
                    };
                    assert_eq!(got, want, "client {j} receiving {} (to {to:?})", MEMBERS[m]);
                }
            }
        }
        // Ownership as the bus reports it equals the model's queues.
        let Some(q) = peers.iter_mut().flatten().next() else {
            continue;
        };
        for (n, name) in NAMES.iter().enumerate() {
            let r = q.client.call_bus("ListQueuedOwners", &(*name,)).await;
            let got: Vec<String> = r
                .body::<Vec<&str>>()
                .map(|v| v.into_iter().map(str::to_owned).collect())
                .unwrap_or_default();
            let want: Vec<String> = model
                .names
                .get(&n)
                .map(|q| q.iter().map(|e| unique[e.0].clone()).collect())
                .unwrap_or_default();
            assert_eq!(got, want, "queue of {name}");
        }
    }
    check_all(&mut peers, &model).await;
}

fn cases() -> u32 {
    std::env::var("FASTBUS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
    #[test]
    fn ownership_and_delivery_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run(ops));
    }
}

//! A proptest state machine: random connect, disconnect, RequestName (random
//! flags), ReleaseName, AddMatch and emit, checked against a simple model of
//! name ownership and signal delivery.

use std::collections::{BTreeSet, HashMap, VecDeque};

use fastbus_testbus::TestBus;
use fastbus_wire::Message;
use proptest::prelude::*;

use crate::harness::{Client, member_is};

const NAMES: [&str; 3] = ["org.example.A", "org.example.B", "org.example.C"];
const MEMBERS: [&str; 3] = ["Red", "Green", "Blue"];

#[derive(Debug, Clone)]
enum Op {
    Connect,
    Disconnect(usize),
    Request(usize, usize, u32),
    Release(usize, usize),
    AddMatch(usize, usize),
    Emit(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::Connect),
        1 => (0..6usize).prop_map(Op::Disconnect),
        4 => (0..6usize, 0..3usize, 0..8u32).prop_map(|(c, n, f)| Op::Request(c, n, f)),
        2 => (0..6usize, 0..3usize).prop_map(|(c, n)| Op::Release(c, n)),
        2 => (0..6usize, 0..3usize).prop_map(|(c, m)| Op::AddMatch(c, m)),
        2 => (0..6usize, 0..3usize).prop_map(|(c, m)| Op::Emit(c, m)),
    ]
}

#[derive(Default)]
struct Model {
    /// Per name: the queue of (client, flags), primary owner first.
    names: HashMap<usize, VecDeque<(usize, u32)>>,
    /// Per client: the members it subscribed to.
    rules: HashMap<usize, BTreeSet<usize>>,
}

impl Model {
    fn request(&mut self, c: usize, n: usize, flags: u32) -> u32 {
        let stored = flags & 0x5;
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
        if q[0].1 & 1 != 0 && flags & 2 != 0 {
            if let Some(p) = pos {
                q.remove(p);
            }
            let old = q.pop_front().expect("owner");
            if old.1 & 4 == 0 {
                q.push_front(old);
            }
            q.push_front((c, stored));
            return 1;
        }
        if flags & 4 != 0 {
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
        let Some(q) = self.names.get_mut(&n).filter(|q| !q.is_empty()) else {
            return 2;
        };
        match q.iter().position(|e| e.0 == c) {
            Some(p) => {
                q.remove(p);
                1
            }
            None => 3,
        }
    }

    fn disconnect(&mut self, c: usize) {
        for q in self.names.values_mut() {
            q.retain(|e| e.0 != c);
        }
        self.rules.remove(&c);
    }
}

async fn run(ops: Vec<Op>) {
    let bus = TestBus::builder()
        .memory_only()
        .start()
        .await
        .expect("start");
    let mut clients: Vec<Option<Client>> = Vec::new();
    let mut model = Model::default();
    let mut unique: Vec<String> = Vec::new();
    let connect = |bus: &TestBus| {
        let (r, w) = bus.connect_framed().expect("framed");
        Client {
            r,
            w,
            serial: 0,
            name: String::new(),
            queue: Default::default(),
        }
    };
    for _ in 0..2 {
        let mut c = connect(&bus);
        c.hello().await;
        unique.push(c.name.clone());
        clients.push(Some(c));
    }
    for op in ops {
        let live: Vec<usize> = (0..clients.len())
            .filter(|i| clients[*i].is_some())
            .collect();
        let pick = |i: usize| live.get(i % live.len().max(1)).copied();
        match op {
            Op::Connect => {
                let mut c = connect(&bus);
                c.hello().await;
                unique.push(c.name.clone());
                clients.push(Some(c));
            }
            Op::Disconnect(i) => {
                if let Some(ci) = pick(i) {
                    clients[ci] = None;
                    model.disconnect(ci);
                    // A barrier through every remaining client: the bus has seen the close.
                    for c in clients.iter_mut().flatten() {
                        c.drain().await;
                    }
                }
            }
            Op::Request(i, n, flags) => {
                let Some(ci) = pick(i) else { continue };
                let c = clients[ci].as_mut().expect("live");
                let r = c.call_bus("RequestName", &(NAMES[n], flags)).await;
                let want = model.request(ci, n, flags);
                assert_eq!(
                    r.body::<u32>().ok(),
                    Some(want),
                    "RequestName({}, {flags})",
                    NAMES[n]
                );
            }
            Op::Release(i, n) => {
                let Some(ci) = pick(i) else { continue };
                let c = clients[ci].as_mut().expect("live");
                let r = c.call_bus("ReleaseName", &(NAMES[n],)).await;
                assert_eq!(
                    r.body::<u32>().ok(),
                    Some(model.release(ci, n)),
                    "ReleaseName"
                );
            }
            Op::AddMatch(i, m) => {
                let Some(ci) = pick(i) else { continue };
                if model.rules.entry(ci).or_default().insert(m) {
                    let c = clients[ci].as_mut().expect("live");
                    c.add_match(&format!("type='signal',member='{}'", MEMBERS[m]))
                        .await;
                }
            }
            Op::Emit(i, m) => {
                let Some(ci) = pick(i) else { continue };
                let c = clients[ci].as_mut().expect("live");
                c.send(Message::signal("/m", "org.example.M", MEMBERS[m]))
                    .await;
                c.drain().await;
                for (j, other) in clients.iter_mut().enumerate() {
                    let Some(o) = other else { continue };
                    let got = o.drain().await;
                    let n = got.iter().filter(|x| member_is(x, MEMBERS[m])).count();
                    let want = usize::from(model.rules.get(&j).is_some_and(|r| r.contains(&m)));
                    assert_eq!(n, want, "client {j} receiving {}", MEMBERS[m]);
                }
            }
        }
        // Ownership as the bus reports it equals the model's queues.
        let Some(q) = clients.iter_mut().flatten().next() else {
            continue;
        };
        for (n, name) in NAMES.iter().enumerate() {
            let r = q.call_bus("ListQueuedOwners", &(*name,)).await;
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
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn ownership_and_delivery_follow_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run(ops));
    }
}

//! Many calls in flight at once, each answered exactly once.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use tokio::task::JoinSet;

use crate::common::{IFACE, PATH, run, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_calls_are_each_answered_once() {
    run(|env| async move {
        let (svc_bus, svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let mut set = JoinSet::new();
        for i in 0..10_000u32 {
            let bus = bus.clone();
            let dest = dest.clone();
            set.spawn(async move {
                let s = i.to_string();
                let r: String = bus
                    .call_method(&dest, PATH, IFACE, "Echo", &(s.as_str(),))
                    .await
                    .unwrap();
                assert_eq!(r, s);
                i
            });
        }
        let mut seen = HashSet::new();
        within(async {
            while let Some(r) = set.join_next().await {
                assert!(seen.insert(r.unwrap()), "answered twice");
            }
        })
        .await;
        assert_eq!(seen.len(), 10_000);
        assert_eq!(svc.calls.load(Ordering::Relaxed), 10_000);
    })
    .await;
}

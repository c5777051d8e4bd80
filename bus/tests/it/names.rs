//! `request_name` / `release_name` and their reply codes.

use fastbus::{Error, Fault, ReleaseNameReply, RequestNameFlags, RequestNameReply};

use crate::common::{run, within};

#[tokio::test]
async fn request_and_release_names() {
    run(|env| async move {
        let a = env.connect().await;
        let b = env.connect().await;
        let name = "org.fastbus.Names";
        let none = RequestNameFlags::NONE;
        assert_eq!(
            within(a.request_name(name, none)).await.unwrap(),
            RequestNameReply::PrimaryOwner
        );
        assert_eq!(
            within(a.request_name(name, none)).await.unwrap(),
            RequestNameReply::AlreadyOwner
        );
        assert_eq!(
            within(b.request_name(name, RequestNameFlags::DO_NOT_QUEUE))
                .await
                .unwrap(),
            RequestNameReply::Exists
        );
        assert_eq!(
            within(b.request_name(name, none)).await.unwrap(),
            RequestNameReply::InQueue
        );
        assert_eq!(
            within(a.release_name(name)).await.unwrap(),
            ReleaseNameReply::Released
        );
        // b was queued, so it owns the name now; a does not.
        assert_eq!(
            within(a.release_name(name)).await.unwrap(),
            ReleaseNameReply::NotOwner
        );
        assert_eq!(
            within(b.release_name(name)).await.unwrap(),
            ReleaseNameReply::Released
        );
        assert_eq!(
            within(b.release_name("org.fastbus.NeverOwned"))
                .await
                .unwrap(),
            ReleaseNameReply::NonExistent
        );
        // Replacement: a allows it, b asks for it.
        a.request_name(name, RequestNameFlags::ALLOW_REPLACEMENT)
            .await
            .unwrap();
        assert_eq!(
            within(b.request_name(name, RequestNameFlags::REPLACE_EXISTING))
                .await
                .unwrap(),
            RequestNameReply::PrimaryOwner
        );
        // Invalid names never reach the bus.
        for bad in ["nodots", ":1.5", "a..b", ""] {
            let e = a.request_name(bad, none).await.unwrap_err();
            assert!(matches!(e, Error::Wire(_)), "{bad}: {e}");
            assert_eq!(e.fault(), Fault::Caller);
        }
        assert!(matches!(a.release_name("x").await, Err(Error::Wire(_))));
    })
    .await;
}

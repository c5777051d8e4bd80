//! Unix fd passing, when negotiated, and its refusal when not.

use fastbus::{Error, Fault};
use fastbus_wire::Fd;

use crate::common::{run, test_call, within};

#[tokio::test]
async fn an_fd_travels_to_the_service_when_negotiated() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        assert!(bus.can_pass_unix_fds());
        let (r, w) = rustix::pipe::pipe().unwrap();
        let m = test_call(&dest, "WriteFd")
            .body(&(Fd(0),))
            .fds(vec![w])
            .build()
            .unwrap();
        within(bus.call(m)).await.unwrap();
        let mut buf = [0u8; 64];
        let n = rustix::io::read(&r, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello through an fd");
    })
    .await;
}

#[tokio::test]
async fn fds_are_refused_when_not_negotiated() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env
            .builder()
            .negotiate_unix_fd(false)
            .connect()
            .await
            .unwrap();
        assert!(!bus.can_pass_unix_fds());
        let (_r, w) = rustix::pipe::pipe().unwrap();
        let m = test_call(&dest, "WriteFd")
            .body(&(Fd(0),))
            .fds(vec![w])
            .build()
            .unwrap();
        let e = within(bus.call(m)).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Transport(fastbus_transport::Error::FdsNotSupported)
            ),
            "{e}"
        );
        assert_eq!(e.fault(), Fault::Caller);
        assert!(bus.is_connected());
    })
    .await;
}

#[tokio::test]
async fn an_fd_comes_back_in_a_reply() {
    run(|env| async move {
        let (svc_bus, _svc) = env.service().await;
        let dest = svc_bus.unique_name().unwrap().to_owned();
        let bus = env.connect().await;
        let reply = within(bus.call(test_call(&dest, "ReadFd").build().unwrap()))
            .await
            .unwrap()
            .unwrap();
        let index: Fd = reply.body().unwrap();
        let fd = reply.fd(index).unwrap();
        let mut buf = [0u8; 64];
        let n = rustix::io::read(fd, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello from the service");
    })
    .await;
}

//! End-to-end tests of `MessageBus` against real buses: `/usr/bin/dbus-daemon` started by the
//! test with its own config in a temp dir (never the machine's buses), and the in-process
//! `fastbus-testbus`. Every test body takes a [`common::Env`] and is run by [`common::run`]
//! against each bus; a missing dbus-daemon is reported with a printed SKIPPED line.

mod common;

mod calls;
mod export;
mod fds;
mod lifecycle;
mod many;
mod names;
mod peer;
mod signals;

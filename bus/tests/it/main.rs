//! End-to-end tests of `MessageBus` against a real bus: `/usr/bin/dbus-daemon` started by the
//! test with its own config in a temp dir (never the machine's buses). Every test body takes
//! an [`common::Env`] and is run by [`common::run`] against each available bus; a missing
//! dbus-daemon is reported with a printed SKIPPED line.

mod common;

mod calls;
mod export;
mod fds;
mod lifecycle;
mod many;
mod names;
mod peer;
mod signals;

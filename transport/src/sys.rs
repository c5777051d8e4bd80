//! The crate's only `unsafe` code: taking ownership of a file descriptor that
//! was inherited by number (a daemon's `--print-address=FD`).
//!
//! It does nothing else: sockets, fd passing and credentials go through
//! rustix's safe wrappers everywhere else in the crate.

use std::io;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};

/// Takes ownership of file descriptor `fd`, which this process inherited from
/// its parent through `exec` (for example dbus-daemon's `--print-address=FD`
/// and `--print-pid=FD`: write to it, then drop the `OwnedFd` to close it, so
/// that a reader such as `dbus-run-session` sees end of file).
///
/// The returned fd gets `FD_CLOEXEC`, so processes started later do not
/// inherit it.
///
/// # Contract
/// Call it once per fd number, at startup, before the program opens anything
/// that could have taken that number and before anything else (another
/// library, another thread) could have claimed the inherited fd: the caller
/// promises that nothing else in the process owns `fd`. Two checks catch
/// most mistakes but cannot prove ownership:
/// - the fd must be open;
/// - it must not have `FD_CLOEXEC`: an fd that survived `exec` cannot have
///   it, while every fd Rust's standard library and tokio open has it (and
///   so does one this function already took), so a number that this process
///   opened itself is refused rather than closed behind its owner's back.
///
/// # Errors
/// `InvalidInput` for a negative number, for 0, 1 and 2 (standard input,
/// output and error belong to `std::io`'s handles: write to
/// `std::io::stdout()` instead) and for an fd with `FD_CLOEXEC`; the
/// operating system's error (`EBADF`) for a number that is not open.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{fd} is not a file descriptor number"),
        ));
    }
    if fd <= 2 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "fd {fd} is standard input, output or error, owned by std::io: \
                 use std::io::stdout() / stderr() instead"
            ),
        ));
    }
    // SAFETY: `borrow_raw` needs an fd other than -1 (checked above) that
    // stays open while the borrow lives. The borrow lives for this one
    // read-only `fcntl(F_GETFD)`: if `fd` is not open the call fails with
    // EBADF and touches nothing; if it is open, only code closing an fd it
    // does not own could close it meanwhile, which would be that code's bug.
    let flags = fcntl_getfd(unsafe { BorrowedFd::borrow_raw(fd) })
        .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("fd {fd}: {e}")))?;
    if flags.contains(FdFlags::CLOEXEC) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "fd {fd} has FD_CLOEXEC, so it was not inherited through exec: \
                 this process opened it (or already took it)"
            ),
        ));
    }
    // SAFETY: `fd` is open (F_GETFD succeeded) and was inherited through exec
    // (no FD_CLOEXEC, which every fd this program's Rust code opens has). The
    // caller promises, as the documented contract of this function, that
    // nothing else in the process owns it; so this `OwnedFd` is its only
    // owner and closing it on drop closes nobody else's fd.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    fcntl_setfd(&owned, flags | FdFlags::CLOEXEC)?;
    Ok(owned)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::fd::{AsRawFd, IntoRawFd};

    use super::*;

    /// A pipe whose write end looks inherited (no FD_CLOEXEC), as a raw number.
    fn inherited_pipe() -> (std::fs::File, RawFd) {
        let (r, w) = rustix::pipe::pipe().expect("pipe");
        fcntl_setfd(&w, FdFlags::empty()).expect("clear FD_CLOEXEC");
        (std::fs::File::from(r), w.into_raw_fd())
    }

    #[test]
    fn takes_an_inherited_pipe_end_writes_and_closes_it() {
        let (mut r, raw) = inherited_pipe();
        let owned = take_inherited_fd(raw).expect("an open inherited fd is taken");
        assert_eq!(owned.as_raw_fd(), raw);
        assert!(
            fcntl_getfd(&owned).unwrap().contains(FdFlags::CLOEXEC),
            "children do not inherit it"
        );
        let mut w = std::fs::File::from(owned);
        w.write_all(b"unix:path=/tmp/x\n").unwrap();
        drop(w);
        let mut got = String::new();
        r.read_to_string(&mut got).expect("reads to end of file");
        assert_eq!(got, "unix:path=/tmp/x\n");
    }

    #[test]
    fn taking_the_same_number_twice_is_refused() {
        let (_r, raw) = inherited_pipe();
        let owned = take_inherited_fd(raw).unwrap();
        let e = take_inherited_fd(raw).expect_err("already taken");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        // The first owner still has a working fd.
        assert!(fcntl_getfd(&owned).is_ok());
    }

    #[test]
    fn an_fd_this_process_opened_is_refused_and_stays_open() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = take_inherited_fd(f.as_raw_fd()).expect_err("has FD_CLOEXEC");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("FD_CLOEXEC"), "{e}");
        assert!(fcntl_getfd(&f).is_ok(), "still open");
    }

    #[test]
    fn a_number_that_is_not_open_is_an_error() {
        // Far above any RLIMIT_NOFILE / fs.nr_open: never open.
        let e = take_inherited_fd(i32::MAX - 1).expect_err("not open");
        assert!(e.to_string().contains("fd 2147483646"), "{e}");
    }

    #[test]
    fn standard_streams_and_negative_numbers_are_refused() {
        for fd in [-1, 0, 1, 2] {
            let e = take_inherited_fd(fd).expect_err("refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "fd {fd}: {e}");
        }
    }
}

//! DBUS_COOKIE_SHA1: the keyring in `~/.dbus-keyrings` and the client mechanism.
//!
//! ```text
//! client: AUTH DBUS_COOKIE_SHA1 hex(username)
//! server: DATA hex("<context> <cookie id> <server challenge>")
//! client: DATA hex("<client challenge> sha1hex(server_ch:client_ch:cookie)")
//! server: OK <guid>
//! ```
//!
//! Keyring rules (spec `auth-mechanisms-sha`, CVE-2019-12749): the directory
//! and files must belong to us and not be readable or writable by others, and
//! symlinks are not followed; servers lock a file with `<file>.lock`
//! (O_CREAT|O_EXCL) and replace it atomically by renaming a temporary file.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::client::{Authenticator, ChallengeResponse};
use super::{hex_decode, hex_encode, random_bytes};
use crate::error::{Error, Result};

/// The context name libdbus uses for bus authentication.
pub(crate) const COOKIE_CONTEXT: &str = "org_freedesktop_general";

/// Cookies this far in the future are dropped.
const MAX_FUTURE: u64 = 5 * 60;
/// Cookies older than this are dropped.
const MAX_AGE: u64 = 7 * 60;
/// A new cookie is made when the newest is older than this.
const NEW_AFTER: u64 = 5 * 60;
/// More than this is not a keyring file (libdbus keeps a handful of lines).
const MAX_KEYRING_FILE: u64 = 64 * 1024;
/// Pause between two attempts to take a keyring's lock.
const LOCK_RETRY: Duration = Duration::from_millis(15);
/// Failed attempts after which a lock is taken to be stale and broken (about 0.45 s).
const STALE_LOCK_ATTEMPTS: u32 = 30;

/// SHA-1 of `s` as lower-case hex.
pub(crate) fn sha1_hex(s: &str) -> String {
    sha1_smol::Sha1::from(s).digest().to_string()
}

/// `(uid, user name)` for `uid`, read from `/etc/passwd` (the name may be unknown).
pub(crate) fn own_user(uid: u32) -> (u32, Option<String>) {
    (uid, passwd_entry(uid).map(|(name, _)| name))
}

/// `(name, home)` of `uid` from `/etc/passwd`.
fn passwd_entry(uid: u32) -> Option<(String, PathBuf)> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid))
            .then(|| (f[0].to_owned(), PathBuf::from(f[5])))
    })
}

/// A context name is non-empty ASCII without `/`, `\`, space, newline, CR, tab or `.`.
pub(crate) fn valid_context(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii() && !matches!(b, b'/' | b'\\' | b' ' | b'\n' | b'\r' | b'\t' | b'.')
        })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One line of a keyring file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cookie {
    id: u32,
    ctime: u64,
    secret: String,
}

/// A DBUS_COOKIE_SHA1 keyring directory (normally `~/.dbus-keyrings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyring {
    dir: PathBuf,
    /// Failed lock attempts before a lock is broken as stale (tests raise it).
    pub(crate) stale_lock_attempts: u32,
}

impl Keyring {
    /// A keyring in `dir` (created with mode 0700 by a server when missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Keyring {
            dir: dir.into(),
            stale_lock_attempts: STALE_LOCK_ATTEMPTS,
        }
    }

    /// `~/.dbus-keyrings` of `uid`, with the home from `/etc/passwd`
    /// (or `$HOME` for our own uid when not setuid).
    pub fn default_for_uid(uid: u32) -> Option<Keyring> {
        let home = passwd_entry(uid).map(|(_, h)| h).or_else(|| {
            let own = rustix::process::geteuid().as_raw() == uid;
            (own && !crate::creds::is_setuid())
                .then(|| std::env::var_os("HOME").map(PathBuf::from))
                .flatten()
        })?;
        Some(Keyring::new(home.join(".dbus-keyrings")))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn refuse(&self, path: &Path, reason: impl Into<String>) -> Error {
        let _ = self;
        Error::Keyring {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    /// Checks that `path` is what we expect, ours, not a symlink, and private.
    fn check_private(&self, path: &Path, want_dir: bool) -> Result<()> {
        let md = fs::symlink_metadata(path).map_err(|e| self.refuse(path, e.to_string()))?;
        if md.file_type().is_symlink() {
            return Err(self.refuse(path, "is a symlink"));
        }
        self.check_owner_and_mode(
            path,
            md.is_dir(),
            md.is_file(),
            md.uid(),
            md.mode(),
            want_dir,
        )
    }

    /// The rules for a keyring directory or file (CVE-2019-12749): the right
    /// type, owned by our effective uid, nothing for group or others.
    fn check_owner_and_mode(
        &self,
        path: &Path,
        is_dir: bool,
        is_file: bool,
        uid: u32,
        mode: u32,
        want_dir: bool,
    ) -> Result<()> {
        if (want_dir && !is_dir) || (!want_dir && !is_file) {
            return Err(self.refuse(path, "wrong file type"));
        }
        if uid != rustix::process::geteuid().as_raw() {
            return Err(self.refuse(path, format!("owned by uid {uid}, not by us")));
        }
        if mode & 0o077 != 0 {
            return Err(self.refuse(path, format!("mode {:o} lets others in", mode & 0o777)));
        }
        Ok(())
    }

    /// Checks an opened directory or file through its descriptor (no race
    /// between the check and the use).
    fn check_fd(&self, path: &Path, fd: &OwnedFd, want_dir: bool) -> Result<()> {
        let st = rustix::fs::fstat(fd).map_err(|e| self.refuse(path, e.to_string()))?;
        let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
        self.check_owner_and_mode(
            path,
            ft == rustix::fs::FileType::Directory,
            ft == rustix::fs::FileType::RegularFile,
            st.st_uid,
            st.st_mode,
            want_dir,
        )
    }

    fn file(&self, context: &str) -> Result<PathBuf> {
        if !valid_context(context) {
            return Err(self.refuse(&self.dir, format!("bad context name {context:?}")));
        }
        Ok(self.dir.join(context))
    }

    /// Reads the cookies of `context`. The directory and the file are opened
    /// without following symlinks and checked through their descriptors.
    fn read(&self, context: &str) -> Result<Vec<Cookie>> {
        use rustix::fs::{Mode, OFlags};
        let file = self.file(context)?;
        let no_link = |e: rustix::io::Errno| {
            if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
                "is a symlink or not a directory".to_owned()
            } else {
                e.to_string()
            }
        };
        let dir = rustix::fs::open(
            &self.dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.refuse(&self.dir, no_link(e)))?;
        self.check_fd(&self.dir, &dir, true)?;
        let fd = match rustix::fs::openat(
            &dir,
            context,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
            Err(e) if e == rustix::io::Errno::LOOP => {
                return Err(self.refuse(&file, "is a symlink"));
            }
            Err(e) => return Err(self.refuse(&file, e.to_string())),
        };
        self.check_fd(&file, &fd, false)?;
        let mut text = String::new();
        std::io::Read::take(fs::File::from(fd), MAX_KEYRING_FILE)
            .read_to_string(&mut text)
            .map_err(|e| self.refuse(&file, e.to_string()))?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let id = f.next()?.parse().ok()?;
                let ctime = f.next()?.parse().ok()?;
                let secret = f.next()?;
                (f.next().is_none() && hex_decode(secret.as_bytes()).is_some()).then(|| Cookie {
                    id,
                    ctime,
                    secret: secret.to_owned(),
                })
            })
            .collect())
    }

    /// Client side: the secret of cookie `id` in `context`.
    ///
    /// # Errors
    /// [`Error::Keyring`] when the directory or file is unsafe or unreadable,
    /// or the cookie is not there.
    pub fn find(&self, context: &str, id: u32) -> Result<String> {
        self.read(context)?
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| c.secret)
            .ok_or_else(|| {
                self.refuse(
                    &self.dir,
                    format!("don't have the requested cookie ID {id}"),
                )
            })
    }

    /// Server side: a fresh enough cookie of `context`, making and saving a
    /// new one when needed. Returns `(id, secret)`.
    ///
    /// Blocking: file I/O, and while another process holds the keyring's lock
    /// it sleeps the thread (about half a second at most, then the lock is
    /// broken as stale, as libdbus does). Async code runs it with
    /// `tokio::task::spawn_blocking`, as [`crate::server_handshake`] does.
    ///
    /// # Errors
    /// [`Error::Keyring`] when the keyring is unsafe or cannot be written.
    pub fn server_cookie(&self, context: &str) -> Result<(u32, String)> {
        let file = self.file(context)?;
        if !self.dir.exists() {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&self.dir)
                .map_err(|e| self.refuse(&self.dir, e.to_string()))?;
        }
        self.check_private(&self.dir, true)?;
        let lock = self.lock(&file)?;
        let result = self.update(context, &file);
        drop(lock);
        result
    }

    fn update(&self, context: &str, file: &Path) -> Result<(u32, String)> {
        let t = now();
        let mut cookies: Vec<Cookie> = self
            .read(context)?
            .into_iter()
            .filter(|c| c.ctime <= t + MAX_FUTURE && c.ctime + MAX_AGE >= t)
            .collect();
        if let Some(c) = cookies
            .iter()
            .filter(|c| c.ctime + NEW_AFTER > t)
            .max_by_key(|c| c.ctime)
        {
            return Ok((c.id, c.secret.clone()));
        }
        let mut secret = [0u8; 24];
        let mut idb = [0u8; 4];
        loop {
            random_bytes(&mut idb).map_err(|e| self.refuse(file, e.to_string()))?;
            let id = u32::from_le_bytes(idb) & 0x7fff_ffff;
            if !cookies.iter().any(|c| c.id == id) {
                random_bytes(&mut secret).map_err(|e| self.refuse(file, e.to_string()))?;
                cookies.push(Cookie {
                    id,
                    ctime: t,
                    secret: hex_encode(&secret),
                });
                break;
            }
        }
        let mut text = String::new();
        for c in &cookies {
            text.push_str(&format!("{} {} {}\n", c.id, c.ctime, c.secret));
        }
        let mut rnd = [0u8; 8];
        random_bytes(&mut rnd).map_err(|e| self.refuse(file, e.to_string()))?;
        let tmp = self.dir.join(format!("{context}.{}.tmp", hex_encode(&rnd)));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, file)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(self.refuse(file, e.to_string()));
        }
        let newest = cookies.last().map(|c| (c.id, c.secret.clone()));
        newest.ok_or_else(|| self.refuse(file, "no cookie"))
    }

    /// Takes `<file>.lock`; after about half a second a stale lock is broken (as libdbus does).
    fn lock(&self, file: &Path) -> Result<LockGuard> {
        let mut lock = file.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        for attempt in 0..self.stale_lock_attempts.saturating_add(10) {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&lock)
            {
                Ok(_) => return Ok(LockGuard(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if attempt == self.stale_lock_attempts {
                        let _ = fs::remove_file(&lock);
                    }
                    std::thread::sleep(LOCK_RETRY);
                }
                Err(e) => return Err(self.refuse(&lock, e.to_string())),
            }
        }
        Err(self.refuse(&lock, "could not take the lock"))
    }
}

#[derive(Debug)]
struct LockGuard(PathBuf);

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// The client side of DBUS_COOKIE_SHA1.
#[derive(Debug, Clone)]
pub struct CookieSha1 {
    user: String,
    keyring: Option<Keyring>,
}

impl CookieSha1 {
    /// For our own user, with `~/.dbus-keyrings`.
    pub fn new() -> Self {
        let uid = rustix::process::geteuid().as_raw();
        let user = own_user(uid).1.unwrap_or_else(|| uid.to_string());
        CookieSha1 {
            user,
            keyring: Keyring::default_for_uid(uid),
        }
    }

    /// With a given identity and keyring (tests, sandboxes).
    pub fn with(user: impl Into<String>, keyring: Keyring) -> Self {
        CookieSha1 {
            user: user.into(),
            keyring: Some(keyring),
        }
    }
}

impl Default for CookieSha1 {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticator for CookieSha1 {
    fn mechanism(&self) -> &str {
        "DBUS_COOKIE_SHA1"
    }

    fn initial_response(&mut self) -> Option<Vec<u8>> {
        Some(self.user.as_bytes().to_vec())
    }

    fn challenge(&mut self, data: &[u8]) -> ChallengeResponse {
        let Ok(text) = std::str::from_utf8(data) else {
            return ChallengeResponse::Error("challenge is not UTF-8".into());
        };
        let parts: Vec<&str> = text.split(' ').collect();
        let [context, id, server_challenge] = parts[..] else {
            return ChallengeResponse::Error("malformed challenge".into());
        };
        if !valid_context(context) {
            return ChallengeResponse::Error("bad context name".into());
        }
        let Ok(id) = id.parse::<u32>() else {
            return ChallengeResponse::Error("bad cookie ID".into());
        };
        let Some(keyring) = &self.keyring else {
            return ChallengeResponse::Error("no keyring directory".into());
        };
        let secret = match keyring.find(context, id) {
            Ok(s) => s,
            Err(_) => return ChallengeResponse::Error("Don't have the requested cookie ID".into()),
        };
        let mut ch = [0u8; 16];
        if random_bytes(&mut ch).is_err() {
            return ChallengeResponse::Error("no randomness".into());
        }
        let client_challenge = hex_encode(&ch);
        let hash = sha1_hex(&format!("{server_challenge}:{client_challenge}:{secret}"));
        ChallengeResponse::Data(format!("{client_challenge} {hash}").into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sha1_matches_known_vector() {
        assert_eq!(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn context_names_are_checked() {
        assert!(valid_context(COOKIE_CONTEXT));
        for bad in ["", "a/b", "a.b", "a b", "a\\b", "a\tb"] {
            assert!(!valid_context(bad), "{bad:?}");
        }
    }

    #[test]
    fn server_creates_private_keyring_and_client_finds_cookie() {
        let tmp = tempfile::tempdir().unwrap();
        let k = Keyring::new(tmp.path().join("keyrings"));
        let (id, secret) = k.server_cookie(COOKIE_CONTEXT).unwrap();
        let (id2, secret2) = k.server_cookie(COOKIE_CONTEXT).unwrap();
        assert_eq!((id, &secret), (id2, &secret2), "a fresh cookie is reused");
        assert_eq!(k.find(COOKIE_CONTEXT, id).unwrap(), secret);
        assert!(k.find(COOKIE_CONTEXT, id ^ 1).is_err());
        let mode = fs::metadata(k.dir()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(!k.dir().join(format!("{COOKIE_CONTEXT}.lock")).exists());
    }

    #[test]
    fn keyring_dir_readable_by_others_is_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("k");
        let k = Keyring::new(&dir);
        let (id, _) = k.server_cookie(COOKIE_CONTEXT).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            k.find(COOKIE_CONTEXT, id),
            Err(Error::Keyring { .. })
        ));
        assert!(k.server_cookie(COOKIE_CONTEXT).is_err());
    }

    #[test]
    fn symlinked_keyring_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("k");
        let k = Keyring::new(&dir);
        k.server_cookie(COOKIE_CONTEXT).unwrap();
        let other = tmp.path().join("other");
        fs::write(&other, "1 1 abcd\n").unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&other, dir.join("ctx")).unwrap();
        assert!(k.find("ctx", 1).is_err());
    }

    #[test]
    fn keyring_file_readable_by_others_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let k = Keyring::new(tmp.path().join("k"));
        let (id, _) = k.server_cookie(COOKIE_CONTEXT).unwrap();
        let file = k.dir().join(COOKIE_CONTEXT);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        match k.find(COOKIE_CONTEXT, id) {
            Err(Error::Keyring { reason, .. }) => assert!(reason.contains("mode"), "{reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(k.server_cookie(COOKIE_CONTEXT).is_err());
    }

    #[test]
    fn symlinked_keyring_dir_is_refused() {
        // CVE-2019-12749 was a symlinked keyring belonging to someone else.
        let tmp = tempfile::tempdir().unwrap();
        let real = Keyring::new(tmp.path().join("real"));
        let (id, _) = real.server_cookie(COOKIE_CONTEXT).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(real.dir(), &link).unwrap();
        let k = Keyring::new(&link);
        assert!(matches!(
            k.find(COOKIE_CONTEXT, id),
            Err(Error::Keyring { .. })
        ));
        assert!(k.server_cookie(COOKIE_CONTEXT).is_err());
    }

    #[test]
    fn keyring_owned_by_another_user_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let k = Keyring::new(tmp.path().join("k"));
        let (id, _) = k.server_cookie(COOKIE_CONTEXT).unwrap();
        let file = k.dir().join(COOKIE_CONTEXT);
        // The rule itself, for any uid but ours.
        let other = rustix::process::geteuid().as_raw().wrapping_add(1);
        assert!(
            k.check_owner_and_mode(&file, false, true, other, 0o600, false)
                .is_err()
        );
        assert!(
            k.check_owner_and_mode(k.dir(), true, false, other, 0o700, true)
                .is_err()
        );
        // For real files only root can hand them to someone else.
        if !rustix::process::geteuid().is_root() {
            println!("SKIPPED the chown part: needs root");
            return;
        }
        std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
        assert!(k.find(COOKIE_CONTEXT, id).is_err(), "file of another user");
        std::os::unix::fs::chown(&file, Some(0), None).unwrap();
        assert!(k.find(COOKIE_CONTEXT, id).is_ok());
        std::os::unix::fs::chown(k.dir(), Some(65534), None).unwrap();
        assert!(k.find(COOKIE_CONTEXT, id).is_err(), "dir of another user");
        assert!(k.server_cookie(COOKIE_CONTEXT).is_err());
    }

    #[test]
    fn context_with_slash_is_rejected_by_client() {
        let tmp = tempfile::tempdir().unwrap();
        let mut c = CookieSha1::with("me", Keyring::new(tmp.path()));
        let r = c.challenge(b"../evil 1 abcd");
        assert!(matches!(r, ChallengeResponse::Error(_)));
        let r = c.challenge(b"a/b 1 abcd");
        assert!(matches!(r, ChallengeResponse::Error(_)));
    }
}

//! Name ownership: the flags of `RequestName` and the reply codes of `RequestName` and
//! `ReleaseName`, from the specification's "Message Bus Messages" section
//! (<https://dbus.freedesktop.org/doc/dbus-specification.html#bus-messages-request-name>).

use std::fmt;
use std::ops::BitOr;

/// Flags of `org.freedesktop.DBus.RequestName`; combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RequestNameFlags(u32);

impl RequestNameFlags {
    /// No flags: queue for the name if it is taken, and do not let others take it from us.
    pub const NONE: Self = Self(0);
    /// Let another connection that asks with `REPLACE_EXISTING` take the name from us.
    pub const ALLOW_REPLACEMENT: Self = Self(1);
    /// Take the name from its owner if the owner allowed replacement.
    pub const REPLACE_EXISTING: Self = Self(2);
    /// Do not wait in the queue when the name is taken: fail with [`RequestNameReply::Exists`].
    pub const DO_NOT_QUEUE: Self = Self(4);

    /// The flags as sent on the wire.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for RequestNameFlags {
    type Output = Self;
    fn bitor(self, o: Self) -> Self {
        Self(self.0 | o.0)
    }
}

/// What `RequestName` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestNameReply {
    /// We own the name now (1).
    PrimaryOwner,
    /// The name is taken; we are in its queue (2).
    InQueue,
    /// The name is taken and we did not queue (3).
    Exists,
    /// We owned the name already (4).
    AlreadyOwner,
}

impl RequestNameReply {
    /// The reply for a wire code, `None` for codes the specification does not define.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::PrimaryOwner,
            2 => Self::InQueue,
            3 => Self::Exists,
            4 => Self::AlreadyOwner,
            _ => return None,
        })
    }
}

impl fmt::Display for RequestNameReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PrimaryOwner => "primary owner",
            Self::InQueue => "in queue",
            Self::Exists => "exists",
            Self::AlreadyOwner => "already owner",
        })
    }
}

/// What `ReleaseName` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReleaseNameReply {
    /// We released the name (or left its queue) (1).
    Released,
    /// Nobody owns the name (2).
    NonExistent,
    /// Someone else owns the name and we were not in its queue (3).
    NotOwner,
}

impl ReleaseNameReply {
    /// The reply for a wire code, `None` for codes the specification does not define.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::Released,
            2 => Self::NonExistent,
            3 => Self::NotOwner,
            _ => return None,
        })
    }
}

impl fmt::Display for ReleaseNameReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Released => "released",
            Self::NonExistent => "non-existent",
            Self::NotOwner => "not owner",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_specification() {
        let f = RequestNameFlags::ALLOW_REPLACEMENT | RequestNameFlags::DO_NOT_QUEUE;
        assert_eq!(f.bits(), 5);
        assert!(f.contains(RequestNameFlags::DO_NOT_QUEUE));
        assert!(!f.contains(RequestNameFlags::REPLACE_EXISTING));
        assert_eq!(
            RequestNameReply::from_code(4),
            Some(RequestNameReply::AlreadyOwner)
        );
        assert_eq!(RequestNameReply::from_code(0), None);
        assert_eq!(
            ReleaseNameReply::from_code(3),
            Some(ReleaseNameReply::NotOwner)
        );
        assert_eq!(ReleaseNameReply::from_code(4), None);
    }
}

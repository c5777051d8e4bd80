//! The one error type of `fastbus-wire`: what was wrong, at which byte, and where in the value tree.
//!
//! Errors are built only on the failure path; the success path never formats or allocates for them.

use std::borrow::Cow;
use std::fmt;

/// What was wrong. A small `Copy` code, named after the reference validity codes of libdbus
/// (`dbus/dbus-marshal-validate.h`) where one exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Byte 0 of the header is neither `l` nor `B`.
    BadByteOrder,
    /// The major protocol version is not 1; the connection must be dropped.
    BadProtocolVersion,
    /// Message type 0 (INVALID).
    BadMessageType,
    /// A serial or REPLY_SERIAL of zero.
    BadSerial,
    /// The body length is larger than a message may be.
    InsaneBodyLength,
    /// The header field array length is larger than a message may be.
    InsaneFieldsArrayLength,
    /// The whole message would be larger than 128 MiB.
    MessageTooLong,
    /// The bytes end before the value (or message) does.
    NotEnoughData,
    /// Bytes are left over after the last value (or message).
    TooMuchData,
    /// A padding byte is not zero.
    PaddingNotNul,
    /// Header field code 0.
    HeaderFieldCode,
    /// A known header field holds a value of the wrong type.
    HeaderFieldHasWrongType,
    /// A known header field appears twice.
    HeaderFieldAppearsTwice,
    /// A method call or signal without PATH.
    MissingPath,
    /// A signal without INTERFACE.
    MissingInterface,
    /// A method call or signal without MEMBER.
    MissingMember,
    /// An error without ERROR_NAME.
    MissingErrorName,
    /// A method return or error without REPLY_SERIAL.
    MissingReplySerial,
    /// PATH is `/org/freedesktop/DBus/Local`, which must never be sent.
    UsesLocalPath,
    /// INTERFACE is `org.freedesktop.DBus.Local`, which must never be sent.
    UsesLocalInterface,
    /// A body of non-zero length without a SIGNATURE field.
    BodyWithoutSignature,
    /// Fewer file descriptors arrived than UNIX_FDS says.
    MissingUnixFds,
    /// A `h` value indexes past the file descriptors of its message.
    FdIndexOutOfRange,
    /// An object path breaks the grammar.
    BadPath,
    /// An interface name breaks the grammar.
    BadInterface,
    /// A member name breaks the grammar.
    BadMember,
    /// An error name breaks the grammar.
    BadErrorName,
    /// A bus name (unique or well-known) breaks the grammar.
    BadBusName,
    /// A signature has a character that is no type code.
    UnknownTypeCode,
    /// A signature uses a reserved type code (`r e m * ? @ & ^`).
    ReservedTypeCode,
    /// `a` not followed by a complete type.
    MissingArrayElementType,
    /// `(` without its `)`.
    StructStartedButNotEnded,
    /// `)` without its `(`.
    StructEndedButNotStarted,
    /// `()`.
    StructHasNoFields,
    /// `{` outside an array.
    DictEntryNotInsideArray,
    /// `{` without its `}`.
    DictEntryStartedButNotEnded,
    /// `}` without its `{`.
    DictEntryEndedButNotStarted,
    /// `{}`.
    DictEntryHasNoFields,
    /// `{i}`.
    DictEntryHasOnlyOneField,
    /// `{isi}`.
    DictEntryHasTooManyFields,
    /// A dict entry key that is not a basic type.
    DictKeyMustBeBasicType,
    /// More than 32 nested arrays.
    ExceededMaximumArrayRecursion,
    /// More than 32 nested structs or dict entries.
    ExceededMaximumStructRecursion,
    /// More than 64 containers in total, variants included.
    NestedTooDeeply,
    /// A signature longer than 255 bytes.
    SignatureTooLong,
    /// A signature (or variant signature) whose terminating NUL is missing or misplaced.
    SignatureMissingNul,
    /// A signature whose length byte points past the end of the data.
    SignatureLengthOutOfBounds,
    /// A variant signature that is empty.
    VariantSignatureEmpty,
    /// A variant signature that holds more than one complete type.
    VariantSignatureSpecifiesMultipleValues,
    /// A BOOLEAN that is neither 0 nor 1.
    BooleanNotZeroOrOne,
    /// An array longer than 64 MiB.
    ArrayLengthExceedsMaximum,
    /// An array whose byte length does not end on an element boundary.
    ArrayLengthIncorrect,
    /// A length (of a string or array) that runs past the end of the data.
    LengthOutOfBounds,
    /// A string without its terminating NUL.
    StringMissingNul,
    /// A NUL inside a string.
    StringContainsNul,
    /// A string that is not valid UTF-8.
    BadUtf8,
    /// The signature of the data is not the one the caller asked for.
    SignatureMismatch,
    /// A value that cannot be encoded (for example array elements of different types).
    InvalidValue,
    /// A message without a serial could not be encoded.
    MissingSerial,
    /// A match rule breaks the grammar of the specification's "Match Rules" section (a bus
    /// answers `org.freedesktop.DBus.Error.MatchRuleInvalid`).
    BadMatchRule,
    /// A match rule longer than 1024 bytes (a bus answers
    /// `org.freedesktop.DBus.Error.LimitsExceeded`).
    MatchRuleTooLong,
    /// Introspection XML that is not well-formed; the detail gives the line and column.
    BadXml,
    /// Well-formed XML that breaks the introspection format (a missing `name`, an unknown
    /// `access`, a signal argument with `direction="in"`, an argument type that is not one
    /// complete type); the detail gives the line and column.
    BadIntrospection,
}

impl ErrorKind {
    /// A short, human-readable description of this kind.
    pub fn description(self) -> &'static str {
        use ErrorKind::*;
        match self {
            BadByteOrder => "byte order is neither 'l' nor 'B'",
            BadProtocolVersion => "protocol version is not 1",
            BadMessageType => "message type 0 is invalid",
            BadSerial => "serial must not be zero",
            InsaneBodyLength => "body length exceeds the 128 MiB message limit",
            InsaneFieldsArrayLength => {
                "header field array length exceeds the 128 MiB message limit"
            }
            MessageTooLong => "message exceeds 128 MiB",
            NotEnoughData => "not enough data",
            TooMuchData => "too much data",
            PaddingNotNul => "alignment padding is not zero",
            HeaderFieldCode => "header field code 0 is invalid",
            HeaderFieldHasWrongType => "header field has the wrong type",
            HeaderFieldAppearsTwice => "header field appears twice",
            MissingPath => "PATH header field is missing",
            MissingInterface => "INTERFACE header field is missing",
            MissingMember => "MEMBER header field is missing",
            MissingErrorName => "ERROR_NAME header field is missing",
            MissingReplySerial => "REPLY_SERIAL header field is missing",
            UsesLocalPath => "the path /org/freedesktop/DBus/Local is reserved",
            UsesLocalInterface => "the interface org.freedesktop.DBus.Local is reserved",
            BodyWithoutSignature => "body is not empty but there is no SIGNATURE field",
            MissingUnixFds => "fewer file descriptors than UNIX_FDS says",
            FdIndexOutOfRange => "file descriptor index out of range",
            BadPath => "invalid object path",
            BadInterface => "invalid interface name",
            BadMember => "invalid member name",
            BadErrorName => "invalid error name",
            BadBusName => "invalid bus name",
            UnknownTypeCode => "unknown type code in signature",
            ReservedTypeCode => "reserved type code in signature",
            MissingArrayElementType => "array without element type",
            StructStartedButNotEnded => "struct started but not ended",
            StructEndedButNotStarted => "struct ended but not started",
            StructHasNoFields => "struct has no fields",
            DictEntryNotInsideArray => "dict entry not inside an array",
            DictEntryStartedButNotEnded => "dict entry started but not ended",
            DictEntryEndedButNotStarted => "dict entry ended but not started",
            DictEntryHasNoFields => "dict entry has no fields",
            DictEntryHasOnlyOneField => "dict entry has only one field",
            DictEntryHasTooManyFields => "dict entry has more than two fields",
            DictKeyMustBeBasicType => "dict entry key must be a basic type",
            ExceededMaximumArrayRecursion => "more than 32 nested arrays",
            ExceededMaximumStructRecursion => "more than 32 nested structs",
            NestedTooDeeply => "more than 64 nested containers",
            SignatureTooLong => "signature longer than 255 bytes",
            SignatureMissingNul => "signature not followed by NUL",
            SignatureLengthOutOfBounds => "signature length runs past the end",
            VariantSignatureEmpty => "variant signature is empty",
            VariantSignatureSpecifiesMultipleValues => "variant signature holds more than one type",
            BooleanNotZeroOrOne => "boolean is neither 0 nor 1",
            ArrayLengthExceedsMaximum => "array longer than 64 MiB",
            ArrayLengthIncorrect => "array length does not end on an element boundary",
            LengthOutOfBounds => "length runs past the end of the data",
            StringMissingNul => "string not followed by NUL",
            StringContainsNul => "string contains NUL",
            BadUtf8 => "string is not valid UTF-8",
            SignatureMismatch => "signature does not match the requested type",
            InvalidValue => "value cannot be encoded",
            MissingSerial => "message has no serial",
            BadMatchRule => "invalid match rule",
            MatchRuleTooLong => "match rule longer than 1024 bytes",
            BadXml => "malformed XML",
            BadIntrospection => "invalid introspection data",
        }
    }
}

/// An error of the wire codec: its [`ErrorKind`], the byte offset where it was found (counted
/// from the start of the message, or of the buffer that was decoded), and a path through the value
/// tree such as `body arg 2 / array element 5 / dict value`.
///
/// It is one pointer wide, so that `Result`s on the decoding hot path stay small.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(Box<Inner>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    offset: Option<usize>,
    context: Option<Box<str>>,
}

/// How much of a peer's string an error message shows, in characters.
const SHOWN_CHARS: usize = 64;

/// A peer's string as an error message shows it: quoted and escaped as Rust's `{:?}` does (so a
/// NUL, a `%`, a quote or a control character reads as itself and formats nothing), cut to its
/// first 64 characters with the full length in bytes after it when it is longer, so that a hostile
/// or huge input cannot make a huge or misleading message (the class of CVE-2013-2168).
pub(crate) fn shown(s: &str) -> String {
    let mut chars = s.char_indices();
    match chars.nth(SHOWN_CHARS) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &s[..cut], s.len()),
    }
}

/// [`shown`] for bytes that may not be UTF-8 (invalid sequences shown as U+FFFD).
pub(crate) fn shown_bytes(b: &[u8]) -> String {
    shown(&String::from_utf8_lossy(b))
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind` with no position.
    #[cold]
    pub fn new(kind: ErrorKind) -> Self {
        Self(Box::new(Inner {
            kind,
            offset: None,
            context: None,
        }))
    }

    #[cold]
    pub(crate) fn at(kind: ErrorKind, offset: usize) -> Self {
        Self(Box::new(Inner {
            kind,
            offset: Some(offset),
            context: None,
        }))
    }

    /// Attach a detail (for example the rule a name broke); details are joined outermost first.
    #[cold]
    pub(crate) fn detail(mut self, what: impl Into<Cow<'static, str>>) -> Self {
        let what = what.into();
        self.0.context = Some(match self.0.context.take() {
            None => what.into(),
            Some(inner) => format!("{what}: {inner}").into(),
        });
        self
    }

    /// Record that the error happened inside `what` (for example "array element 5").
    #[cold]
    pub(crate) fn within(mut self, what: impl fmt::Display) -> Self {
        self.0.context = Some(match self.0.context.take() {
            None => format!("{what}").into(),
            Some(inner) => format!("{what} / {inner}").into(),
        });
        self
    }

    /// Set the offset to `offset` (for example the byte of a document where an element starts).
    pub(crate) fn with_offset(mut self, offset: usize) -> Self {
        self.0.offset = Some(offset);
        self
    }

    /// Shift the offset by `base` (used when a buffer was decoded from a slice of a larger one).
    pub(crate) fn shifted(mut self, base: usize) -> Self {
        if let Some(o) = self.0.offset.as_mut() {
            *o += base;
        }
        self
    }

    /// Make the offset relative to `base`: shift a known offset, or set an unknown one to `base`.
    pub(crate) fn relative_to(mut self, base: usize) -> Self {
        self.0.offset = Some(self.0.offset.map_or(base, |o| o + base));
        self
    }

    /// What was wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The byte offset where the problem was found, when known.
    pub fn offset(&self) -> Option<usize> {
        self.0.offset
    }

    /// Where in the message or value tree, and which rule, when known.
    pub fn context(&self) -> Option<&str> {
        self.0.context.as_deref()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.kind.description())?;
        if let Some(c) = &self.0.context {
            write!(f, " ({c})")?;
        }
        if let Some(o) = self.0.offset {
            write!(f, " at byte {o}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_quotes_escapes_and_cuts_hostile_strings() {
        assert_eq!(shown("a.b"), "\"a.b\"");
        assert_eq!(shown("%s%n\0\"x\n"), "\"%s%n\\0\\\"x\\n\"");
        let long = "é".repeat(1000);
        let s = shown(&long);
        assert!(s.starts_with(format!("{:?}", "é".repeat(64)).trim_end_matches('"')));
        assert!(s.ends_with("… (2000 bytes)"), "{s}");
        assert_eq!(shown(&"x".repeat(64)), format!("{:?}", "x".repeat(64)));
        assert_eq!(shown_bytes(b"a\xffb"), "\"a\u{fffd}b\"");
    }

    #[test]
    fn display_names_kind_context_and_offset() {
        let e = Error::at(ErrorKind::BooleanNotZeroOrOne, 24)
            .within("array element 3")
            .within("body arg 1");
        assert_eq!(
            e.to_string(),
            "boolean is neither 0 nor 1 (body arg 1 / array element 3) at byte 24"
        );
        assert_eq!(e.kind(), ErrorKind::BooleanNotZeroOrOne);
        assert_eq!(e.offset(), Some(24));
    }
}

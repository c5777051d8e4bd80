//! Match rules: parse, build, print and evaluate the rules of the specification's "Match Rules"
//! section (<https://dbus.freedesktop.org/doc/dbus-specification.html#message-bus-routing-match-rules>).
//!
//! A rule is a comma-separated list of `key='value'` pairs, for example
//! `type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.example.App'`.
//! Every key narrows the rule; the empty rule matches every message.
//!
//! # Grammar, as dbus-daemon parses it
//!
//! [`MatchRule::parse`] follows `bus/signals.c` of dbus-daemon, so that a rule means the same here
//! as on a real bus:
//!
//! - Whitespace (space, tab, CR, LF) is skipped before a key and between a key and its `=`. It is
//!   *not* skipped in a value: unquoted whitespace is part of the value (`type= 'signal'` has the
//!   value `" signal"` and is rejected, as dbus-daemon and dbus-broker do).
//! - Inside single quotes every byte stands for itself, backslash and comma included. Outside
//!   quotes, `\'` is an apostrophe, any other backslash stands for itself, and an unquoted comma
//!   ends the value. Quoted and unquoted pieces are concatenated: `member=Na'me'` is `Name`.
//! - Values may be empty (`arg0=''`), but names must then be valid, so `member=''` is rejected.
//! - Keys: `type`, `sender`, `interface`, `member`, `path`, `path_namespace`, `destination`,
//!   `arg0`..`arg63`, `arg0path`..`arg63path`, `arg0namespace`, `eavesdrop`. A key may appear
//!   once; `path` and `path_namespace` exclude each other, and `argN`, `argNpath` and
//!   `arg0namespace` share one slot per index. `eavesdrop` is the exception: like dbus-daemon we
//!   let a later `eavesdrop` override an earlier one (dbus-monitor relies on it).
//! - Names are checked with libdbus's rules: `sender` and `destination` accept what
//!   `_dbus_validate_bus_name` accepts (so the lenient unique forms `:1` and `:` too), and
//!   `arg0namespace` is a bus name that may have a single element, with no trailing `.`.
//! - A rule longer than [`MAX_MATCH_RULE_LEN`] bytes fails with [`ErrorKind::MatchRuleTooLong`]
//!   (a bus answers `LimitsExceeded`); every other problem is [`ErrorKind::BadMatchRule`]
//!   (`MatchRuleInvalid`), with the byte offset and what was wrong.
//!
//! Where dbus-daemon is laxer than the specification we are stricter, and say so: a stray `=`
//! with no key before it (dbus-daemon silently ignores it), a sign in an argument number
//! (`arg+1`, which dbus-daemon's `strtoul` takes) and a NUL byte are errors; dbus-broker rejects
//! the first two as well. Leading zeros (`arg01`) are accepted, as dbus-daemon does. dbus-daemon
//! also silently drops every key after the sixteenth; we keep them all, so a rule with more than
//! sixteen keys means more here than on dbus-daemon.
//!
//! # Equality and printing
//!
//! Rules compare (and hash) by what they match, not by their text: key order, quoting and an
//! explicit `eavesdrop='false'` make no difference. [`MatchRule`]'s `Display` prints the keys in a
//! fixed order, each value in single quotes with `'` written as `'\''`, which dbus-daemon,
//! dbus-broker and [`MatchRule::parse`] read back as the same rule.
//!
//! # Matching
//!
//! [`MatchRule::matches`] evaluates a rule as a bus does, with the exact semantics of the
//! specification: see [`MatchRule::matches_in`] for each key. Body arguments are read through a
//! [`MessageArgs`], which decodes the body lazily and at most once, however many rules look at
//! it, and not at all when no rule that gets that far has an `arg` key.
//!
//! This module does no I/O and keeps no bus state: who owns which name is asked of the caller
//! (see [`MatchContext`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::str::FromStr;

use crate::codec::{Decoder, Endian};
use crate::error::{Error, ErrorKind, Result};
use crate::message::{Message, MessageType};
use crate::names::{BusName, InterfaceName, MAX_NAME_LEN, MemberName, ObjectPath};
use crate::signature::Signature;
use crate::value::skip_value;

/// The longest match rule text a bus accepts, in bytes (`DBUS_MAXIMUM_MATCH_RULE_LENGTH`).
pub const MAX_MATCH_RULE_LEN: usize = 1024;

/// The highest argument index an `argN` key may name (`DBUS_MAXIMUM_MATCH_RULE_ARG_NUMBER`).
pub const MAX_MATCH_ARG_INDEX: usize = 63;

/// How an `arg` key compares its value with a body argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArgKind {
    /// `argN='value'`: the argument is a STRING equal to the value.
    Str,
    /// `argNpath='value'`: the argument is a STRING or OBJECT_PATH equal to the value, or one of
    /// the two ends in `/` and is a prefix of the other.
    Path,
    /// `arg0namespace='a.b'`: the argument is a STRING equal to `a.b` or starting with `a.b.`.
    Namespace,
}

/// One `argN`, `argNpath` or `arg0namespace` key of a rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgMatch {
    index: u8,
    kind: ArgKind,
    value: Box<str>,
}

impl ArgMatch {
    /// The argument index (0..=63).
    pub fn index(&self) -> usize {
        usize::from(self.index)
    }

    /// How the value is compared.
    pub fn kind(&self) -> ArgKind {
        self.kind
    }

    /// The value to compare with.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a body argument (`None` when the body has no argument at this index) satisfies
    /// this key.
    pub fn matches(&self, arg: Option<Arg<'_>>) -> bool {
        let want = &*self.value;
        match (self.kind, arg) {
            (ArgKind::Str | ArgKind::Namespace, Some(Arg::Str(s))) => {
                if self.kind == ArgKind::Str {
                    s == want
                } else {
                    namespace_contains(want, s)
                }
            }
            (ArgKind::Path, Some(Arg::Str(s) | Arg::ObjectPath(s))) => arg_path_matches(want, s),
            _ => false,
        }
    }

    fn key_suffix(&self) -> &'static str {
        match self.kind {
            ArgKind::Str => "",
            ArgKind::Path => "path",
            ArgKind::Namespace => "namespace",
        }
    }
}

/// `argNpath`: equal, or one side ends in `/` and is a prefix of the other (the specification's
/// rule, as dbus-daemon implements it: `/aa/bb/` matches `/`, `/aa/`, `/aa/bb/cc` but not `/aa/bb`).
fn arg_path_matches(rule: &str, arg: &str) -> bool {
    if arg.len() < rule.len() && !arg.ends_with('/') {
        return false;
    }
    if rule.len() < arg.len() && !rule.ends_with('/') {
        return false;
    }
    let n = rule.len().min(arg.len());
    rule.as_bytes()[..n] == arg.as_bytes()[..n]
}

/// `arg0namespace`: the name itself or a dot-separated child (`com.example` contains
/// `com.example` and `com.example.a`, not `com.examples`).
fn namespace_contains(namespace: &str, name: &str) -> bool {
    match name.strip_prefix(namespace) {
        Some(rest) => rest.is_empty() || rest.starts_with('.'),
        None => false,
    }
}

/// A rule's `path` or `path_namespace` key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathMatch {
    /// `path='/a/b'`: PATH equals it.
    Path(ObjectPath<'static>),
    /// `path_namespace='/a'`: PATH is `/a` or below it (`/a/b`), not `/ab`; `/` matches every path.
    Namespace(ObjectPath<'static>),
}

impl PathMatch {
    /// Whether a message's PATH (`None` when it has none) satisfies this key.
    pub fn matches(&self, path: Option<&ObjectPath<'_>>) -> bool {
        match (self, path) {
            (PathMatch::Path(want), Some(p)) => p.as_str() == want.as_str(),
            (PathMatch::Namespace(ns), Some(p)) => p.starts_with_path(ns),
            (_, None) => false,
        }
    }

    /// The object path of either kind.
    pub fn object_path(&self) -> &ObjectPath<'static> {
        match self {
            PathMatch::Path(p) | PathMatch::Namespace(p) => p,
        }
    }
}

/// A parsed match rule. Build one with [`MatchRule::parse`] (or `str::parse`) or
/// [`MatchRule::builder`]; print it with `Display`. The default rule is the empty rule, which
/// matches every message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MatchRule {
    msg_type: Option<MessageType>,
    sender: Option<BusName<'static>>,
    interface: Option<InterfaceName<'static>>,
    member: Option<MemberName<'static>>,
    path: Option<PathMatch>,
    destination: Option<BusName<'static>>,
    /// Sorted by index, at most one per index.
    args: Vec<ArgMatch>,
    eavesdrop: bool,
}

fn bad(at: usize, what: impl Into<Cow<'static, str>>) -> Error {
    Error::at(ErrorKind::BadMatchRule, at).detail(what)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `_dbus_validate_bus_name` (and, with `namespace`, `_dbus_validate_bus_namespace`) of libdbus.
fn check_libdbus_bus_name(s: &str, namespace: bool) -> std::result::Result<(), &'static str> {
    let b = s.as_bytes();
    let name_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'-';
    let initial = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b'-';
    if b.is_empty() {
        return Err("must not be empty");
    }
    if b.len() > MAX_NAME_LEN {
        return Err("must be at most 255 bytes");
    }
    if let Some(body) = b.strip_prefix(b":") {
        let mut i = 0;
        while i < body.len() {
            if body[i] == b'.' {
                if !body.get(i + 1).is_some_and(|&c| name_char(c)) {
                    return Err("a '.' must be followed by [A-Za-z0-9_-]");
                }
                i += 2;
            } else if name_char(body[i]) {
                i += 1;
            } else {
                return Err("may only contain [A-Za-z0-9_-] and '.'");
            }
        }
        return Ok(());
    }
    if b[0] == b'.' {
        return Err("must not start with '.'");
    }
    if !initial(b[0]) {
        return Err("elements must start with [A-Za-z_-]");
    }
    let mut dots = 0;
    let mut i = 1;
    while i < b.len() {
        if b[i] == b'.' {
            match b.get(i + 1) {
                None => return Err("must not end with '.'"),
                Some(&c) if !initial(c) => {
                    return Err("elements must not be empty and must start with [A-Za-z_-]");
                }
                Some(_) => {}
            }
            dots += 1;
            i += 2;
        } else if name_char(b[i]) {
            i += 1;
        } else {
            return Err("may only contain [A-Za-z0-9_-] and '.'");
        }
    }
    if !namespace && dots == 0 {
        return Err("must have at least two elements separated by '.'");
    }
    Ok(())
}

fn message_type_from_name(s: &str) -> Option<MessageType> {
    Some(match s {
        "signal" => MessageType::SIGNAL,
        "method_call" => MessageType::METHOD_CALL,
        "method_return" => MessageType::METHOD_RETURN,
        "error" => MessageType::ERROR,
        _ => return None,
    })
}

/// Parse the key of an `arg` key: `(index, kind)`, or what is wrong with it.
fn parse_arg_key(key: &str) -> std::result::Result<(u8, ArgKind), String> {
    let rest = key.get(3..).unwrap_or_default();
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(format!(
            "key {key:?} starts with 'arg' but has no argument number (write arg0, arg7path, ...)"
        ));
    }
    let (number, suffix) = rest.split_at(digits);
    let kind = match suffix {
        "" => ArgKind::Str,
        "path" => ArgKind::Path,
        // dbus-daemon knows only the exact key `arg0namespace` (not `arg00namespace`).
        "namespace" if key == "arg0namespace" => ArgKind::Namespace,
        "namespace" => {
            return Err(format!(
                "key {key:?}: only argument 0 has a namespace match (arg0namespace)"
            ));
        }
        _ => {
            return Err(format!(
                "key {key:?} has {suffix:?} after the argument number; only argNpath and \
                 arg0namespace exist"
            ));
        }
    };
    let index = number.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    if index > MAX_MATCH_ARG_INDEX as u64 {
        return Err(format!(
            "key {key:?}: argument number {number} is larger than {MAX_MATCH_ARG_INDEX}"
        ));
    }
    if kind == ArgKind::Namespace && index != 0 {
        return Err(format!(
            "key {key:?}: only argument 0 has a namespace match (arg0namespace)"
        ));
    }
    Ok((index as u8, kind))
}

/// Check a value for a key; shared by the parser and the builder so both accept the same rules.
fn check_value(key: &str, value: &str) -> std::result::Result<(), String> {
    if value.contains('\0') {
        return Err(format!("{key}: a value must not contain NUL"));
    }
    let named = |r: Result<()>| r.map_err(|e| format!("{key}={value:?}: {e}"));
    match key {
        "sender" | "destination" => check_libdbus_bus_name(value, false)
            .map_err(|why| format!("{key}={value:?} is not a valid bus name: {why}")),
        "interface" => named(crate::names::check_interface(value)),
        "member" => named(crate::names::check_member(value)),
        "path" => named(crate::names::check_object_path(value)),
        "path_namespace" => {
            if value.len() > 1 && value.ends_with('/') {
                return Err(format!(
                    "path_namespace={value:?} must not end with '/' (write the path without it)"
                ));
            }
            named(crate::names::check_object_path(value))
        }
        "arg0namespace" => check_libdbus_bus_name(value, true).map_err(|why| {
            format!("arg0namespace={value:?} is not a bus or interface name prefix: {why}")
        }),
        _ => Ok(()),
    }
}

/// Read one value starting at `pos` (just after `=`): returns the value and the position after
/// it (after the ending comma, if any).
fn read_value(text: &str, mut pos: usize) -> Result<(String, usize)> {
    #[derive(PartialEq)]
    enum State {
        Plain,
        Quoted(usize),
        Backslash,
    }
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    let mut state = State::Plain;
    while pos < b.len() {
        let c = b[pos];
        pos += 1;
        match state {
            State::Plain => match c {
                b'\'' => state = State::Quoted(pos - 1),
                b',' => break,
                b'\\' => state = State::Backslash,
                _ => out.push(c),
            },
            State::Backslash => {
                if c != b'\'' {
                    out.push(b'\\');
                }
                out.push(c);
                state = State::Plain;
            }
            State::Quoted(_) => {
                if c == b'\'' {
                    state = State::Plain;
                } else {
                    out.push(c);
                }
            }
        }
    }
    match state {
        State::Backslash => out.push(b'\\'),
        State::Quoted(at) => {
            return Err(bad(at, "unbalanced quotes: this ' is never closed"));
        }
        State::Plain => {}
    }
    // The value is the rule text with ASCII quotes and backslashes removed: still UTF-8.
    let value = String::from_utf8(out).map_err(|_| bad(pos, "value is not UTF-8"))?;
    Ok((value, pos))
}

impl MatchRule {
    /// The empty rule, which matches every message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start building a rule key by key.
    pub fn builder() -> MatchRuleBuilder {
        MatchRuleBuilder::default()
    }

    /// Parse rule text as dbus-daemon does (see the [module documentation](self) for the
    /// grammar and the few places where we are stricter).
    ///
    /// # Errors
    /// [`ErrorKind::MatchRuleTooLong`] for text longer than 1024 bytes; otherwise
    /// [`ErrorKind::BadMatchRule`], with the byte offset and what was wrong: an unknown or
    /// repeated key, a key without `=`, unbalanced quotes, a bad `arg` key, an invalid name,
    /// type or `eavesdrop` value.
    pub fn parse(text: &str) -> Result<MatchRule> {
        if text.len() > MAX_MATCH_RULE_LEN {
            return Err(Error::new(ErrorKind::MatchRuleTooLong).detail(format!(
                "the rule is {} bytes, the limit is {MAX_MATCH_RULE_LEN}",
                text.len()
            )));
        }
        if let Some(at) = text.bytes().position(|c| c == 0) {
            return Err(bad(at, "a match rule must not contain NUL"));
        }
        let b = text.as_bytes();
        let mut rule = MatchRule::default();
        let mut pos = 0;
        loop {
            while pos < b.len() && is_space(b[pos]) {
                pos += 1;
            }
            if pos == b.len() {
                break;
            }
            let key_at = pos;
            while pos < b.len() && b[pos] != b'=' && !is_space(b[pos]) {
                pos += 1;
            }
            let key = &text[key_at..pos];
            if key.is_empty() {
                return Err(bad(key_at, "'=' with no key before it"));
            }
            while pos < b.len() && is_space(b[pos]) {
                pos += 1;
            }
            if b.get(pos) != Some(&b'=') {
                return Err(bad(
                    key_at,
                    format!("key {key:?} is not followed by '=' and a value"),
                ));
            }
            let value_at = pos + 1;
            let (value, next) = read_value(text, value_at)?;
            rule.set(key, value)
                .map_err(|why| bad(if why.1 { key_at } else { value_at }, why.0))?;
            pos = next;
        }
        Ok(rule)
    }

    /// Apply one `key=value`; the error says what was wrong and whether it is the key's fault
    /// (`true`) or the value's.
    fn set(&mut self, key: &str, value: String) -> std::result::Result<(), (String, bool)> {
        let twice = |key: &str| Err((format!("key {key:?} given twice"), true));
        let value_err = |why: String| (why, false);
        match key {
            "type" => {
                if self.msg_type.is_some() {
                    return twice(key);
                }
                self.msg_type = Some(message_type_from_name(&value).ok_or_else(|| {
                    value_err(format!(
                        "type={value:?} is not one of signal, method_call, method_return, error"
                    ))
                })?);
            }
            "sender" | "destination" | "interface" | "member" | "path" | "path_namespace" => {
                let taken = match key {
                    "sender" => self.sender.is_some(),
                    "destination" => self.destination.is_some(),
                    "interface" => self.interface.is_some(),
                    "member" => self.member.is_some(),
                    _ => self.path.is_some(),
                };
                if taken {
                    if key.starts_with("path") {
                        return Err((
                            format!(
                                "{key:?}: path or path_namespace given twice (they exclude each other)"
                            ),
                            true,
                        ));
                    }
                    return twice(key);
                }
                check_value(key, &value).map_err(value_err)?;
                match key {
                    "sender" => self.sender = Some(BusName::from_checked(value)),
                    "destination" => self.destination = Some(BusName::from_checked(value)),
                    "interface" => self.interface = Some(InterfaceName::from_checked(value)),
                    "member" => self.member = Some(MemberName::from_checked(value)),
                    "path" => self.path = Some(PathMatch::Path(ObjectPath::from_checked(value))),
                    _ => {
                        self.path = Some(PathMatch::Namespace(ObjectPath::from_checked(value)));
                    }
                }
            }
            "eavesdrop" => {
                self.eavesdrop = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(value_err(format!(
                            "eavesdrop={value:?} must be 'true' or 'false'"
                        )));
                    }
                }
            }
            _ if key.starts_with("arg") => {
                let (index, kind) = parse_arg_key(key).map_err(|why| (why, true))?;
                if self.args.iter().any(|a| a.index == index) {
                    return Err((
                        format!(
                            "argument {index} is matched twice (argN, argNpath and \
                             arg0namespace share one slot), second time by {key:?}"
                        ),
                        true,
                    ));
                }
                if kind == ArgKind::Namespace {
                    check_value("arg0namespace", &value).map_err(value_err)?;
                }
                check_value(key, &value).map_err(value_err)?;
                self.put_arg(ArgMatch {
                    index,
                    kind,
                    value: value.into(),
                });
            }
            _ => return Err((format!("unknown key {key:?}"), true)),
        }
        Ok(())
    }

    /// Insert or replace the key for `arg.index`, keeping `args` sorted.
    fn put_arg(&mut self, arg: ArgMatch) {
        match self.args.binary_search_by_key(&arg.index, |a| a.index) {
            Ok(i) => self.args[i] = arg,
            Err(i) => self.args.insert(i, arg),
        }
    }

    /// The `type` key.
    pub fn message_type(&self) -> Option<MessageType> {
        self.msg_type
    }

    /// The `sender` key: a unique or well-known name (see [`MatchContext::sender_owns`]).
    pub fn sender(&self) -> Option<&BusName<'static>> {
        self.sender.as_ref()
    }

    /// The `interface` key.
    pub fn interface(&self) -> Option<&InterfaceName<'static>> {
        self.interface.as_ref()
    }

    /// The `member` key.
    pub fn member(&self) -> Option<&MemberName<'static>> {
        self.member.as_ref()
    }

    /// The `path` key (an exact path; `None` for `path_namespace`).
    pub fn path(&self) -> Option<&ObjectPath<'static>> {
        match &self.path {
            Some(PathMatch::Path(p)) => Some(p),
            _ => None,
        }
    }

    /// The `path_namespace` key.
    pub fn path_namespace(&self) -> Option<&ObjectPath<'static>> {
        match &self.path {
            Some(PathMatch::Namespace(p)) => Some(p),
            _ => None,
        }
    }

    /// The `path` or `path_namespace` key, whichever the rule has.
    pub fn path_match(&self) -> Option<&PathMatch> {
        self.path.as_ref()
    }

    /// The `destination` key.
    pub fn destination(&self) -> Option<&BusName<'static>> {
        self.destination.as_ref()
    }

    /// Whether the rule has `eavesdrop='true'`.
    pub fn eavesdrop(&self) -> bool {
        self.eavesdrop
    }

    /// The `arg` keys, sorted by argument index (at most one per index).
    pub fn args(&self) -> &[ArgMatch] {
        &self.args
    }

    /// The `arg` key for argument `index`, if any.
    pub fn arg(&self, index: usize) -> Option<&ArgMatch> {
        self.args.iter().find(|a| a.index() == index)
    }

    /// Whether the rule looks at the message body at all.
    pub fn has_args(&self) -> bool {
        !self.args.is_empty()
    }

    /// How many leading body arguments the rule may need decoded (highest index + 1, or 0).
    pub fn args_needed(&self) -> usize {
        self.args.last().map_or(0, |a| a.index() + 1)
    }

    /// Whether the rule matches `msg` as a bus decides, with names compared literally (see
    /// [`MatchRule::matches_in`]). Decodes the body only when the rule has `arg` keys and the
    /// header keys match; to match one message against many rules, use
    /// [`MatchRule::matches_args`] with one shared [`MessageArgs`].
    pub fn matches(&self, msg: &Message) -> bool {
        self.matches_in(msg, &MessageArgs::new(msg), &MatchContext::bus())
    }

    /// As [`MatchRule::matches`], reading arguments through `args`, which must have been made
    /// from `msg` and may be shared by every rule `msg` is matched against.
    pub fn matches_args(&self, msg: &Message, args: &MessageArgs<'_>) -> bool {
        self.matches_in(msg, args, &MatchContext::bus())
    }

    /// As [`MatchRule::matches_args`], but the `sender` key is decided by `sender_owns(name)`:
    /// whether the connection that sent `msg` is the primary owner of `name` right now (see
    /// [`MatchContext::sender_owns`]). This is what a bus must use: `sender='org.example.App'`
    /// matches signals from the unique name that owns `org.example.App` at delivery time.
    pub fn matches_with(
        &self,
        msg: &Message,
        args: &MessageArgs<'_>,
        sender_owns: impl Fn(&BusName<'_>) -> bool,
    ) -> bool {
        self.matches_in(
            msg,
            args,
            &MatchContext::bus().with_sender_owns(&sender_owns),
        )
    }

    /// Whether the rule matches `msg`: every key the rule has must hold.
    ///
    /// - `type`: the message type is that one.
    /// - `interface`, `member`, `path`: the header field is present and equal. A message without
    ///   INTERFACE (a method call may omit it) never matches a rule with `interface`.
    /// - `path_namespace='/a'`: PATH is `/a` or starts with `/a/`; `/` matches every path.
    /// - `sender`: [`MatchContext::sender_owns`] says yes; by default, SENDER equals the name.
    /// - `destination` and `eavesdrop`, in the bus's view ([`MatchContext::bus`], the
    ///   specification since dbus 1.5.6): a message with DESTINATION matches only rules with
    ///   `eavesdrop='true'`, because the bus delivers it to its addressee whatever the rules say
    ///   and other connections see it only by eavesdropping (deprecated; buses may allow it only
    ///   to privileged connections, and monitors use BecomeMonitor instead). A rule with
    ///   `destination` matches only such eavesdropped messages whose addressee owns the name
    ///   ([`MatchContext::recipient_owns`]). In a connection's view
    ///   ([`MatchContext::received`]: filtering messages that were delivered to it),
    ///   `eavesdrop` is ignored and `destination` is compared with DESTINATION.
    /// - `argN`: body argument N is a STRING equal to the value (an OBJECT_PATH or any other
    ///   type never matches).
    /// - `argNpath`: argument N is a STRING or OBJECT_PATH equal to the value, or one of the two
    ///   ends in `/` and is a prefix of the other.
    /// - `arg0namespace='a.b'`: argument 0 is a STRING equal to `a.b` or starting with `a.b.`.
    ///
    /// A body that cannot be decoded counts as having no more arguments.
    pub fn matches_in(
        &self,
        msg: &Message,
        args: &MessageArgs<'_>,
        ctx: &MatchContext<'_>,
    ) -> bool {
        if self.msg_type.is_some_and(|t| t != msg.message_type()) {
            return false;
        }
        if let Some(want) = &self.interface {
            if args.interface.as_deref() != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(want) = &self.member {
            if args.member.as_deref() != Some(want.as_str()) {
                return false;
            }
        }
        if let Some(p) = &self.path {
            if !p.matches(args.path.as_ref()) {
                return false;
            }
        }
        if let Some(want) = &self.sender {
            let ok = match ctx.sender_owns {
                Some(owns) => owns(want),
                None => args.sender.as_deref() == Some(want.as_str()),
            };
            if !ok {
                return false;
            }
        }
        let msg_dest = args.destination.as_deref();
        if ctx.received {
            if let Some(want) = &self.destination {
                let ok = match ctx.recipient_owns {
                    Some(owns) => owns(want),
                    None => msg_dest == Some(want.as_str()),
                };
                if !ok {
                    return false;
                }
            }
        } else if let Some(want) = &self.destination {
            let Some(dest) = msg_dest else {
                return false;
            };
            if !self.eavesdrop {
                return false;
            }
            let ok = match ctx.recipient_owns {
                Some(owns) => owns(want),
                None => dest == want.as_str(),
            };
            if !ok {
                return false;
            }
        } else if msg_dest.is_some() && !self.eavesdrop {
            return false;
        }
        self.args.iter().all(|a| a.matches(args.get(a.index())))
    }
}

impl fmt::Display for MatchRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
            // Inside quotes nothing is special but the quote itself, which cannot be escaped
            // there: close the quotes, write \' and open them again.
            f.write_str("'")?;
            for (i, part) in value.split('\'').enumerate() {
                if i > 0 {
                    f.write_str("'\\''")?;
                }
                f.write_str(part)?;
            }
            f.write_str("'")
        }
        let mut sep = "";
        let mut field = |f: &mut fmt::Formatter<'_>, key: &str, value: &str| {
            f.write_str(sep)?;
            sep = ",";
            f.write_str(key)?;
            f.write_str("=")?;
            quoted(f, value)
        };
        if let Some(t) = self.msg_type {
            field(f, "type", t.name().unwrap_or_default())?;
        }
        if let Some(s) = &self.sender {
            field(f, "sender", s)?;
        }
        if let Some(i) = &self.interface {
            field(f, "interface", i)?;
        }
        if let Some(m) = &self.member {
            field(f, "member", m)?;
        }
        match &self.path {
            Some(PathMatch::Path(p)) => field(f, "path", p)?,
            Some(PathMatch::Namespace(p)) => field(f, "path_namespace", p)?,
            None => {}
        }
        if let Some(d) = &self.destination {
            field(f, "destination", d)?;
        }
        for a in &self.args {
            let key = format!("arg{}{}", a.index, a.key_suffix());
            field(f, &key, &a.value)?;
        }
        if self.eavesdrop {
            field(f, "eavesdrop", "true")?;
        }
        Ok(())
    }
}

impl FromStr for MatchRule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<&str> for MatchRule {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MatchRule {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

/// Builds a [`MatchRule`] key by key. Values are checked as the parser checks them; the first
/// problem is reported by [`MatchRuleBuilder::build`]. Setting a key again replaces it (`path`
/// and `path_namespace` replace each other, and so do the `arg` keys of one index).
#[derive(Clone, Debug, Default)]
pub struct MatchRuleBuilder {
    rule: MatchRule,
    error: Option<Error>,
}

impl MatchRuleBuilder {
    fn check(&mut self, key: &str, value: &str) -> bool {
        match check_value(key, value) {
            Ok(()) => true,
            Err(why) => {
                self.error
                    .get_or_insert_with(|| Error::new(ErrorKind::BadMatchRule).detail(why));
                false
            }
        }
    }

    /// `type`: one of the four message types.
    pub fn msg_type(mut self, msg_type: MessageType) -> Self {
        if msg_type.name().is_some() {
            self.rule.msg_type = Some(msg_type);
        } else {
            self.error.get_or_insert_with(|| {
                Error::new(ErrorKind::BadMatchRule)
                    .detail(format!("type: {msg_type} is not a known message type"))
            });
        }
        self
    }

    /// `sender`: a unique or well-known name.
    pub fn sender(mut self, name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        if self.check("sender", name) {
            self.rule.sender = Some(BusName::from_checked(name.to_owned()));
        }
        self
    }

    /// `interface`.
    pub fn interface(mut self, name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        if self.check("interface", name) {
            self.rule.interface = Some(InterfaceName::from_checked(name.to_owned()));
        }
        self
    }

    /// `member`.
    pub fn member(mut self, name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        if self.check("member", name) {
            self.rule.member = Some(MemberName::from_checked(name.to_owned()));
        }
        self
    }

    /// `path` (replaces a `path_namespace`).
    pub fn path(mut self, path: impl AsRef<str>) -> Self {
        let path = path.as_ref();
        if self.check("path", path) {
            self.rule.path = Some(PathMatch::Path(ObjectPath::from_checked(path.to_owned())));
        }
        self
    }

    /// `path_namespace` (replaces a `path`); must not end in `/` unless it is `/`.
    pub fn path_namespace(mut self, path: impl AsRef<str>) -> Self {
        let path = path.as_ref();
        if self.check("path_namespace", path) {
            self.rule.path = Some(PathMatch::Namespace(ObjectPath::from_checked(
                path.to_owned(),
            )));
        }
        self
    }

    /// `destination`.
    pub fn destination(mut self, name: impl AsRef<str>) -> Self {
        let name = name.as_ref();
        if self.check("destination", name) {
            self.rule.destination = Some(BusName::from_checked(name.to_owned()));
        }
        self
    }

    fn put_arg(mut self, index: usize, kind: ArgKind, value: &str) -> Self {
        if index > MAX_MATCH_ARG_INDEX {
            self.error.get_or_insert_with(|| {
                Error::new(ErrorKind::BadMatchRule).detail(format!(
                    "argument number {index} is larger than {MAX_MATCH_ARG_INDEX}"
                ))
            });
            return self;
        }
        let key = if kind == ArgKind::Namespace {
            "arg0namespace"
        } else {
            "arg"
        };
        if self.check(key, value) {
            self.rule.put_arg(ArgMatch {
                index: index as u8,
                kind,
                value: value.into(),
            });
        }
        self
    }

    /// `argN='value'` for `index` N in 0..=63.
    pub fn arg(self, index: usize, value: impl AsRef<str>) -> Self {
        self.put_arg(index, ArgKind::Str, value.as_ref())
    }

    /// `argNpath='value'` for `index` N in 0..=63.
    pub fn arg_path(self, index: usize, value: impl AsRef<str>) -> Self {
        self.put_arg(index, ArgKind::Path, value.as_ref())
    }

    /// `arg0namespace='value'`: a bus or interface name prefix such as `org.example`.
    pub fn arg0_namespace(self, namespace: impl AsRef<str>) -> Self {
        self.put_arg(0, ArgKind::Namespace, namespace.as_ref())
    }

    /// `eavesdrop='true'` or (the default) `'false'`.
    pub fn eavesdrop(mut self, eavesdrop: bool) -> Self {
        self.rule.eavesdrop = eavesdrop;
        self
    }

    /// Finish the rule.
    ///
    /// # Errors
    /// [`ErrorKind::BadMatchRule`] for the first invalid value given.
    pub fn build(self) -> Result<MatchRule> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.rule),
        }
    }
}

/// What the caller knows beyond the message: who owns the names in a rule's `sender` and
/// `destination` keys, and whether the message is being routed by a bus or was received.
///
/// The SENDER field of a message relayed by a bus always holds the sender's unique name, so a
/// rule `sender='org.example.App'` can only be decided by asking who owns `org.example.App` now.
/// dbus-daemon does exactly that (`connection_is_primary_owner` in `bus/signals.c`): the rule
/// matches when the sending connection is the primary owner of the rule's name, a unique name
/// being owned by its own connection and `org.freedesktop.DBus` by the bus. Comparing the SENDER
/// string with a well-known name instead is spoofable and never matches on a real bus.
#[derive(Clone, Copy, Default)]
pub struct MatchContext<'a> {
    sender_owns: Option<&'a dyn Fn(&BusName<'_>) -> bool>,
    recipient_owns: Option<&'a dyn Fn(&BusName<'_>) -> bool>,
    received: bool,
}

impl fmt::Debug for MatchContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchContext")
            .field("sender_owns", &self.sender_owns.map(|_| "<fn>"))
            .field("recipient_owns", &self.recipient_owns.map(|_| "<fn>"))
            .field("received", &self.received)
            .finish()
    }
}

impl<'a> MatchContext<'a> {
    /// A bus deciding which connections get a copy of a message (the specification's
    /// semantics, `eavesdrop` included), with names compared literally with SENDER and
    /// DESTINATION until resolvers are set.
    pub fn bus() -> Self {
        Self::default()
    }

    /// A connection filtering messages it has received (they were delivered to it already):
    /// `eavesdrop` is ignored, and a `destination` key is compared with DESTINATION.
    pub fn received() -> Self {
        Self {
            received: true,
            ..Self::default()
        }
    }

    /// Decide the `sender` key with `owns(name)`: whether the connection that sent the message
    /// is the primary owner of `name` now. A daemon answers from its name registry (a unique
    /// name is owned by its connection; `org.freedesktop.DBus` by the bus itself); a client
    /// answers from the owners it tracks with `GetNameOwner` and `NameOwnerChanged`.
    pub fn with_sender_owns(mut self, owns: &'a dyn Fn(&BusName<'_>) -> bool) -> Self {
        self.sender_owns = Some(owns);
        self
    }

    /// Decide the `destination` key with `owns(name)`: whether the connection the message is
    /// addressed to is the primary owner of `name`.
    pub fn with_recipient_owns(mut self, owns: &'a dyn Fn(&BusName<'_>) -> bool) -> Self {
        self.recipient_owns = Some(owns);
        self
    }
}

/// A body argument as `arg` keys see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'m> {
    /// A STRING.
    Str(&'m str),
    /// An OBJECT_PATH.
    ObjectPath(&'m str),
    /// Any other type, which no `arg` key matches.
    Other,
}

#[derive(Debug, Default)]
struct ArgsState<'m> {
    args: Vec<Arg<'m>>,
    /// Where the next argument starts, in the body and in the signature.
    pos: usize,
    sig_i: usize,
    /// No more arguments (the signature ended, or the body could not be decoded).
    end: bool,
}

/// The leading body arguments of one message, decoded lazily and at most once: share one
/// `MessageArgs` between all the rules a message is matched against. Nothing is decoded until a
/// rule asks for an argument; then arguments are decoded up to the one asked for, and later
/// requests continue where the last stopped. Strings and object paths borrow from the body;
/// other arguments are skipped without being built.
///
/// It also holds the header fields rules compare (INTERFACE, MEMBER, PATH, SENDER,
/// DESTINATION), read once, so checking a rule that fails on a header key costs a few string
/// comparisons.
#[derive(Debug)]
pub struct MessageArgs<'m> {
    interface: Option<InterfaceName<'m>>,
    member: Option<MemberName<'m>>,
    path: Option<ObjectPath<'m>>,
    sender: Option<BusName<'m>>,
    destination: Option<BusName<'m>>,
    body: &'m [u8],
    sig: Signature<'m>,
    endian: Endian,
    n_fds: u32,
    state: RefCell<ArgsState<'m>>,
}

impl<'m> MessageArgs<'m> {
    /// A lazy view of `msg`'s arguments; decodes nothing yet.
    pub fn new(msg: &'m Message) -> Self {
        Self {
            interface: msg.interface(),
            member: msg.member(),
            path: msg.path(),
            sender: msg.sender(),
            destination: msg.destination(),
            body: msg.body_bytes(),
            sig: msg.signature(),
            endian: msg.endian(),
            n_fds: msg.unix_fds().unwrap_or(0),
            state: RefCell::new(ArgsState::default()),
        }
    }

    /// Argument `index`, or `None` when the body has fewer arguments (or could not be decoded
    /// that far).
    pub fn get(&self, index: usize) -> Option<Arg<'m>> {
        let mut guard = self.state.borrow_mut();
        let st = &mut *guard;
        if index >= st.args.len() && !st.end {
            self.decode_up_to(st, index);
        }
        st.args.get(index).copied()
    }

    /// How many arguments have been decoded so far (0 until a rule with an `arg` key got that
    /// far).
    pub fn decoded(&self) -> usize {
        self.state.borrow().args.len()
    }

    fn decode_up_to(&self, st: &mut ArgsState<'m>, index: usize) {
        let sig = self.sig.as_bytes();
        let mut dec = Decoder::new(self.body, self.endian, self.n_fds);
        dec.set_pos(st.pos);
        while st.args.len() <= index {
            let Some(&code) = sig.get(st.sig_i) else {
                st.end = true;
                break;
            };
            let arg = match code {
                // An OBJECT_PATH is a STRING on the wire, checked when the message was decoded.
                b's' | b'o' => dec.str().map(|s| {
                    st.sig_i += 1;
                    if code == b's' {
                        Arg::Str(s)
                    } else {
                        Arg::ObjectPath(s)
                    }
                }),
                _ => skip_value(&mut dec, sig, &mut st.sig_i).map(|()| Arg::Other),
            };
            match arg {
                Ok(a) => st.args.push(a),
                Err(_) => {
                    st.end = true;
                    break;
                }
            }
        }
        st.pos = dec.pos();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Endian;
    use bytes::Bytes;

    fn parse(text: &str) -> MatchRule {
        match MatchRule::parse(text) {
            Ok(r) => r,
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn parse_err(text: &str) -> Error {
        match MatchRule::parse(text) {
            Ok(r) => panic!("{text:?} should be rejected, parsed as {r:?}"),
            Err(e) => e,
        }
    }

    /// Display, parse again: the same rule, and the same text again.
    fn assert_round_trip(rule: &MatchRule) {
        let text = rule.to_string();
        let back = parse(&text);
        assert_eq!(&back, rule, "{text}");
        assert_eq!(back.to_string(), text);
    }

    // conformance/testbus.md item 22: every key, both path keys, the arg ranges, eavesdrop,
    // whitespace, quoting, the empty rule.
    #[test]
    fn checklist_valid_rules_parse_and_round_trip() {
        let mut valid: Vec<String> = [
            "",
            "    \t",
            "type='signal'",
            "type='method_call'",
            "type='method_return'",
            "type='error'",
            "sender='org.freedesktop.DBus'",
            "sender=':1.42'",
            "interface='org.freedesktop.DBus.Properties'",
            "member='PropertiesChanged'",
            "path='/org/freedesktop/DBus'",
            "path='/'",
            "path_namespace='/org/freedesktop'",
            "path_namespace='/'",
            "destination=':1.0'",
            "arg0namespace='org.example'",
            "arg0namespace='com'",
            "eavesdrop='true'",
            "eavesdrop='false'",
            "arg0=''",
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',\
             member='NameOwnerChanged',path='/org/freedesktop/DBus',arg0='org.example.App'",
            " type ='signal',\n\tmember='Foo'",
            "type=signal,member=Foo",
            "member=Na'me'",
            "arg0='a,b',arg1='x=y',arg2='it'\\''s'",
            "arg3='C:\\path\\'",
            "type='signal',",
        ]
        .map(String::from)
        .to_vec();
        for n in 0..=MAX_MATCH_ARG_INDEX {
            valid.push(format!("arg{n}='x'"));
            valid.push(format!("arg{n}path='/x/'"));
        }
        for text in &valid {
            let rule = parse(text);
            assert_round_trip(&rule);
        }
        let all = parse(&valid[20]);
        assert_eq!(all.message_type(), Some(MessageType::SIGNAL));
        assert_eq!(
            all.sender().map(|s| s.as_str()),
            Some("org.freedesktop.DBus")
        );
        assert_eq!(all.member().map(|s| s.as_str()), Some("NameOwnerChanged"));
        assert_eq!(
            all.path().map(|s| s.as_str()),
            Some("/org/freedesktop/DBus")
        );
        assert_eq!(all.arg(0).map(ArgMatch::value), Some("org.example.App"));
        assert_eq!(all.args_needed(), 1);
        let ws = parse(" type ='signal',\n\tmember='Foo'");
        assert_eq!(ws, parse("type='signal',member='Foo'"));
        assert_eq!(parse(""), MatchRule::new());
        assert_eq!(parse("    \t"), MatchRule::new());
        assert_eq!(parse("eavesdrop='false'"), MatchRule::new());
        assert!(parse("eavesdrop='true'").eavesdrop());
        // dbus-monitor sends eavesdrop twice: the last one wins, as in dbus-daemon.
        assert!(!parse("eavesdrop='true',eavesdrop='false'").eavesdrop());
        assert_eq!(parse("arg63='x'").args_needed(), 64);
        assert_eq!(parse("arg07='x'"), parse("arg7='x'"));
        let ns = parse("path_namespace='/org/freedesktop'");
        assert_eq!(ns.path(), None);
        assert_eq!(
            ns.path_namespace().map(|p| p.as_str()),
            Some("/org/freedesktop")
        );
    }

    // conformance/testbus.md item 23, with what the error must mention.
    #[test]
    fn checklist_invalid_rules_are_rejected_with_a_reason() {
        let invalid: &[(&str, &str)] = &[
            ("blah='signal'", "unknown key"),
            ("service='youpi'", "unknown key"),
            ("type='signal',type='method_call'", "given twice"),
            ("member='A',member='B'", "given twice"),
            ("sender=':1.1',sender=':1.2'", "given twice"),
            ("interface='a.b',interface='a.c'", "given twice"),
            ("destination=':1.1',destination=':1.1'", "given twice"),
            ("arg0='foo',arg0='bar'", "twice"),
            ("arg3='foo',arg3='bar'", "twice"),
            ("arg30='foo',arg30='bar'", "twice"),
            ("arg0='foo',arg0path='/bar'", "twice"),
            ("arg0namespace='a.b',arg0='x'", "twice"),
            ("arg64='foo'", "larger than 63"),
            ("arg300='foo'", "larger than 63"),
            ("arg99999999999999999999999='foo'", "larger than 63"),
            ("arg='foo'", "no argument number"),
            ("argv='foo'", "no argument number"),
            ("argument='foo'", "no argument number"),
            ("arg+1='foo'", "no argument number"),
            ("arg3junk='foo'", "after the argument number"),
            ("arg0pathx='foo'", "after the argument number"),
            ("arg1namespace='foo'", "only argument 0"),
            ("arg00namespace='foo'", "only argument 0"),
            ("arg0namespace=''", "empty"),
            ("arg0namespace='foo.'", "end with '.'"),
            ("arg0namespace='foo.bar.'", "end with '.'"),
            ("arg0namespace='foo..'", "arg0namespace"),
            ("arg0namespace='foo.bar..'", "arg0namespace"),
            ("arg0namespace='.foo'", "arg0namespace"),
            ("arg0namespace='1foo'", "arg0namespace"),
            ("path_namespace='/foo/'", "must not end with '/'"),
            ("path='/foo',path_namespace='/foo'", "exclude each other"),
            ("path_namespace='/foo',path='/foo'", "exclude each other"),
            ("path='/a',path='/b'", "path or path_namespace given twice"),
            ("sender='org'", "sender"),
            ("sender='org..x'", "sender"),
            ("sender=''", "sender"),
            ("sender=':a..b'", "sender"),
            ("interface='abc@def++'", "interface"),
            ("interface='org'", "interface"),
            ("interface=''", "interface"),
            ("member='a.b'", "member"),
            ("member='1a'", "member"),
            ("member=''", "member"),
            ("path='foo'", "path"),
            ("path='/a//b'", "path"),
            ("path='/a/'", "path"),
            ("path=''", "path"),
            ("destination='x'", "destination"),
            ("destination='a.1b'", "destination"),
            ("type='chouin'", "not one of"),
            ("type='Signal'", "not one of"),
            ("type=''", "not one of"),
            ("type= 'signal'", "not one of"),
            ("type='signal' ", "not one of"),
            ("type", "not followed by '='"),
            ("type='signal',member", "not followed by '='"),
            ("type 'signal'", "not followed by '='"),
            ("='signal'", "no key"),
            ("member='Foo", "unbalanced"),
            ("member='Foo',arg0='x", "unbalanced"),
            ("arg0=x'", "unbalanced"),
            ("eavesdrop='yes'", "eavesdrop"),
            ("eavesdrop=''", "eavesdrop"),
            ("eavesdrop='TRUE'", "eavesdrop"),
            ("arg0='a\0b'", "NUL"),
            ("type='signal',,member='x'", "unknown key"),
        ];
        for (text, why) in invalid {
            let e = parse_err(text);
            assert_eq!(e.kind(), ErrorKind::BadMatchRule, "{text:?}: {e}");
            let shown = e.to_string();
            assert!(
                shown.contains(why),
                "{text:?}: {shown:?} should mention {why:?}"
            );
            assert!(e.offset().is_some(), "{text:?}: {shown}");
        }
    }

    #[test]
    fn errors_point_at_the_offending_key_or_value() {
        let e = parse_err("type='signal',blah='x'");
        assert_eq!(e.offset(), Some(14));
        assert!(e.to_string().contains("\"blah\""), "{e}");
        let e = parse_err("type='signal',member='1x'");
        assert_eq!(e.offset(), Some(21), "{e}");
        let e = parse_err("member='Foo',arg0='x");
        assert_eq!(e.offset(), Some(18), "{e}");
    }

    #[test]
    fn length_cap_is_1024_bytes() {
        let at_limit = format!("arg0='{}'", "x".repeat(MAX_MATCH_RULE_LEN - 7));
        assert_eq!(at_limit.len(), MAX_MATCH_RULE_LEN);
        parse(&at_limit);
        let over = format!("arg0='{}'", "x".repeat(MAX_MATCH_RULE_LEN - 6));
        let e = parse_err(&over);
        assert_eq!(e.kind(), ErrorKind::MatchRuleTooLong);
        assert!(e.to_string().contains("1025"), "{e}");
    }

    #[test]
    fn quoting_follows_dbus_daemon() {
        let arg0 = |text: &str| parse(text).arg(0).map(|a| a.value().to_owned());
        // Outside quotes \' is an apostrophe, any other backslash is itself.
        assert_eq!(
            arg0("arg0=Time: 8 o\\'clock").as_deref(),
            Some("Time: 8 o'clock")
        );
        assert_eq!(arg0("arg0=escap\\e").as_deref(), Some("escap\\e"));
        assert_eq!(arg0("arg0=trailing\\").as_deref(), Some("trailing\\"));
        assert_eq!(arg0("arg0=a\\,b").as_deref(), Some("a\\,b"));
        // Inside quotes a backslash is itself, and cannot escape the quote.
        assert_eq!(arg0("arg0='a\\b'").as_deref(), Some("a\\b"));
        assert_eq!(arg0("arg0='a\\'").as_deref(), Some("a\\"));
        assert_eq!(arg0("arg0='it'\\''s'").as_deref(), Some("it's"));
        assert_eq!(arg0("arg0='a,b'").as_deref(), Some("a,b"));
        assert_eq!(arg0("arg0=''''").as_deref(), Some(""));
        assert_eq!(arg0("arg0= x y ").as_deref(), Some(" x y "));
        // dbus-daemon's own equality table (bus/signals.c `equality_tests`).
        let pairs = [
            ("type='signal'", "type='signal'"),
            (
                "type='signal',interface='foo.bar'",
                "interface='foo.bar',type='signal'",
            ),
            ("type='signal',member='bar'", "member='bar',type='signal'"),
            (
                "type='method_call',sender=':1.0'",
                "sender=':1.0',type='method_call'",
            ),
            (
                "type='method_call',destination=':1.0'",
                "destination=':1.0',type='method_call'",
            ),
            (
                "type='method_call',path='/foo/bar'",
                "path='/foo/bar',type='method_call'",
            ),
            (
                "type='method_call',arg0='blah'",
                "arg0='blah',type='method_call'",
            ),
            (
                "type='method_call',arg0='boo'",
                "arg0='boo',type='method_call'",
            ),
            (
                "type='method_call',arg0='blah',arg1='baz'",
                "arg0='blah',arg1='baz',type='method_call'",
            ),
            (
                "type='method_call',arg3='foosh'",
                "arg3='foosh',type='method_call'",
            ),
            ("arg3='fool'", "arg3='fool'"),
            ("arg0namespace='fool'", "arg0namespace='fool'"),
            ("member='food'", "member='food'"),
            ("member=escape", "member='escape'"),
            ("member=icecream", "member=ice'cream'"),
            (
                "arg0='comma,type=comma',type=signal",
                "type=signal,arg0='comma,type=comma'",
            ),
            ("arg0=escap\\e", "arg0='escap\\e'"),
            ("arg0=Time: 8 o\\'clock", "arg0='Time: 8 o'\\''clock'"),
        ];
        for (i, (a, b)) in pairs.iter().enumerate() {
            let (ra, rb) = (parse(a), parse(b));
            assert_eq!(ra, rb, "{a:?} == {b:?}");
            assert_eq!(ra.to_string(), rb.to_string());
            assert_round_trip(&ra);
            for (j, (_, other)) in pairs.iter().enumerate() {
                if i != j {
                    assert_ne!(ra, parse(other), "{a:?} != {other:?}");
                }
            }
        }
        // dbus-daemon's "extra whitespace and useless quotes" case.
        let big = "type='signal',sender='org.freedesktop.DBusSender',\
                   interface='org.freedesktop.DBusInterface',member='Foo',path='/bar/foo',\
                   destination=':452345.34'";
        let noisy = "    type='signal',  \tsender='org.freedes''ktop.DBusSender',   \
                     interface='org.freedesktop.DBusInterface''''', \tmember='Foo',\
                     path='/bar/foo',destination=':452345.34'''''";
        assert_eq!(parse(big), parse(noisy));
        assert_eq!(parse(noisy).to_string(), big);
    }

    #[test]
    fn display_quotes_apostrophes_and_commas() {
        let rule = MatchRule::builder()
            .msg_type(MessageType::SIGNAL)
            .arg(0, "it's, a \\ test")
            .arg_path(2, "/a'b/")
            .arg(5, "")
            .eavesdrop(true)
            .build()
            .unwrap();
        assert_eq!(
            rule.to_string(),
            "type='signal',arg0='it'\\''s, a \\ test',arg2path='/a'\\''b/',arg5='',\
             eavesdrop='true'"
        );
        assert_round_trip(&rule);
    }

    #[test]
    fn builder_checks_values_and_replaces_keys() {
        let built = MatchRule::builder()
            .msg_type(MessageType::SIGNAL)
            .sender("org.freedesktop.DBus")
            .interface("org.freedesktop.DBus")
            .member("NameOwnerChanged")
            .path("/x")
            .path_namespace("/org/freedesktop/DBus")
            .arg(0, "first")
            .arg0_namespace("org.example")
            .arg_path(3, "/a/")
            .build()
            .unwrap();
        assert_eq!(
            built,
            parse(
                "arg3path='/a/',arg0namespace='org.example',member='NameOwnerChanged',\
                 type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',\
                 path_namespace='/org/freedesktop/DBus'"
            )
        );
        assert!(built.has_args());
        assert_eq!(built.args_needed(), 4);
        for bad in [
            MatchRule::builder().arg(64, "x"),
            MatchRule::builder().member("a.b"),
            MatchRule::builder().interface("x"),
            MatchRule::builder().path_namespace("/a/"),
            MatchRule::builder().sender("x"),
            MatchRule::builder().destination(""),
            MatchRule::builder().arg0_namespace("a."),
            MatchRule::builder().arg(1, "a\0b"),
            MatchRule::builder().msg_type(MessageType(9)),
        ] {
            let e = bad.build().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::BadMatchRule, "{e}");
        }
    }

    fn signal(body_first: &str) -> Message {
        Message::signal("/foo/TheObjectManager", "org.example.Iface", "Frobated")
            .sender(":1.7")
            .body(&(body_first, 3i32))
            .build()
            .unwrap()
    }

    /// The message matching tables of dbus-daemon's `bus/signals.c` tests.
    #[test]
    fn daemon_matching_examples() {
        let msg = signal("foobar");
        for rule in [
            "type='signal'",
            "member='Frobated'",
            "arg0='foobar'",
            "type='signal',member='Frobated'",
            "type='signal',member='Frobated',arg0='foobar'",
            "member='Frobated',arg0='foobar'",
            "type='signal',arg0='foobar'",
            // "exactly equal" also holds for argNpath when the value is no path.
            "arg0path='foobar'",
            "arg0namespace='foobar'",
            "type='signal',path_namespace='/'",
            "type='signal',path_namespace='/foo'",
            "type='signal',path_namespace='/foo/TheObjectManager'",
            "interface='org.example.Iface'",
            "sender=':1.7'",
        ] {
            assert!(parse(rule).matches(&msg), "{rule} should match");
        }
        for rule in [
            "type='method_call'",
            "type='error'",
            "type='method_return'",
            "type='signal',member='Oopsed'",
            "arg0='blah'",
            "arg1='foobar'",
            "arg2='foobar'",
            "arg3='foobar'",
            "arg0='3'",
            "arg1='3'",
            "arg0='foobar',arg1='abcdef'",
            "arg0='foobar',arg1='abcdef',arg2='abcdefghi',arg3='abcdefghi',arg4='abcdefghi'",
            "arg0='foobar',arg1='abcdef',arg4='abcdefghi',arg3='abcdefghi',arg2='abcdefghi'",
            "arg0path='foo'",
            "arg0path='foobar/'",
            "arg1path='3'",
            "arg0namespace='foo'",
            "arg0namespace='foo',arg1='abcdef'",
            "arg0namespace='moo'",
            "type='signal',path_namespace='/bar'",
            "type='signal',path_namespace='/bar/TheObjectManager'",
            "type='signal',path_namespace='/foo/The'",
            "path='/foo'",
            "interface='org.example.Other'",
            "sender=':1.8'",
        ] {
            assert!(!parse(rule).matches(&msg), "{rule} should not match");
        }

        let msg = signal("com.example.backend.foo");
        for rule in [
            "arg0namespace='com.example.backend'",
            "arg0namespace='com.example'",
            "arg0namespace='com'",
            "arg0namespace='com.example.backend.foo'",
        ] {
            assert!(parse(rule).matches(&msg), "{rule} should match");
        }
        for rule in [
            "arg0namespace='com.example.backend.foo.bar'",
            "arg0namespace='com.example.backend.foobar'",
            "arg0namespace='com.example.backend.fo'",
            "arg0namespace='com.example.backen'",
            "arg0namespace='com.exampl'",
            "arg0namespace='co'",
        ] {
            assert!(!parse(rule).matches(&msg), "{rule} should not match");
        }
    }

    fn one_arg(path: &str, as_object_path: bool) -> Message {
        let b = Message::signal("/a", "org.example.Iface", "Changed");
        if as_object_path {
            b.body(&(ObjectPath::new(path).unwrap(),)).build().unwrap()
        } else {
            b.body(&(path,)).build().unwrap()
        }
    }

    /// The specification's argNpath example: arg0path='/aa/bb/' matches first arguments '/',
    /// '/aa/', '/aa/bb/', '/aa/bb/cc/' and '/aa/bb/cc', not '/aa/b', '/aa' or even '/aa/bb'.
    #[test]
    fn arg_path_example_table_from_the_specification() {
        let rule = parse("arg0path='/aa/bb/'");
        for arg in ["/", "/aa/", "/aa/bb/", "/aa/bb/cc/", "/aa/bb/cc"] {
            assert!(rule.matches(&one_arg(arg, false)), "string {arg}");
        }
        // Only these are valid object paths.
        for arg in ["/", "/aa/bb/cc"] {
            assert!(rule.matches(&one_arg(arg, true)), "object path {arg}");
        }
        for arg in ["/aa/b", "/aa", "/aa/bb"] {
            assert!(!rule.matches(&one_arg(arg, false)), "string {arg}");
            assert!(!rule.matches(&one_arg(arg, true)), "object path {arg}");
        }
        // The dconf use: a watcher of /ca/example/foo/ hears about keys below it and about
        // changes to a whole parent directory.
        let dconf = parse("arg0path='/ca/example/foo/'");
        assert!(dconf.matches(&one_arg("/ca/example/foo/bar", false)));
        assert!(dconf.matches(&one_arg("/ca/example/", false)));
        assert!(!dconf.matches(&one_arg("/ca/example/foobar", false)));
        assert!(!parse("arg0path='/x/'").matches(&one_arg("", false)));
        assert!(parse("arg0path=''").matches(&one_arg("", false)));
    }

    #[test]
    fn arg_n_matches_only_strings() {
        let path_arg = one_arg("/foo", true);
        assert!(!parse("arg0='/foo'").matches(&path_arg));
        assert!(parse("arg0path='/foo'").matches(&path_arg));
        assert!(!parse("arg0namespace='foo'").matches(&one_arg("/foo", true)));
        let mixed = Message::signal("/a", "org.example.Iface", "Mixed")
            .body(&(7u32, vec!["x", "y"], (1u8, "s"), "target", 2.5f64, "last"))
            .build()
            .unwrap();
        assert!(parse("arg3='target'").matches(&mixed));
        assert!(parse("arg3='target',arg5='last'").matches(&mixed));
        assert!(!parse("arg1='x'").matches(&mixed));
        assert!(!parse("arg0='7'").matches(&mixed));
        assert!(!parse("arg2='s'").matches(&mixed));
        assert!(!parse("arg6=''").matches(&mixed));
    }

    #[test]
    fn path_namespace_respects_element_boundaries() {
        let rule = parse("path_namespace='/a'");
        let at = |p: &str| {
            Message::signal(p, "org.example.Iface", "S")
                .build()
                .unwrap()
        };
        assert!(rule.matches(&at("/a")));
        assert!(rule.matches(&at("/a/b")));
        assert!(rule.matches(&at("/a/b/c")));
        assert!(!rule.matches(&at("/ab")));
        assert!(!rule.matches(&at("/")));
        assert!(!rule.matches(&at("/b/a")));
        assert!(parse("path='/a'").matches(&at("/a")));
        assert!(!parse("path='/a'").matches(&at("/a/b")));
    }

    #[test]
    fn interface_key_never_matches_a_message_without_interface() {
        let call = Message::method_call("/obj", "Ping").build().unwrap();
        assert!(call.interface().is_none());
        assert!(!parse("interface='org.freedesktop.DBus.Peer'").matches(&call));
        assert!(parse("member='Ping'").matches(&call));
        assert!(parse("type='method_call',member='Ping',path='/obj'").matches(&call));
        assert!(!parse("sender=':1.1'").matches(&call), "no SENDER field");
    }

    #[test]
    fn destination_and_eavesdrop() {
        let unicast = Message::signal("/a", "org.example.Iface", "S")
            .sender(":1.7")
            .destination(":1.5")
            .build()
            .unwrap();
        let args = MessageArgs::new(&unicast);
        let bus = MatchContext::bus();
        let received = MatchContext::received();
        let check =
            |rule: &str, ctx: &MatchContext<'_>| parse(rule).matches_in(&unicast, &args, ctx);
        // The bus delivers unicast messages to their addressee anyway; rules see them only
        // when they eavesdrop.
        assert!(!check("type='signal'", &bus));
        assert!(!check("", &bus));
        assert!(check("type='signal',eavesdrop='true'", &bus));
        assert!(!check("destination=':1.5'", &bus));
        assert!(check("destination=':1.5',eavesdrop='true'", &bus));
        assert!(!check("destination=':1.6',eavesdrop='true'", &bus));
        // A connection looking at what it received: eavesdrop plays no part.
        assert!(check("type='signal'", &received));
        assert!(check("destination=':1.5'", &received));
        assert!(!check("destination=':1.6'", &received));
        // A broadcast has no DESTINATION: a destination key never matches it.
        let broadcast = signal("x");
        assert!(parse("type='signal'").matches(&broadcast));
        assert!(parse("type='signal',eavesdrop='true'").matches(&broadcast));
        assert!(!parse("destination=':1.5',eavesdrop='true'").matches(&broadcast));
        // The addressee is resolved by the caller for well-known destinations.
        let owns = |n: &BusName<'_>| n.as_str() == "org.example.Service";
        let ctx = MatchContext::bus().with_recipient_owns(&owns);
        let rule = parse("destination='org.example.Service',eavesdrop='true'");
        assert!(rule.matches_in(&unicast, &args, &ctx));
        assert!(!rule.matches(&unicast));
    }

    /// conformance/testbus.md item 26: sender='well.known' is an ownership lookup.
    #[test]
    fn sender_is_resolved_by_the_caller() {
        let msg = signal("x"); // SENDER :1.7
        let args = MessageArgs::new(&msg);
        let rule = parse("sender='org.example.App',member='Frobated'");
        // Literal comparison: a bus never stamps a well-known name, so this cannot match.
        assert!(!rule.matches(&msg));
        let owner_is_sender = |name: &BusName<'_>| name.as_str() == "org.example.App";
        assert!(rule.matches_with(&msg, &args, owner_is_sender));
        assert!(!rule.matches_with(&msg, &args, |_| false));
        // The resolver is asked only for rules with a sender key.
        assert!(parse("member='Frobated'").matches_with(&msg, &args, |_| unreachable!()));
    }

    #[test]
    fn body_is_decoded_lazily_once_and_only_as_far_as_needed() {
        let msg = Message::signal("/a", "org.example.Iface", "S")
            .body(&("zero", 1u32, "two", vec![3u8; 64], "four", "five"))
            .build()
            .unwrap();
        let args = MessageArgs::new(&msg);
        let header_rules: Vec<MatchRule> = (0..50)
            .map(|i| parse(&format!("type='signal',member='M{i}'")))
            .chain([parse("member='S'"), parse("path_namespace='/'")])
            .collect();
        assert!(header_rules.iter().any(|r| r.matches_args(&msg, &args)));
        assert_eq!(args.decoded(), 0, "no rule has an arg key: nothing decoded");
        // A rule whose header keys fail never touches the body.
        assert!(!parse("member='Other',arg4='four'").matches_args(&msg, &args));
        assert_eq!(args.decoded(), 0);
        assert!(parse("arg2='two'").matches_args(&msg, &args));
        assert_eq!(args.decoded(), 3);
        assert!(parse("arg0='zero'").matches_args(&msg, &args));
        assert_eq!(args.decoded(), 3, "arguments already decoded are reused");
        assert!(parse("arg4='four'").matches_args(&msg, &args));
        assert_eq!(args.decoded(), 5);
        assert_eq!(args.get(1), Some(Arg::Other));
        assert_eq!(args.get(3), Some(Arg::Other));
        assert_eq!(args.get(5), Some(Arg::Str("five")));
        assert_eq!(args.get(6), None);
        assert_eq!(args.get(63), None);
        assert_eq!(args.decoded(), 6);
    }

    #[test]
    fn decoded_messages_match_in_both_byte_orders() {
        for endian in [Endian::Little, Endian::Big] {
            let msg = Message::signal("/org/example/Obj", "org.example.Iface", "Changed")
                .endian(endian)
                .serial(9)
                .sender(":1.3")
                .body(&(
                    5i16,
                    ObjectPath::new("/org/example/Obj/child").unwrap(),
                    "name",
                ))
                .build()
                .unwrap();
            let back = Message::decode(Bytes::from(msg.encode().unwrap())).unwrap();
            let rule = parse(
                "type='signal',sender=':1.3',path_namespace='/org/example',\
                 arg1path='/org/example/',arg2='name'",
            );
            assert!(rule.matches(&back), "{endian:?}");
            assert!(!parse("arg2='nam'").matches(&back));
        }
    }

    #[test]
    fn libdbus_bus_name_rules() {
        for ok in [
            ":1.0", ":1", ":", ":.a", "a.b", "_a.-b", "a-b.c_d", ":1.0-x",
        ] {
            assert_eq!(check_libdbus_bus_name(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "a", "", ".a.b", "a..b", "a.b.", "a.1b", "1a.b", ":a..b", ":a.", "a.b/c",
        ] {
            assert!(check_libdbus_bus_name(bad, false).is_err(), "{bad}");
        }
        assert_eq!(check_libdbus_bus_name("com", true), Ok(()));
        assert!(check_libdbus_bus_name(&"a.".repeat(128), true).is_err());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn bus_name() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z_-][a-zA-Z0-9_-]{0,5}(\\.[a-zA-Z_-][a-zA-Z0-9_-]{0,5}){1,3}",
                ":[0-9]{1,3}\\.[0-9]{1,4}",
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                // Mostly the characters that quoting is about.
                "[',\\\\= a\\t]{0,8}",
                "[^\\x00]{0,12}",
            ]
        }

        fn message_type() -> impl Strategy<Value = MessageType> {
            prop_oneof![
                Just(MessageType::SIGNAL),
                Just(MessageType::METHOD_CALL),
                Just(MessageType::METHOD_RETURN),
                Just(MessageType::ERROR),
            ]
        }

        prop_compose! {
            fn names()(
                t in proptest::option::of(message_type()),
                sender in proptest::option::of(bus_name()),
                interface in proptest::option::of(
                    "[a-zA-Z_][a-zA-Z0-9_]{0,5}(\\.[a-zA-Z_][a-zA-Z0-9_]{0,5}){1,3}"),
                member in proptest::option::of("[a-zA-Z_][a-zA-Z0-9_]{0,8}"),
                path in proptest::option::of(("/|(/[a-zA-Z0-9_]{1,4}){1,3}", any::<bool>())),
                destination in proptest::option::of(bus_name()),
            ) -> MatchRuleBuilder {
                let mut b = MatchRule::builder();
                if let Some(t) = t { b = b.msg_type(t); }
                if let Some(s) = sender { b = b.sender(s); }
                if let Some(i) = interface { b = b.interface(i); }
                if let Some(m) = member { b = b.member(m); }
                match path {
                    Some((p, true)) => b = b.path_namespace(p),
                    Some((p, false)) => b = b.path(p),
                    None => {}
                }
                if let Some(d) = destination { b = b.destination(d); }
                b
            }
        }

        prop_compose! {
            fn rule()(
                b in names(),
                args in proptest::collection::vec((0usize..64, any::<bool>(), value()), 0..6),
                namespace in proptest::option::of(
                    "[a-z_-][a-z0-9_-]{0,4}(\\.[a-z_-][a-z0-9_-]{0,4}){0,2}"),
                eavesdrop in any::<bool>(),
            ) -> MatchRule {
                let mut b = b.eavesdrop(eavesdrop);
                for (i, is_path, v) in args {
                    b = if is_path { b.arg_path(i, v) } else { b.arg(i, v) };
                }
                if let Some(ns) = namespace { b = b.arg0_namespace(ns); }
                b.build().unwrap()
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(256)))]

            #[test]
            fn parse_display_round_trips(rule in rule()) {
                let text = rule.to_string();
                if text.len() <= MAX_MATCH_RULE_LEN {
                    let back = MatchRule::parse(&text);
                    prop_assert_eq!(back.as_ref(), Ok(&rule), "{}", text);
                    prop_assert_eq!(back.map(|r| r.to_string()), Ok(text));
                } else {
                    let kind = MatchRule::parse(&text).map_err(|e| e.kind());
                    prop_assert_eq!(kind, Err(ErrorKind::MatchRuleTooLong));
                }
            }

            /// Whatever the text, parsing returns a rule or an error and never panics; a rule
            /// it returns prints as text that parses back to it.
            #[test]
            fn parse_never_panics(text in "[a-z0-9_:./',=\\\\ ]{0,40}") {
                if let Ok(rule) = MatchRule::parse(&text) {
                    prop_assert_eq!(MatchRule::parse(&rule.to_string()), Ok(rule));
                }
            }
        }
    }
}

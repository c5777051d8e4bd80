//! The `org.freedesktop.DBus` driver: the bus's own methods, as dbus-daemon
//! answers them (`bus/driver.c`): the same method table, the same path and
//! privilege rules, the same error names.
//!
//! It only reads and changes [`BusState`]; it sends nothing itself but
//! appends what to send to an [`Output`].

use std::collections::HashMap;
use std::sync::Arc;

use fastbus_wire::{BusName, MatchRule, Message, MessageType, Value, Variant, WellKnownName};

use crate::state::{BUS_IFACE, BUS_NAME, BUS_PATH, BusState, ConnId, DbusError, Output};

const E_FAILED: &str = "org.freedesktop.DBus.Error.Failed";
const E_ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
const E_INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
const E_NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";
const E_LIMITS: &str = "org.freedesktop.DBus.Error.LimitsExceeded";
const E_MATCH_INVALID: &str = "org.freedesktop.DBus.Error.MatchRuleInvalid";

const PROPERTIES: &str = "org.freedesktop.DBus.Properties";
const INTROSPECTABLE: &str = "org.freedesktop.DBus.Introspectable";
const MONITORING: &str = "org.freedesktop.DBus.Monitoring";
const PEER: &str = "org.freedesktop.DBus.Peer";

/// One driver method: its interface, name, in and out signatures, whether it
/// works on every object path, and whether only privileged callers may use it.
struct Method {
    iface: &'static str,
    name: &'static str,
    input: &'static str,
    output: &'static str,
    any_path: bool,
    privileged: bool,
}

const fn m(
    iface: &'static str,
    name: &'static str,
    input: &'static str,
    output: &'static str,
    any_path: bool,
    privileged: bool,
) -> Method {
    Method {
        iface,
        name,
        input,
        output,
        any_path,
        privileged,
    }
}

/// The interfaces in dbus-daemon's order, and whether they answer on every path.
const INTERFACES: &[(&str, bool)] = &[
    (BUS_IFACE, true),
    (PROPERTIES, false),
    (INTROSPECTABLE, true),
    (MONITORING, false),
    (PEER, true),
];

const METHODS: &[Method] = &[
    m(BUS_IFACE, "Hello", "", "s", true, false),
    m(BUS_IFACE, "RequestName", "su", "u", true, false),
    m(BUS_IFACE, "ReleaseName", "s", "u", true, false),
    m(BUS_IFACE, "StartServiceByName", "su", "u", true, false),
    m(
        BUS_IFACE,
        "UpdateActivationEnvironment",
        "a{ss}",
        "",
        false,
        true,
    ),
    m(BUS_IFACE, "NameHasOwner", "s", "b", true, false),
    m(BUS_IFACE, "ListNames", "", "as", true, false),
    m(BUS_IFACE, "ListActivatableNames", "", "as", true, false),
    m(BUS_IFACE, "AddMatch", "s", "", true, false),
    m(BUS_IFACE, "RemoveMatch", "s", "", true, false),
    m(BUS_IFACE, "GetNameOwner", "s", "s", true, false),
    m(BUS_IFACE, "ListQueuedOwners", "s", "as", true, false),
    m(BUS_IFACE, "GetConnectionUnixUser", "s", "u", true, false),
    m(
        BUS_IFACE,
        "GetConnectionUnixProcessID",
        "s",
        "u",
        true,
        false,
    ),
    m(BUS_IFACE, "GetAdtAuditSessionData", "s", "ay", true, false),
    m(
        BUS_IFACE,
        "GetConnectionSELinuxSecurityContext",
        "s",
        "ay",
        true,
        false,
    ),
    m(BUS_IFACE, "ReloadConfig", "", "", true, false),
    m(BUS_IFACE, "GetId", "", "s", true, false),
    m(
        BUS_IFACE,
        "GetConnectionCredentials",
        "s",
        "a{sv}",
        true,
        false,
    ),
    m(PROPERTIES, "Get", "ss", "v", false, false),
    m(PROPERTIES, "GetAll", "s", "a{sv}", false, false),
    m(PROPERTIES, "Set", "ssv", "", false, false),
    m(INTROSPECTABLE, "Introspect", "", "s", true, false),
    m(MONITORING, "BecomeMonitor", "asu", "", false, true),
    m(PEER, "GetMachineId", "", "s", true, false),
    m(PEER, "Ping", "", "", true, false),
];

/// What the `Features` property lists.
const FEATURES: &[&str] = &["ActivatableServicesChanged", "HeaderFiltering"];

/// A call to the bus from a connection that has not called Hello yet.
pub(crate) fn handle_before_hello(
    st: &mut BusState,
    from: ConnId,
    msg: &Message,
    out: &mut Output,
) {
    if msg.message_type() != MessageType::METHOD_CALL {
        return;
    }
    let is_hello = msg.member().is_some_and(|m| m.as_str() == "Hello")
        && msg.interface().is_none_or(|i| i.as_str() == BUS_IFACE);
    if is_hello {
        if !msg.signature().as_str().is_empty() {
            st.error_direct(
                from,
                msg,
                &DbusError::new(
                    E_INVALID_ARGS,
                    format!(
                        "Call to Hello has wrong args ({}, expected )\n",
                        msg.signature().as_str()
                    ),
                ),
                out,
            );
            return;
        }
        hello(st, from, msg, out);
    } else {
        st.error_direct(
            from,
            msg,
            &DbusError::new(
                E_ACCESS_DENIED,
                "Client tried to send a message other than Hello without being registered",
            ),
            out,
        );
    }
}

fn hello(st: &mut BusState, from: ConnId, msg: &Message, out: &mut Output) {
    let uid = st
        .conns
        .get(&from)
        .and_then(|c| c.creds)
        .and_then(|c| c.uid);
    if st.active >= st.limits.max_completed_connections {
        st.error_direct(
            from,
            msg,
            &DbusError::new(
                E_LIMITS,
                "The maximum number of active connections has been reached",
            ),
            out,
        );
        return;
    }
    if let Some(uid) = uid {
        if st.per_user.get(&uid).copied().unwrap_or(0) >= st.limits.max_connections_per_user {
            st.error_direct(
                from,
                msg,
                &DbusError::new(
                    E_LIMITS,
                    format!(
                        "The maximum number of active connections for UID {uid} has been reached"
                    ),
                ),
                out,
            );
            return;
        }
        *st.per_user.entry(uid).or_default() += 1;
    }
    let unique = st.new_unique_name();
    st.uniques.insert(Arc::clone(&unique), from);
    if let Some(c) = st.conns.get_mut(&from) {
        c.unique = Some(Arc::clone(&unique));
    }
    st.active += 1;
    let mut call = msg.clone();
    if let Ok(u) = BusName::new(&unique) {
        call.set_sender(Some(&u));
    }
    // dbus-daemon: the reply first, then NameOwnerChanged, then NameAcquired.
    st.reply(&call, &(&*unique,), out);
    if let Some(m) = st.bus_signal("NameOwnerChanged", None, &(&*unique, "", &*unique)) {
        st.send_from_bus(m, out);
    }
    if let Some(m) = st.bus_signal("NameAcquired", Some(&unique), &(&*unique,)) {
        st.send_from_bus(m, out);
    }
}

fn is_privileged(st: &BusState, from: ConnId) -> Result<(), DbusError> {
    let uid = st
        .conns
        .get(&from)
        .and_then(|c| c.creds)
        .and_then(|c| c.uid);
    let me = fastbus_transport::Credentials::current_process().uid;
    match uid {
        Some(u) if u == 0 || Some(u) == me => Ok(()),
        Some(u) => Err(DbusError::new(
            E_ACCESS_DENIED,
            format!("rejected attempt by connection with uid {u}: not privileged"),
        )),
        None => Err(DbusError::new(
            E_ACCESS_DENIED,
            "rejected attempt by connection with unknown uid",
        )),
    }
}

/// A method call addressed to the bus (after Hello), or a Peer call without destination.
pub(crate) fn handle(st: &mut BusState, from: ConnId, msg: &Message, out: &mut Output) {
    if msg.message_type() != MessageType::METHOD_CALL {
        return;
    }
    let Some(member) = msg.member() else { return };
    let member = member.as_str();
    let iface = msg.interface();
    let iface = iface.as_ref().map(|i| i.as_str());
    let canonical = msg.path().is_some_and(|p| p.as_str() == BUS_PATH);
    let mut found_interface = false;
    for (name, any_path) in INTERFACES {
        if !(canonical || *any_path) {
            continue;
        }
        if iface.is_some_and(|i| i != *name) {
            continue;
        }
        found_interface = true;
        let Some(method) = METHODS
            .iter()
            .find(|mm| mm.iface == *name && mm.name == member)
        else {
            continue;
        };
        if method.privileged {
            if let Err(e) = is_privileged(st, from) {
                st.error(msg, &e, out);
                return;
            }
        }
        if !(canonical || method.any_path) {
            st.error(
                msg,
                &DbusError::new(
                    E_ACCESS_DENIED,
                    format!(
                        "Method '{member}' is only available at the canonical object path '{BUS_PATH}'"
                    ),
                ),
                out,
            );
            return;
        }
        let sig = msg.signature();
        if sig.as_str() != method.input {
            st.error(
                msg,
                &DbusError::new(
                    E_INVALID_ARGS,
                    format!(
                        "Call to {member} has wrong args ({}, expected {})\n",
                        sig.as_str(),
                        method.input
                    ),
                ),
                out,
            );
            return;
        }
        if let Err(e) = call(st, from, method, msg, out) {
            st.error(msg, &e, out);
        }
        return;
    }
    let name = if found_interface {
        "org.freedesktop.DBus.Error.UnknownMethod"
    } else {
        "org.freedesktop.DBus.Error.UnknownInterface"
    };
    st.error(
        msg,
        &DbusError::new(
            name,
            format!("{BUS_NAME} does not understand message {member}"),
        ),
        out,
    );
}

fn bad_args(e: fastbus_wire::Error) -> DbusError {
    DbusError::new(E_INVALID_ARGS, format!("cannot read the arguments: {e}"))
}

/// The connection that owns `name`, for the credential methods; `Ok(None)` is the bus itself.
fn peer_of(st: &BusState, name: &str, what: &str) -> Result<Option<ConnId>, DbusError> {
    if name == BUS_NAME {
        return Ok(None);
    }
    st.owner_of(name).map(Some).ok_or_else(|| {
        DbusError::new(
            E_NAME_HAS_NO_OWNER,
            format!("Could not get {what} of name '{name}': no such name"),
        )
    })
}

fn creds_of(st: &BusState, peer: Option<ConnId>) -> fastbus_transport::Credentials {
    match peer {
        None => fastbus_transport::Credentials::current_process(),
        Some(c) => st.conns.get(&c).and_then(|c| c.creds).unwrap_or_default(),
    }
}

fn call(
    st: &mut BusState,
    from: ConnId,
    method: &Method,
    msg: &Message,
    out: &mut Output,
) -> Result<(), DbusError> {
    match (method.iface, method.name) {
        (_, "Hello") => Err(DbusError::new(E_FAILED, "Already handled an Hello message")),
        (_, "RequestName") => {
            let (name, flags): (&str, u32) = msg.body().map_err(bad_args)?;
            if BusName::new(name).is_err() {
                return Err(DbusError::new(
                    E_INVALID_ARGS,
                    format!("Requested bus name \"{name}\" is not valid"),
                ));
            }
            if name.starts_with(':') {
                return Err(DbusError::new(
                    E_INVALID_ARGS,
                    format!("Cannot acquire a service starting with ':' such as \"{name}\""),
                ));
            }
            if name == BUS_NAME {
                let me = st.unique_of(from).cloned().unwrap_or_else(|| Arc::from(""));
                return Err(DbusError::new(
                    E_INVALID_ARGS,
                    format!(
                        "Connection \"{me}\" is not allowed to own the service \"{name}\" because it is reserved for D-Bus' use only"
                    ),
                ));
            }
            if WellKnownName::new(name).is_err() {
                return Err(DbusError::new(
                    E_INVALID_ARGS,
                    format!("Requested bus name \"{name}\" is not valid"),
                ));
            }
            let code = st.request_name(from, name, flags, out)?;
            st.reply(msg, &(code,), out);
            Ok(())
        }
        (_, "ReleaseName") => {
            let name: &str = msg.body().map_err(bad_args)?;
            if BusName::new(name).is_err() {
                return Err(DbusError::new(
                    E_INVALID_ARGS,
                    format!("Given bus name \"{name}\" is not valid"),
                ));
            }
            if name.starts_with(':') {
                return Err(DbusError::new(
                    E_INVALID_ARGS,
                    format!("Cannot release a service starting with ':' such as \"{name}\""),
                ));
            }
            if name == BUS_NAME {
                return Err(DbusError::new(
                    E_INVALID_ARGS,
                    format!("Cannot release the {BUS_NAME} service because it is owned by the bus"),
                ));
            }
            let code = st.release_name(from, name, out);
            st.reply(msg, &(code,), out);
            Ok(())
        }
        (_, "StartServiceByName") => {
            // dbus-daemon looks for a .service file before it looks at the
            // owner, so without activation every name, owned or not (the
            // bus's own included), is unknown.
            let (name, _flags): (&str, u32) = msg.body().map_err(bad_args)?;
            Err(DbusError::new(
                "org.freedesktop.DBus.Error.ServiceUnknown",
                format!("The name {name} was not provided by any .service files"),
            ))
        }
        (_, "UpdateActivationEnvironment") => {
            let _env: HashMap<&str, &str> = msg.body().map_err(bad_args)?;
            st.reply(msg, &(), out);
            Ok(())
        }
        (_, "NameHasOwner") => {
            let name: &str = msg.body().map_err(bad_args)?;
            let has = name == BUS_NAME || st.owner_of(name).is_some();
            st.reply(msg, &(has,), out);
            Ok(())
        }
        (_, "ListNames") => {
            let mut names: Vec<String> = Vec::with_capacity(1 + st.names.len() + st.uniques.len());
            names.push(BUS_NAME.to_owned());
            let mut wk: Vec<&str> = st.names.keys().map(|k| &**k).collect();
            wk.sort_unstable();
            names.extend(wk.into_iter().map(str::to_owned));
            let mut un: Vec<&str> = st.uniques.keys().map(|k| &**k).collect();
            un.sort_unstable();
            names.extend(un.into_iter().map(str::to_owned));
            st.reply(msg, &(names,), out);
            Ok(())
        }
        (_, "ListActivatableNames") => {
            st.reply(msg, &(vec![BUS_NAME.to_owned()],), out);
            Ok(())
        }
        (_, "AddMatch") => {
            let text: &str = msg.body().map_err(bad_args)?;
            let rule = parse_rule(text)?;
            let n = st.conns.get(&from).map_or(0, |c| c.rules.len());
            if n >= st.limits.max_match_rules_per_connection {
                let me = st.unique_of(from).cloned().unwrap_or_else(|| Arc::from(""));
                return Err(DbusError::new(
                    E_LIMITS,
                    format!(
                        "Connection \"{me}\" is not allowed to add more match rules (increase limits in configuration file if required; max_match_rules_per_connection={})",
                        st.limits.max_match_rules_per_connection
                    ),
                ));
            }
            st.add_rule(from, rule);
            st.reply(msg, &(), out);
            Ok(())
        }
        (_, "RemoveMatch") => {
            let text: &str = msg.body().map_err(bad_args)?;
            let rule = parse_rule(text)?;
            if st.remove_rule(from, &rule) {
                st.reply(msg, &(), out);
                Ok(())
            } else {
                Err(DbusError::new(
                    "org.freedesktop.DBus.Error.MatchRuleNotFound",
                    "The given match rule wasn't found and can't be removed",
                ))
            }
        }
        (_, "GetNameOwner") => {
            let name: &str = msg.body().map_err(bad_args)?;
            let owner = if name == BUS_NAME {
                Some(Arc::from(BUS_NAME))
            } else {
                st.owner_of(name).and_then(|c| st.unique_of(c).cloned())
            };
            match owner {
                Some(o) => {
                    st.reply(msg, &(&*o,), out);
                    Ok(())
                }
                None => Err(DbusError::new(
                    E_NAME_HAS_NO_OWNER,
                    format!("Could not get owner of name '{name}': no such name"),
                )),
            }
        }
        (_, "ListQueuedOwners") => {
            let name: &str = msg.body().map_err(bad_args)?;
            let owners: Option<Vec<String>> = if name == BUS_NAME {
                Some(vec![BUS_NAME.to_owned()])
            } else if name.starts_with(':') {
                st.uniques.get(name).map(|_| vec![name.to_owned()])
            } else {
                st.names.get(name).map(|q| {
                    q.iter()
                        .filter_map(|o| st.unique_of(o.conn).map(|u| u.to_string()))
                        .collect()
                })
            };
            match owners {
                Some(o) => {
                    st.reply(msg, &(o,), out);
                    Ok(())
                }
                None => Err(DbusError::new(
                    E_NAME_HAS_NO_OWNER,
                    format!("Could not get owners of name '{name}': no such name"),
                )),
            }
        }
        (_, "GetConnectionUnixUser") => {
            let name: &str = msg.body().map_err(bad_args)?;
            let peer = peer_of(st, name, "UID")?;
            match creds_of(st, peer).uid {
                Some(uid) => {
                    st.reply(msg, &(uid,), out);
                    Ok(())
                }
                None => Err(DbusError::new(
                    E_FAILED,
                    format!("Could not determine UID for '{name}'"),
                )),
            }
        }
        (_, "GetConnectionUnixProcessID") => {
            let name: &str = msg.body().map_err(bad_args)?;
            let peer = peer_of(st, name, "PID")?;
            match creds_of(st, peer).pid {
                Some(pid) => {
                    st.reply(msg, &(pid,), out);
                    Ok(())
                }
                None => Err(DbusError::new(
                    "org.freedesktop.DBus.Error.UnixProcessIdUnknown",
                    format!("Could not determine PID for '{name}'"),
                )),
            }
        }
        (_, "GetConnectionCredentials") => {
            let name: &str = msg.body().map_err(bad_args)?;
            let peer = peer_of(st, name, "credentials")?;
            let c = creds_of(st, peer);
            let mut d: Vec<(&str, Value)> = Vec::new();
            if let Some(pid) = c.pid {
                d.push(("ProcessID", Value::U32(pid)));
            }
            if let Some(uid) = c.uid {
                d.push(("UnixUserID", Value::U32(uid)));
            }
            let map: std::collections::BTreeMap<&str, Value> = d.into_iter().collect();
            st.reply(msg, &(map,), out);
            Ok(())
        }
        (_, "GetAdtAuditSessionData") => {
            let name: &str = msg.body().map_err(bad_args)?;
            peer_of(st, name, "audit session data")?;
            Err(DbusError::new(
                "org.freedesktop.DBus.Error.AdtAuditDataUnknown",
                format!("Could not determine audit session data for '{name}'"),
            ))
        }
        (_, "GetConnectionSELinuxSecurityContext") => {
            let name: &str = msg.body().map_err(bad_args)?;
            peer_of(st, name, "security context")?;
            Err(DbusError::new(
                "org.freedesktop.DBus.Error.SELinuxSecurityContextUnknown",
                format!("Could not determine security context for '{name}'"),
            ))
        }
        (_, "ReloadConfig") => {
            // The one place the driver does I/O: a small file, read under the lock.
            if let Some(path) = st.config_file.clone() {
                let cfg = crate::config::read_busconfig(&path).map_err(|e| {
                    DbusError::new(E_FAILED, format!("Unable to reload configuration: {e}"))
                })?;
                let mut limits = crate::limits::Limits::default();
                for (name, value) in &cfg.limits {
                    limits.set_by_name(name, *value);
                }
                tracing::info!("reloaded the limits from {}", path.display());
                st.limits = limits;
            }
            st.reply(msg, &(), out);
            Ok(())
        }
        (_, "GetId") => {
            let id = st.bus_id.clone();
            st.reply(msg, &(id,), out);
            Ok(())
        }
        (PROPERTIES, "Get") => {
            let (iface, prop): (&str, &str) = msg.body().map_err(bad_args)?;
            let v = property(iface, prop)?;
            st.reply(msg, &(Variant(v),), out);
            Ok(())
        }
        (PROPERTIES, "GetAll") => {
            let iface: &str = msg.body().map_err(bad_args)?;
            find_interface(iface)?;
            let mut map: std::collections::BTreeMap<&str, Variant<Vec<String>>> =
                Default::default();
            if iface == BUS_IFACE {
                for p in ["Features", "Interfaces"] {
                    map.insert(p, Variant(property(iface, p)?));
                }
            }
            st.reply(msg, &(map,), out);
            Ok(())
        }
        (PROPERTIES, "Set") => {
            let (iface, prop, _v): (&str, &str, Value) = msg.body().map_err(bad_args)?;
            property(iface, prop)?;
            Err(DbusError::new(
                "org.freedesktop.DBus.Error.PropertyReadOnly",
                format!("Property '{iface}.{prop}' cannot be set"),
            ))
        }
        (INTROSPECTABLE, "Introspect") => {
            let path = msg
                .path()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let xml = introspect(&path);
            st.reply(msg, &(xml,), out);
            Ok(())
        }
        (MONITORING, "BecomeMonitor") => {
            let (rules, flags): (Vec<&str>, u32) = msg.body().map_err(bad_args)?;
            if flags != 0 {
                return Err(DbusError::new(
                    E_INVALID_ARGS,
                    "BecomeMonitor does not support any flags yet",
                ));
            }
            let mut parsed = Vec::with_capacity(rules.len());
            for r in rules {
                parsed.push(parse_rule(r)?);
            }
            // The monitor loses every name, its unique name too, then gets the reply.
            st.drop_names_of(from, true, out);
            let call = msg.clone();
            st.drop_unique(from, true, out);
            let serial = st.next_serial();
            if let Ok(mut reply) = Message::method_return(&call)
                .sender(BUS_NAME)
                .serial(serial)
                .build()
            {
                if !call
                    .flags()
                    .contains(fastbus_wire::Flags::NO_REPLY_EXPECTED)
                {
                    reply.set_destination(msg.sender().as_ref());
                    st.push_raw(from, &reply, out);
                }
            }
            st.make_monitor(from, parsed);
            Ok(())
        }
        (PEER, "Ping") => {
            st.reply(msg, &(), out);
            Ok(())
        }
        (PEER, "GetMachineId") => match machine_id() {
            Some(id) => {
                st.reply(msg, &(id,), out);
                Ok(())
            }
            None => Err(DbusError::new(
                E_FAILED,
                "Unable to load the machine ID (/etc/machine-id, /var/lib/dbus/machine-id)",
            )),
        },
        _ => Err(DbusError::new(
            "org.freedesktop.DBus.Error.UnknownMethod",
            format!("{BUS_NAME} does not understand message {}", method.name),
        )),
    }
}

fn parse_rule(text: &str) -> Result<MatchRule, DbusError> {
    MatchRule::parse(text).map_err(|e| {
        if e.kind() == fastbus_wire::ErrorKind::MatchRuleTooLong {
            DbusError::new(E_LIMITS, format!("Match rule is too long: {e}"))
        } else {
            DbusError::new(E_MATCH_INVALID, format!("{e}"))
        }
    })
}

fn find_interface(iface: &str) -> Result<(), DbusError> {
    if INTERFACES.iter().any(|(n, _)| *n == iface) {
        Ok(())
    } else {
        Err(DbusError::new(
            "org.freedesktop.DBus.Error.UnknownInterface",
            format!("Interface \"{iface}\" not found"),
        ))
    }
}

fn property(iface: &str, prop: &str) -> Result<Vec<String>, DbusError> {
    find_interface(iface)?;
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<String>>()
    };
    match (iface, prop) {
        (BUS_IFACE, "Features") => Ok(list(FEATURES)),
        (BUS_IFACE, "Interfaces") => Ok(list(&[MONITORING])),
        _ => Err(DbusError::new(
            "org.freedesktop.DBus.Error.UnknownProperty",
            format!("Property \"{iface}.{prop}\" not found"),
        )),
    }
}

fn machine_id() -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The bus driver's introspection data for `path`, as dbus-daemon writes it.
fn introspect(path: &str) -> String {
    use std::fmt::Write;
    let canonical = path == BUS_PATH;
    let mut x = String::from(
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n",
    );
    for (iface, any_path) in INTERFACES {
        if !(canonical || *any_path) {
            continue;
        }
        let _ = writeln!(x, "  <interface name=\"{iface}\">");
        for mm in METHODS.iter().filter(|mm| mm.iface == *iface) {
            let _ = writeln!(x, "    <method name=\"{}\">", mm.name);
            for (dir, sig) in [("in", mm.input), ("out", mm.output)] {
                for t in split_types(sig) {
                    let _ = writeln!(x, "      <arg direction=\"{dir}\" type=\"{t}\"/>");
                }
            }
            x.push_str("    </method>\n");
        }
        if *iface == BUS_IFACE {
            for p in ["Features", "Interfaces"] {
                let _ = writeln!(
                    x,
                    "    <property name=\"{p}\" type=\"as\" access=\"read\">\n      <annotation name=\"org.freedesktop.DBus.Property.EmitsChangedSignal\" value=\"const\"/>\n    </property>"
                );
            }
            x.push_str("    <signal name=\"NameOwnerChanged\">\n      <arg type=\"s\"/>\n      <arg type=\"s\"/>\n      <arg type=\"s\"/>\n    </signal>\n    <signal name=\"NameLost\">\n      <arg type=\"s\"/>\n    </signal>\n    <signal name=\"NameAcquired\">\n      <arg type=\"s\"/>\n    </signal>\n    <signal name=\"ActivatableServicesChanged\">\n    </signal>\n");
        }
        if *iface == PROPERTIES {
            x.push_str("    <signal name=\"PropertiesChanged\">\n      <arg type=\"s\" name=\"interface_name\"/>\n      <arg type=\"a{sv}\" name=\"changed_properties\"/>\n      <arg type=\"as\" name=\"invalidated_properties\"/>\n    </signal>\n");
        }
        x.push_str("  </interface>\n");
    }
    match path {
        "/" => x.push_str("  <node name=\"org/freedesktop/DBus\"/>\n"),
        "/org" => x.push_str("  <node name=\"freedesktop/DBus\"/>\n"),
        "/org/freedesktop" => x.push_str("  <node name=\"DBus\"/>\n"),
        _ => {}
    }
    x.push_str("</node>\n");
    x
}

/// Splits a signature of the method table into its complete types.
fn split_types(sig: &str) -> Vec<&str> {
    let b = sig.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let mut depth = 0i32;
        loop {
            let c = b[i];
            i += 1;
            match c {
                b'a' => continue,
                b'(' | b'{' => depth += 1,
                b')' | b'}' => depth -= 1,
                _ => {}
            }
            if depth == 0 || i >= b.len() {
                break;
            }
        }
        out.push(&sig[start..i]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_table_signatures_split_into_complete_types() {
        assert_eq!(split_types("su"), ["s", "u"]);
        assert_eq!(split_types("a{ss}"), ["a{ss}"]);
        assert_eq!(split_types("asu"), ["as", "u"]);
        assert_eq!(split_types("a{sv}"), ["a{sv}"]);
        assert!(split_types("").is_empty());
    }

    #[test]
    fn introspection_of_the_canonical_path_lists_every_interface() {
        let x = introspect(BUS_PATH);
        for (iface, _) in INTERFACES {
            assert!(
                x.contains(&format!("<interface name=\"{iface}\">")),
                "{iface}"
            );
        }
        let other = introspect("/");
        assert!(!other.contains(MONITORING));
        assert!(other.contains("<node name=\"org/freedesktop/DBus\"/>"));
    }
}

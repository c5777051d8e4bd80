//! The JSON form of messages shared by the `decode` and `encode` examples (and the tests that
//! drive them): one object per message with `endian`, `type`, `flags`, `serial`, the header
//! fields (null when absent), `signature` ("" when absent), `unix_fds` and `body`.
//!
//! Values: integers and doubles as numbers, `b` as true/false, `s`/`o`/`g` as strings, `h` as
//! `{"fd": index}`, `v` as `{"signature": "...", "value": ...}`, arrays as lists, dicts as lists
//! of `[key, value]` pairs in wire order, structs as lists. JSON has no NaN or infinities: such
//! doubles print as `null` (and `encode` refuses `null` for a `d`, saying so). An `h` index past
//! the message's UNIX_FDS count is reported as a decode failure (the value cannot be read, as
//! `shared/conformance/wire.md` case 29 asks).

#![allow(dead_code, reason = "each example uses one direction")]

pub(crate) mod cli;

use fastbus_wire::{
    Array, Dict, Endian, Fd, Message, MessageType, ObjectPath, Signature, SignatureType, Value,
};
use serde_json::{Map, Value as Json, json};

/// A message as one JSON object.
pub(crate) fn message_to_json(msg: &Message) -> Result<Json, fastbus_wire::Error> {
    let body = msg.body_values()?;
    let s = |o: Option<String>| o.map_or(Json::Null, Json::String);
    Ok(json!({
        "endian": if msg.endian() == Endian::Big { "B" } else { "l" },
        "type": match msg.message_type().name() {
            Some(n) => Json::from(n),
            None => Json::from(msg.message_type().0),
        },
        "flags": msg.flags().0,
        "serial": msg.serial(),
        "path": s(msg.path().map(String::from)),
        "interface": s(msg.interface().map(String::from)),
        "member": s(msg.member().map(String::from)),
        "error_name": s(msg.error_name().map(String::from)),
        "reply_serial": msg.reply_serial(),
        "destination": s(msg.destination().map(String::from)),
        "sender": s(msg.sender().map(String::from)),
        "signature": msg.signature().as_str(),
        "unix_fds": msg.unix_fds(),
        "body": body.iter().map(value_to_json).collect::<Vec<_>>(),
    }))
}

/// One value as JSON.
pub(crate) fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Byte(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::I16(x) => json!(x),
        Value::U16(x) => json!(x),
        Value::I32(x) => json!(x),
        Value::U32(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::U64(x) => json!(x),
        Value::F64(x) => json!(x),
        Value::Str(x) => json!(x),
        Value::ObjectPath(x) => json!(x.as_str()),
        Value::Signature(x) => json!(x.as_str()),
        Value::Fd(Fd(i)) => json!({ "fd": i }),
        Value::Variant(inner) => {
            json!({ "signature": inner.signature().as_str(), "value": value_to_json(inner) })
        }
        Value::Array(a) => Json::Array(a.items().iter().map(value_to_json).collect()),
        Value::Dict(d) => Json::Array(
            d.entries()
                .iter()
                .map(|(k, v)| json!([value_to_json(k), value_to_json(v)]))
                .collect(),
        ),
        Value::Struct(fields) => Json::Array(fields.iter().map(value_to_json).collect()),
        other => json!(other.to_string()),
    }
}

fn field<'j>(obj: &'j Map<String, Json>, key: &str) -> Option<&'j Json> {
    obj.get(key).filter(|v| !v.is_null())
}

fn text<'j>(obj: &'j Map<String, Json>, key: &str) -> Result<Option<&'j str>, String> {
    match field(obj, key) {
        None => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("\"{key}\" must be a string, not {other}")),
    }
}

fn number(obj: &Map<String, Json>, key: &str) -> Result<Option<u64>, String> {
    match field(obj, key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("\"{key}\" must be a non-negative integer")),
    }
}

fn to_u32(n: u64, what: &str) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("\"{what}\" does not fit in 32 bits"))
}

/// Build a message from its JSON object; `endian` overrides the object's own `endian`.
pub(crate) fn message_from_json(j: &Json, endian: Option<Endian>) -> Result<Message, String> {
    let obj = j.as_object().ok_or("a message must be a JSON object")?;
    let endian = match endian {
        Some(e) => e,
        None => match text(obj, "endian")? {
            None | Some("l") => Endian::Little,
            Some("B") => Endian::Big,
            Some(other) => return Err(format!("\"endian\" must be \"l\" or \"B\", not {other:?}")),
        },
    };
    let msg_type = match field(obj, "type") {
        Some(Json::String(s)) => match s.as_str() {
            "method_call" => MessageType::METHOD_CALL,
            "method_return" => MessageType::METHOD_RETURN,
            "error" => MessageType::ERROR,
            "signal" => MessageType::SIGNAL,
            other => return Err(format!("unknown message type {other:?}")),
        },
        Some(Json::Number(n)) => n
            .as_u64()
            .and_then(|n| u8::try_from(n).ok())
            .map(MessageType)
            .ok_or("a numeric \"type\" must be 0..=255")?,
        _ => return Err("\"type\" is required".into()),
    };
    let mut b = Message::builder(msg_type).endian(endian);
    b = b.flags(fastbus_wire::Flags(
        u8::try_from(number(obj, "flags")?.unwrap_or(0))
            .map_err(|_| "\"flags\" must be 0..=255")?,
    ));
    b = b.serial(to_u32(
        number(obj, "serial")?.ok_or("\"serial\" is required")?,
        "serial",
    )?);
    if let Some(p) = text(obj, "path")? {
        b = b.path(p);
    }
    if let Some(s) = text(obj, "interface")? {
        b = b.interface(s);
    }
    if let Some(s) = text(obj, "member")? {
        b = b.member(s);
    }
    if let Some(s) = text(obj, "error_name")? {
        b = b.error_name(s);
    }
    if let Some(n) = number(obj, "reply_serial")? {
        b = b.reply_serial(to_u32(n, "reply_serial")?);
    }
    if let Some(s) = text(obj, "destination")? {
        b = b.destination(s);
    }
    if let Some(s) = text(obj, "sender")? {
        b = b.sender(s);
    }
    if let Some(n) = number(obj, "unix_fds")? {
        b = b.unix_fds(to_u32(n, "unix_fds")?);
    }
    let sig = text(obj, "signature")?.unwrap_or("");
    let sig = Signature::new(sig).map_err(|e| format!("\"signature\": {e}"))?;
    let types = sig.types();
    let body = match field(obj, "body") {
        None => Vec::new(),
        Some(Json::Array(items)) => items.clone(),
        Some(_) => return Err("\"body\" must be a list".into()),
    };
    if body.len() != types.len() {
        return Err(format!(
            "the signature {:?} has {} arguments but \"body\" has {}",
            sig.as_str(),
            types.len(),
            body.len()
        ));
    }
    let values = types
        .iter()
        .zip(&body)
        .enumerate()
        .map(|(i, (t, j))| value_from_json(t, j).map_err(|e| format!("body arg {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    b.body_values(&values).build().map_err(|e| e.to_string())
}

fn int<T: TryFrom<i128>>(j: &Json, t: &SignatureType) -> Result<T, String> {
    let n = j
        .as_i64()
        .map(i128::from)
        .or_else(|| j.as_u64().map(i128::from));
    n.and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("{j} is not a valid {t}"))
}

fn string<'j>(j: &'j Json, t: &SignatureType) -> Result<&'j str, String> {
    j.as_str()
        .ok_or_else(|| format!("{j} is not a string ({t})"))
}

fn list<'j>(j: &'j Json, t: &SignatureType) -> Result<&'j Vec<Json>, String> {
    j.as_array()
        .ok_or_else(|| format!("{j} is not a list ({t})"))
}

fn sig_of(t: &SignatureType) -> Signature<'static> {
    Signature::from_string(t.to_string()).unwrap_or(Signature::EMPTY)
}

/// One value of type `t` from JSON.
pub(crate) fn value_from_json(t: &SignatureType, j: &Json) -> Result<Value, String> {
    use SignatureType as T;
    Ok(match t {
        T::Byte => Value::Byte(int(j, t)?),
        T::Boolean => Value::Bool(j.as_bool().ok_or_else(|| format!("{j} is not a boolean"))?),
        T::Int16 => Value::I16(int(j, t)?),
        T::UInt16 => Value::U16(int(j, t)?),
        T::Int32 => Value::I32(int(j, t)?),
        T::UInt32 => Value::U32(int(j, t)?),
        T::Int64 => Value::I64(int(j, t)?),
        T::UInt64 => Value::U64(int(j, t)?),
        T::Double => Value::F64(j.as_f64().ok_or_else(|| format!("{j} is not a number"))?),
        T::String => Value::Str(string(j, t)?.to_owned()),
        T::ObjectPath => Value::ObjectPath(
            ObjectPath::from_string(string(j, t)?.to_owned()).map_err(|e| e.to_string())?,
        ),
        T::Signature => Value::Signature(
            Signature::from_string(string(j, t)?.to_owned()).map_err(|e| e.to_string())?,
        ),
        T::UnixFd => {
            let i = j
                .get("fd")
                .ok_or_else(|| format!("{j} is not {{\"fd\": index}}"))?;
            Value::Fd(Fd(int(i, t)?))
        }
        T::Variant => {
            let sig = j
                .get("signature")
                .and_then(Json::as_str)
                .ok_or_else(|| format!("{j} is not {{\"signature\": ..., \"value\": ...}}"))?;
            let sig = Signature::new(sig).map_err(|e| e.to_string())?;
            let [inner] = sig.types().try_into().map_err(|_| {
                format!(
                    "a variant signature must be one complete type, not {:?}",
                    sig.as_str()
                )
            })?;
            let value = j.get("value").ok_or("a variant needs \"value\"")?;
            Value::Variant(Box::new(value_from_json(&inner, value)?))
        }
        T::Array(e) => {
            let items = list(j, t)?
                .iter()
                .enumerate()
                .map(|(i, x)| value_from_json(e, x).map_err(|m| format!("element {i}: {m}")))
                .collect::<Result<_, _>>()?;
            Value::Array(Array::new(sig_of(e), items).map_err(|e| e.to_string())?)
        }
        T::Dict(k, v) => {
            let mut entries = Vec::new();
            for (i, pair) in list(j, t)?.iter().enumerate() {
                let [key, value] = pair
                    .as_array()
                    .and_then(|p| <&[Json; 2]>::try_from(p.as_slice()).ok())
                    .ok_or_else(|| format!("dict entry {i} must be a [key, value] pair"))?;
                entries.push((value_from_json(k, key)?, value_from_json(v, value)?));
            }
            Value::Dict(Dict::new(sig_of(k), sig_of(v), entries).map_err(|e| e.to_string())?)
        }
        T::Struct(fields) => {
            let items = list(j, t)?;
            if items.len() != fields.len() {
                return Err(format!(
                    "{t} needs {} fields, got {}",
                    fields.len(),
                    items.len()
                ));
            }
            Value::Struct(
                fields
                    .iter()
                    .zip(items)
                    .map(|(f, x)| value_from_json(f, x))
                    .collect::<Result<_, _>>()?,
            )
        }
    })
}

//! The command-line contract of the `decode` and `encode` examples (issue 2, point 9), as
//! functions over arguments and streams so that tests drive exactly what the binaries run.
//!
//! - `decode --json FILE`: one JSON object per message and line on `out`; exit status 0 when
//!   every message decoded, 1 when any did not (one line on `err` per failure, saying what was
//!   wrong and at which byte offset of FILE), 2 for usage errors.
//! - `encode --json [--big-endian]`: JSON lines on `input`, encoded messages on `out`; exit
//!   status 1 with one clear line on `err` for a line that describes an invalid message (nothing
//!   is written for it, nor after it), 2 for usage errors.

use std::io::{BufRead, Write};

use bytes::Bytes;
use fastbus_wire::{Endian, Message, frame_len};

/// Exit status: success.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status: some input was invalid.
pub(crate) const EXIT_INVALID: u8 = 1;
/// Exit status: the command line (or the file) could not be used.
pub(crate) const EXIT_USAGE: u8 = 2;

/// `decode --json FILE` with `args` the arguments after the program name.
pub(crate) fn decode_main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let [flag, path] = args else {
        let _ = writeln!(err, "usage: decode --json FILE");
        return EXIT_USAGE;
    };
    if flag != "--json" {
        let _ = writeln!(err, "usage: decode --json FILE (unknown option {flag:?})");
        return EXIT_USAGE;
    }
    let data = match std::fs::read(path) {
        Ok(d) => Bytes::from(d),
        Err(e) => {
            let _ = writeln!(err, "decode: cannot read {path}: {e}");
            return EXIT_USAGE;
        }
    };
    decode_bytes(&data, out, err)
}

/// Decode every message of `data` (concatenated messages), printing one JSON line each.
pub(crate) fn decode_bytes(data: &Bytes, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let mut ok = true;
    let mut at = 0;
    let mut index = 0;
    while at < data.len() {
        let rest = &data[at..];
        let len = match frame_len(rest) {
            Ok(Some(n)) if n <= rest.len() => n,
            Ok(Some(n)) => {
                let _ = writeln!(
                    err,
                    "message {index} at byte {at}: truncated: the header says {n} bytes, {} remain",
                    rest.len()
                );
                ok = false;
                break;
            }
            Ok(None) => {
                let _ = writeln!(
                    err,
                    "message {index} at byte {at}: truncated: {} bytes of a 16-byte header",
                    rest.len()
                );
                ok = false;
                break;
            }
            Err(e) => {
                let _ = writeln!(
                    err,
                    "message {index} at byte {}: {:?}: {e} (cannot find the next message)",
                    at + e.offset().unwrap_or(0),
                    e.kind()
                );
                ok = false;
                break;
            }
        };
        let decoded =
            Message::decode(data.slice(at..at + len)).and_then(|m| super::message_to_json(&m));
        match decoded {
            Ok(j) => {
                if let Err(e) = writeln!(out, "{j}") {
                    let _ = writeln!(err, "decode: writing stdout: {e}");
                    return EXIT_INVALID;
                }
            }
            Err(e) => {
                let offset = at + e.offset().unwrap_or(0);
                let kind = e.kind();
                let _ = writeln!(
                    err,
                    "message {index} at byte {at}: {kind:?}: {e} (file byte {offset})"
                );
                ok = false;
            }
        }
        at += len;
        index += 1;
    }
    if ok { EXIT_OK } else { EXIT_INVALID }
}

/// `encode --json [--big-endian]` with `args` the arguments after the program name.
pub(crate) fn encode_main(
    args: &[String],
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut endian = None;
    let mut json_flag = false;
    for arg in args {
        match arg.as_str() {
            "--json" => json_flag = true,
            "--big-endian" => endian = Some(Endian::Big),
            other => {
                let _ = writeln!(
                    err,
                    "usage: encode --json [--big-endian] (unknown option {other:?})"
                );
                return EXIT_USAGE;
            }
        }
    }
    if !json_flag {
        let _ = writeln!(err, "usage: encode --json [--big-endian]");
        return EXIT_USAGE;
    }
    for (n, line) in input.lines().enumerate() {
        let line_no = n + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(err, "encode: reading stdin: {e}");
                return EXIT_INVALID;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let encoded = serde_json::from_str(&line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|j| super::message_from_json(&j, endian))
            .and_then(|m| m.encode().map_err(|e| e.to_string()));
        match encoded {
            Ok(bytes) => {
                if let Err(e) = out.write_all(&bytes) {
                    let _ = writeln!(err, "encode: writing stdout: {e}");
                    return EXIT_INVALID;
                }
            }
            Err(e) => {
                let _ = writeln!(err, "line {line_no}: invalid message: {e}");
                return EXIT_INVALID;
            }
        }
    }
    if let Err(e) = out.flush() {
        let _ = writeln!(err, "encode: writing stdout: {e}");
        return EXIT_INVALID;
    }
    EXIT_OK
}

//! Decode a file of concatenated D-Bus messages and print each as one line of JSON.
//!
//! ```text
//! cargo run -q --release -p fastbus-wire --example decode -- --json FILE
//! ```
//!
//! Exit status: 0 when every message decoded; 1 when any did not (one line on stderr per failure,
//! saying what was wrong and at which byte offset of FILE); 2 for usage errors.

mod json;

use std::process::ExitCode;

use bytes::Bytes;
use fastbus_wire::{Message, frame_len};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, path] = args.as_slice() else {
        eprintln!("usage: decode --json FILE");
        return ExitCode::from(2);
    };
    if flag != "--json" {
        eprintln!("usage: decode --json FILE (unknown option {flag:?})");
        return ExitCode::from(2);
    }
    let data = match std::fs::read(path) {
        Ok(d) => Bytes::from(d),
        Err(e) => {
            eprintln!("decode: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut ok = true;
    let mut at = 0;
    let mut index = 0;
    while at < data.len() {
        let rest = &data[at..];
        let len = match frame_len(rest) {
            Ok(Some(n)) if n <= rest.len() => n,
            Ok(Some(n)) => {
                eprintln!(
                    "message {index} at byte {at}: truncated: the header says {n} bytes, {} remain",
                    rest.len()
                );
                ok = false;
                break;
            }
            Ok(None) => {
                eprintln!(
                    "message {index} at byte {at}: truncated: {} bytes of a 16-byte header",
                    rest.len()
                );
                ok = false;
                break;
            }
            Err(e) => {
                eprintln!(
                    "message {index} at byte {}: {e} (cannot find the next message)",
                    at + e.offset().unwrap_or(0)
                );
                ok = false;
                break;
            }
        };
        let decoded =
            Message::decode(data.slice(at..at + len)).and_then(|m| json::message_to_json(&m));
        match decoded {
            Ok(j) => println!("{j}"),
            Err(e) => {
                let offset = at + e.offset().unwrap_or(0);
                let kind = e.kind();
                eprintln!("message {index} at byte {at}: {kind:?}: {e} (file byte {offset})");
                ok = false;
            }
        }
        at += len;
        index += 1;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

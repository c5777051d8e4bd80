//! Read messages as JSON lines (the format the `decode` example prints) on stdin and write the
//! encoded messages to stdout.
//!
//! ```text
//! cargo run -q --release -p fastbus-wire --example encode -- --json [--big-endian] < msgs.jsonl > msgs.bin
//! ```
//!
//! Without `--big-endian`, each message keeps the `endian` of its line (little endian when
//! absent). Exit status: 0 on success; 1 with a clear error for a line that describes an invalid
//! message (nothing is written for it, nor after it); 2 for usage errors.

mod json;

use std::io::{BufRead, Write};
use std::process::ExitCode;

use fastbus_wire::Endian;

fn main() -> ExitCode {
    let mut endian = None;
    let mut json_flag = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => json_flag = true,
            "--big-endian" => endian = Some(Endian::Big),
            other => {
                eprintln!("usage: encode --json [--big-endian] (unknown option {other:?})");
                return ExitCode::from(2);
            }
        }
    }
    if !json_flag {
        eprintln!("usage: encode --json [--big-endian]");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line_no = n + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("encode: reading stdin: {e}");
                return ExitCode::from(1);
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let encoded = serde_json::from_str(&line)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|j| json::message_from_json(&j, endian))
            .and_then(|m| m.encode().map_err(|e| e.to_string()));
        match encoded {
            Ok(bytes) => {
                if let Err(e) = out.write_all(&bytes) {
                    eprintln!("encode: writing stdout: {e}");
                    return ExitCode::from(1);
                }
            }
            Err(e) => {
                eprintln!("line {line_no}: invalid message: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let Err(e) = out.flush() {
        eprintln!("encode: writing stdout: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

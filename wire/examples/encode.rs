//! Read messages as JSON lines (the format the `decode` example prints) on stdin and write the
//! encoded messages to stdout.
//!
//! ```text
//! cargo run -q --release -p fastbus-wire --example encode -- --json [--big-endian] < msgs.jsonl > msgs.bin
//! ```
//!
//! Without `--big-endian`, each message keeps the `endian` of its line (little endian when
//! absent). Exit status: 0 on success; 1 with a clear error for a line that describes an invalid
//! message (nothing is written for it, nor after it); 2 for usage errors. The contract is
//! implemented (and tested) in `json/cli.rs`.

mod json;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = json::cli::encode_main(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}

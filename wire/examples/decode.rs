//! Decode a file of concatenated D-Bus messages and print each as one line of JSON.
//!
//! ```text
//! cargo run -q --release -p fastbus-wire --example decode -- --json FILE
//! ```
//!
//! Exit status: 0 when every message decoded; 1 when any did not (one line on stderr per failure,
//! saying what was wrong and at which byte offset of FILE); 2 for usage errors. The JSON format is
//! described in `json/mod.rs`; the contract is implemented (and tested) in `json/cli.rs`.

mod json;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = json::cli::decode_main(
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(code)
}

//! The command-line contract of the `decode` and `encode` examples (issue 2, point 9), which
//! other tools drive: the JSON lines, the exit statuses 0 / 1 / 2 and the stderr lines. Driven
//! in-process through `json::cli` (exactly what the binaries run), and once through the real
//! binaries when `cargo test` has built them next to this test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bytes::Bytes;
use fastbus_wire::{Endian, Message};
use serde_json::{Value as Json, json};

use crate::json::cli::{EXIT_INVALID, EXIT_OK, EXIT_USAGE, decode_main, encode_main};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

struct Run {
    code: u8,
    out: Vec<u8>,
    err: String,
}

impl Run {
    fn lines(&self) -> Vec<Json> {
        String::from_utf8(self.out.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    fn err_lines(&self) -> Vec<&str> {
        self.err.lines().collect()
    }
}

fn decode(args: &[&str]) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = decode_main(&args, &mut out, &mut err);
    Run {
        code,
        out,
        err: String::from_utf8(err).unwrap(),
    }
}

fn encode(args: &[&str], input: &str) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = encode_main(&args, &mut input.as_bytes(), &mut out, &mut err);
    Run {
        code,
        out,
        err: String::from_utf8(err).unwrap(),
    }
}

/// A file in a fresh temporary directory, removed with it.
fn temp_file(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.bin");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn sample_call(e: Endian) -> Message {
    Message::method_call("/org/example/Obj", "Frob")
        .endian(e)
        .interface("org.example.Iface")
        .destination(":1.5")
        .flags(fastbus_wire::Flags(0x81))
        .serial(42)
        .unix_fds(1)
        .body(&(
            -1i32,
            2.5f64,
            true,
            "text",
            fastbus_wire::ObjectPath::new("/p").unwrap(),
            fastbus_wire::Signature::new("a{sv}").unwrap(),
            fastbus_wire::Fd(0),
            fastbus_wire::Variant(7u8),
            vec![(1u8, "x")],
            std::collections::BTreeMap::from([("k", fastbus_wire::Variant(u64::MAX))]),
        ))
        .build()
        .unwrap()
}

/// The exact JSON of a message: every key of the contract, in every value form it names.
#[test]
fn decode_prints_one_json_object_per_message_with_every_key() {
    let mut file = Vec::new();
    for e in [Endian::Little, Endian::Big] {
        file.extend(sample_call(e).encode().unwrap());
    }
    let call = sample_call(Endian::Little);
    let reply = Message::error(&call, "org.example.Error.Failed", "no")
        .serial(43)
        .build()
        .unwrap();
    file.extend(reply.encode().unwrap());
    let unknown = Message::builder(fastbus_wire::MessageType(100))
        .serial(44)
        .build()
        .unwrap();
    file.extend(unknown.encode().unwrap());
    let (_dir, path) = temp_file(&file);
    let run = decode(&["--json", path.to_str().unwrap()]);
    assert_eq!(run.code, EXIT_OK, "{}", run.err);
    assert_eq!(run.err, "");
    let lines = run.lines();
    assert_eq!(lines.len(), 4);
    let body = json!([
        -1,
        2.5,
        true,
        "text",
        "/p",
        "a{sv}",
        {"fd": 0},
        {"signature": "y", "value": 7},
        [[1, "x"]],
        [["k", {"signature": "t", "value": u64::MAX}]]
    ]);
    for (line, endian) in lines[..2].iter().zip(["l", "B"]) {
        assert_eq!(
            line,
            &json!({
                "endian": endian,
                "type": "method_call",
                "flags": 0x81,
                "serial": 42,
                "path": "/org/example/Obj",
                "interface": "org.example.Iface",
                "member": "Frob",
                "error_name": null,
                "reply_serial": null,
                "destination": ":1.5",
                "sender": null,
                "signature": "idbsoghva(ys)a{sv}",
                "unix_fds": 1,
                "body": body,
            })
        );
    }
    assert_eq!(lines[2]["type"], "error");
    assert_eq!(lines[2]["error_name"], "org.example.Error.Failed");
    assert_eq!(lines[2]["reply_serial"], 42);
    assert_eq!(lines[2]["path"], Json::Null);
    assert_eq!(lines[2]["unix_fds"], Json::Null);
    assert_eq!(lines[2]["body"], json!(["no"]));
    // An unknown type is its number; no signature is "", no body is [].
    assert_eq!(lines[3]["type"], 100);
    assert_eq!(lines[3]["signature"], "");
    assert_eq!(lines[3]["body"], json!([]));
    // Each JSON object is on its own line, nothing else is printed.
    assert_eq!(String::from_utf8(run.out).unwrap().lines().count(), 4);
}

/// The captured messages print exactly their `.expected.jsonl` (GLib's reading of them).
#[test]
fn decode_of_captured_files_prints_what_glib_read() {
    for name in [
        "dbus-daemon-bus-replies",
        "gdbus-big-endian-types",
        "dbus-fast-service-replies",
    ] {
        let run = decode(&["--json", testdata(&format!("{name}.bin")).to_str().unwrap()]);
        assert_eq!(run.code, EXIT_OK, "{name}: {}", run.err);
        let want: Vec<Json> = std::fs::read_to_string(testdata(&format!("{name}.expected.jsonl")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(run.lines(), want, "{name}");
    }
}

/// Exit 1 when any message does not decode: one stderr line per failure, saying what was wrong
/// and at which byte of the file; the messages around it are still printed.
#[test]
fn decode_exits_1_with_one_line_per_bad_message_and_its_offset() {
    let good = sample_call(Endian::Little).encode().unwrap();
    let mut bad = sample_call(Endian::Big).encode().unwrap();
    // Corrupt the BOOLEAN of the body (the third argument) to 2.
    let msg = fastbus_wire::Message::decode(Bytes::from(bad.clone())).unwrap();
    let body_start = bad.len() - msg.body_bytes().len();
    let bool_at = body_start + 16;
    assert_eq!(bad[bool_at..bool_at + 4], [0, 0, 0, 1]);
    bad[bool_at + 3] = 2;
    let mut file = good.clone();
    file.extend(&bad);
    file.extend(&good);
    file.extend(&bad);
    let (_dir, path) = temp_file(&file);
    let run = decode(&["--json", path.to_str().unwrap()]);
    assert_eq!(run.code, EXIT_INVALID);
    assert_eq!(run.lines().len(), 2, "the good messages are printed");
    let errs = run.err_lines();
    assert_eq!(errs.len(), 2, "{}", run.err);
    let first = good.len();
    let second = 2 * good.len() + bad.len();
    assert!(
        errs[0].starts_with(&format!("message 1 at byte {first}: BooleanNotZeroOrOne: ")),
        "{}",
        errs[0]
    );
    assert!(
        errs[0].contains(&format!("(file byte {})", first + bool_at)),
        "{}",
        errs[0]
    );
    assert!(
        errs[1].starts_with(&format!("message 3 at byte {second}:")),
        "{}",
        errs[1]
    );
    assert!(
        errs[1].contains(&format!("(file byte {})", second + bool_at)),
        "{}",
        errs[1]
    );

    // A truncated last message and bytes that can never be a message: one line each, then stop.
    let (_d, path) = temp_file(&[&good[..], &good[..good.len() - 3]].concat());
    let run = decode(&["--json", path.to_str().unwrap()]);
    assert_eq!((run.code, run.lines().len()), (EXIT_INVALID, 1));
    assert_eq!(run.err_lines().len(), 1);
    assert!(
        run.err
            .contains(&format!("at byte {}: truncated", good.len())),
        "{}",
        run.err
    );
    let (_d, path) = temp_file(&[&good[..], b"XXXXXXXXXXXXXXXXXXXX"].concat());
    let run = decode(&["--json", path.to_str().unwrap()]);
    assert_eq!((run.code, run.lines().len()), (EXIT_INVALID, 1));
    assert_eq!(run.err_lines().len(), 1);
    assert!(run.err.contains("BadByteOrder"), "{}", run.err);
    assert!(
        run.err.contains(&format!("at byte {}", good.len())),
        "{}",
        run.err
    );
    // An empty file holds no message, and that is no error.
    let (_d, path) = temp_file(&[]);
    let run = decode(&["--json", path.to_str().unwrap()]);
    assert_eq!((run.code, run.out.len(), run.err.len()), (EXIT_OK, 0, 0));
}

#[test]
fn decode_and_encode_exit_2_on_usage_errors() {
    for args in [
        &[][..],
        &["--json"],
        &["FILE"],
        &["--xml", "FILE"],
        &["--json", "a", "b"],
    ] {
        let run = decode(args);
        assert_eq!(run.code, EXIT_USAGE, "{args:?}");
        assert!(
            run.err.starts_with("usage: decode --json FILE"),
            "{}",
            run.err
        );
        assert!(run.out.is_empty());
    }
    let run = decode(&["--json", "/nonexistent/fastbus/messages.bin"]);
    assert_eq!(run.code, EXIT_USAGE);
    assert!(run.err.contains("cannot read"), "{}", run.err);
    for args in [&[][..], &["--big-endian"], &["--json", "--little"]] {
        let run = encode(args, "");
        assert_eq!(run.code, EXIT_USAGE, "{args:?}");
        assert!(
            run.err.starts_with("usage: encode --json [--big-endian]"),
            "{}",
            run.err
        );
    }
}

/// `encode` reads what `decode` prints and writes the same messages; `--big-endian` re-encodes
/// every message big-endian with the same content.
#[test]
fn encode_writes_what_decode_read_in_either_byte_order() {
    let data = std::fs::read(testdata("dbus-fast-client-calls.bin")).unwrap();
    let (_dir, path) = temp_file(&data);
    let printed = decode(&["--json", path.to_str().unwrap()]);
    assert_eq!(printed.code, EXIT_OK);
    let text = String::from_utf8(printed.out.clone()).unwrap();
    let run = encode(&["--json"], &text);
    assert_eq!(run.code, EXIT_OK, "{}", run.err);
    let (_dir1, path1) = temp_file(&run.out);
    assert_eq!(
        decode(&["--json", path1.to_str().unwrap()]).lines(),
        printed.lines()
    );

    let big = encode(&["--json", "--big-endian"], &text);
    assert_eq!(big.code, EXIT_OK, "{}", big.err);
    assert_eq!(big.out[0], b'B');
    let (_dir2, path2) = temp_file(&big.out);
    let again = decode(&["--json", path2.to_str().unwrap()]);
    let mut want = printed.lines();
    for j in &mut want {
        j["endian"] = json!("B");
    }
    assert_eq!(again.lines(), want);
}

/// Exit 1 with one clear line (which input line, what is wrong) for input that describes an
/// invalid message; nothing is written for it or after it.
#[test]
fn encode_exits_1_with_a_clear_error_for_an_invalid_message() {
    let ok =
        r#"{"type":"method_call","serial":1,"path":"/a","member":"M","signature":"","body":[]}"#;
    for (bad, why) in [
        ("not json", "not JSON"),
        (
            r#"{"type":"signal","serial":1,"path":"/a","member":"M"}"#,
            "INTERFACE",
        ),
        (
            r#"{"type":"method_call","serial":0,"path":"/a","member":"M"}"#,
            "serial",
        ),
        (
            r#"{"type":"method_call","serial":1,"path":"a","member":"M"}"#,
            "path",
        ),
        (
            r#"{"type":"method_call","serial":1,"path":"/a","member":"M","signature":"a{vs}","body":[[]]}"#,
            "basic",
        ),
        (
            r#"{"type":"method_call","serial":1,"path":"/a","member":"M","signature":"y","body":[300]}"#,
            "300",
        ),
        (
            r#"{"type":"method_call","serial":1,"path":"/a","member":"M","signature":"ss","body":["x"]}"#,
            "2 arguments",
        ),
        (
            r#"{"type":"method_call","serial":1,"path":"/a","member":"M","signature":"s","body":["a\u0000b"]}"#,
            "NUL",
        ),
        (r#"{"type":"bogus","serial":1}"#, "unknown message type"),
        (r#"{"type":0,"serial":1}"#, "message type 0"),
    ] {
        let input = format!("{ok}\n{bad}\n{ok}\n");
        let run = encode(&["--json"], &input);
        assert_eq!(run.code, EXIT_INVALID, "{bad}");
        let errs = run.err_lines();
        assert_eq!(errs.len(), 1, "{bad}: {}", run.err);
        assert!(
            errs[0].starts_with("line 2: invalid message: "),
            "{}",
            errs[0]
        );
        assert!(
            errs[0].contains(why),
            "{bad}: {} should mention {why:?}",
            errs[0]
        );
        let one = Message::decode(Bytes::from(run.out.clone()))
            .unwrap_or_else(|e| panic!("{bad}: only the first message is written: {e}"));
        assert_eq!(one.serial(), 1);
    }
}

/// The example binaries themselves, when `cargo test` built them (it builds every example):
/// same output and exit statuses as the functions tested above.
#[test]
fn example_binaries_keep_the_contract() {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("examples")))
    else {
        return;
    };
    let (decode_bin, encode_bin) = (dir.join("decode"), dir.join("encode"));
    if !decode_bin.exists() || !encode_bin.exists() {
        println!(
            "skipped: the example binaries are not built in {}",
            dir.display()
        );
        return;
    }
    let file = testdata("gdbus-little-endian-types.bin");
    let out = Command::new(&decode_bin)
        .args(["--json", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, decode(&["--json", file.to_str().unwrap()]).out);
    let usage = Command::new(&decode_bin).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let (_dir, bad) = temp_file(b"l\x01\x00\x01garbage-garbage-garbage");
    let failed = Command::new(&decode_bin)
        .args(["--json", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&failed.stderr).lines().count(), 1);

    let mut child = Command::new(&encode_bin)
        .args(["--json", "--big-endian"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let encoded = child.wait_with_output().unwrap();
    assert_eq!(
        encoded.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&encoded.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        encoded.stdout,
        encode(&["--json", "--big-endian"], &text).out
    );
}

//! Run with: `cargo run -p hive-core --example wire_seed_corpus -- fuzz/corpus/wire_decode`
//!
//! Writes one encoded frame per wire message type (the samples behind the golden vectors) into a
//! directory, as a starting corpus for the `wire_decode` fuzz target.

#[path = "../tests/common/samples.rs"]
mod samples;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!("usage: wire_seed_corpus DIR");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, msg) in samples::all() {
        let path = dir.join(format!("seed-{name}"));
        if let Err(e) = std::fs::write(&path, msg.encode_to_vec()) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}

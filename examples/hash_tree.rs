//! Hashes a copy source as a cache key would, and prints the digest and the
//! time it took: `hash_tree PROJECT_DIR [SRC]` (SRC defaults to `.`).
//!
//! Used by `bench/hash.sh`, so the benchmark depends on the library only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(project), src) = (args.next(), args.next()) else {
        eprintln!("usage: hash_tree PROJECT_DIR [SRC]");
        return ExitCode::from(2);
    };
    let src = PathBuf::from(src.unwrap_or_else(|| ".".into()));
    let start = Instant::now();
    match berth::resolve::tree::hash_tree(project.as_ref(), &src) {
        Ok(d) => {
            let secs = start.elapsed().as_secs_f64();
            println!("{}  files={} bytes={} secs={secs:.3}", hex::encode(d.hash), d.files, d.bytes);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("hash_tree: {err}");
            ExitCode::FAILURE
        }
    }
}

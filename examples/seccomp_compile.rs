//! What making berth's default seccomp filter costs, stage by stage, in
//! microseconds: `seccomp_compile [ROUNDS]` (default 2000).
//!
//! - `profile`: Docker's default profile as data ([`default_profile`]);
//! - `resolve`: its rules decided for a container with Docker's default
//!   capabilities on this kernel ([`for_spec`], done once at create, its
//!   result kept in the container's spec);
//! - `compile`: that object turned into a BPF program ([`compile`], done in
//!   the parent at every start, exec, health check and build step);
//! - `install`: the kernel taking the program (`seccomp(2)` in a forked
//!   child, once per container process: it checks the program, translates
//!   and JIT-compiles it, and runs it for every system call number to
//!   learn which are always allowed). Needs root (or it is left out).
//!
//! Used by `bench/start.sh`, so the figure comes from the library alone,
//! without a process start around it.
//!
//! [`default_profile`]: berth::runtime::seccomp::default_profile
//! [`for_spec`]: berth::runtime::seccomp::for_spec
//! [`compile`]: berth::runtime::seccomp::compile

use std::process::ExitCode;
use std::time::{Duration, Instant};

use berth::runtime::seccomp;

fn main() -> ExitCode {
    let rounds = match std::env::args().nth(1).map(|a| a.parse::<usize>()) {
        None => 2000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: seccomp_compile [ROUNDS]   (ROUNDS: a number above 0)");
            return ExitCode::from(2);
        }
    };
    let caps = berth::runtime::spec::default_capabilities_mask();
    let (mut profile, mut resolve, mut compile) = (Vec::new(), Vec::new(), Vec::new());
    let mut instructions = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let p = seccomp::default_profile();
        profile.push(t.elapsed());
        let t = Instant::now();
        let object = seccomp::for_spec(&p, caps);
        resolve.push(t.elapsed());
        let t = Instant::now();
        let filter = match seccomp::compile(&object) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("seccomp_compile: the default profile does not compile: {e}");
                return ExitCode::FAILURE;
            }
        };
        compile.push(t.elapsed());
        instructions = std::hint::black_box(filter).program.len();
    }
    println!("rounds={rounds} instructions={instructions}");
    for (name, times) in [("profile", &mut profile), ("resolve", &mut resolve), ("compile", &mut compile)] {
        println!("{name:8} median_us={:.1} p90_us={:.1}", quantile(times, 0.5), quantile(times, 0.9));
    }
    let filter = seccomp::compile(&seccomp::for_spec(&seccomp::default_profile(), caps)).expect("compiled above");
    let mut install = Vec::new();
    for _ in 0..rounds.min(500) {
        match install_once(&filter) {
            Ok(took) => install.push(took),
            Err(e) => {
                println!("install  not measured: {e}");
                break;
            }
        }
    }
    if !install.is_empty() {
        println!("install  median_us={:.1} p90_us={:.1}", quantile(&mut install, 0.5), quantile(&mut install, 0.9));
    }
    ExitCode::SUCCESS
}

/// How long `seccomp(2)` takes to install `filter` in a forked child.
fn install_once(filter: &seccomp::Filter) -> Result<Duration, String> {
    use std::io::{Read, Write};
    let (mut r, mut w) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    match berth::sys::ns::fork().map_err(|e| format!("fork: {e}"))? {
        berth::sys::ns::Forked::Child => {
            drop(r);
            let t = Instant::now();
            // 0 for an error (its errno follows), else the nanoseconds.
            let report = match berth::sys::seccomp::install_filter(&filter.program, filter.flags) {
                Ok(()) => [t.elapsed().as_nanos().max(1) as u64, 0],
                Err(e) => [0, e.raw_os_error().unwrap_or(0) as u64],
            };
            let _ = w.write_all(&report[0].to_le_bytes()).and_then(|()| w.write_all(&report[1].to_le_bytes()));
            std::process::exit(0)
        }
        berth::sys::ns::Forked::Parent(pid) => {
            drop(w);
            let mut buf = [0u8; 16];
            let read = r.read_exact(&mut buf);
            let _ = nix::sys::wait::waitpid(pid, None);
            read.map_err(|e| format!("the child's report: {e}"))?;
            let word = |i: usize| u64::from_le_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
            match word(0) {
                0 => Err(format!("seccomp(2): {}", std::io::Error::from_raw_os_error(word(1) as i32))),
                ns => Ok(Duration::from_nanos(ns)),
            }
        }
    }
}

/// The `q` quantile of `times`, in microseconds.
fn quantile(times: &mut [Duration], q: f64) -> f64 {
    times.sort();
    let i = ((times.len() - 1) as f64 * q).round() as usize;
    times[i].as_secs_f64() * 1e6
}

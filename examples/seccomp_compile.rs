//! What making berth's default seccomp filter costs, stage by stage, in
//! microseconds: `seccomp_compile [ROUNDS]` (default 2000).
//!
//! - `profile`: Docker's default profile as data ([`default_profile`]);
//! - `resolve`: its rules decided for a container with Docker's default
//!   capabilities on this kernel ([`for_spec`], done once at create, its
//!   result kept in the container's spec);
//! - `compile`: that object turned into a BPF program ([`compile`], done in
//!   the parent at every start, exec, health check and build step).
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
    ExitCode::SUCCESS
}

/// The `q` quantile of `times`, in microseconds.
fn quantile(times: &mut [Duration], q: f64) -> f64 {
    times.sort();
    let i = ((times.len() - 1) as f64 * q).round() as usize;
    times[i].as_secs_f64() * 1e6
}

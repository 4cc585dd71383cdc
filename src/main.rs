//! The `berth` binary: parses the command line, calls the library, prints
//! the result and sets the exit code. All logic lives in the `berth` library.
//!
//! Two hidden entry points come before the command line: `berth __init …`
//! is the init of a container (PID 1, executed by berth itself from a
//! sealed copy of this binary), see `berth::runtime::init`; `berth __shim
//! DIR FD` is a detached container's shim, see `berth::runtime::shim`.

mod cli;

fn main() -> std::process::ExitCode {
    if std::env::args_os().nth(1).as_deref() == Some("__init".as_ref()) {
        berth::runtime::init::main()
    }
    if std::env::args_os().nth(1).as_deref() == Some("__shim".as_ref()) {
        let args: Vec<String> = std::env::args().skip(2).collect();
        berth::runtime::shim::main(&args)
    }
    cli::main()
}

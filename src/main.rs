//! The `berth` binary: parses the command line, calls the library, prints
//! the result and sets the exit code. All logic lives in the `berth` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

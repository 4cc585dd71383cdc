//! `berth attach`: a detached container's input and output, live.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use berth::runtime::attach::Connection;
use berth::runtime::{control, state};
use signal_hook::consts::{SIGINT, SIGTERM, SIGWINCH};
use signal_hook::iterator::Signals;

/// Attach to a running container's input and output. Ctrl-P Ctrl-Q
/// detaches and leaves it running.
#[derive(clap::Args)]
#[command(after_help = "Example: berth run -dit --name box busybox sh && berth attach box")]
pub struct Args {
    /// Do not send the container berth's input
    #[arg(long)]
    no_stdin: bool,
    container: String,
}

const DETACH: [u8; 2] = [0x10, 0x11]; // Ctrl-P Ctrl-Q

pub fn run(ctx: &super::Context, args: Args) -> anyhow::Result<ExitCode> {
    let store = super::containers::store(ctx)?;
    let c = super::containers::find(&store, &args.container)?;
    if !control::is_running(&c)? {
        anyhow::bail!("container {} is not running; `berth start {}` starts it", c.record.name, c.record.name);
    }
    let mut conn = Connection::open(&c.paths.dir)
        .map_err(|e| anyhow::anyhow!("container {}: cannot reach its shim: {e}", c.record.name))?;
    let _raw = if c.record.tty && std::io::stdin().is_terminal() {
        berth::sys::tty::RawMode::enter(std::io::stdin()).ok()
    } else {
        None
    };
    let mut signals = Signals::new([SIGWINCH, SIGINT, SIGTERM])?;
    let handle = signals.handle();
    let mut resizer = conn.sender()?;
    if c.record.tty
        && let Some(ws) = berth::sys::tty::window_size(std::io::stdout())
    {
        resizer.resize(&ws)?;
    }
    let target = c.clone();
    let tty = c.record.tty;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == SIGWINCH {
                if let Some(ws) = berth::sys::tty::window_size(std::io::stdout()) {
                    let _ = resizer.resize(&ws);
                }
            } else if !tty {
                // As Docker's --sig-proxy: signals go to the container.
                let _ = control::kill(
                    &target,
                    nix::sys::signal::Signal::try_from(sig).unwrap_or(nix::sys::signal::Signal::SIGTERM),
                );
            }
        }
    });
    let detached = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if !args.no_stdin && (c.record.interactive || c.record.tty) {
        let mut sender = conn.sender()?;
        let flag = detached.clone();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            let mut last = 0u8;
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let data = &buf[..n];
                let seq = std::iter::once(last).chain(data.iter().copied()).collect::<Vec<u8>>();
                if seq.windows(2).any(|w| w == DETACH) {
                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                    sender.detach();
                    break;
                }
                last = data[n - 1];
                if sender.input(data).is_err() {
                    break;
                }
            }
        });
    }
    let _ = conn.copy_output(&mut std::io::stdout().lock());
    handle.close();
    drop(_raw);
    if detached.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("\r\nberth: detached from {}; it keeps running", c.record.name);
        return Ok(ExitCode::SUCCESS);
    }
    // The container exited: its status is berth's, as with docker attach.
    for _ in 0..100 {
        if let Ok(st) = state::read_state(&c.paths.dir)
            && st.status == state::Status::Exited
        {
            return Ok(ExitCode::from(u8::try_from(st.exit_code.unwrap_or(0)).unwrap_or(255)));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(ExitCode::SUCCESS)
}

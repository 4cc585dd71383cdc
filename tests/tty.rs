//! `-it`: a real pty for the command, window size set at start and
//! forwarded on change, and the user's terminal restored on exit. Run under
//! `script`, which gives berth a terminal as a user's shell would.

mod support;

use std::process::Command;

use support::Berth;

/// Runs `shell` (which may call `$BERTH`) under `script`, on a terminal.
fn on_a_terminal(berth: &Berth, shell: &str) -> String {
    let bin = format!("{} --root {}", env!("CARGO_BIN_EXE_berth"), berth.store_root().display());
    let out = Command::new("script")
        .args(["-qec", &shell.replace("$BERTH", &bin), "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run script(1) from bsdutils");
    // script(1) echoes a NUL (`^@`) when its own stdin, /dev/null here, ends.
    String::from_utf8_lossy(&out.stdout).replace(['\r', '\0'], "").replace("^@", "")
}

#[test]
fn the_command_gets_a_terminal_of_the_users_size() {
    let berth = Berth::with_busybox();
    let out = on_a_terminal(
        &berth,
        "stty rows 33 cols 99; $BERTH run --rm -it busybox sh -c '[ -t 0 ] && [ -t 1 ] && echo on-a-tty; stty size; echo $TERM'",
    );
    assert_eq!(out, "on-a-tty\n33 99\nxterm\n");
}

#[test]
fn window_size_changes_are_forwarded_and_the_terminal_is_restored() {
    let berth = Berth::with_busybox();
    let out = on_a_terminal(
        &berth,
        "stty rows 10 cols 20; (sleep 1.2; stty rows 40 cols 100 < /dev/tty) & \
         $BERTH run --rm -it busybox sh -c 'stty size; sleep 2.5; stty size'; stty -a | grep -o -- ' -*icanon'",
    );
    assert_eq!(out, "10 20\n40 100\n icanon\n", "raw mode must be undone when berth exits");
}

#[test]
fn exec_gets_a_terminal_too() {
    let berth = Berth::with_busybox();
    berth.detach(&["--name", "t", "busybox", "sleep", "60"]);
    let out = on_a_terminal(&berth, "stty rows 21 cols 77; $BERTH exec -it t stty size");
    assert_eq!(out, "21 77\n");
}

//! `-it`: a real pty for the command, window size set at start and
//! forwarded on change, and the user's terminal restored on exit. Run under
//! `script`, which gives berth a terminal as a user's shell would.

mod support;

use support::Berth;
use support::stream::Terminal;

/// `$BERTH` in a shell command: berth with the test's store.
fn with_berth(berth: &Berth, shell: &str) -> String {
    let bin = format!("{} --root {}", env!("CARGO_BIN_EXE_berth"), berth.store_root().display());
    shell.replace("$BERTH", &bin)
}

/// Runs `shell` (which may call `$BERTH`) under `script`, on a terminal,
/// and returns what the terminal showed.
fn on_a_terminal(berth: &Berth, shell: &str) -> String {
    Terminal::run(&with_berth(berth, shell)).finish()
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
    let resized = tempfile::tempdir().unwrap();
    let go = resized.path().join("resize-now");
    // The container prints its first size, then waits (at most a minute)
    // for another one; the terminal is resized once the test has seen the
    // first size, which is when berth has forwarded the terminal's size.
    let container = "stty size; i=0; while [ \"$(stty size)\" = \"10 20\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; stty size";
    let resize = format!(
        "(i=0; while [ ! -e {go} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; stty rows 40 cols 100 < /dev/tty)",
        go = go.display()
    );
    let shell = format!(
        "stty rows 10 cols 20; {resize} & $BERTH run --rm -it busybox sh -c '{container}'; wait; stty -a | grep -o -- ' -*icanon'"
    );
    let terminal = Terminal::run(&with_berth(&berth, &shell));
    terminal.wait_for("10 20");
    std::fs::write(&go, "").unwrap();
    let out = terminal.finish();
    assert_eq!(out, "10 20\n40 100\n icanon\n", "raw mode must be undone when berth exits");
}

#[test]
fn exec_gets_a_terminal_too() {
    let berth = Berth::with_busybox();
    berth.detach(&["--name", "t", "busybox", "sleep", "60"]);
    let out = on_a_terminal(&berth, "stty rows 21 cols 77; $BERTH exec -it t stty size");
    assert_eq!(out, "21 77\n");
}

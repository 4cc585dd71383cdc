//! `berth attach`: live output, input to a `-i` container, a `-t`
//! container's terminal with its size, Ctrl-P Ctrl-Q to detach.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::Berth;
use support::stream::{Collected, Terminal, WAIT_FOR_RAW_MODE, wait_child};

fn berth_cmd(berth: &Berth) -> String {
    format!("{} --root {}", env!("CARGO_BIN_EXE_berth"), berth.store_root().display())
}

fn status(berth: &Berth, name: &str) -> serde_json::Value {
    let all = berth.run(&["ps", "-a", "--json"]).json();
    all.as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap_or_default()
}

#[test]
fn input_reaches_an_interactive_container_and_output_comes_back() {
    let berth = Berth::with_busybox();
    berth.detach(&["-i", "--name", "echo", "busybox", "sh", "-c", "read a; echo got:$a; read b; echo got:$b; exit 5"]);
    // No wait needed: input written before attach connects waits in the
    // pipe, and the shim adds a client before it reads the client's input,
    // so the replies reach it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["--root", &berth.store_root().to_string_lossy(), "attach", "echo"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\n").unwrap();
    let out = Collected::start(child.stdout.take().unwrap());
    let status = wait_child(&mut child, "berth attach");
    drop(stdin);
    assert_eq!(out.finish(), "got:one\ngot:two\n");
    assert_eq!(status.code(), Some(5), "attach exits with the container's status");
    assert_eq!(berth.run(&["logs", "echo"]).stdout, "got:one\ngot:two\n");
}

/// Runs `berth attach NAME` under script(1) (a terminal) with the
/// terminal's size set first, types `keys` once berth has put the terminal
/// in raw mode, and returns what the terminal showed.
fn attach_on_a_terminal(berth: &Berth, name: &str, keys: &[u8]) -> String {
    let shell =
        format!("stty rows 12 cols 34; {WAIT_FOR_RAW_MODE} & {} attach {name}; echo attach-rc=$?", berth_cmd(berth));
    let mut terminal = Terminal::run(&shell);
    terminal.wait_for("RAW-MODE-ON");
    terminal.type_keys(keys);
    terminal.finish()
}

#[test]
fn a_terminal_container_gets_the_users_size_and_keys() {
    let berth = Berth::with_busybox();
    berth.detach(&["-it", "--name", "tty", "busybox", "sh"]);
    let text = attach_on_a_terminal(&berth, "tty", b"stty size; exit 7\r");
    assert!(text.contains("\n12 34\n") && text.contains("attach-rc=7"), "{text:?}");
    assert_eq!(status(&berth, "tty")["exit_code"], 7);
}

#[test]
fn ctrl_p_ctrl_q_detaches_and_leaves_the_container_running() {
    let berth = Berth::with_busybox();
    berth.detach(&["-it", "--name", "stay", "busybox", "sh"]);
    let text = attach_on_a_terminal(&berth, "stay", &[0x10, 0x11]);
    assert!(text.contains("attach-rc=0"), "{text:?}");
    assert_eq!(status(&berth, "stay")["status"], "running");
}

#[test]
fn attaching_to_a_stopped_container_says_how_to_start_it() {
    let berth = Berth::with_busybox();
    berth.run(&["run", "--name", "done", "busybox", "true"]).ok();
    let err = berth.run(&["attach", "done"]).fails_with(1).to_owned();
    assert!(err.contains("is not running") && err.contains("berth start done"), "{err}");
}

//! Tests of `state.json` and of telling live processes from dead ones.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::*;

fn running(id: &str) -> State {
    State {
        status: Status::Running,
        pid: Some(4242),
        pid_start: Some(777),
        started_at: Some(Timestamp(UNIX_EPOCH + Duration::new(1_700_000_000, 5))),
        ..State::created(id, 4200, 700)
    }
}

#[test]
fn writes_and_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut state = running("web-1");
    write_state(dir.path(), &state).expect("write");
    assert_eq!(read_state(dir.path()).expect("read"), state);

    state.status = Status::Exited;
    state.exit_code = Some(137);
    state.oom_killed = true;
    state.finished_at = Some(Timestamp(UNIX_EPOCH + Duration::from_secs(1_700_000_060)));
    write_state(dir.path(), &state).expect("rewrite");
    assert_eq!(read_state(dir.path()).expect("read"), state);

    // Only state.json is left: the temp file was renamed into place.
    let names: Vec<_> = fs::read_dir(dir.path()).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names, [STATE_FILE]);
}

#[test]
fn the_file_is_plain_json_with_rfc3339_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_state(dir.path(), &running("web-1")).expect("write");
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join(STATE_FILE)).expect("read")).expect("json");
    assert_eq!(json["status"], "running");
    assert_eq!(json["started_at"], "2023-11-14T22:13:20.000000005Z");
    assert_eq!(json["finished_at"], serde_json::Value::Null);
    assert_eq!(json["pid_start"], 777);
}

#[test]
fn reads_older_files_without_the_optional_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let minimal = r#"{"id":"a","status":"exited","pid":null,"pid_start":null,"shim_pid":1,"shim_start":2,
        "started_at":"2023-11-14T22:13:20Z","finished_at":null,"exit_code":0}"#;
    fs::write(dir.path().join(STATE_FILE), minimal).expect("write");
    let state = read_state(dir.path()).expect("read");
    assert_eq!(state.status, Status::Exited);
    assert_eq!((state.restart_count, state.oom_killed, state.stop_requested), (0, false, false));
}

#[test]
fn a_missing_state_has_its_own_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = read_state(dir.path()).expect_err("missing");
    assert!(matches!(err, StateError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("still being created"), "{err}");
}

#[test]
fn a_corrupt_state_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(STATE_FILE), r#"{"id":"a","status":"sleeping"}"#).expect("write");
    let err = read_state(dir.path()).expect_err("corrupt");
    assert!(matches!(err, StateError::Parse { .. }), "{err}");
    assert!(err.to_string().contains("state.json is not valid"), "{err}");
}

#[test]
fn writing_into_a_missing_directory_fails_with_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = write_state(&dir.path().join("gone"), &running("a")).expect_err("no dir");
    assert!(err.to_string().contains("gone/state.json"), "{err}");
}

#[test]
fn parses_proc_stat_with_awkward_command_names() {
    let fields_after_comm = "S 1 2 3 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 200";
    for comm in ["sleep", "a b", "x) S 9 9 (y", "((", ""] {
        let line = format!("123 ({comm}) {fields_after_comm}\n");
        let stat = parse_stat(&line).expect(comm);
        assert_eq!((stat.state, stat.start), ('S', 987_654), "{comm}");
    }
    assert!(parse_stat("123 (short) S 1 2").is_none());
    assert!(parse_stat("no parenthesis").is_none());
}

#[test]
fn this_process_is_alive_only_with_its_own_start_time() {
    let pid = std::process::id() as i32;
    let start = process_start_time(pid).expect("own start time");
    assert!(process_alive(pid, start));
    assert!(!process_alive(pid, start + 1), "a reused pid must not count");
    assert!(!process_alive(0, start));
    assert!(!process_alive(-1, start));
    assert!(!process_alive(i32::MAX, start));
}

#[test]
fn a_fake_proc_root_shows_a_reused_pid() {
    let root = tempfile::tempdir().expect("tempdir");
    fs::create_dir(root.path().join("77")).expect("mkdir");
    fs::write(root.path().join("77/stat"), "77 (new owner) S 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0\n")
        .expect("write");
    assert!(process_alive_in(root.path(), 77, 5000));
    assert!(!process_alive_in(root.path(), 77, 4999));
    assert!(!process_alive_in(root.path(), 78, 5000));
}

#[test]
fn a_zombie_is_not_alive() {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id() as i32;
    let start = process_start_time(pid).expect("start time");
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid, start) {
        assert!(Instant::now() < deadline, "`true` did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Not reaped yet: /proc/PID still exists, as a zombie.
    assert_eq!(process_start_time(pid).expect("zombie's stat"), start);
    child.wait().expect("reap");
    assert!(!process_alive(pid, start));
    assert!(matches!(process_start_time(pid), Err(StateError::ProcStat { .. })));
}

/// A recorded state, the (pid, start) pairs alive, the status and reason to see.
type Case<'a> = (&'a State, &'a [(i32, u64)], Status, Option<Stale>);

#[test]
fn observes_a_dead_shim() {
    let state = running("web");
    let created = State::created("web", 4200, 700);
    let exited = State { status: Status::Exited, exit_code: Some(0), ..running("web") };
    let shim_gone = Some(Stale::ShimGone { shim_pid: 4200, recorded: Status::Running });
    #[rustfmt::skip]
    let cases: [Case<'_>; 8] = [
        (&state, &[(4200, 700), (4242, 777)], Status::Running, None),
        (&state, &[(4200, 700)], Status::Running, None),
        (&state, &[(4242, 777)], Status::Dead, Some(Stale::Orphaned { shim_pid: 4200, pid: 4242 })),
        (&state, &[], Status::Exited, shim_gone.clone()),
        // The shim's pid was reused: a different start time.
        (&state, &[(4200, 701)], Status::Exited, shim_gone),
        (&created, &[], Status::Exited, Some(Stale::ShimGone { shim_pid: 4200, recorded: Status::Created })),
        (&exited, &[], Status::Exited, None),
        (&exited, &[(4242, 777)], Status::Exited, None),
    ];
    for (state, live, status, stale) in cases {
        let observed = observed_status_with(state, &|pid, start| live.contains(&(pid, start)));
        assert_eq!(observed, Observed { status, stale }, "{state:?} with {live:?} alive");
    }
}

#[test]
fn observes_real_processes() {
    let me = std::process::id() as i32;
    let my_start = process_start_time(me).expect("start time");
    let state = State { status: Status::Running, ..State::created("c", me, my_start) };
    assert_eq!(observed_status(&state), Observed { status: Status::Running, stale: None });

    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id() as i32;
    let dead_start = process_start_time(dead).expect("start time");
    child.wait().expect("reap");
    let state = State { status: Status::Running, ..State::created("c", dead, dead_start) };
    let observed = observed_status(&state);
    assert_eq!(observed.status, Status::Exited);
    let reason = observed.stale.expect("stale").to_string();
    assert!(reason.contains(&format!("shim (pid {dead}) died while the container was running")), "{reason}");
}

//! Tests of the reading side, on logs written record by record with known times.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::UNIX_EPOCH;

use super::super::record::encode;
use super::super::{LogWriter, MAX_RECORD_TEXT};
use super::*;

/// A record at second `t` after 2023-11-14T22:13:20Z.
type Rec<'a> = (u64, Stream, bool, &'a str);

const BASE: u64 = 1_700_000_000;

fn at(t: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(BASE + t)
}

fn encoded(recs: &[Rec<'_>]) -> Vec<u8> {
    let mut buf = Vec::new();
    for &(t, stream, partial, text) in recs {
        encode(&mut buf, at(t), stream, partial, text.as_bytes());
    }
    buf
}

struct Log {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn log(current: &[Rec<'_>], rotated: Option<&[Rec<'_>]>) -> Log {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    fs::write(&path, encoded(current)).expect("write log");
    if let Some(old) = rotated {
        fs::write(rotated_path(&path), encoded(old)).expect("write log.1");
    }
    Log { _dir: dir, path }
}

fn read(log: &Log, query: LogQuery) -> String {
    let mut out = Vec::new();
    read_logs(&log.path, &query, &mut Outputs::merged(&mut out)).expect("read logs");
    String::from_utf8(out).expect("utf-8")
}

fn tail(n: usize) -> LogQuery {
    LogQuery { tail: Some(n), ..LogQuery::default() }
}

const OUT: Stream = Stream::Stdout;
const ERR: Stream = Stream::Stderr;

fn sample() -> Log {
    log(&[(1, OUT, false, "one"), (2, ERR, false, "two"), (3, OUT, false, "three"), (4, ERR, false, "four")], None)
}

#[test]
fn prints_text_only_by_default_and_timestamps_on_request() {
    let log = sample();
    assert_eq!(read(&log, LogQuery::default()), "one\ntwo\nthree\nfour\n");
    let with_ts = read(&log, LogQuery { timestamps: true, ..LogQuery::default() });
    assert!(
        with_ts.starts_with("2023-11-14T22:13:21.000000000Z one\n2023-11-14T22:13:22.000000000Z two\n"),
        "{with_ts}"
    );
}

#[test]
fn splits_stderr_to_its_own_writer() {
    let log = sample();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary =
        read_logs(&log.path, &LogQuery::default(), &mut Outputs::split(&mut out, &mut err)).expect("read logs");
    assert_eq!(out, b"one\nthree\n");
    assert_eq!(err, b"two\nfour\n");
    assert_eq!(summary, LogSummary { lines: 4, skipped: 0 });
}

#[test]
fn filters_by_stream_and_time() {
    let log = sample();
    let only_err = Streams { stdout: false, stderr: true };
    assert_eq!(read(&log, LogQuery { streams: only_err, ..LogQuery::default() }), "two\nfour\n");
    assert_eq!(read(&log, LogQuery { since: Some(at(2)), ..LogQuery::default() }), "two\nthree\nfour\n");
    assert_eq!(read(&log, LogQuery { until: Some(at(2)), ..LogQuery::default() }), "one\ntwo\n");
    let window = LogQuery { since: Some(at(2)), until: Some(at(3)), ..LogQuery::default() };
    assert_eq!(read(&log, window), "two\nthree\n");
}

#[test]
fn tails_the_last_lines() {
    let log = sample();
    let cases = [
        (0, ""),
        (1, "four\n"),
        (3, "two\nthree\nfour\n"),
        (4, "one\ntwo\nthree\nfour\n"),
        (99, "one\ntwo\nthree\nfour\n"),
    ];
    for (n, expected) in cases {
        assert_eq!(read(&log, tail(n)), expected, "tail {n}");
    }
    let only_out = Streams { stdout: true, stderr: false };
    assert_eq!(read(&log, LogQuery { streams: only_out, ..tail(1) }), "three\n");
    assert_eq!(read(&log, LogQuery { since: Some(at(3)), ..tail(3) }), "three\nfour\n");
    assert_eq!(read(&log, LogQuery { until: Some(at(3)), ..tail(2) }), "two\nthree\n");
}

#[test]
fn assembles_partial_records_across_the_other_stream() {
    let log = log(
        &[
            (1, OUT, false, "before"),
            (2, OUT, true, "long "),
            (2, ERR, false, "err in between"),
            (3, OUT, true, "line "),
            (4, OUT, false, "ends"),
            (5, ERR, false, "last"),
        ],
        None,
    );
    assert_eq!(read(&log, LogQuery::default()), "before\nerr in between\nlong line ends\nlast\n");
    assert_eq!(read(&log, tail(2)), "long line ends\nlast\n");
    assert_eq!(read(&log, tail(3)), "err in between\nlong line ends\nlast\n");
    // A line's time is its F record's.
    assert_eq!(read(&log, LogQuery { since: Some(at(4)), ..LogQuery::default() }), "long line ends\nlast\n");
    let ts = read(&log, LogQuery { timestamps: true, ..tail(2) });
    assert!(ts.starts_with("2023-11-14T22:13:24.000000000Z long line ends\n"), "{ts}");
}

#[test]
fn reads_across_a_rotation() {
    let log = log(
        &[(4, OUT, true, "c"), (5, OUT, false, "d"), (6, ERR, false, "e")],
        Some(&[(1, OUT, false, "a"), (2, ERR, false, "b"), (3, OUT, true, "split ")]),
    );
    assert_eq!(read(&log, LogQuery::default()), "a\nb\nsplit cd\ne\n");
    assert_eq!(read(&log, tail(2)), "split cd\ne\n");
    assert_eq!(read(&log, tail(3)), "b\nsplit cd\ne\n");
    assert_eq!(read(&log, tail(10)), "a\nb\nsplit cd\ne\n");
}

#[test]
fn tails_a_large_log_spanning_many_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer = LogWriter::open_with_cap(&path, None).expect("open");
    let long = "x".repeat(3 * MAX_RECORD_TEXT + 10);
    for i in 0..20_000 {
        let line = if i % 1000 == 999 { format!("{i} {long}") } else { format!("line {i}") };
        writer.write_lines(if i % 2 == 0 { OUT } else { ERR }, line.as_bytes()).expect("write");
    }
    let log = Log { _dir: dir, path };
    let got = read(&log, tail(3));
    assert_eq!(got, format!("19997\nline 19998\n19999 {long}\n").replace("19997\n", "line 19997\n"));
    let all = read(&log, LogQuery::default());
    let last_1500: Vec<&str> = all.lines().skip(20_000 - 1500).collect();
    assert_eq!(read(&log, tail(1500)).lines().collect::<Vec<_>>(), last_1500);
}

#[test]
fn skips_malformed_records_and_an_incomplete_last_one() {
    let log = log(&[(1, OUT, false, "good")], None);
    let mut bytes = fs::read(&log.path).expect("read");
    bytes.extend_from_slice(b"garbage line\n");
    bytes.extend_from_slice(&encoded(&[(2, ERR, false, "also good")]));
    bytes.extend_from_slice(b"2023-11-14T22:13:23.000000000Z stdout F being writ");
    fs::write(&log.path, bytes).expect("write");
    let mut out = Vec::new();
    let summary = read_logs(&log.path, &LogQuery::default(), &mut Outputs::merged(&mut out)).expect("read logs");
    assert_eq!(out, b"good\nalso good\n");
    assert_eq!(summary, LogSummary { lines: 2, skipped: 1 });
    assert_eq!(read(&log, tail(5)), "good\nalso good\n");
}

#[test]
fn a_missing_log_prints_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut out = Vec::new();
    let summary =
        read_logs(&dir.path().join("log"), &LogQuery::default(), &mut Outputs::merged(&mut out)).expect("read logs");
    assert_eq!(summary, LogSummary::default());
    assert!(out.is_empty());
}

#[test]
fn an_unfinished_long_line_is_shown_at_the_end() {
    let log = log(&[(1, OUT, false, "a"), (2, OUT, true, "unfinished")], None);
    assert_eq!(read(&log, LogQuery::default()), "a\nunfinished\n");
}

#[test]
fn output_errors_name_the_log() {
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let log = sample();
    let err = read_logs(&log.path, &LogQuery::default(), &mut Outputs::merged(&mut Closed)).expect_err("broken pipe");
    assert!(matches!(&err, LogError::Output { source, .. } if source.kind() == io::ErrorKind::BrokenPipe), "{err}");
}

/// Writes `n` lines slowly through a writer that rotates often, then says
/// it has exited; `follow_logs` must print every line once, in order.
fn follow_while_writing(n: usize, query: LogQuery, seed: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer = Arc::new(LogWriter::open_with_cap(&path, Some(6000)).expect("open"));
    for line in seed {
        writer.write_lines(OUT, line.as_bytes()).expect("seed");
    }
    let exited = Arc::new(AtomicBool::new(false));
    let producer = {
        let (writer, exited) = (Arc::clone(&writer), Arc::clone(&exited));
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            for i in 0..n {
                let stream = if i % 3 == 0 { ERR } else { OUT };
                writer.write_lines(stream, format!("follow {i:04} {}", "y".repeat(i % 50)).as_bytes()).expect("write");
                if i % 10 == 0 {
                    thread::sleep(Duration::from_millis(20));
                }
            }
            exited.store(true, Ordering::SeqCst);
        })
    };
    let mut out = Vec::new();
    let done = || exited.load(Ordering::SeqCst);
    follow_logs(&path, &query, &mut Outputs::merged(&mut out), &done).expect("follow");
    producer.join().expect("producer");
    String::from_utf8(out).expect("utf-8").lines().map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" ")).collect()
}

#[test]
fn follows_through_rotations_until_exit() {
    let lines = follow_while_writing(400, LogQuery::default(), &[]);
    let expected: Vec<String> = (0..400).map(|i| format!("follow {i:04}")).collect();
    assert_eq!(lines, expected);
}

#[test]
fn follows_after_a_tail() {
    let lines = follow_while_writing(100, tail(2), &["old 1", "old 2", "old 3"]);
    let mut all = vec!["old 1".to_owned(), "old 2".to_owned(), "old 3".to_owned()];
    all.extend((0..100).map(|i| format!("follow {i:04}")));
    // The writer races with the start of the tail: the tail is the last two
    // lines written by then ("old 2", "old 3" unless the writer was quick),
    // and every line after them follows.
    assert!(lines.len() >= 2 && lines.len() < all.len(), "{lines:?}");
    assert_eq!(lines[..], all[all.len() - lines.len()..]);
}

#[test]
fn follow_waits_for_the_log_to_appear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let exited = Arc::new(AtomicBool::new(false));
    let producer = {
        let (path, exited) = (path.clone(), Arc::clone(&exited));
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(150));
            let writer = LogWriter::open(&path).expect("open");
            writer.write_lines(OUT, b"hello\nworld").expect("write");
            exited.store(true, Ordering::SeqCst);
        })
    };
    let mut out = Vec::new();
    let done = || exited.load(Ordering::SeqCst);
    follow_logs(&path, &LogQuery::default(), &mut Outputs::merged(&mut out), &done).expect("follow");
    producer.join().expect("producer");
    assert_eq!(out, b"hello\nworld\n");
}

#[test]
fn reads_a_rotated_file_whose_successor_is_not_created_yet() {
    let log = log(&[], Some(&[(1, OUT, false, "only in log.1")]));
    fs::remove_file(&log.path).expect("remove log");
    assert_eq!(read(&log, LogQuery::default()), "only in log.1\n");
    assert_eq!(read(&log, tail(1)), "only in log.1\n");
}

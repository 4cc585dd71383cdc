//! Tests of the writing side: record shapes, pumping, rotation.

use std::os::unix::fs::PermissionsExt;

use super::super::record::decode;
use super::*;

/// Stream, partial, text.
type Recs = Vec<(Stream, bool, Vec<u8>)>;

fn records(path: &Path) -> Recs {
    let bytes = fs::read(path).expect("read log");
    assert!(bytes.is_empty() || bytes.ends_with(b"\n"));
    bytes
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let r = decode(l).expect("valid record");
            assert!(r.time().is_some());
            (r.stream, r.partial, r.text.to_vec())
        })
        .collect()
}

fn pumped(input: Vec<u8>) -> (tempfile::TempDir, Recs, PumpStats) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer = Arc::new(LogWriter::open(&path).expect("open"));
    let stats = pump(io::Cursor::new(input), Stream::Stdout, writer).expect("spawn").join().expect("join");
    let recs = records(&path);
    (dir, recs, stats.expect("pump"))
}

#[test]
fn creates_the_log_with_mode_0640() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    LogWriter::open(&path).expect("open");
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn splits_lines_and_keeps_a_trailing_partial_line() {
    let (_dir, recs, stats) = pumped(b"one\n\ntwo\nthree".to_vec());
    let texts: Vec<_> = recs.iter().map(|(s, p, t)| (*s, *p, String::from_utf8_lossy(t).into_owned())).collect();
    assert_eq!(
        texts,
        [
            (Stream::Stdout, false, "one".into()),
            (Stream::Stdout, false, "".into()),
            (Stream::Stdout, false, "two".into()),
            (Stream::Stdout, false, "three".into())
        ]
    );
    assert_eq!(stats, PumpStats { records: 4, bytes: 14, dropped: 0 });
}

#[test]
fn splits_long_lines_into_partial_records() {
    let m = MAX_RECORD_TEXT;
    for (len, shape) in [
        (m, vec![(false, m)]),
        (m + 1, vec![(true, m), (false, 1)]),
        (2 * m, vec![(true, m), (false, m)]),
        (5 * m + 7, vec![(true, m), (true, m), (true, m), (true, m), (true, m), (false, 7)]),
    ] {
        let mut input: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let expected_text = input.clone();
        input.extend_from_slice(b"\nnext\n");
        let (_dir, recs, _) = pumped(input);
        let got: Vec<_> = recs.iter().map(|(_, p, t)| (*p, t.len())).collect();
        let mut want = shape.clone();
        want.push((false, 4));
        assert_eq!(got, want, "line of {len} bytes");
        let joined: Vec<u8> = recs[..recs.len() - 1].iter().flat_map(|(_, _, t)| t.clone()).collect();
        assert_eq!(joined, expected_text);
    }
}

#[test]
fn a_long_unterminated_line_ends_in_f_at_eof() {
    let (_dir, recs, _) = pumped(vec![b'x'; MAX_RECORD_TEXT * 2 + 3]);
    let got: Vec<_> = recs.iter().map(|(_, p, t)| (*p, t.len())).collect();
    assert_eq!(got, [(true, MAX_RECORD_TEXT), (true, MAX_RECORD_TEXT), (false, 3)]);
}

#[test]
fn concurrent_pumps_never_interleave_inside_a_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer = Arc::new(LogWriter::open_with_cap(&path, None).expect("open"));
    let line_out = vec![b'o'; 3000];
    let line_err = vec![b'e'; 5000];
    let make = |line: &[u8]| {
        let mut v = Vec::new();
        for _ in 0..500 {
            v.extend_from_slice(line);
            v.push(b'\n');
        }
        v
    };
    let a = pump(io::Cursor::new(make(&line_out)), Stream::Stdout, Arc::clone(&writer)).expect("spawn");
    let b = pump(io::Cursor::new(make(&line_err)), Stream::Stderr, Arc::clone(&writer)).expect("spawn");
    a.join().expect("join").expect("pump");
    b.join().expect("join").expect("pump");
    let recs = records(&path);
    assert_eq!(recs.len(), 1000);
    for (stream, partial, text) in recs {
        assert!(!partial);
        assert_eq!(&text, if stream == Stream::Stdout { &line_out } else { &line_err });
    }
}

#[test]
fn rotates_when_over_the_cap_keeping_one_old_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer = LogWriter::open_with_cap(&path, Some(1000)).expect("open");
    for i in 0..100 {
        writer.write_lines(Stream::Stdout, format!("line {i:03}\n").as_bytes()).expect("write");
    }
    let old = records(&rotated_path(&path));
    let new = records(&path);
    assert!(fs::metadata(&path).expect("stat").len() <= 1000);
    assert!(fs::metadata(rotated_path(&path)).expect("stat").len() <= 1000);
    let last_old = String::from_utf8_lossy(&old[old.len() - 1].2).into_owned();
    let first_new = String::from_utf8_lossy(&new[0].2).into_owned();
    let n: u32 = last_old[5..].parse().expect("number");
    assert_eq!(first_new, format!("line {:03}", n + 1));
    assert_eq!(String::from_utf8_lossy(&new[new.len() - 1].2), "line 099");
    assert!(!dir.path().join("log.2").exists());
}

#[test]
fn reopening_counts_the_existing_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    fs::write(&path, vec![b'x'; 980]).expect("seed");
    let writer = LogWriter::open_with_cap(&path, Some(1000)).expect("open");
    writer.write_lines(Stream::Stderr, b"this record does not fit").expect("write");
    assert_eq!(fs::metadata(rotated_path(&path)).expect("stat").len(), 980);
}

#[test]
fn write_lines_splits_at_newlines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer = LogWriter::open(&path).expect("open");
    writer.write_lines(Stream::Stderr, b"a\nb\n").expect("write");
    let texts: Vec<_> = records(&path).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(texts, [b"a".to_vec(), b"b".to_vec()]);
}

#[test]
fn a_read_error_is_reported_after_draining() {
    struct Broken(u8);
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0 += 1;
            match self.0 {
                1 => {
                    buf[..6].copy_from_slice(b"hello\n");
                    Ok(6)
                }
                2 => Err(io::Error::from(io::ErrorKind::Interrupted)),
                3 => {
                    buf[..3].copy_from_slice(b"par");
                    Ok(3)
                }
                _ => Err(io::Error::from_raw_os_error(libc::EBADF)),
            }
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer = Arc::new(LogWriter::open(&path).expect("open"));
    let err = pump(Broken(0), Stream::Stderr, writer).expect("spawn").join().expect("join").expect_err("read error");
    assert!(err.to_string().contains("cannot read the container's stderr"), "{err}");
    let texts: Vec<_> = records(&path).into_iter().map(|(_, _, t)| t).collect();
    assert_eq!(texts, [b"hello".to_vec(), b"par".to_vec()]);
}

#[test]
fn pumps_a_real_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log");
    let writer = Arc::new(LogWriter::open(&path).expect("open"));
    let mut child = std::process::Command::new("sh")
        .args(["-c", "echo out; echo err >&2; sleep 0.05; echo more; printf 'no newline'"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let out = pump(child.stdout.take().expect("stdout"), Stream::Stdout, Arc::clone(&writer)).expect("spawn");
    let err = pump(child.stderr.take().expect("stderr"), Stream::Stderr, writer).expect("spawn");
    child.wait().expect("wait");
    assert_eq!(out.join().expect("join").expect("pump").records, 3);
    assert_eq!(err.join().expect("join").expect("pump").records, 1);
    let mut got: Vec<_> =
        records(&path).into_iter().map(|(s, p, t)| (s, p, String::from_utf8_lossy(&t).into_owned())).collect();
    got.sort_by_key(|(s, _, _)| *s == Stream::Stderr);
    assert_eq!(
        got,
        [
            (Stream::Stdout, false, "out".to_owned()),
            (Stream::Stdout, false, "more".to_owned()),
            (Stream::Stdout, false, "no newline".to_owned()),
            (Stream::Stderr, false, "err".to_owned()),
        ]
    );
}

//! One log record: encoding (for the writer) and decoding (for the readers).

use std::time::SystemTime;

use super::Stream;
use super::time::{format_nanos, parse_rfc3339};

/// A decoded record, borrowing from the line it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    /// The timestamp as written; parsed only when a filter needs it.
    pub ts: &'a [u8],
    pub stream: Stream,
    /// `P`: a piece of a longer line; `F`: the end of a line.
    pub partial: bool,
    pub text: &'a [u8],
}

impl Record<'_> {
    /// The record's time, if its timestamp is valid.
    pub fn time(&self) -> Option<SystemTime> {
        std::str::from_utf8(self.ts).ok().and_then(parse_rfc3339)
    }
}

/// Appends the record `TIMESTAMP STREAM TAG TEXT\n` to `buf`.
pub(crate) fn encode(buf: &mut Vec<u8>, now: SystemTime, stream: Stream, partial: bool, text: &[u8]) {
    buf.extend_from_slice(format_nanos(now).as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(stream.as_str().as_bytes());
    buf.extend_from_slice(if partial { b" P " } else { b" F " });
    buf.extend_from_slice(text);
    buf.push(b'\n');
}

/// Decodes one line (without its `\n`); `None` if it is not a record. The
/// timestamp is only checked for shape here (non-empty, ends in `Z`).
pub(crate) fn decode(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |&c| c == b' ');
    let ts = parts.next()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let partial = match parts.next()? {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    let text = parts.next().unwrap_or_default();
    if ts.len() < 20 || !ts[0].is_ascii_digit() {
        return None;
    }
    Some(Record { ts, stream, partial, text })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn encodes_and_decodes() {
        let now = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let mut buf = Vec::new();
        encode(&mut buf, now, Stream::Stderr, true, b"a b  c");
        assert_eq!(buf, b"2023-11-14T22:13:20.000000005Z stderr P a b  c\n");
        let rec = decode(&buf[..buf.len() - 1]).expect("record");
        assert_eq!(rec.stream, Stream::Stderr);
        assert!(rec.partial);
        assert_eq!(rec.text, b"a b  c");
        assert_eq!(rec.time(), Some(now));
    }

    #[test]
    fn decodes_empty_text_with_or_without_the_space() {
        for line in [&b"2023-11-14T22:13:20.000000005Z stdout F "[..], b"2023-11-14T22:13:20.000000005Z stdout F"] {
            let rec = decode(line).expect("record");
            assert_eq!(rec.text, b"");
            assert!(!rec.partial);
        }
    }

    #[test]
    fn rejects_what_is_not_a_record() {
        for line in [
            &b""[..],
            b"hello",
            b"2023-11-14T22:13:20Z stdin F x",
            b"2023-11-14T22:13:20Z stdout X x",
            b"x023-11-14T22:13:20Z stdout F x",
            b"2023 stdout F x",
        ] {
            assert_eq!(decode(line), None, "{}", String::from_utf8_lossy(line));
        }
    }
}

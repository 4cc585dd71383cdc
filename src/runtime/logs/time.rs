//! Nanosecond RFC 3339 timestamps for log records and container state, and
//! the parser behind `berth logs --since/--until`.
//!
//! Written timestamps are always UTC with exactly nine fraction digits
//! (`2026-11-28T13:24:00.123456789Z`), so every log record has the same
//! shape and timestamps sort as strings. Parsing accepts any RFC 3339 form
//! (fraction of any length or none, `Z` or a `±HH:MM` offset). No date-time
//! crate: the calendar arithmetic is Howard Hinnant's, like `store::time`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A time that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "invalid time {input:?}: expected an RFC 3339 time such as 2026-11-28T13:24:00Z, a date such as 2026-11-28, Unix seconds such as 1764336240, or a duration ago such as 10m, 1h30m or 45s"
    )]
    Unrecognized { input: String },
    #[error(
        "invalid RFC 3339 time {input:?}: expected a form such as 2026-11-28T13:24:00.5Z or 2026-11-28T14:24:00+01:00"
    )]
    BadRfc3339 { input: String },
}

/// A point in time that serializes as an RFC 3339 string with nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        Timestamp(SystemTime::now())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_nanos(self.0))
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Timestamp, TimeError> {
        parse_rfc3339(s).map(Timestamp).ok_or_else(|| TimeError::BadRfc3339 { input: s.to_owned() })
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_nanos(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.NNNNNNNNNZ` (UTC). Times before 1970 are
/// written as the epoch.
pub fn format_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Parses an RFC 3339 date-time; `None` if `s` is not one. Times before
/// 1970 become the epoch.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let (date, rest) = parse_date(b)?;
    let sep = *rest.first()?;
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let (secs_of_day, nanos, rest) = parse_clock(&rest[1..])?;
    let offset = parse_offset(rest)?;
    Some(to_system_time(date * 86_400 + secs_of_day - offset, nanos))
}

/// Parses a `--since`/`--until` argument: an RFC 3339 time, the same without
/// a zone (read as UTC), a date (`2026-11-28`, midnight UTC), Unix seconds
/// with an optional fraction (`1764336240.5`), or a Go-style duration that
/// counts back from `now` (`10m`, `1h30m`, `1.5h`, `300ms`).
pub fn parse_time_arg(input: &str, now: SystemTime) -> Result<SystemTime, TimeError> {
    let s = input.trim();
    let unrecognized = || TimeError::Unrecognized { input: input.to_owned() };
    if let Some(t) = parse_rfc3339(s) {
        return Ok(t);
    }
    let b = s.as_bytes();
    if let Some((date, rest)) = parse_date(b) {
        if rest.is_empty() {
            return Ok(to_system_time(date * 86_400, 0));
        }
        if matches!(rest[0], b'T' | b't' | b' ')
            && let Some((secs, nanos, rest)) = parse_clock(&rest[1..])
            && rest.is_empty()
        {
            return Ok(to_system_time(date * 86_400 + secs, nanos));
        }
        return Err(unrecognized());
    }
    if let Some(ago) = parse_go_duration(s) {
        return Ok(now.checked_sub(ago).filter(|t| *t >= UNIX_EPOCH).unwrap_or(UNIX_EPOCH));
    }
    if let Some((whole, frac)) = split_number(b)
        && frac.len() <= 9
    {
        let secs = std::str::from_utf8(whole).ok().and_then(|w| w.parse::<u64>().ok()).ok_or_else(unrecognized)?;
        let nanos = frac_nanos(frac);
        return UNIX_EPOCH.checked_add(Duration::new(secs, nanos)).ok_or_else(unrecognized);
    }
    Err(unrecognized())
}

/// A Go-style duration (`1h30m`, `1.5s`, `300ms`, `2us`): one or more
/// numbers, each with a unit of ns, us, µs, ms, s, m or h.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut rest = s.as_bytes();
    if rest.is_empty() {
        return None;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.iter().take_while(|c| c.is_ascii_digit() || **c == b'.').count();
        let (number, tail) = rest.split_at(digits);
        let (whole, frac) = split_number(number)?;
        let unit_len = tail.iter().take_while(|c| !c.is_ascii_digit() && **c != b'.').count();
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            b"ns" => 1,
            b"us" | b"\xc2\xb5s" => 1_000, // "µs"
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u128 = if whole.is_empty() { 0 } else { std::str::from_utf8(whole).ok()?.parse().ok()? };
        let frac = &frac[..frac.len().min(18)];
        let frac_value: u128 = if frac.is_empty() { 0 } else { std::str::from_utf8(frac).ok()?.parse().ok()? };
        let scale = 10u128.pow(frac.len() as u32);
        total = total.checked_add(whole.checked_mul(unit_nanos)?)?.checked_add(frac_value * unit_nanos / scale)?;
        rest = tail;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `digits[.digits]`, at least one digit in all: the whole and fraction parts.
fn split_number(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (whole, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[b.len()..]),
    };
    let all_digits = |p: &[u8]| p.iter().all(u8::is_ascii_digit);
    (all_digits(whole) && all_digits(frac) && whole.len() + frac.len() > 0).then_some((whole, frac))
}

/// Fraction digits (at most nine) as nanoseconds.
fn frac_nanos(frac: &[u8]) -> u32 {
    let mut nanos = 0u32;
    for i in 0..9 {
        nanos = nanos * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    nanos
}

/// `YYYY-MM-DD` at the start of `b`: days since 1970-01-01 and the rest.
fn parse_date(b: &[u8]) -> Option<(i64, &[u8])> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((days_from_civil(year, month, day), &b[10..]))
}

/// `HH:MM:SS[.fraction]`: seconds of the day, nanoseconds, and the rest.
fn parse_clock(b: &[u8]) -> Option<(i64, u32, &[u8])> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let (h, m, s) = (digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?);
    // A leap second (:60) is read as the last second of its minute.
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let mut rest = &b[8..];
    let mut nanos = 0;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        nanos = frac_nanos(&rest[1..1 + n.min(9)]);
        rest = &rest[1 + n..];
    }
    Some((h * 3600 + m * 60 + s.min(59), nanos, rest))
}

/// `Z`, `z` or `±HH:MM`, and nothing after it: the offset east of UTC in seconds.
fn parse_offset(b: &[u8]) -> Option<i64> {
    match b {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = h * 3600 + m * 60;
            Some(if *sign == b'-' { -offset } else { offset })
        }
        _ => None,
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
}

fn to_system_time(secs: i64, nanos: u32) -> SystemTime {
    match u64::try_from(secs) {
        Ok(secs) => UNIX_EPOCH + Duration::new(secs, nanos),
        Err(_) => UNIX_EPOCH,
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_with_nine_fraction_digits() {
        assert_eq!(format_nanos(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(format_nanos(at(951_782_400, 5)), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(format_nanos(at(1_700_000_000, 123_456_789)), "2023-11-14T22:13:20.123456789Z");
        assert_eq!(format_nanos(UNIX_EPOCH - Duration::from_secs(1)), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn parses_rfc3339() {
        let t = at(1_700_000_000, 0);
        let cases = [
            ("2023-11-14T22:13:20Z", Some(t)),
            ("2023-11-14t22:13:20z", Some(t)),
            ("2023-11-14 22:13:20Z", Some(t)),
            ("2023-11-14T22:13:20.123456789Z", Some(at(1_700_000_000, 123_456_789))),
            ("2023-11-14T22:13:20.5Z", Some(at(1_700_000_000, 500_000_000))),
            ("2023-11-14T22:13:20.1234567891Z", Some(at(1_700_000_000, 123_456_789))),
            ("2023-11-14T23:13:20+01:00", Some(t)),
            ("2023-11-14T20:43:20-01:30", Some(t)),
            ("1969-12-31T23:59:59Z", Some(UNIX_EPOCH)),
            ("2023-11-14T22:13:20", None),
            ("2023-11-14T22:13:20.Z", None),
            ("2023-02-29T00:00:00Z", None),
            ("2023-13-01T00:00:00Z", None),
            ("2023-11-14T24:00:00Z", None),
            ("2023-11-14T22:13:20Zjunk", None),
            ("2023-11-14T22:13:20+0100", None),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_rfc3339(input), expected, "{input}");
        }
    }

    #[test]
    fn round_trips_through_the_formatter() {
        for t in [at(0, 0), at(1, 1), at(4_107_542_399, 999_999_999), at(1_764_336_240, 42)] {
            assert_eq!(parse_rfc3339(&format_nanos(t)), Some(t));
        }
    }

    #[test]
    fn parses_since_arguments() {
        let now = at(1_700_000_000, 0);
        let cases = [
            ("2023-11-14T22:13:20Z", at(1_700_000_000, 0)),
            ("2023-11-14T22:13:20", at(1_700_000_000, 0)),
            ("2023-11-14T22:13:20.25", at(1_700_000_000, 250_000_000)),
            ("2023-11-14", at(1_699_920_000, 0)),
            ("1700000000", at(1_700_000_000, 0)),
            ("1700000000.5", at(1_700_000_000, 500_000_000)),
            ("0", UNIX_EPOCH),
            ("10m", at(1_700_000_000 - 600, 0)),
            ("1h30m", at(1_700_000_000 - 5400, 0)),
            ("1.5h", at(1_700_000_000 - 5400, 0)),
            ("45s", at(1_700_000_000 - 45, 0)),
            ("300ms", at(1_699_999_999, 700_000_000)),
            ("2us", at(1_699_999_999, 999_998_000)),
            (" 10m ", at(1_700_000_000 - 600, 0)),
            ("100000h", UNIX_EPOCH + Duration::from_secs(1_700_000_000 - 360_000_000)),
            ("1000000h", UNIX_EPOCH),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_time_arg(input, now), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejects_bad_since_arguments() {
        let now = at(1_700_000_000, 0);
        for input in ["", "yesterday", "10", "10x", "m", "-10m", "1h-5m", "2023-11-14T25:00", "2023-11-14Tx", "."] {
            // "10" alone is Unix seconds, so it is accepted; everything else must fail.
            if input == "10" {
                assert_eq!(parse_time_arg(input, now), Ok(at(10, 0)));
                continue;
            }
            let err = parse_time_arg(input, now).expect_err(input);
            assert!(err.to_string().contains("duration ago such as 10m"), "{input}: {err}");
        }
    }

    #[test]
    fn timestamps_serialize_as_strings() {
        let ts = Timestamp(at(1_700_000_000, 7));
        let json = serde_json::to_string(&ts).expect("serialize");
        assert_eq!(json, "\"2023-11-14T22:13:20.000000007Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("parse"), ts);
        assert_eq!(
            serde_json::from_str::<Timestamp>("\"2023-11-14T22:13:20Z\"").expect("parse").0,
            at(1_700_000_000, 0)
        );
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").expect_err("bad time");
        assert!(err.to_string().contains("invalid RFC 3339 time"), "{err}");
    }
}

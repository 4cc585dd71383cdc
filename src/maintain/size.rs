//! Sizes as people write and read them: `--keep-storage 500MB` or `2GiB`
//! in, `123.4 MB` out.
//!
//! Units follow their standards: `kB`, `MB`, `GB`, `TB` are powers of 1000
//! (SI) and `KiB`, `MiB`, `GiB`, `TiB` powers of 1024 (IEC); the single
//! letters `k`, `m`, `g`, `t` are the IEC ones, as in the manifest's
//! `limits.memory`. Output is SI with one decimal, as `docker system df`
//! prints it.

use std::fmt;
use std::str::FromStr;

use super::MaintainError;

/// A number of bytes parsed from `500MB`, `2GiB`, `0` or `1.5g`. Zero is
/// allowed: `--keep-storage 0` keeps only what tags and containers need.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StorageSize(pub u64);

impl FromStr for StorageSize {
    type Err = MaintainError;

    fn from_str(s: &str) -> Result<Self, MaintainError> {
        let bad = |reason| MaintainError::BadSize { input: s.to_owned(), reason };
        let t = s.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let unit = unit.trim();
        let multiplier: u64 = match unit {
            "" | "B" | "b" => 1,
            "kB" | "KB" | "kb" => 1_000,
            "MB" | "mb" => 1_000_000,
            "GB" | "gb" => 1_000_000_000,
            "TB" | "tb" => 1_000_000_000_000,
            "KiB" | "kiB" | "kib" | "k" | "K" => 1 << 10,
            "MiB" | "mib" | "m" | "M" => 1 << 20,
            "GiB" | "gib" | "g" | "G" => 1 << 30,
            "TiB" | "tib" | "t" | "T" => 1 << 40,
            _ => return Err(bad("the unit is not one berth knows")),
        };
        if number.is_empty() {
            return Err(bad("it has no number"));
        }
        let value: f64 = number.parse().map_err(|_| bad("the number is not a decimal number"))?;
        let bytes = (value * multiplier as f64).round();
        if !bytes.is_finite() || bytes > u64::MAX as f64 {
            return Err(bad("it does not fit in 64 bits"));
        }
        Ok(StorageSize(bytes as u64))
    }
}

impl fmt::Display for StorageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human_size(self.0))
    }
}

/// `bytes` in SI units with one decimal: `0 B`, `512 B`, `1.2 kB`, `123.4 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 999.95 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> u64 {
        s.parse::<StorageSize>().unwrap_or_else(|e| panic!("{s}: {e}")).0
    }

    #[test]
    fn si_and_iec_units() {
        assert_eq!(parse("0"), 0);
        assert_eq!(parse("4096"), 4096);
        assert_eq!(parse("500MB"), 500_000_000);
        assert_eq!(parse("500 MB"), 500_000_000);
        assert_eq!(parse("2GiB"), 2 << 30);
        assert_eq!(parse("1.5kB"), 1500);
        assert_eq!(parse("1.5k"), 1536);
        assert_eq!(parse("3TB"), 3_000_000_000_000);
        assert_eq!(parse("1MiB"), 1 << 20);
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        for bad in ["", "MB", "12 parsecs", "-1MB", "1.2.3GB", "1e999"] {
            let err = bad.parse::<StorageSize>().unwrap_err();
            assert!(err.to_string().contains("500MB"), "{bad}: {err}");
        }
    }

    #[test]
    fn human_sizes_are_si() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1000), "1.0 kB");
        assert_eq!(human_size(123_456_789), "123.5 MB");
        assert_eq!(human_size(999_999), "1.0 MB");
        assert_eq!(human_size(2_500_000_000), "2.5 GB");
    }
}

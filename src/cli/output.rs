//! Shared output helpers: errors on stderr, colour only on a terminal, and
//! plain column tables.

use std::io::IsTerminal;

/// Prints an error and those of its causes that its message does not
/// already include, one `berth:` line each.
pub fn error(e: &anyhow::Error) {
    let mut said = e.to_string();
    for line in said.lines() {
        eprintln!("berth: {line}");
    }
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !said.contains(&text) {
            eprintln!("berth:   caused by: {text}");
            said.push_str(&text);
        }
    }
}

/// ANSI colours, or nothing when stdout is not a terminal or NO_COLOR is set.
pub struct Paint {
    on: bool,
}

impl Paint {
    pub fn stdout() -> Paint {
        Paint { on: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }

    fn wrap(&self, code: &str, s: &str) -> String {
        if self.on { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() }
    }

    pub fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }

    pub fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }

    pub fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }

    pub fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }

    pub fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
}

/// `s` on one line, cut to `max` characters with an ellipsis.
pub fn shorten(s: &str, max: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// Formats rows as left-aligned columns separated by three spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("   ").trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// "3 seconds", "5 minutes", "2 hours", "4 days": how Docker words ages.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0 => return "Less than a second".to_owned(),
        1..=59 => (s, "second"),
        60..=3599 => (s / 60, "minute"),
        3600..=86399 => (s / 3600, "hour"),
        86400..=1_209_599 => (s / 86400, "day"),
        1_209_600..=5_183_999 => (s / 604_800, "week"),
        5_184_000..=31_535_999 => (s / 2_592_000, "month"),
        _ => (s / 31_536_000, "year"),
    };
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

/// How long ago an RFC 3339 time was, in words ("2 minutes ago").
pub fn ago(rfc3339: &str) -> String {
    match berth::runtime::logs::parse_rfc3339(rfc3339).and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
    {
        Some(d) => format!("{} ago", human_duration(d)),
        None => rfc3339.to_owned(),
    }
}

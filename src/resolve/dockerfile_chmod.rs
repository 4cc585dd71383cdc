//! `COPY --chmod` / `ADD --chmod`: an octal mode (`0755`, at most `07777`)
//! or a symbolic one as chmod(1) writes it (`u+x,g-w`, `go=u-w`, `a=rX`),
//! as BuildKit accepts them (its `dchapes-mode`, BSD's `setmode`).
//!
//! A symbolic mode is applied to each copied entry's own mode (a
//! directory counts as executable for `X`); when a clause names no one
//! (`+x`), the bits a umask of 022 keeps are changed, as the Docker daemon
//! runs with that umask. Symlinks keep their mode.

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Every entry gets exactly these bits.
    Octal(u32),
    /// Each entry's mode is changed by these commands, in order.
    Symbolic(Vec<Cmd>),
}

/// One step of a symbolic mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    Set(u32),
    Clear(u32),
    /// Set when the entry is a directory or has an execute bit.
    SetIfExec(u32),
    /// Copy the bits of class `from` (`u`, `g`, `o`) to the classes in
    /// `to` (`u`, `g`, `o` flags), clearing and/or setting.
    CopyClass {
        from: u8,
        to: [bool; 3],
        mask: u32,
        clear: bool,
        set: bool,
    },
}

const UMASK: u32 = 0o022;
const STANDARD: u32 = 0o6777;
const STICKY: u32 = 0o1000;

impl Chmod {
    /// Parses a `--chmod` value; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Chmod, String> {
        let bad = || {
            format!(
                "invalid chmod parameter: '{text}'; write an octal mode between 0 and 07777 (0755) or a symbolic one (u+x,g-w)"
            )
        };
        let first = text.chars().next().ok_or_else(bad)?;
        if first.is_ascii_digit() {
            return u32::from_str_radix(text, 8).ok().filter(|m| *m <= 0o7777).map(Chmod::Octal).ok_or_else(bad);
        }
        parse_symbolic(text).map(Chmod::Symbolic).ok_or_else(bad)
    }

    /// The mode an entry whose mode is `mode` gets.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(cmds) => {
                let old = mode & 0o7777;
                let mut new = old;
                for c in cmds {
                    match *c {
                        Cmd::Set(b) => new |= b,
                        Cmd::Clear(b) => new &= !b,
                        Cmd::SetIfExec(b) => {
                            if is_dir || old & 0o111 != 0 {
                                new |= b
                            }
                        }
                        Cmd::CopyClass { from, to, mask, clear, set } => {
                            let value = match from {
                                b'u' => (new >> 6) & 7,
                                b'g' => (new >> 3) & 7,
                                _ => new & 7,
                            };
                            for (k, shift) in [6, 3, 0].into_iter().enumerate() {
                                if !to[k] {
                                    continue;
                                }
                                if clear {
                                    let c = if set { 7 } else { value };
                                    new &= !((c << shift) & mask);
                                }
                                if set {
                                    new |= (value << shift) & mask;
                                }
                            }
                        }
                    }
                }
                new
            }
        }
    }
}

/// chmod(1)'s grammar: `[ugoa]*([-+=]([rwxXst]*|[ugo]))+` clauses joined by `,`.
fn parse_symbolic(text: &str) -> Option<Vec<Cmd>> {
    let mask = !UMASK & 0o7777;
    let s: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut cmds = Vec::new();
    loop {
        let mut who = 0u32;
        while let Some(c) = s.get(i) {
            who |= match c {
                'a' => STANDARD,
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o007,
                _ => break,
            };
            i += 1;
        }
        let mut equal_done = false;
        loop {
            let op = *s.get(i)?;
            i += 1;
            match op {
                '+' | '-' => {}
                '=' => equal_done = false,
                _ => return None,
            }
            who &= !STICKY;
            let (mut perm, mut perm_x) = (0u32, 0u32);
            loop {
                match s.get(i).copied() {
                    Some('r') => perm |= 0o444,
                    Some('w') => perm |= 0o222,
                    Some('x') => perm |= 0o111,
                    Some('X') if op == '+' => perm_x = 0o111,
                    Some('X') => {}
                    Some('s') if who == 0 || who & !0o007 != 0 => perm |= 0o6000,
                    Some('t') if who == 0 || who & !0o007 != 0 => {
                        who |= STICKY;
                        perm |= STICKY;
                    }
                    Some('s' | 't') => {}
                    Some(c @ ('u' | 'g' | 'o')) => {
                        if perm != 0 {
                            add(&mut cmds, op, who, perm, mask);
                            perm = 0;
                        }
                        if op == '=' {
                            equal_done = true;
                        }
                        if perm_x != 0 {
                            cmds.push(Cmd::SetIfExec(pick(who, perm_x, mask)));
                            perm_x = 0;
                        }
                        let (to, m) = if who != 0 {
                            ([who & 0o400 != 0, who & 0o040 != 0, who & 0o004 != 0], u32::MAX)
                        } else {
                            ([true; 3], mask)
                        };
                        let (clear, set) = match op {
                            '+' => (false, true),
                            '-' => (true, false),
                            _ => (true, true),
                        };
                        cmds.push(Cmd::CopyClass { from: c as u8, to, mask: m, clear, set });
                    }
                    _ => {
                        if perm != 0 || (op == '=' && !equal_done) {
                            if op == '=' {
                                equal_done = true;
                            }
                            add(&mut cmds, op, who, perm, mask);
                        }
                        if perm_x != 0 {
                            cmds.push(Cmd::SetIfExec(pick(who, perm_x, mask)));
                        }
                        break;
                    }
                }
                i += 1;
            }
            match s.get(i) {
                None => return Some(cmds),
                Some(',') => {
                    i += 1;
                    break;
                }
                Some(_) => continue,
            }
        }
    }
}

fn pick(who: u32, bits: u32, mask: u32) -> u32 {
    if who != 0 { who & bits } else { mask & bits }
}

fn add(cmds: &mut Vec<Cmd>, op: char, who: u32, perm: u32, mask: u32) {
    match op {
        '=' => {
            cmds.push(Cmd::Clear(if who != 0 { who } else { STANDARD }));
            cmds.push(Cmd::Set(pick(who, perm, mask)));
        }
        '+' => cmds.push(Cmd::Set(pick(who, perm, mask))),
        _ => cmds.push(Cmd::Clear(pick(who, perm, mask))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(text: &str, mode: u32, dir: bool) -> u32 {
        Chmod::parse(text).unwrap().apply(mode, dir)
    }

    #[test]
    fn symbolic_modes_as_chmod_applies_them() {
        assert_eq!(apply("u+x,g-w", 0o664, false), 0o744);
        assert_eq!(apply("go=u-w", 0o755, false), 0o755);
        assert_eq!(apply("go=u-w", 0o700, false), 0o755);
        assert_eq!(apply("a=r,a+X", 0o600, false), 0o444);
        assert_eq!(apply("a=r,a+X", 0o700, false), 0o555, "X looks at the mode before the change");
        assert_eq!(apply("a+X", 0o600, true), 0o711);
        assert_eq!(apply("a+X", 0o744, false), 0o755);
        assert_eq!(apply("a=rX", 0o700, false), 0o444, "as dchapes-mode, X counts only after +");
        assert_eq!(apply("+x", 0o644, false), 0o755);
        assert_eq!(apply("+w", 0o444, false), 0o644, "the umask keeps group and others from w");
        assert_eq!(apply("o=", 0o777, false), 0o770);
        assert_eq!(apply("u+s", 0o755, false), 0o4755);
        assert_eq!(apply("+t", 0o755, true), 0o1755);
        assert_eq!(apply("u=rw,go=r", 0o777, false), 0o644);
        assert_eq!(apply("0640", 0o777, false), 0o640);
    }

    #[test]
    fn bad_modes_are_refused() {
        for bad in ["", "u", "u+x,", "z+x", "8", "17777", "u+x;g"] {
            assert!(Chmod::parse(bad).is_err(), "{bad}");
        }
    }
}

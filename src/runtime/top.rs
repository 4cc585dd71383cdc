//! What `berth top` shows of one process, read from `/proc`.

/// `[UID, PID, PPID, TIME, CMD]` of `pid`, or `None` if it is gone.
pub fn process_row(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    // Fields after the command name, which may hold spaces and parentheses.
    let rest: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ppid = rest.get(1)?.to_string();
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    let secs = ticks / 100;
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.to_owned();
    let mut cmd: Vec<String> =
        cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    if cmd.is_empty() {
        cmd.push(format!("[{}]", &stat[stat.find('(')? + 1..stat.rfind(')')?]));
    }
    Some(vec![
        uid,
        pid.to_string(),
        ppid,
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        cmd.join(" "),
    ])
}

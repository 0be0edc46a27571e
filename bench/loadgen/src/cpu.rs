//! CPU time spent by the generator itself and by the server's processes during a
//! measurement, so a figure can be read against who was busy: a server at 100 % of its
//! core is the limit; a generator at 100 % of its own means the figure measures the
//! generator. Linux only (/proc, getrusage); elsewhere the figures are absent.

use std::collections::{BTreeMap, HashMap};

/// User + system CPU seconds of this process (all threads).
pub fn own_seconds() -> Option<f64> {
    // SAFETY: getrusage only writes the struct passed in.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return None;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(secs(usage.ru_utime) + secs(usage.ru_stime))
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// User + system CPU seconds of process `pid` (all its threads), from /proc/PID/stat.
pub fn process_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

/// CPU seconds of each server process at one moment.
#[derive(Clone, Default)]
pub struct Snapshot {
    own: Option<f64>,
    servers: HashMap<u32, f64>,
}

impl Snapshot {
    pub fn take(server_pids: &[u32]) -> Snapshot {
        Snapshot { own: own_seconds(), servers: server_pids.iter().filter_map(|&pid| Some((pid, process_seconds(pid)?))).collect() }
    }

    /// CPU seconds used since `earlier` by the generator and by the server processes
    /// (summed over those seen both times; None when none was).
    pub fn since(&self, earlier: &Snapshot) -> (Option<f64>, Option<f64>) {
        let own = match (self.own, earlier.own) {
            (Some(now), Some(then)) => Some(now - then),
            _ => None,
        };
        let used = self.by_process_since(earlier);
        let server = if used.is_empty() { None } else { Some(used.values().sum()) };
        (own, server)
    }

    /// CPU seconds used since `earlier` by each server process seen both times (a server
    /// of several processes: which of them was busy).
    pub fn by_process_since(&self, earlier: &Snapshot) -> BTreeMap<u32, f64> {
        self.servers.iter().filter_map(|(&pid, now)| Some((pid, now - earlier.servers.get(&pid)?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_time_is_readable_and_grows() {
        let pid = std::process::id();
        let before = Snapshot::take(&[pid]);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let (own, server) = Snapshot::take(&[pid]).since(&before);
        assert!(own.is_some_and(|s| s >= 0.0));
        assert!(server.is_some_and(|s| s >= 0.0));
        assert!(process_seconds(pid).is_some());
    }

    #[test]
    fn a_missing_process_gives_no_figure() {
        let (_, server) = Snapshot::take(&[u32::MAX]).since(&Snapshot::take(&[u32::MAX]));
        assert_eq!(server, None);
    }
}

//! The live progress line of the long commands (`chaos`, `check`): elapsed time, what the
//! run is doing, checkouts made and checked, violations so far and faults done, so a run
//! of many minutes never looks hung. On a terminal the line is redrawn every second; in a
//! log (stderr not a terminal) one line is written every ten seconds.

use std::{
    io::IsTerminal,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// Counters shared by the load, the fault injector and the checker.
#[derive(Debug, Default)]
pub struct Live {
    /// Checkouts asked for (PlaceOrder calls that ended, answered or not).
    pub made: AtomicU64,
    /// Checkouts found so far by the checker (all pages read so far).
    pub found: AtomicU64,
    /// Checkouts the checker is still waiting on to end.
    pub pending: AtomicU64,
    /// Checkouts checked against every service.
    pub checked: AtomicU64,
    pub violations: AtomicU64,
    pub kills: AtomicU32,
    pub postgres_restarts: AtomicU32,
    pub broker_kills: AtomicU32,
    pub partitions: AtomicU32,
    phase: Mutex<&'static str>,
}

/// The faults a run plans, to show "done of planned".
#[derive(Debug, Clone, Copy, Default)]
pub struct Planned {
    pub kills: u32,
    pub postgres_restarts: u32,
    pub broker_kills: u32,
    pub partitions: u32,
}

impl Live {
    /// Names what the run does now (load, settling, checking…).
    pub fn set_phase(&self, phase: &'static str) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    /// One progress line (without the carriage return or newline).
    pub fn line(&self, elapsed: Duration, planned: Planned) -> String {
        let phase = *self.phase.lock().unwrap_or_else(|e| e.into_inner());
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut line = format!(
            "[{:6.1}s] {phase}: {} made, {} found, {} pending, {} checked, {} violations",
            elapsed.as_secs_f64(),
            load(&self.made),
            load(&self.found),
            load(&self.pending),
            load(&self.checked),
            load(&self.violations),
        );
        if planned.kills > 0 {
            line.push_str(&format!(
                ", kills {}/{}",
                self.kills.load(Ordering::Relaxed),
                planned.kills
            ));
        }
        if planned.postgres_restarts > 0 {
            line.push_str(&format!(
                ", postgres restarts {}/{}",
                self.postgres_restarts.load(Ordering::Relaxed),
                planned.postgres_restarts
            ));
        }
        if planned.broker_kills > 0 {
            line.push_str(&format!(
                ", broker kills {}/{}",
                self.broker_kills.load(Ordering::Relaxed),
                planned.broker_kills
            ));
        }
        if planned.partitions > 0 {
            line.push_str(&format!(
                ", partitions {}/{}",
                self.partitions.load(Ordering::Relaxed),
                planned.partitions
            ));
        }
        line
    }
}

/// The task drawing the line; stopped (and the line ended) when dropped.
#[derive(Debug)]
pub struct Ticker {
    task: tokio::task::JoinHandle<()>,
    terminal: bool,
}

/// Starts drawing `live`'s line on stderr, timed from `started`.
pub fn show(live: Arc<Live>, planned: Planned, started: Instant) -> Ticker {
    let terminal = std::io::stderr().is_terminal();
    let every = Duration::from_secs(if terminal { 1 } else { 10 });
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let line = live.line(started.elapsed(), planned);
            if terminal {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
        }
    });
    Ticker { task, terminal }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
        if self.terminal {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_counts_and_only_planned_faults() {
        let live = Live::default();
        live.set_phase("load");
        live.made.store(1200, Ordering::Relaxed);
        live.kills.store(1, Ordering::Relaxed);
        let quiet = live.line(Duration::from_secs(3), Planned::default());
        assert!(quiet.contains("load: 1200 made"), "{quiet}");
        assert!(quiet.contains("0 violations"), "{quiet}");
        assert!(!quiet.contains("kills"), "{quiet}");
        let chaos = live.line(
            Duration::from_secs(3),
            Planned {
                kills: 8,
                postgres_restarts: 2,
                broker_kills: 0,
                partitions: 0,
            },
        );
        assert!(
            chaos.ends_with("kills 1/8, postgres restarts 0/2"),
            "{chaos}"
        );
    }
}

//! The local runner (`shop-local`) stopped the way a supervisor or a script stops it:
//! SIGTERM, not Ctrl-C. Everything it started (the five binaries, the console, its NATS
//! server) must go with it, as on SIGINT; none may be left running as an orphan.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

/// The parent of `pid` as `/proc/PID/stat` says (`None` once it is gone), and whether it
/// is a zombie.
fn parent_of(pid: u32) -> Option<(u32, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `PID (COMM) STATE PPID ...`: the command may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((parent, state == "Z"))
}

/// Every live process under `root`, children first found by scanning `/proc`.
fn descendants(root: u32) -> Vec<u32> {
    let all: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let mut found = vec![root];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(
            all.iter()
                .filter(|pid| parent_of(**pid).is_some_and(|(p, zombie)| p == parent && !zombie)),
        );
        at += 1;
    }
    found.remove(0);
    found
}

fn alive(pid: u32) -> bool {
    parent_of(pid).is_some_and(|(_, zombie)| !zombie)
}

fn name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|comm| comm.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn sigterm_stops_everything_the_local_runner_started() {
    let pki = std::env::temp_dir().join(format!("shop-local-test-{}", uuid::Uuid::new_v4()));
    let mut runner = Command::new(env!("CARGO_BIN_EXE_shop-local"))
        .args(["--any-ports", "--dev-insecure", "--pki-dir"])
        .arg(&pki)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Read its output throughout (a full pipe would block it), and say when it is up.
    let stdout = runner.stdout.take().unwrap();
    let (up_tx, up) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("The shop is running") {
                let _ = up_tx.send(());
            }
        }
    });
    if up.recv_timeout(Duration::from_secs(180)).is_err() {
        let _ = runner.kill();
        panic!("shop-local did not come up within 180 s (its stderr is above)");
    }

    let started = descendants(runner.id());
    let names: Vec<String> = started.iter().map(|pid| name(*pid)).collect();
    for expected in [
        "order-svc",
        "payment-svc",
        "inventory-svc",
        "shipping-svc",
        "orchestrator",
        "console",
        "nats-server",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} among {names:?}"
        );
    }

    kill(
        Pid::from_raw(i32::try_from(runner.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let give_up = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = runner.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > give_up {
            let _ = runner.kill();
            panic!("shop-local still running 60 s after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "stopped on request: {status}");
    let orphans: Vec<String> = started
        .iter()
        .filter(|pid| alive(**pid))
        .map(|pid| format!("{} ({pid})", name(*pid)))
        .collect();
    for pid in started.iter().filter(|pid| alive(**pid)) {
        let _ = kill(Pid::from_raw(i32::try_from(*pid).unwrap()), Signal::SIGKILL);
    }
    assert!(orphans.is_empty(), "left running: {orphans:?}");
    let _ = std::fs::remove_dir_all(Path::new(&pki));
}

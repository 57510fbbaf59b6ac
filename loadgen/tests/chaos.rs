//! Short chaos runs as correctness tests: faults on, the orchestrator killed mid-run or
//! Postgres restarted, checkouts of both coordination modes interleaved, and the checker
//! must find every invariant holding. They assert nothing about speed.

use std::time::Duration;

use loadgen::{
    chaos::{ChaosConfig, run},
    interrupt::Stop,
    load::Modes,
};

#[tokio::test]
async fn a_short_chaos_run_leaves_no_violation() {
    let config = ChaosConfig {
        duration: Some(Duration::from_secs(4)),
        concurrency: 8,
        kills: 1,
        modes: Modes::Both,
        ..ChaosConfig::default()
    };
    let report = run(&config, &Stop::default()).await.expect("chaos run");
    let verdict = &report.verdict;
    assert_eq!(report.kills.done, 1, "{report:?}");
    assert!(verdict.violations.is_empty(), "{:#?}", verdict.violations);
    assert!(verdict.checkouts > 0, "{report:?}");
    assert!(
        verdict.by_status.get("COMPLETED").is_some_and(|n| *n > 0),
        "{verdict:?}"
    );
    assert!(
        verdict.by_status.get("CANCELLED").is_some_and(|n| *n > 0),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn a_counted_run_with_a_postgres_restart_leaves_no_violation() {
    let config = ChaosConfig {
        count: Some(300),
        concurrency: 8,
        kills: 0,
        postgres_restarts: 1,
        ..ChaosConfig::default()
    };
    let report = run(&config, &Stop::default()).await.expect("chaos run");
    let verdict = &report.verdict;
    assert!(verdict.violations.is_empty(), "{:#?}", verdict.violations);
    assert_eq!(report.load.requests, 300, "{report:?}");
    assert_eq!(report.postgres_restarts.done, 1, "{report:?}");
    assert_eq!((verdict.stuck, verdict.partial), (0, false), "{verdict:?}");
    assert_eq!(verdict.checked, verdict.checkouts, "{verdict:?}");
    assert!(report.drained_after_s.is_some(), "{report:?}");
}

#[tokio::test]
async fn a_counted_run_with_a_broker_kill_leaves_no_violation() {
    let config = ChaosConfig {
        count: Some(300),
        concurrency: 8,
        kills: 0,
        broker_kills: 1,
        modes: Modes::Both,
        ..ChaosConfig::default()
    };
    let report = run(&config, &Stop::default()).await.expect("chaos run");
    let verdict = &report.verdict;
    assert!(verdict.violations.is_empty(), "{:#?}", verdict.violations);
    assert_eq!(report.broker_kills.done, 1, "{report:?}");
    assert_eq!((verdict.stuck, verdict.partial), (0, false), "{verdict:?}");
    assert_eq!(verdict.checked, verdict.checkouts, "{verdict:?}");
}

/// Random partitions need the stack across network namespaces (root); elsewhere this
/// says why and passes without running.
#[tokio::test]
async fn a_counted_run_with_random_partitions_leaves_no_violation() {
    if e2e::hosts::Hosts::create()
        .expect("probing for test hosts")
        .is_none()
    {
        return;
    }
    let config = ChaosConfig {
        count: Some(300),
        concurrency: 8,
        kills: 0,
        partitions: 2,
        modes: Modes::Both,
        ..ChaosConfig::default()
    };
    let report = run(&config, &Stop::default()).await.expect("chaos run");
    let verdict = &report.verdict;
    assert!(verdict.violations.is_empty(), "{:#?}", verdict.violations);
    assert_eq!(report.partitions.done, 2, "{report:?}");
    assert_eq!((verdict.stuck, verdict.partial), (0, false), "{verdict:?}");
    assert_eq!(verdict.checked, verdict.checkouts, "{verdict:?}");
}

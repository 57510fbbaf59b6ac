//! A short chaos run as a correctness test: faults on, the orchestrator killed mid-run,
//! checkouts of both coordination modes interleaved, and the checker must find every
//! invariant holding. It asserts nothing about speed.

use std::time::Duration;

use loadgen::{
    chaos::{ChaosConfig, run},
    load::Modes,
};

#[tokio::test]
async fn a_short_chaos_run_leaves_no_violation() {
    let config = ChaosConfig {
        duration: Duration::from_secs(4),
        concurrency: 8,
        transient: 0.2,
        late: 0.1,
        kills: 1,
        modes: Modes::Both,
    };
    let (report, verdict) = run(&config).await.expect("chaos run");
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

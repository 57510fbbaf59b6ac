//! The chaos run: load with injected faults (transient errors, late successes past the
//! attempt timeout) while the orchestrator is killed with SIGKILL and restarted, then the
//! checker. Correctness, not speed: the verdict must list no violation.

use std::{sync::Arc, time::Duration};

use e2e::{Stack, StackOptions, Svc, clients::Clients};
use tokio::sync::Mutex;

use crate::{
    check::{self, Verdict},
    load::{self, LoadConfig, Mix, Report},
};

/// How hard to push.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub duration: Duration,
    pub concurrency: usize,
    /// Share of requests with a transient charge failure.
    pub transient: f64,
    /// Share of requests with a reservation that succeeds after the attempt timeout.
    pub late: f64,
    /// Kill the orchestrator this many times during the run.
    pub kills: u32,
    pub modes: load::Modes,
}

/// The orchestrator's knobs for chaos: short timeouts and lease so it all fits in seconds.
fn orchestrator_env() -> Vec<(String, String)> {
    [
        ("ATTEMPT_TIMEOUT", "300ms"),
        ("STEP_DEADLINE", "3s"),
        ("RETRY_BACKOFF_BASE", "20ms"),
        ("RETRY_BACKOFF_MAX", "200ms"),
        ("SAGA_LEASE", "2s"),
        ("RECOVERY_INTERVAL", "300ms"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Starts a stack with faults on, runs the load with kills, and checks the result.
pub async fn run(config: &ChaosConfig) -> anyhow::Result<(Report, Verdict)> {
    let stack = Stack::start(StackOptions {
        fault_injection: true,
        orchestrator_env: orchestrator_env(),
        ..StackOptions::default()
    })
    .await?;
    let mut clients = Clients::of(&stack);
    let mut state = load::setup(&mut clients, "chaos").await?;
    let stack = Arc::new(Mutex::new(stack));
    let killer = {
        let (stack, kills, every) = (
            stack.clone(),
            config.kills,
            config.duration / (config.kills + 1),
        );
        tokio::spawn(async move {
            for _ in 0..kills {
                tokio::time::sleep(every).await;
                let mut stack = stack.lock().await;
                stack.kill(Svc::Orchestrator);
                tokio::time::sleep(Duration::from_millis(200)).await;
                stack.restart(Svc::Orchestrator).await?;
            }
            anyhow::Ok(())
        })
    };
    let load = LoadConfig {
        run_id: "chaos".into(),
        concurrency: config.concurrency,
        rate: None,
        duration: Some(config.duration),
        count: None,
        mix: Mix {
            declined: 0.1,
            out_of_stock: 0.1,
            undeliverable: 0.1,
            transient: config.transient,
            late: config.late,
            late_ms: 400,
            modes: config.modes,
        },
        deadline: Duration::from_secs(5),
        retry_unavailable: true,
        progress: false,
    };
    let report = load::run(&clients, &load, &mut state).await?;
    killer.await??;
    let verdict = check::check(&mut clients, &state, Duration::from_secs(60)).await?;
    drop(stack);
    Ok((report, verdict))
}

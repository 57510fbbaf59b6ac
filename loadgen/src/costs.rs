//! What one checkout costs the databases, counted by Postgres itself over a batch of
//! checkouts: commits (`pg_stat_database`), WAL flushes (`pg_stat_wal`, the whole
//! server) and statements by database and text (`pg_stat_statements`, which the
//! benchmark's own cluster loads; `BEGIN` and `COMMIT` count, since each is a round
//! trip).
//!
//! The stack also works when idle (lease renewals, recovery scans, outbox polls), so the
//! counters are read three times: an idle window first, then the batch; the idle rate,
//! scaled to the batch's window, is taken off what the batch counted.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use e2e::{Stack, Svc, postgres::Postgres};
use serde::Serialize;
use sqlx::{Connection, PgConnection};

/// Postgres publishes idle backends' counters after up to ~10 s (`pg_stat_database`).
const PUBLISHED_AFTER: Duration = Duration::from_secs(11);

/// What is counted: a database's commits, the server's WAL flushes, a database's calls
/// of one statement.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Counter {
    Commits(Svc),
    WalFlushes,
    Statement(Svc, String),
}

/// The counters of the server and the stack's databases at one moment.
#[derive(Debug, Clone)]
pub struct Counters {
    at: Instant,
    values: BTreeMap<Counter, i64>,
}

/// One statement's share of a checkout.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub calls_per_checkout: f64,
    pub query: String,
}

/// What one checkout cost, per service database and in all, with the idle stack's own
/// work taken off.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Costs {
    pub commits: BTreeMap<String, f64>,
    pub commits_total: f64,
    /// WAL flushes (`fdatasync` or the like) of the whole server.
    pub wal_flushes: f64,
    pub statements: BTreeMap<String, f64>,
    pub statements_total: f64,
    /// Each database's statements, the most frequent first.
    pub statement_detail: BTreeMap<String, Vec<Statement>>,
    /// Statements per second the idle stack runs, in all databases.
    pub idle_statements_per_sec: f64,
}

/// Makes `pg_stat_statements` readable (the library must be preloaded) and starts its
/// counts from zero.
pub async fn prepare(postgres: &Postgres) -> anyhow::Result<()> {
    let mut conn = PgConnection::connect(&postgres.admin_url).await?;
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .execute(&mut conn)
        .await?;
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// The counters now, once the idle backends' counters are published.
pub async fn read(postgres: &Postgres, stack: &Stack) -> anyhow::Result<Counters> {
    tokio::time::sleep(PUBLISHED_AFTER).await;
    let mut conn = PgConnection::connect(&postgres.admin_url).await?;
    let mut values = BTreeMap::new();
    let wal: i64 = sqlx::query_scalar("SELECT wal_sync FROM pg_stat_wal")
        .fetch_one(&mut conn)
        .await?;
    values.insert(Counter::WalFlushes, wal);
    for svc in Svc::ALL {
        let database = stack.database(svc);
        let commits: i64 =
            sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
                .bind(database)
                .fetch_one(&mut conn)
                .await?;
        values.insert(Counter::Commits(svc), commits);
        let statements: Vec<(String, i64)> = sqlx::query_as(
            "SELECT s.query, sum(s.calls)::bigint
               FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
              WHERE d.datname = $1
              GROUP BY s.query",
        )
        .bind(database)
        .fetch_all(&mut conn)
        .await?;
        for (query, calls) in statements {
            values.insert(Counter::Statement(svc, query), calls);
        }
    }
    Ok(Counters {
        at: Instant::now(),
        values,
    })
}

/// What each of `checkouts` checkouts made between `start` and `end` cost, less what the
/// stack did by itself between `idle` and `start` (scaled to the batch's window).
pub fn per_checkout(idle: &Counters, start: &Counters, end: &Counters, checkouts: u64) -> Costs {
    let n = checkouts.max(1) as f64;
    let idle_secs = start.at.duration_since(idle.at).as_secs_f64().max(0.001);
    let scale = end.at.duration_since(start.at).as_secs_f64() / idle_secs;
    let delta = |from: &Counters, to: &Counters, counter: &Counter| {
        (to.values.get(counter).copied().unwrap_or(0)
            - from.values.get(counter).copied().unwrap_or(0)) as f64
    };
    let mut costs = Costs::default();
    for counter in end.values.keys() {
        let background = delta(idle, start, counter);
        let share = ((delta(start, end, counter) - background * scale) / n).max(0.0);
        match counter {
            Counter::WalFlushes => costs.wal_flushes = share,
            Counter::Commits(svc) => {
                costs.commits.insert(svc.binary().to_owned(), share);
                costs.commits_total += share;
            }
            Counter::Statement(svc, query) => {
                costs.idle_statements_per_sec += background / idle_secs;
                // Less than one call in a hundred checkouts is the idle work's noise.
                if share < 0.01 {
                    continue;
                }
                *costs.statements.entry(svc.binary().to_owned()).or_default() += share;
                costs.statements_total += share;
                costs
                    .statement_detail
                    .entry(svc.binary().to_owned())
                    .or_default()
                    .push(Statement {
                        calls_per_checkout: share,
                        query: one_line(query),
                    });
            }
        }
    }
    for detail in costs.statement_detail.values_mut() {
        detail.sort_by(|a, b| b.calls_per_checkout.total_cmp(&a.calls_per_checkout));
    }
    costs
}

/// A statement's text on one line, whitespace collapsed, cut at 120 characters.
fn one_line(query: &str) -> String {
    let text = query.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

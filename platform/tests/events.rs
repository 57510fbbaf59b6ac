//! The event plumbing against a real Postgres and a real nats-server: what a service
//! writes to its outbox reaches a consumer once, however often it is delivered; failures
//! are redelivered, then parked where a person can see them.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use platform::{
    events::{self, ConsumerSpec, Event, EventsConfig, Handler, HandlerError, outbox},
    testing::{TestDb, TestNats},
};
use shop_proto::events::v1::{self as pb, envelope::Payload};
use sqlx::{PgConnection, PgPool};

/// The tables every service's `0002_events.sql` creates.
const SCHEMA: &str = include_str!("../../order-svc/migrations/0002_events.sql");

/// What the handler under test does, by the checkout id of the event.
#[derive(Default)]
struct Recorder {
    flaky_failures: AtomicU32,
}

impl Handler for Recorder {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), HandlerError> {
        match event.correlation_id.as_str() {
            "flaky" if self.flaky_failures.fetch_add(1, Ordering::SeqCst) < 2 => {
                return Err(HandlerError::Transient(anyhow::anyhow!("briefly away")));
            }
            "always-failing" => {
                return Err(HandlerError::Transient(anyhow::anyhow!("never comes back")));
            }
            "poison" => return Err(HandlerError::Poison("order_id is not a UUID".into())),
            _ => {}
        }
        sqlx::query("INSERT INTO handled (event_id, checkout) VALUES ($1, $2)")
            .bind(event.id)
            .bind(&event.correlation_id)
            .execute(tx)
            .await?;
        Ok(())
    }
}

struct Setup {
    _db: TestDb,
    nats: TestNats,
    pool: PgPool,
    _events: tokio::task::JoinHandle<()>,
}

async fn setup() -> Setup {
    let nats = TestNats::start().await;
    let db = TestDb::create("events").await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
    sqlx::query("CREATE TABLE handled (event_id uuid NOT NULL, checkout text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let spec = ConsumerSpec {
        durable: "test-svc",
        subjects: vec!["shop.events.order.>".into()],
        max_deliveries: 3,
        concurrency: 8,
    };
    let config = EventsConfig {
        nats_url: nats.url.clone(),
        producer: "order",
        tls: None,
        stream_replicas: 1,
    };
    let events = tokio::spawn(events::run(
        pool.clone(),
        config,
        events::Participant::new(spec, Recorder::default()),
    ));
    Setup {
        _db: db,
        nats,
        pool,
        _events: events,
    }
}

fn placed(checkout: &str) -> Event {
    Event::new(
        "order",
        checkout,
        None,
        Payload::OrderPlaced(pb::OrderPlaced::default()),
    )
}

/// Writes `event` to the outbox as a service does, in a committed transaction.
async fn enqueue(pool: &PgPool, event: &Event) {
    let mut tx = pool.begin().await.unwrap();
    outbox::enqueue(&mut tx, event).await.unwrap();
    tx.commit().await.unwrap();
}

/// Waits until `query` (a count) returns `expected`, or panics with what it last saw.
async fn until_count(pool: &PgPool, query: &'static str, bind: &str, expected: i64) {
    let mut seen = -1;
    for _ in 0..200 {
        seen = sqlx::query_scalar(query)
            .bind(bind)
            .fetch_one(pool)
            .await
            .unwrap();
        if seen == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{query} [{bind}]: expected {expected}, saw {seen}");
}

const HANDLED: &str = "SELECT count(*) FROM handled WHERE checkout = $1";
const PARKED: &str = "SELECT count(*) FROM dead_letters WHERE event_id = $1";

#[tokio::test]
async fn an_outbox_event_is_published_and_handled_once_even_when_delivered_again() {
    let s = setup().await;
    let event = placed("happy");
    enqueue(&s.pool, &event).await;
    until_count(&s.pool, HANDLED, "happy", 1).await;
    let sent: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT sent_at FROM outbox WHERE event_id = $1")
            .bind(event.id)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert!(sent.is_some(), "the relay marks what it published");

    // The same event again under another Nats-Msg-Id (past the broker's duplicate
    // window, say): the inbox absorbs it.
    let js = s.nats.jetstream().await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", "another-id");
    js.publish_with_headers(event.subject(), headers, event.encode().into())
        .await
        .unwrap()
        .await
        .unwrap();
    // And a relay that crashed before marking the row sent publishes it again.
    sqlx::query("UPDATE outbox SET sent_at = NULL WHERE event_id = $1")
        .bind(event.id)
        .execute(&s.pool)
        .await
        .unwrap();
    enqueue(&s.pool, &placed("after")).await;
    until_count(&s.pool, HANDLED, "after", 1).await;
    until_count(&s.pool, HANDLED, "happy", 1).await;
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = $1")
        .bind(event.id)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(inbox, 1);
}

#[tokio::test]
async fn a_transient_failure_is_redelivered_until_it_passes() {
    let s = setup().await;
    enqueue(&s.pool, &placed("flaky")).await;
    until_count(&s.pool, HANDLED, "flaky", 1).await;
}

#[tokio::test]
async fn what_keeps_failing_or_cannot_be_handled_is_parked_not_retried_forever() {
    let s = setup().await;
    let failing = placed("always-failing");
    let poison = placed("poison");
    enqueue(&s.pool, &failing).await;
    enqueue(&s.pool, &poison).await;
    until_count(&s.pool, PARKED, &failing.id.to_string(), 1).await;
    until_count(&s.pool, PARKED, &poison.id.to_string(), 1).await;
    let deliveries: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT event_id, deliveries, reason FROM dead_letters ORDER BY id")
            .fetch_all(&s.pool)
            .await
            .unwrap();
    let of = |id: &Event| {
        deliveries
            .iter()
            .find(|(event_id, _, _)| *event_id == id.id.to_string())
            .cloned()
            .unwrap()
    };
    assert_eq!(of(&failing).1, 3, "parked on its last allowed delivery");
    assert!(
        of(&failing).2.contains("never comes back"),
        "{:?}",
        of(&failing)
    );
    assert_eq!(of(&poison).1, 1, "poison is parked at once");
    assert!(of(&poison).2.contains("order_id"), "{:?}", of(&poison));

    // A message that is not an envelope at all is parked too, with no event id.
    let js = s.nats.jetstream().await;
    js.publish("shop.events.order.OrderPlaced", "not protobuf".into())
        .await
        .unwrap()
        .await
        .unwrap();
    until_count(&s.pool, PARKED, "", 1).await;
    let handled: i64 = sqlx::query_scalar("SELECT count(*) FROM handled")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(handled, 0, "nothing half-handled");
}

#[tokio::test]
async fn events_wait_in_the_outbox_while_the_broker_is_down() {
    let mut s = setup().await;
    enqueue(&s.pool, &placed("before")).await;
    until_count(&s.pool, HANDLED, "before", 1).await;
    s.nats.kill();
    enqueue(&s.pool, &placed("during")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(waiting, 1, "unsent while the broker is away");
    s.nats.restart().await;
    until_count(&s.pool, HANDLED, "during", 1).await;
}

#[test]
fn every_service_creates_the_same_event_tables() {
    for service in ["payment-svc", "inventory-svc", "shipping-svc"] {
        let path = format!(
            "{}/../{service}/migrations/0002_events.sql",
            env!("CARGO_MANIFEST_DIR")
        );
        let theirs = std::fs::read_to_string(&path).unwrap();
        assert_eq!(theirs, SCHEMA, "{path} differs from order-svc's");
    }
    // The orchestrator's migration adds its saga mode, then the same tables.
    let path = format!(
        "{}/../orchestrator/migrations/0005_choreography.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    let orchestrator = std::fs::read_to_string(&path).unwrap();
    assert!(
        orchestrator.ends_with(SCHEMA),
        "{path} differs from order-svc's"
    );
}

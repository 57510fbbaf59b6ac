//! The event plumbing against a real Postgres and a real nats-server: what a service
//! writes to its outbox reaches a consumer once, however often it is delivered; failures
//! are redelivered, then parked where a person can see them; a consumer acts only on
//! the schema majors it knows.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use platform::{
    events::{
        self, ConsumerSpec, Event, EventsConfig, Handler, HandlerError, Participant,
        admin::DeadLetters, outbox, schema,
    },
    server::App,
    testing::{self, Options, TestDb, TestNats},
};
use prost::Message;
use shop_proto::events::v1::{
    self as pb, RetryDeadLetterRequest, envelope::Payload,
    event_admin_service_client::EventAdminServiceClient,
};
use sqlx::{PgConnection, PgPool};

/// The tables platform's events schema creates in every service's database.
const SCHEMA: &str = include_str!("../migrations/events/0002_events.sql");
/// What an operator's settlement of a dead letter adds to them (`EventAdminService`).
const SETTLEMENT: &str = include_str!("../migrations/events/0004_dead_letter_settlement.sql");

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

/// A service's database: the event tables and the recorder's `handled`.
async fn database() -> (TestDb, PgPool) {
    let db = TestDb::create("events").await;
    let pool = PgPool::connect(&db.url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
    sqlx::raw_sql(SETTLEMENT).execute(&pool).await.unwrap();
    sqlx::query("CREATE TABLE handled (event_id uuid NOT NULL, checkout text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    (db, pool)
}

/// Consumer `durable` of every `order` event, knowing the majors `known_major` says.
fn spec(durable: &'static str, known_major: fn(&Payload) -> u32) -> ConsumerSpec {
    ConsumerSpec {
        durable,
        subjects: vec!["shop.events.order.>".into()],
        max_deliveries: 3,
        concurrency: 8,
        known_major,
    }
}

/// Runs `spec`'s consumer (with a [`Recorder`]) and the `order` relay on `pool`.
fn run(nats: &TestNats, pool: &PgPool, spec: ConsumerSpec) -> tokio::task::JoinHandle<()> {
    let config = EventsConfig {
        nats_url: nats.url.clone(),
        producer: "order",
        tls: None,
        stream: events::StreamLimits::default(),
    };
    tokio::spawn(events::run(
        pool.clone(),
        config,
        Participant::new(spec, Recorder::default()),
    ))
}

async fn setup() -> Setup {
    let nats = TestNats::start().await;
    let (db, pool) = database().await;
    let events = run(&nats, &pool, spec("test-svc", schema::known_by_this_build));
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

/// The orchestrator keeps its own copy of the event tables: they came with its saga mode in
/// one migration that databases have applied, and an applied migration never changes.
#[test]
fn the_orchestrators_event_tables_are_platforms() {
    let path = format!(
        "{}/../orchestrator/migrations/0005_choreography.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    let orchestrator = std::fs::read_to_string(&path).unwrap();
    assert!(
        orchestrator.ends_with(SCHEMA),
        "{path} differs from platform's migrations/events/0002_events.sql"
    );
}

/// What a consumer of a newer build knows: `OrderPlaced` up to major 2 (its meaning
/// changed), every other type as this build.
fn knows_order_placed_2(payload: &Payload) -> u32 {
    match payload {
        Payload::OrderPlaced(_) => 2,
        other => schema::known_by_this_build(other),
    }
}

/// `event` as a producer of another build writes it: declaring `version`, or nothing
/// (written before versions existed).
fn as_written(event: &Event, version: Option<(u32, u32)>) -> Event {
    let mut envelope = event.envelope.clone();
    envelope.schema_version = version.map(|(major, minor)| pb::SchemaVersion { major, minor });
    Event::decode(&envelope.encode_to_vec().into()).unwrap()
}

/// `EventAdminService` over `pool`'s dead letters, retrying with `spec`'s consumer: the
/// binary an operator calls.
async fn admin(
    db: &TestDb,
    pool: &PgPool,
    spec: ConsumerSpec,
) -> (
    testing::TestServer,
    EventAdminServiceClient<tonic::transport::Channel>,
) {
    let participant = Participant::new(spec, Recorder::default());
    let pool = pool.clone();
    let server = testing::serve(&db.url, Options::default(), |config| async move {
        Ok(App::builder("events-admin", config)
            .add_service(DeadLetters::server(pool, participant))
            .bind()
            .await?)
    })
    .await;
    let client = EventAdminServiceClient::new(server.channel.clone());
    (server, client)
}

#[tokio::test]
async fn an_old_consumer_parks_a_major_it_does_not_know_and_a_new_one_beside_it_handles_it() {
    let nats = TestNats::start().await;
    // Two consumers of the same events, each in its database: one of this build, one of
    // a newer build that knows OrderPlaced's major 2.
    let (old_db, old) = database().await;
    let (_new_db, new) = database().await;
    let _old = run(&nats, &old, spec("old-svc", schema::known_by_this_build));
    let _new = run(&nats, &new, spec("new-svc", knows_order_placed_2));

    let js = nats.jetstream().await;
    let changed = as_written(&placed("changed-meaning"), Some((2, 0)));
    let legacy = as_written(&placed("legacy"), None);
    let added_field = as_written(&placed("added-field"), Some((1, 3)));
    for event in [&changed, &legacy, &added_field] {
        testing::publish(&js, event).await;
    }

    // Both act on what they know: an envelope from before versions (read as 1.0) and a
    // newer minor of major 1.
    for pool in [&old, &new] {
        until_count(pool, HANDLED, "legacy", 1).await;
        until_count(pool, HANDLED, "added-field", 1).await;
    }
    // The new meaning: handled by the new consumer, parked by the old one, unhandled,
    // with a reason that names the version.
    until_count(&new, HANDLED, "changed-meaning", 1).await;
    until_count(&old, PARKED, &changed.id.to_string(), 1).await;
    let (deliveries, reason): (i64, String) =
        sqlx::query_as("SELECT deliveries, reason FROM dead_letters WHERE event_id = $1")
            .bind(changed.id.to_string())
            .fetch_one(&old)
            .await
            .unwrap();
    assert_eq!(deliveries, 1, "parked at once, never retried by the broker");
    assert!(
        reason.contains("OrderPlaced is of schema version 2.0")
            && reason.contains("old-svc")
            && reason.contains("majors 1 to 1"),
        "{reason}"
    );
    let parked_here: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&new)
        .await
        .unwrap();
    assert_eq!(parked_here, 0, "the new consumer parks nothing");
    until_count(&old, HANDLED, "changed-meaning", 0).await;

    // The operator's retry: refused while the binary still does not know major 2 (and
    // nothing handled), done once it does.
    let letter: i64 = sqlx::query_scalar("SELECT id FROM dead_letters WHERE event_id = $1")
        .bind(changed.id.to_string())
        .fetch_one(&old)
        .await
        .unwrap();
    let retry = RetryDeadLetterRequest { id: letter };
    let (_server, mut not_upgraded) =
        admin(&old_db, &old, spec("old-svc", schema::known_by_this_build)).await;
    let refused = not_upgraded.retry_dead_letter(retry).await.unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert_eq!(testing::reason(&refused), "DEAD_LETTER_STILL_FAILING");
    assert!(
        refused.message().contains("schema version 2.0"),
        "{refused:?}"
    );
    until_count(&old, HANDLED, "changed-meaning", 0).await;

    let (_server, mut upgraded) = admin(&old_db, &old, spec("old-svc", knows_order_placed_2)).await;
    let retried = upgraded
        .retry_dead_letter(retry)
        .await
        .unwrap()
        .into_inner()
        .dead_letter
        .unwrap();
    assert_eq!(retried.state(), pb::DeadLetterState::Retried);
    until_count(&old, HANDLED, "changed-meaning", 1).await;
}

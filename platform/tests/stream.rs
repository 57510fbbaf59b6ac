//! The event stream on a real nats-server: it takes its bounds from the settings, and a
//! stream that is gone (a broker back without its store) is found missing, created again
//! with the same bounds, and known for a new one by its creation time.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::time::Duration;

use async_nats::jetstream::stream::DiscardPolicy;
use platform::{
    events::{STREAM, StreamLimits, broker},
    testing::TestNats,
};

#[tokio::test]
async fn the_stream_has_the_configured_bounds_and_is_created_again_when_gone() {
    let nats = TestNats::start().await;
    let limits = StreamLimits {
        replicas: 1,
        max_age: Duration::from_secs(3600),
        max_bytes: Some(1 << 20),
    };
    let connected = broker::connect(&nats.url, "test", None, limits).await;
    let js = connected.js;
    let config = js
        .get_stream(STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(config.max_age, Duration::from_secs(3600));
    assert_eq!(config.max_bytes, 1 << 20);
    assert_eq!(
        config.discard,
        DiscardPolicy::New,
        "a full stream refuses, drops nothing"
    );
    assert_eq!(
        broker::incarnation(&js).await.unwrap(),
        Some(connected.stream)
    );

    js.delete_stream(STREAM).await.unwrap();
    assert_eq!(broker::incarnation(&js).await.unwrap(), None, "gone");
    // Creation times are kept to the nanosecond; make sure the clock moved on.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (mut again, incarnation) = broker::find_or_recreate(&js, limits).await.unwrap();
    assert_ne!(incarnation, connected.stream, "a new stream is told apart");
    assert_eq!(again.info().await.unwrap().config.max_bytes, 1 << 20);
    let (_, same) = broker::find_or_recreate(&js, limits).await.unwrap();
    assert_eq!(same, incarnation, "found, not created twice");
}

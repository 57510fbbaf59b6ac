//! `shop.events.v1.EventAdminService`: what a service's consumer parked, for a person to
//! look at. Every service that consumes events serves it next to its own API.

use shop_proto::events::v1::{
    self as pb,
    event_admin_service_server::{EventAdminService, EventAdminServiceServer},
};
use sqlx::PgPool;

use crate::{
    ApiError,
    error::{Reply, reply},
    page,
    time::timestamp,
    validate::Violations,
};

/// Lists the `dead_letters` of one service's database.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    pool: PgPool,
}

impl DeadLetters {
    pub fn server(pool: PgPool) -> EventAdminServiceServer<Self> {
        EventAdminServiceServer::new(Self { pool })
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    event_id: String,
    subject: String,
    consumer: String,
    deliveries: i64,
    reason: String,
    payload: Vec<u8>,
    parked_at: chrono::DateTime<chrono::Utc>,
}

#[tonic::async_trait]
impl EventAdminService for DeadLetters {
    async fn list_dead_letters(
        &self,
        request: tonic::Request<pb::ListDeadLettersRequest>,
    ) -> Reply<pb::ListDeadLettersResponse> {
        reply(self.list(request.into_inner()).await)
    }
}

impl DeadLetters {
    async fn list(
        &self,
        req: pb::ListDeadLettersRequest,
    ) -> Result<pb::ListDeadLettersResponse, ApiError> {
        let mut v = Violations::default();
        let size = page::page_size(&mut v, "page_size", req.page_size);
        let before = page::decode(&mut v, "page_token", &req.page_token)
            .and_then(|cursor| cursor.parse::<i64>().ok());
        if !req.page_token.is_empty() && before.is_none() && v.is_empty() {
            v.add("page_token", "is not a token returned by this service");
        }
        v.finish(())?;
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, event_id, subject, consumer, deliveries, reason, payload, parked_at
               FROM dead_letters WHERE ($1::bigint IS NULL OR id < $1)
              ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(size + 1)
        .fetch_all(&self.pool)
        .await?;
        let (rows, next_page_token) = page::split(rows, size, |row| row.id.to_string());
        Ok(pb::ListDeadLettersResponse {
            dead_letters: rows
                .into_iter()
                .map(|row| pb::DeadLetter {
                    event_id: row.event_id,
                    subject: row.subject,
                    consumer: row.consumer,
                    deliveries: row.deliveries,
                    reason: row.reason,
                    park_time: Some(timestamp(row.parked_at)),
                    payload: row.payload,
                })
                .collect(),
            next_page_token,
        })
    }
}

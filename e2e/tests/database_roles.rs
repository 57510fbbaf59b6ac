//! deploy/postgres/init.sql, the file compose runs, run against a throwaway Postgres: each
//! service's role migrates and works in its own database through the real binary, and
//! cannot connect to another service's database nor to the maintenance ones. The same run
//! shows the database passwords never reach a log.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test, with its message

use std::{net::SocketAddr, process::Child};

use e2e::{
    net::free_port,
    postgres::Postgres,
    stack::{bin_dir, logged_command, wait_serving},
};
use shop_proto::{
    checkout::v1::{self as checkout, checkout_service_client::CheckoutServiceClient},
    common::v1::Money,
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
    order::v1::{self as order, order_service_client::OrderServiceClient},
    payment::v1::{self as payment, payment_service_client::PaymentServiceClient},
    shipping::v1::{self as shipping, shipping_service_client::ShippingServiceClient},
};
use sqlx::{Connection, PgConnection};
use tonic::{Code, transport::Channel};

/// (binary, role, password, database), as init.sql and compose.yaml name them.
const ROLES: [(&str, &str, &str, &str); 5] = [
    ("order-svc", "order_svc", "order_svc_dev", "orders"),
    ("payment-svc", "payment_svc", "payment_svc_dev", "payments"),
    (
        "inventory-svc",
        "inventory_svc",
        "inventory_svc_dev",
        "inventory",
    ),
    (
        "shipping-svc",
        "shipping_svc",
        "shipping_svc_dev",
        "shipping",
    ),
    (
        "orchestrator",
        "orchestrator",
        "orchestrator_dev",
        "orchestrator",
    ),
];

/// The statements of init.sql, one by one: CREATE DATABASE may not run inside the
/// implicit transaction of a multi-statement query.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A service binary run as its role, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn each_service_role_works_in_its_own_database_and_no_other() {
    let postgres = Postgres::start_own().await.unwrap();
    let mut admin = PgConnection::connect(&postgres.admin_url).await.unwrap();
    for statement in statements(include_str!("../../deploy/postgres/init.sql")) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
    let port = postgres
        .admin_url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(port, _)| port.to_owned())
        .unwrap();
    let url = |role: &str, password: &str, database: &str| {
        format!("postgres://{role}:{password}@127.0.0.1:{port}/{database}")
    };

    // No role may connect to another's database, nor to the maintenance databases.
    for (_, role, password, own) in ROLES {
        let others = ROLES
            .iter()
            .map(|(_, _, _, database)| *database)
            .filter(|database| *database != own)
            .chain(["postgres", "template1"]);
        for database in others {
            let refused = PgConnection::connect(&url(role, password, database))
                .await
                .err()
                .unwrap_or_else(|| panic!("{role} connected to {database}"));
            assert!(
                refused
                    .to_string()
                    .contains("permission denied for database"),
                "{role} -> {database}: {refused}"
            );
        }
    }

    // Each binary migrates its own database as its role, reports SERVING, and works.
    let dir = std::env::temp_dir().join(format!("db-roles-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut running = Vec::new();
    let mut channels = Vec::new();
    for (binary, role, password, database) in ROLES {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
        let log = dir.join(format!("{binary}.log"));
        let mut child = logged_command(&bin_dir().unwrap().join(binary), addr, &log)
            .unwrap()
            .env("DEV_INSECURE", "true")
            .env("DATABASE_URL", url(role, password, database))
            .env("DATABASE_MAX_CONNECTIONS", "2")
            // No broker: the services serve their APIs while it is away.
            .env(
                "NATS_URL",
                format!("nats://127.0.0.1:{}", free_port().unwrap()),
            )
            // Debug logs: the most a binary ever writes, for the password check below.
            .env("RUST_LOG", "debug")
            .spawn()
            .unwrap();
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        wait_serving(channel.clone(), Some(&mut child), binary, &log)
            .await
            .unwrap();
        channels.push(channel);
        running.push(Running(child));
    }
    let unknown = || uuid::Uuid::new_v4().to_string();
    let mut orders = OrderServiceClient::new(channels[0].clone());
    let status = orders
        .get_order(order::GetOrderRequest {
            order_id: unknown(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let mut payments = PaymentServiceClient::new(channels[1].clone());
    payments
        .list_payments(payment::ListPaymentsRequest {
            order_id: unknown(),
        })
        .await
        .unwrap();
    let mut stock = InventoryServiceClient::new(channels[2].clone());
    stock
        .upsert_product(inventory::UpsertProductRequest {
            sku: "ROLE-1".into(),
            name: "Role".into(),
            unit_price: Some(Money {
                amount_minor: 100,
                currency: "EUR".into(),
            }),
        })
        .await
        .unwrap();
    stock
        .set_stock(inventory::SetStockRequest {
            sku: "ROLE-1".into(),
            quantity: 3,
        })
        .await
        .unwrap();
    let got = stock
        .get_stock(inventory::GetStockRequest {
            sku: "ROLE-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.available, 3);
    let mut shipments = ShippingServiceClient::new(channels[3].clone());
    let status = shipments
        .get_shipment(shipping::GetShipmentRequest {
            order_id: unknown(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let mut checkouts = CheckoutServiceClient::new(channels[4].clone());
    checkouts
        .list_checkouts(checkout::ListCheckoutsRequest::default())
        .await
        .unwrap();

    // Debug logs of five binaries that were given passwords: none of them shows one.
    drop(running);
    for (binary, _, password, _) in ROLES {
        let log = std::fs::read_to_string(dir.join(format!("{binary}.log"))).unwrap();
        assert!(log.contains("SERVING"), "{binary}: {log}");
        assert!(
            !log.contains(password),
            "{binary} logged its password:\n{log}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

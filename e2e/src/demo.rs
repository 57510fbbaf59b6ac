//! The demo catalog the local runner seeds, so the README's walkthrough works at once.

use shop_proto::common::v1 as common;
use shop_proto::inventory::v1 as inventory;

use shop_proto::inventory::v1::inventory_service_client::InventoryServiceClient;
use tonic::transport::Channel;

/// `(sku, name, unit price in euro cents, units in stock)`.
pub const CATALOG: &[(&str, &str, i64, i64)] = &[
    ("MUG-1", "Enamel mug", 1200, 100),
    ("TEE-1", "Organic T-shirt", 2500, 50),
    ("CAP-1", "Baseball cap", 1800, 3),
];

/// Upserts the demo products and sets their stock.
pub async fn seed(inventory: &mut InventoryServiceClient<Channel>) -> Result<(), tonic::Status> {
    for (sku, name, price, units) in CATALOG {
        inventory
            .upsert_product(inventory::UpsertProductRequest {
                sku: (*sku).into(),
                name: (*name).into(),
                unit_price: Some(common::Money {
                    amount_minor: *price,
                    currency: "EUR".into(),
                }),
            })
            .await?;
        inventory
            .set_stock(inventory::SetStockRequest {
                sku: (*sku).into(),
                quantity: *units,
            })
            .await?;
    }
    Ok(())
}

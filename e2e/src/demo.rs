//! The demo catalog the local runner seeds, so the README's walkthrough works at once.

use shop_proto::inventory::v1 as inventory;

use crate::clients::Clients;

/// `(sku, name, unit price in euro cents, units in stock)`.
pub const CATALOG: &[(&str, &str, i64, i64)] = &[
    ("MUG-1", "Enamel mug", 1200, 100),
    ("TEE-1", "Organic T-shirt", 2500, 50),
    ("CAP-1", "Baseball cap", 1800, 3),
];

/// Upserts the demo products and sets their stock.
pub async fn seed(clients: &mut Clients) -> Result<(), tonic::Status> {
    for (sku, name, price, units) in CATALOG {
        clients
            .inventory
            .upsert_product(inventory::UpsertProductRequest {
                sku: (*sku).into(),
                name: (*name).into(),
                unit_price: Some(inventory::Money {
                    amount_minor: *price,
                    currency: "EUR".into(),
                }),
            })
            .await?;
        clients
            .inventory
            .set_stock(inventory::SetStockRequest {
                sku: (*sku).into(),
                quantity: *units,
            })
            .await?;
    }
    Ok(())
}

//! The floor the saga is measured against: the six calls of a checkout (PriceCart,
//! CreateOrder, Charge, ReserveStock, CreateShipment, ConfirmOrder), built by the
//! orchestrator's own step modules under the same idempotency keys, made in sequence
//! straight to the services. Nothing is recorded between them (no saga row, no intents,
//! no leases) and nothing is retried: what remains is the cost of the work itself, and
//! the saga's overhead is what a checkout costs beyond it.
//!
//! The services let only the orchestrator make these calls, so the floor runs with the
//! orchestrator's certificate.

use orchestrator::{
    ids::SagaId,
    steps::{Context, charge_payment, confirm_order, create_order, create_shipment, reserve_stock},
};
use platform::security::{Principal, Security, token::AttachToken};
use shop_proto::{
    checkout::v1 as pb,
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
    order::v1::order_service_client::OrderServiceClient,
    payment::v1::payment_service_client::PaymentServiceClient,
    shipping::v1::shipping_service_client::ShippingServiceClient,
};
use tonic::{Code, Status};

use e2e::{
    Stack,
    clients::{Clients, Urls},
};

/// The four services, reached as the orchestrator.
#[derive(Debug, Clone)]
pub struct Services {
    order: OrderServiceClient<tonic::transport::Channel>,
    payment: PaymentServiceClient<tonic::transport::Channel>,
    inventory: InventoryServiceClient<tonic::transport::Channel>,
    shipping: ShippingServiceClient<tonic::transport::Channel>,
}

impl From<Clients> for Services {
    fn from(clients: Clients) -> Self {
        Self {
            order: clients.order,
            payment: clients.payment,
            inventory: clients.inventory,
            shipping: clients.shipping,
        }
    }
}

impl Services {
    /// The services of a stack this process started, with the stack's orchestrator
    /// certificate (or plaintext for a development stack).
    pub fn of(stack: &Stack) -> anyhow::Result<Self> {
        let security = match stack.pki() {
            Some(pki) => pki.security(Principal::Orchestrator)?,
            None => Security::DevInsecure,
        };
        Ok(Clients::of_as(stack, &security, AttachToken::none()).into())
    }

    /// The services at `urls`, connecting as `security` makes this process (the
    /// orchestrator's TLS files).
    pub fn at(urls: &Urls, security: &Security) -> Result<Self, tonic::transport::Error> {
        Ok(Clients::at(urls, security, AttachToken::none())?.into())
    }

    /// One checkout's six calls in order; the code of the first that fails.
    pub async fn checkout(&mut self, message: &pb::PlaceOrderRequest) -> Result<(), Code> {
        let code = |status: Status| status.code();
        let priced = self
            .inventory
            .price_cart(inventory::PriceCartRequest {
                lines: message
                    .items
                    .iter()
                    .map(|item| inventory::CartLine {
                        sku: item.sku.clone(),
                        quantity: item.quantity,
                    })
                    .collect(),
            })
            .await
            .map_err(code)?
            .into_inner();
        let total = priced.total.clone().unwrap_or_default();
        let mut ctx = Context {
            saga_id: SagaId::generate(),
            request: message,
            priced: &priced,
            total_minor: total.amount_minor,
            currency: &total.currency,
            order_id: None,
            failure_reason: None,
            fault: "",
            traceparent: "",
        };
        let order_id = self
            .order
            .create_order(create_order::request(&ctx))
            .await
            .map_err(code)?
            .into_inner()
            .order
            .map(|order| order.order_id)
            .unwrap_or_default();
        let order_id = uuid::Uuid::try_parse(&order_id).map_err(|_| Code::Internal)?;
        ctx.order_id = Some(order_id.into());
        self.payment
            .charge(charge_payment::request(&ctx))
            .await
            .map_err(code)?;
        self.inventory
            .reserve_stock(reserve_stock::request(&ctx))
            .await
            .map_err(code)?;
        self.shipping
            .create_shipment(create_shipment::request(&ctx))
            .await
            .map_err(code)?;
        self.order
            .confirm_order(confirm_order::request(&ctx))
            .await
            .map_err(code)?;
        Ok(())
    }
}

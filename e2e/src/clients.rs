//! gRPC clients of every service of a running stack.

use shop_proto::{
    checkout::v1::checkout_service_client::CheckoutServiceClient,
    inventory::v1::inventory_service_client::InventoryServiceClient,
    order::v1::order_service_client::OrderServiceClient,
    payment::v1::payment_service_client::PaymentServiceClient,
    shipping::v1::shipping_service_client::ShippingServiceClient,
};
use tonic::transport::{Channel, Endpoint};

use crate::stack::{Stack, Svc};

/// One client per service; cheap to clone (each shares its HTTP/2 connection).
#[derive(Debug, Clone)]
pub struct Clients {
    pub checkout: CheckoutServiceClient<Channel>,
    pub order: OrderServiceClient<Channel>,
    pub payment: PaymentServiceClient<Channel>,
    pub inventory: InventoryServiceClient<Channel>,
    pub shipping: ShippingServiceClient<Channel>,
}

impl Clients {
    /// Clients of a stack started by this harness.
    pub fn of(stack: &Stack) -> Self {
        Self {
            checkout: CheckoutServiceClient::new(stack.channel(Svc::Orchestrator)),
            order: OrderServiceClient::new(stack.channel(Svc::Order)),
            payment: PaymentServiceClient::new(stack.channel(Svc::Payment)),
            inventory: InventoryServiceClient::new(stack.channel(Svc::Inventory)),
            shipping: ShippingServiceClient::new(stack.channel(Svc::Shipping)),
        }
    }

    /// Clients of services at the given `http://` URLs (a stack started elsewhere).
    pub fn at(urls: &Urls) -> Result<Self, tonic::transport::Error> {
        let channel = |url: &str| {
            Ok::<_, tonic::transport::Error>(Endpoint::from_shared(url.to_owned())?.connect_lazy())
        };
        Ok(Self {
            checkout: CheckoutServiceClient::new(channel(&urls.orchestrator)?),
            order: OrderServiceClient::new(channel(&urls.order)?),
            payment: PaymentServiceClient::new(channel(&urls.payment)?),
            inventory: InventoryServiceClient::new(channel(&urls.inventory)?),
            shipping: ShippingServiceClient::new(channel(&urls.shipping)?),
        })
    }
}

/// Where each service of a stack is.
#[derive(Debug, Clone)]
pub struct Urls {
    pub orchestrator: String,
    pub order: String,
    pub payment: String,
    pub inventory: String,
    pub shipping: String,
}

//! gRPC clients of every service of a running stack.

use platform::security::{
    Principal, Security,
    connect::{self, FrontDoor},
    token::AttachToken,
};
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
    /// The front door, with a bearer token on every call.
    pub checkout: CheckoutServiceClient<FrontDoor>,
    pub order: OrderServiceClient<Channel>,
    pub payment: PaymentServiceClient<Channel>,
    pub inventory: InventoryServiceClient<Channel>,
    pub shipping: ShippingServiceClient<Channel>,
}

impl Clients {
    /// Clients of a stack started by this harness, as the operator (with an operator
    /// token at the front door).
    pub fn of(stack: &Stack) -> Self {
        let token = stack
            .token("operator", true)
            .unwrap_or_else(|error| panic!("the stack's token secret: {error:#}"));
        Self::of_as(stack, stack.security(), token)
    }

    /// Clients of a stack started by this harness, connecting as `security` makes this
    /// process and sending `token` to the front door.
    pub fn of_as(stack: &Stack, security: &Security, token: AttachToken) -> Self {
        Self {
            checkout: CheckoutServiceClient::with_interceptor(
                stack.channel_as(Svc::Orchestrator, security),
                token,
            ),
            order: OrderServiceClient::new(stack.channel_as(Svc::Order, security)),
            payment: PaymentServiceClient::new(stack.channel_as(Svc::Payment, security)),
            inventory: InventoryServiceClient::new(stack.channel_as(Svc::Inventory, security)),
            shipping: ShippingServiceClient::new(stack.channel_as(Svc::Shipping, security)),
        }
    }

    /// Clients of services at the given URLs (a stack started elsewhere), connecting as
    /// `security` makes this process and sending `token` to the front door.
    pub fn at(
        urls: &Urls,
        security: &Security,
        token: AttachToken,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = |url: &str, server: Principal| {
            Ok::<_, tonic::transport::Error>(connect::channel(
                Endpoint::from_shared(url.to_owned())?,
                security,
                server,
            ))
        };
        Ok(Self {
            checkout: CheckoutServiceClient::with_interceptor(
                channel(&urls.orchestrator, Principal::Orchestrator)?,
                token,
            ),
            order: OrderServiceClient::new(channel(&urls.order, Principal::OrderSvc)?),
            payment: PaymentServiceClient::new(channel(&urls.payment, Principal::PaymentSvc)?),
            inventory: InventoryServiceClient::new(channel(
                &urls.inventory,
                Principal::InventorySvc,
            )?),
            shipping: ShippingServiceClient::new(channel(&urls.shipping, Principal::ShippingSvc)?),
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

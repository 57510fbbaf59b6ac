//! The four downstream services, each RPC the saga uses wrapped in its resilience stack.

use std::time::Duration;

use platform::security::{Principal, Security, connect};
use shop_proto::{
    inventory::v1::{self as inventory, inventory_service_client::InventoryServiceClient},
    order::v1::{self as order, order_service_client::OrderServiceClient},
    payment::v1::{self as payment, payment_service_client::PaymentServiceClient},
    shipping::v1::{self as shipping, shipping_service_client::ShippingServiceClient},
};
use tonic::transport::{Channel, Endpoint};

use super::resilience::{Downstream, Lane, StepService};
use crate::config::Settings;

/// Every downstream RPC of the saga, ready to call.
#[derive(Debug, Clone)]
pub struct Clients {
    pub price_cart: StepService<inventory::PriceCartRequest, inventory::PriceCartResponse>,
    pub reserve_stock: StepService<inventory::ReserveStockRequest, inventory::ReserveStockResponse>,
    pub release_stock: StepService<inventory::ReleaseStockRequest, inventory::ReleaseStockResponse>,
    pub create_order: StepService<order::CreateOrderRequest, order::CreateOrderResponse>,
    pub confirm_order: StepService<order::ConfirmOrderRequest, order::ConfirmOrderResponse>,
    pub cancel_order: StepService<order::CancelOrderRequest, order::CancelOrderResponse>,
    pub charge: StepService<payment::ChargeRequest, payment::ChargeResponse>,
    pub refund: StepService<payment::RefundRequest, payment::RefundResponse>,
    pub create_shipment:
        StepService<shipping::CreateShipmentRequest, shipping::CreateShipmentResponse>,
    pub cancel_shipment:
        StepService<shipping::CancelShipmentRequest, shipping::CancelShipmentResponse>,
}

/// Wraps `client.method(request)` as a stack of `downstream` in `lane`.
macro_rules! rpc {
    ($downstream:expr, $lane:expr, $client:expr, $method:ident) => {{
        let client = $client.clone();
        $downstream.stack($lane, stringify!($method), move |request| {
            let mut client = client.clone();
            async move {
                client
                    .$method(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
    }};
}

impl Clients {
    /// Lazily connected channels: the orchestrator starts even while a downstream is
    /// down, and calls fail UNAVAILABLE (and are retried) until it is back.
    /// Over TLS each channel presents the orchestrator's certificate and accepts only
    /// the service's own.
    pub fn new(settings: &Settings, security: &Security) -> Result<Self, tonic::transport::Error> {
        let r = &settings.resilience;
        let (orders, payments, inventory, shipping) = (
            Downstream::new("order-svc", r),
            Downstream::new("payment-svc", r),
            Downstream::new("inventory-svc", r),
            Downstream::new("shipping-svc", r),
        );
        let order_client =
            OrderServiceClient::new(channel(&settings.order_url, security, Principal::OrderSvc)?);
        let payment_client = PaymentServiceClient::new(channel(
            &settings.payment_url,
            security,
            Principal::PaymentSvc,
        )?);
        let inventory_client = InventoryServiceClient::new(channel(
            &settings.inventory_url,
            security,
            Principal::InventorySvc,
        )?);
        let shipping_client = ShippingServiceClient::new(channel(
            &settings.shipping_url,
            security,
            Principal::ShippingSvc,
        )?);
        Ok(Self {
            price_cart: rpc!(inventory, Lane::Forward, inventory_client, price_cart),
            reserve_stock: rpc!(inventory, Lane::Forward, inventory_client, reserve_stock),
            release_stock: rpc!(
                inventory,
                Lane::Compensation,
                inventory_client,
                release_stock
            ),
            create_order: rpc!(orders, Lane::Forward, order_client, create_order),
            confirm_order: rpc!(orders, Lane::Forward, order_client, confirm_order),
            cancel_order: rpc!(orders, Lane::Compensation, order_client, cancel_order),
            charge: rpc!(payments, Lane::Forward, payment_client, charge),
            refund: rpc!(payments, Lane::Compensation, payment_client, refund),
            create_shipment: rpc!(shipping, Lane::Forward, shipping_client, create_shipment),
            cancel_shipment: rpc!(
                shipping,
                Lane::Compensation,
                shipping_client,
                cancel_shipment
            ),
        })
    }
}

/// One HTTP/2 connection per downstream, multiplexing every call, reconnecting on loss.
fn channel(
    url: &str,
    security: &Security,
    server: Principal,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(1))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5));
    Ok(connect::channel(endpoint, security, server))
}

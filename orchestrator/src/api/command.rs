//! CheckoutService requests parsed into typed commands at the edge: each `TryFrom`
//! checks every field, collects every violation into one `INVALID_ARGUMENT` (a
//! `google.rpc.BadRequest` naming each field), and hands the handler values it can use
//! without checking again.

use platform::{
    ApiError, page,
    validate::{MAX_AMOUNT_MINOR, Violations},
};
use shop_proto::{checkout::v1 as pb, inventory::v1 as inventory};

use crate::{
    api::convert,
    ids::{OrderId, SagaId},
    saga::CoordinationMode,
    store,
};

/// A valid PlaceOrder.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub idempotency_key: String,
    pub customer_id: String,
    /// The cart as inventory prices it.
    pub lines: Vec<inventory::CartLine>,
    pub mode: CoordinationMode,
    /// The request as received: its fingerprint tells a repeat from a reused key, and it
    /// is stored with the saga so any replica can resume it.
    pub request: pb::PlaceOrderRequest,
}

impl TryFrom<pb::PlaceOrderRequest> for PlaceOrder {
    type Error = ApiError;

    fn try_from(req: pb::PlaceOrderRequest) -> Result<Self, ApiError> {
        let mut v = Violations::default();
        v.idempotency_key("idempotency_key", &req.idempotency_key);
        v.text("customer_id", &req.customer_id, 1, 64);
        v.line_count("items", req.items.len());
        for (i, item) in req.items.iter().enumerate() {
            v.sku(&format!("items[{i}].sku"), &item.sku);
            v.quantity(&format!("items[{i}].quantity"), item.quantity);
        }
        v.unique_skus("items", req.items.iter().map(|i| i.sku.as_str()));
        v.payment_token("payment_token", &req.payment_token);
        v.address("shipping_address", req.shipping_address.as_ref());
        let mode = mode(&mut v, req.mode);
        v.finish(())?;
        Ok(Self {
            idempotency_key: req.idempotency_key.clone(),
            customer_id: req.customer_id.clone(),
            lines: req
                .items
                .iter()
                .map(|i| inventory::CartLine {
                    sku: i.sku.clone(),
                    quantity: i.quantity,
                })
                .collect(),
            mode,
            request: req,
        })
    }
}

impl PlaceOrder {
    /// Checks the cart as inventory priced it against the amounts the order and payment
    /// services accept, so a cart they would refuse is refused here, naming the line,
    /// before anything is recorded.
    pub fn check_priced(&self, priced: &inventory::PriceCartResponse) -> Result<(), ApiError> {
        let amount = |money: &Option<shop_proto::common::v1::Money>| {
            money.as_ref().map_or(0, |m| m.amount_minor)
        };
        let mut v = Violations::default();
        for line in &priced.lines {
            let line_total = amount(&line.line_total);
            let index = self.lines.iter().position(|l| l.sku == line.sku);
            if line_total > MAX_AMOUNT_MINOR
                && let Some(i) = index
            {
                v.add(
                    format!("items[{i}].quantity"),
                    format!(
                        "brings the line's total to {line_total}, over the largest amount \
                         {MAX_AMOUNT_MINOR}"
                    ),
                );
            }
        }
        let total = amount(&priced.total);
        if v.is_empty() && total > MAX_AMOUNT_MINOR {
            v.add(
                "items",
                format!("the cart's total {total} is over the largest amount {MAX_AMOUNT_MINOR}"),
            );
        }
        v.finish(())
    }
}

/// Which checkout GetCheckout names: by its own id, or by its order's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutRef {
    Checkout(SagaId),
    Order(OrderId),
}

impl TryFrom<&pb::GetCheckoutRequest> for CheckoutRef {
    type Error = ApiError;

    fn try_from(req: &pb::GetCheckoutRequest) -> Result<Self, ApiError> {
        let mut v = Violations::default();
        v.exactly_one(
            ("checkout_id", &req.checkout_id),
            ("order_id", &req.order_id),
        );
        let checkout =
            (!req.checkout_id.is_empty()).then(|| v.uuid("checkout_id", &req.checkout_id));
        let order = (!req.order_id.is_empty()).then(|| v.uuid("order_id", &req.order_id));
        v.finish(())?;
        match (checkout, order) {
            (Some(id), _) => Ok(Self::Checkout(id.into())),
            (None, Some(id)) => Ok(Self::Order(id.into())),
            (None, None) => Err(ApiError::invalid("checkout_id", "is required")),
        }
    }
}

/// The coordination mode a request names: UNSPECIFIED is orchestrated.
fn mode(v: &mut Violations, mode: i32) -> CoordinationMode {
    match pb::CoordinationMode::try_from(mode) {
        Ok(mode) => convert::mode(mode).unwrap_or(CoordinationMode::Orchestrated),
        Err(_) => {
            v.add("mode", "is not a CoordinationMode");
            CoordinationMode::Orchestrated
        }
    }
}

/// One page of ListCheckouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub filter: store::Filter,
    pub page_size: i64,
}

impl TryFrom<&pb::ListCheckoutsRequest> for ListQuery {
    type Error = ApiError;

    fn try_from(req: &pb::ListCheckoutsRequest) -> Result<Self, ApiError> {
        let mut v = Violations::default();
        let page_size = page::page_size(&mut v, "page_size", req.page_size);
        let before = page::decode(&mut v, "page_token", &req.page_token)
            .and_then(|c| uuid::Uuid::try_parse(&c).ok());
        if !req.page_token.is_empty() && before.is_none() && v.is_empty() {
            v.add("page_token", "is not a token returned by this service");
        }
        let status = match pb::CheckoutStatus::try_from(req.status) {
            Ok(status) => convert::status_filter(status),
            Err(_) => {
                v.add("status", "is not a CheckoutStatus");
                None
            }
        };
        let customer_id = (!req.customer_id.is_empty()).then(|| req.customer_id.clone());
        if customer_id.is_some() {
            v.text("customer_id", &req.customer_id, 1, 64);
        }
        let mode = match pb::CoordinationMode::try_from(req.mode) {
            Ok(mode) => convert::mode(mode),
            Err(_) => {
                v.add("mode", "is not a CoordinationMode");
                None
            }
        };
        v.finish(Self {
            filter: store::Filter {
                status,
                customer_id,
                mode,
                before: before.map(SagaId::from),
            },
            page_size,
        })
    }
}

/// The checkout WatchCheckout follows.
pub fn watched(req: &pb::WatchCheckoutRequest) -> Result<SagaId, ApiError> {
    checkout_id(&req.checkout_id)
}

/// The checkout ResumeCheckout names.
pub fn resumed(req: &pb::ResumeCheckoutRequest) -> Result<SagaId, ApiError> {
    checkout_id(&req.checkout_id)
}

fn checkout_id(value: &str) -> Result<SagaId, ApiError> {
    let mut v = Violations::default();
    let id = v.uuid("checkout_id", value);
    v.finish(id.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_names(error: ApiError) -> Vec<String> {
        match error {
            ApiError::InvalidArgument(violations) => {
                violations.into_iter().map(|v| v.field).collect()
            }
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn every_bad_field_of_a_place_order_is_named_at_once() {
        let req = pb::PlaceOrderRequest {
            idempotency_key: String::new(),
            customer_id: "c".into(),
            items: vec![pb::LineItem {
                sku: "MUG-1".into(),
                quantity: 0,
            }],
            payment_token: "visa".into(),
            ..Default::default()
        };
        let fields = field_names(PlaceOrder::try_from(req).expect_err("invalid"));
        for field in [
            "idempotency_key",
            "items[0].quantity",
            "payment_token",
            "shipping_address",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
    }

    #[test]
    fn a_checkout_is_named_by_exactly_one_id() {
        let id = uuid::Uuid::now_v7().to_string();
        let by_order = pb::GetCheckoutRequest {
            checkout_id: String::new(),
            order_id: id.clone(),
        };
        assert!(matches!(
            CheckoutRef::try_from(&by_order),
            Ok(CheckoutRef::Order(_))
        ));
        let both = pb::GetCheckoutRequest {
            checkout_id: id.clone(),
            order_id: id,
        };
        assert!(CheckoutRef::try_from(&both).is_err());
    }
}

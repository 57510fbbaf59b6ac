//! The order operations both faces of order-svc run: the gRPC API (`api`) and the
//! choreography's event handlers (`events`). Each one checks its input or works inside
//! the caller's transaction, so an order is created, confirmed or cancelled by the same
//! rules however it was asked for; the callers add only what is theirs (idempotency keys,
//! events).

use platform::{
    ApiError,
    reason::Reason,
    validate::{MIN_PRICE_MINOR, Violations},
};
use shop_proto::common::v1::{Address, Money};
use shop_proto::order::v1 as pb;
use sqlx::PgConnection;

use crate::{
    domain::{self, OrderStatus, Transition},
    ids::{CheckoutId, OrderId},
    store::{self, LineRow, NewOrder, Order},
};

/// Longest cancellation reason kept with an order.
const MAX_REASON_CHARS: usize = 200;
/// The reason a confirmation records in the history.
const CONFIRMED: &str = "confirmed";

/// A new order whose fields passed [`draft`]: ready for [`place`].
#[derive(Debug, Clone)]
pub struct Draft {
    /// The checkout the order is for: one order each.
    pub checkout_id: CheckoutId,
    pub customer_id: String,
    pub currency: String,
    /// The sum of the line totals.
    pub total_minor: i64,
    pub lines: Vec<LineRow>,
    pub address: Address,
}

/// Checks the fields of a new order, adding a violation per bad field to `v`, with each
/// field named as `prefix` + its name (`""` in CreateOrderRequest, `"checkout."` in an
/// event). The draft is meaningful only once `v` is empty.
pub fn draft(
    v: &mut Violations,
    prefix: &str,
    checkout_id: &str,
    customer_id: &str,
    lines: &[pb::OrderLine],
    address: Option<&Address>,
) -> Draft {
    let checkout_id = CheckoutId::from(v.uuid(&format!("{prefix}checkout_id"), checkout_id));
    v.text(&format!("{prefix}customer_id"), customer_id, 1, 64);
    let (lines, currency, total_minor) = parse_lines(v, &format!("{prefix}lines"), lines);
    v.address(&format!("{prefix}shipping_address"), address);
    Draft {
        checkout_id,
        customer_id: customer_id.to_owned(),
        currency,
        total_minor,
        lines,
        address: address.cloned().unwrap_or_default(),
    }
}

/// Creates the PENDING order of a checked draft. A checkout that has an order already
/// gets no second one: FAILED_PRECONDITION (CHECKOUT_ALREADY_ORDERED), which parks an
/// event that asked for it. The existing order is not named: the caller sent a checkout.
pub async fn place(tx: &mut PgConnection, draft: Draft) -> Result<Order, ApiError> {
    let checkout_id = draft.checkout_id;
    let new = NewOrder {
        checkout_id,
        customer_id: &draft.customer_id,
        currency: &draft.currency,
        total_minor: draft.total_minor,
        address: &draft.address,
        lines: draft.lines,
    };
    store::insert(tx, new).await?.ok_or_else(|| {
        ApiError::precondition(
            Reason::CheckoutAlreadyOrdered,
            format!("checkout {checkout_id} already has an order; a checkout gets one"),
        )
    })
}

/// Checks the reason a cancellation records (CancelOrderRequest.reason, an event's
/// failure_reason): it becomes the order's `cancel_reason` and a history entry.
pub fn check_reason(v: &mut Violations, field: &str, reason: &str) {
    v.text(field, reason, 1, MAX_REASON_CHARS);
}

/// An order after [`move_to`], and whether this call changed it.
#[derive(Debug)]
pub struct Moved {
    pub order: Order,
    /// False when the order already was in the requested state: nothing was recorded,
    /// so there is nothing new to announce either.
    pub changed: bool,
}

/// PENDING -> CONFIRMED (a CONFIRMED order stays as it is).
pub async fn confirm(tx: &mut PgConnection, order_id: OrderId) -> Result<Moved, ApiError> {
    move_to(tx, order_id, OrderStatus::Confirmed, CONFIRMED).await
}

/// PENDING -> CANCELLED for `reason` (a CANCELLED order stays as it is, with the reason
/// it was cancelled for). Check the reason with [`check_reason`] first.
pub async fn cancel(
    tx: &mut PgConnection,
    order_id: OrderId,
    reason: &str,
) -> Result<Moved, ApiError> {
    move_to(tx, order_id, OrderStatus::Cancelled, reason).await
}

/// Locks the order, applies the state machine and records the change with `reason`.
async fn move_to(
    tx: &mut PgConnection,
    order_id: OrderId,
    to: OrderStatus,
    reason: &str,
) -> Result<Moved, ApiError> {
    let row = store::lock(tx, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found("order", order_id.to_string()))?;
    let from = row.status;
    let changed = domain::transition(from, to)? == Transition::Apply;
    // The row as it now stands (the update returns it): only the lines are left to read.
    let row = if changed {
        store::set_status(tx, &row, from, to, reason).await?
    } else {
        row
    };
    let order = store::with_lines(tx, vec![row])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("order", order_id.to_string()))?;
    Ok(Moved { order, changed })
}

/// Checks the lines of a new order, naming them `field[i]...`; returns them with their
/// currency and total.
fn parse_lines(
    v: &mut Violations,
    field: &str,
    lines: &[pb::OrderLine],
) -> (Vec<LineRow>, String, i64) {
    v.line_count(field, lines.len());
    v.unique_skus(field, lines.iter().map(|l| l.sku.as_str()));
    let currency = lines
        .first()
        .and_then(|l| l.unit_price.as_ref())
        .map(|m| m.currency.clone())
        .unwrap_or_default();
    let mut total: i64 = 0;
    let mut rows = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let field = |name: &str| format!("{field}[{i}].{name}");
        v.sku(&field("sku"), &line.sku);
        v.quantity(&field("quantity"), line.quantity);
        let (unit, unit_currency) = v.money(
            &field("unit_price"),
            pair(&line.unit_price),
            MIN_PRICE_MINOR,
        );
        let (line_total, total_currency) = v.money(
            &field("line_total"),
            pair(&line.line_total),
            MIN_PRICE_MINOR,
        );
        if !unit_currency.is_empty() && unit_currency != currency {
            v.add(
                field("unit_price.currency"),
                format!("must be {currency} like the first line"),
            );
        }
        if !total_currency.is_empty() && total_currency != unit_currency {
            v.add(
                field("line_total.currency"),
                "must match unit_price.currency",
            );
        }
        if line.unit_price.is_some()
            && line.line_total.is_some()
            && domain::line_total(unit, line.quantity) != Some(line_total)
        {
            v.add(
                field("line_total.amount_minor"),
                "must equal quantity × unit_price",
            );
        }
        total = total.saturating_add(line_total);
        rows.push(LineRow {
            sku: line.sku.clone(),
            quantity: line.quantity,
            unit_price_minor: unit,
            line_total_minor: line_total,
        });
    }
    (rows, currency, total)
}

fn pair(money: &Option<Money>) -> Option<(i64, &str)> {
    money
        .as_ref()
        .map(|m| (m.amount_minor, m.currency.as_str()))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn eur(amount_minor: i64) -> Option<Money> {
        Some(Money {
            amount_minor,
            currency: "EUR".into(),
        })
    }

    #[test]
    fn a_draft_sums_its_lines_and_names_fields_after_the_prefix() {
        let lines = [pb::OrderLine {
            sku: "MUG".into(),
            quantity: 2,
            unit_price: eur(700),
            line_total: eur(1400),
        }];
        let mut v = Violations::default();
        let checkout = Uuid::now_v7().to_string();
        let draft = draft(&mut v, "checkout.", &checkout, "c-1", &lines, None);
        assert_eq!((draft.total_minor, draft.currency.as_str()), (1400, "EUR"));
        let error = v
            .finish(())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            error,
            "invalid request: checkout.shipping_address is required"
        );
    }
}

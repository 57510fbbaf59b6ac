//! Inventory rules, free of I/O so that a gRPC handler and an event handler both call the
//! same code, and the states a reservation is stored in.

use std::collections::HashMap;

use platform::reason::Reason;
use platform::{ApiError, validate::Violations};

platform::stored_code! {
    /// Where a reservation stands. An order holds at most one RESERVED reservation (a
    /// partial unique index); a released one stays on record.
    pub enum ReservationStatus {
        Reserved = "RESERVED",
        Released = "RELEASED",
    }
}

/// Most units `SetStock` accepts for one sku.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// One sku and how many units of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub sku: String,
    pub quantity: i32,
}

/// A catalog price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub amount_minor: i64,
    pub currency: String,
}

/// A priced cart line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub line: Line,
    pub unit_price: Price,
    pub line_total: i64,
}

/// A priced cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedCart {
    pub lines: Vec<PricedLine>,
    pub total: Price,
}

/// Why a cart or a reservation cannot go ahead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InventoryError {
    #[error("unknown skus: {}", .0.join(", "))]
    UnknownSkus(Vec<String>),
    #[error("not enough stock for: {}", .0.join(", "))]
    OutOfStock(Vec<String>),
    #[error("the cart mixes currencies: {0}")]
    MixedCurrencies(String),
    #[error("amount too large")]
    Overflow,
}

impl From<InventoryError> for ApiError {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::UnknownSkus(ref skus) => ApiError::not_found("sku", skus.join(", ")),
            InventoryError::OutOfStock(_) => {
                ApiError::precondition(Reason::OutOfStock, error.to_string())
            }
            InventoryError::MixedCurrencies(_) => {
                ApiError::precondition(Reason::MixedCurrencies, error.to_string())
            }
            InventoryError::Overflow => ApiError::invalid("lines", error.to_string()),
        }
    }
}

/// Skus of `lines` missing from `known`, in request order.
pub fn unknown_skus<'a, V>(lines: &'a [Line], known: &HashMap<String, V>) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !known.contains_key(&l.sku))
        .map(|l: &'a Line| l.sku.clone())
        .collect()
}

/// Prices `lines` with catalog `prices`: every sku known, one currency, no overflow.
pub fn price_cart(
    lines: &[Line],
    prices: &HashMap<String, Price>,
) -> Result<PricedCart, InventoryError> {
    let unknown = unknown_skus(lines, prices);
    if !unknown.is_empty() {
        return Err(InventoryError::UnknownSkus(unknown));
    }
    let mut priced = Vec::with_capacity(lines.len());
    let mut total: i64 = 0;
    let mut currency: Option<&str> = None;
    for line in lines {
        let price = &prices[&line.sku];
        match currency {
            Some(c) if c != price.currency => {
                return Err(InventoryError::MixedCurrencies(format!(
                    "{c} and {}",
                    price.currency
                )));
            }
            _ => currency = Some(&price.currency),
        }
        let line_total = price
            .amount_minor
            .checked_mul(i64::from(line.quantity))
            .ok_or(InventoryError::Overflow)?;
        total = total
            .checked_add(line_total)
            .ok_or(InventoryError::Overflow)?;
        priced.push(PricedLine {
            line: line.clone(),
            unit_price: price.clone(),
            line_total,
        });
    }
    Ok(PricedCart {
        lines: priced,
        total: Price {
            amount_minor: total,
            currency: currency.unwrap_or_default().to_owned(),
        },
    })
}

/// Skus whose `available` units cannot cover the line, in request order.
pub fn shortages(lines: &[Line], available: &HashMap<String, i64>) -> Vec<String> {
    lines
        .iter()
        .filter(|l| available.get(&l.sku).copied().unwrap_or(0) < i64::from(l.quantity))
        .map(|l| l.sku.clone())
        .collect()
}

/// Checks the lines of a cart or reservation, wherever they come from (a request, an
/// event): their count, each sku and quantity, each sku once. Violations are named
/// `field[i].sku` and `field[i].quantity`.
pub fn check_lines(v: &mut Violations, field: &str, lines: &[Line]) {
    v.line_count(field, lines.len());
    for (i, line) in lines.iter().enumerate() {
        v.sku(&format!("{field}[{i}].sku"), &line.sku);
        v.quantity(&format!("{field}[{i}].quantity"), line.quantity);
    }
    v.unique_skus(field, lines.iter().map(|l| l.sku.as_str()));
}

/// Lines sorted by sku: rows are always locked in this order, so two reservations over
/// the same skus cannot deadlock.
pub fn lock_order(lines: &[Line]) -> Vec<Line> {
    let mut sorted = lines.to_vec();
    sorted.sort_by(|a, b| a.sku.cmp(&b.sku));
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: i32) -> Line {
        Line {
            sku: sku.into(),
            quantity,
        }
    }

    fn eur(amount_minor: i64) -> Price {
        Price {
            amount_minor,
            currency: "EUR".into(),
        }
    }

    #[test]
    fn a_cart_is_priced_line_by_line() {
        let prices = HashMap::from([("A".to_owned(), eur(250)), ("B".to_owned(), eur(1000))]);
        let cart = price_cart(&[line("A", 3), line("B", 1)], &prices).unwrap();
        assert_eq!(cart.lines[0].line_total, 750);
        assert_eq!(cart.lines[1].line_total, 1000);
        assert_eq!(cart.total, eur(1750));
    }

    #[test]
    fn unknown_skus_are_all_reported() {
        let prices = HashMap::from([("A".to_owned(), eur(1))]);
        let error = price_cart(&[line("X", 1), line("A", 1), line("Y", 2)], &prices);
        assert_eq!(
            error,
            Err(InventoryError::UnknownSkus(vec!["X".into(), "Y".into()]))
        );
    }

    #[test]
    fn mixed_currencies_are_refused() {
        let usd = Price {
            amount_minor: 1,
            currency: "USD".into(),
        };
        let prices = HashMap::from([("A".to_owned(), eur(1)), ("B".to_owned(), usd)]);
        assert!(matches!(
            price_cart(&[line("A", 1), line("B", 1)], &prices),
            Err(InventoryError::MixedCurrencies(_))
        ));
    }

    #[test]
    fn shortages_name_each_short_sku() {
        let available = HashMap::from([("A".to_owned(), 5), ("B".to_owned(), 0)]);
        assert_eq!(shortages(&[line("A", 5), line("B", 1)], &available), ["B"]);
        assert!(shortages(&[line("A", 5)], &available).is_empty());
    }

    #[test]
    fn lock_order_sorts_by_sku() {
        let sorted = lock_order(&[line("b", 1), line("a", 2)]);
        assert_eq!(sorted, [line("a", 2), line("b", 1)]);
    }
}

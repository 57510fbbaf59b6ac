//! Shipping rules, free of I/O, and the states a shipment is stored in.

use uuid::Uuid;

platform::stored_code! {
    /// Where a shipment stands. An order has at most one CREATED shipment (a partial
    /// unique index); a cancelled one stays on record.
    pub enum ShipmentStatus {
        Created = "CREATED",
        Cancelled = "CANCELLED",
    }
}

/// Countries no carrier serves (ISO 3166-1 alpha-2).
const NOT_SERVED: &[&str] = &["AQ"];

/// Whether a carrier delivers to `country`.
pub fn serves(country: &str) -> bool {
    !NOT_SERVED.contains(&country)
}

/// A tracking number: `SHP` and 16 upper-case hex digits of a random id, unique in
/// practice and checked by a unique index anyway.
pub fn tracking_number(id: Uuid) -> String {
    let hex = id.simple().to_string().to_ascii_uppercase();
    format!("SHP{}", &hex[hex.len() - 16..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn antarctica_is_not_served() {
        assert!(!serves("AQ"));
        assert!(serves("FR"));
    }

    #[test]
    fn tracking_numbers_have_a_fixed_shape() {
        let number = tracking_number(Uuid::new_v4());
        assert_eq!(number.len(), 19);
        assert!(number.starts_with("SHP"));
        assert!(
            number[3..]
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        assert_ne!(number, tracking_number(Uuid::new_v4()));
    }
}

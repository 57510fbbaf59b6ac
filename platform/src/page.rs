//! Page tokens: opaque to clients (hex of the last key seen), checked on the way back.

use crate::validate::Violations;

/// Default `page_size` of every list RPC.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest `page_size` of every list RPC. A page is one read holding one pooled
/// connection for as long as its rows take: 200 parallel ListCheckouts of 500 rows (and
/// their steps) kept the orchestrator's connections busy for seconds. 100 rows is a page
/// a person reads and a short statement; a client that wants everything pages through.
pub const MAX_PAGE_SIZE: i64 = 100;

/// A checked `page_size`: 0 means the default; above the maximum or negative is an error.
pub fn page_size(v: &mut Violations, field: &str, requested: i32) -> i64 {
    match requested {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 || i64::from(n) > MAX_PAGE_SIZE => {
            v.add(field, format!("must be between 0 and {MAX_PAGE_SIZE}"));
            DEFAULT_PAGE_SIZE
        }
        n => i64::from(n),
    }
}

/// Encodes the last key of a page as the next token.
pub fn encode(cursor: &str) -> String {
    cursor.bytes().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a page token; an empty token is the first page.
pub fn decode(v: &mut Violations, field: &str, token: &str) -> Option<String> {
    if token.is_empty() {
        return None;
    }
    let decoded = (token.len().is_multiple_of(2) && token.len() <= 512)
        .then(|| {
            (0..token.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    if decoded.is_none() {
        v.add(field, "is not a token returned by this service");
    }
    decoded
}

/// Turns a page fetched with one extra row into the page and the next token.
pub fn split<T>(mut rows: Vec<T>, size: i64, cursor: impl Fn(&T) -> String) -> (Vec<T>, String) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        let next = rows
            .last()
            .map(|row| encode(&cursor(row)))
            .unwrap_or_default();
        (rows, next)
    } else {
        (rows, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        let mut v = Violations::default();
        assert_eq!(
            decode(&mut v, "page_token", &encode("SKU-1")),
            Some("SKU-1".into())
        );
        assert_eq!(decode(&mut v, "page_token", ""), None);
        assert!(v.is_empty());
        assert_eq!(decode(&mut v, "page_token", "zz"), None);
        assert!(!v.is_empty());
    }

    #[test]
    fn split_returns_a_token_only_when_more_rows_exist() {
        let (rows, next) = split(vec![1, 2, 3], 2, |n| n.to_string());
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(next, encode("2"));
        let (rows, next) = split(vec![1, 2], 2, |n| n.to_string());
        assert_eq!(rows, vec![1, 2]);
        assert!(next.is_empty());
    }
}

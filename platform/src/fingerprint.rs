//! A request's fingerprint: what tells a replay under an idempotency key from a reuse of
//! the key with another request ([`crate::idempotency`], and the orchestrator's
//! PlaceOrder).
//!
//! It is SHA-256 over a *canonical form* of the message, not over its protobuf encoding.
//! The encoding is not canonical: prost writes fields in the order the `.proto` file
//! declares them, so moving a field there (a compatible change) changes the bytes of
//! every request; so would a change of encoder or of how repeated scalars are packed. A
//! stored fingerprint must still match the same request after such a change, or a
//! client's retry after a deploy (a saga in flight, an orchestrator replaying its step)
//! would be refused as `IDEMPOTENCY_KEY_REUSED`.
//!
//! The canonical form, read through the message's descriptor (`shop_proto`'s descriptor
//! set), and frozen: changing it changes every stored fingerprint.
//!
//! - A message is its fields that are set (proto3: not at their default; with explicit
//!   presence: present), in ascending field number, each written as its number (`u32`
//!   big-endian) then its value. Unknown fields are not part of it.
//! - Values, each after a one-byte tag (all numbers big-endian): signed integers and
//!   enums `i` then an `i64`; unsigned integers `u` then a `u64`; floats `f` then the
//!   `f64` bits; a bool `b` then one byte; strings and bytes alike `y` then a `u64`
//!   length and the bytes; a message `m` then a `u64` length and its canonical form; a
//!   repeated field `l` then a `u64` count and each element; a map `k` then a `u64`
//!   count and its entries sorted by key, each key then value.
//!
//! So a field may be renamed (its number is its identity), moved, or added (a request
//! from before has it at its default, so without it), an `int32` widened to `int64`, a
//! `string` made `bytes`, and every fingerprint stays as it was; two requests differ in
//! fingerprint exactly when protobuf reads them as different.
//!
//! Keys stored before this form existed hold SHA-256 of the encoding; [`Fingerprint::
//! matches`] accepts that too, so a retry across the upgrade is still a replay. Those
//! keys are swept after `RETENTION`; the comparison can go one retention after every
//! service runs this version.

use std::sync::LazyLock;

use prost::{Message, Name};
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, Value};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The descriptors of every shop message, read once.
static POOL: LazyLock<Result<DescriptorPool, String>> = LazyLock::new(|| {
    DescriptorPool::decode(shop_proto::FILE_DESCRIPTOR_SET).map_err(|error| error.to_string())
});

/// Why a request could not be fingerprinted: a build whose descriptors do not describe
/// its own messages (a bug, never the caller's doing).
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("the shop's descriptor set does not load: {0}")]
    Descriptors(String),
    #[error("no descriptor for message {0}")]
    Unknown(String),
    #[error("the request does not decode as its own descriptor")]
    Decode(#[from] prost::DecodeError),
}

impl From<FingerprintError> for ApiError {
    fn from(error: FingerprintError) -> Self {
        Self::Internal(error.into())
    }
}

/// The fingerprint of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// SHA-256 of the canonical form: what is stored.
    canonical: Vec<u8>,
    /// SHA-256 of the protobuf encoding: what keys stored before the canonical form hold.
    encoded: Vec<u8>,
}

impl Fingerprint {
    pub fn of<M: Message + Name>(request: &M) -> Result<Self, FingerprintError> {
        let pool = POOL
            .as_ref()
            .map_err(|e| FingerprintError::Descriptors(e.clone()))?;
        let name = M::full_name();
        let descriptor = pool
            .get_message_by_name(&name)
            .ok_or(FingerprintError::Unknown(name))?;
        let encoding = request.encode_to_vec();
        let message = DynamicMessage::decode(descriptor, encoding.as_slice())?;
        let mut form = Vec::with_capacity(encoding.len() * 2);
        write_message(&message, &mut form);
        Ok(Self {
            canonical: Sha256::digest(&form).to_vec(),
            encoded: Sha256::digest(&encoding).to_vec(),
        })
    }

    /// The bytes to store with the key.
    pub fn as_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// Whether `stored` was made from this same request (by this form, or, for a key
    /// stored before it, from the encoding).
    pub fn matches(&self, stored: &[u8]) -> bool {
        stored == self.canonical.as_slice() || stored == self.encoded.as_slice()
    }
}

fn write_message(message: &DynamicMessage, out: &mut Vec<u8>) {
    let mut fields: Vec<_> = message.fields().collect();
    fields.sort_by_key(|(field, _)| field.number());
    for (field, value) in fields {
        out.extend_from_slice(&field.number().to_be_bytes());
        write_value(value, out);
    }
}

fn write_len(len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&(len as u64).to_be_bytes());
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Bool(b) => out.extend_from_slice(&[b'b', u8::from(*b)]),
        Value::I32(n) | Value::EnumNumber(n) => write_signed(i64::from(*n), out),
        Value::I64(n) => write_signed(*n, out),
        Value::U32(n) => write_unsigned(u64::from(*n), out),
        Value::U64(n) => write_unsigned(*n, out),
        Value::F32(x) => write_float(f64::from(*x), out),
        Value::F64(x) => write_float(*x, out),
        Value::String(text) => write_bytes(text.as_bytes(), out),
        Value::Bytes(bytes) => write_bytes(bytes, out),
        Value::Message(nested) => {
            let mut inner = Vec::new();
            write_message(nested, &mut inner);
            out.push(b'm');
            write_len(inner.len(), out);
            out.extend_from_slice(&inner);
        }
        Value::List(items) => {
            out.push(b'l');
            write_len(items.len(), out);
            for item in items {
                write_value(item, out);
            }
        }
        Value::Map(entries) => {
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by_key(|(key, _)| *key);
            out.push(b'k');
            write_len(sorted.len(), out);
            for (key, value) in sorted {
                write_key(key, out);
                write_value(value, out);
            }
        }
    }
}

fn write_key(key: &MapKey, out: &mut Vec<u8>) {
    match key {
        MapKey::Bool(b) => out.extend_from_slice(&[b'b', u8::from(*b)]),
        MapKey::I32(n) => write_signed(i64::from(*n), out),
        MapKey::I64(n) => write_signed(*n, out),
        MapKey::U32(n) => write_unsigned(u64::from(*n), out),
        MapKey::U64(n) => write_unsigned(*n, out),
        MapKey::String(text) => write_bytes(text.as_bytes(), out),
    }
}

fn write_signed(n: i64, out: &mut Vec<u8>) {
    out.push(b'i');
    out.extend_from_slice(&n.to_be_bytes());
}

fn write_unsigned(n: u64, out: &mut Vec<u8>) {
    out.push(b'u');
    out.extend_from_slice(&n.to_be_bytes());
}

fn write_float(x: f64, out: &mut Vec<u8>) {
    out.push(b'f');
    out.extend_from_slice(&x.to_bits().to_be_bytes());
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'y');
    write_len(bytes.len(), out);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use shop_proto::{
        checkout::v1::{LineItem, PlaceOrderRequest},
        common::v1::{Address, Money},
        payment::v1::ChargeRequest,
    };

    use super::*;

    fn charge(amount_minor: i64) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: "k".into(),
            order_id: "0193c2a4-0000-7000-8000-000000000001".into(),
            amount: Some(Money {
                amount_minor,
                currency: "EUR".into(),
            }),
            payment_token: "tok_visa".into(),
        }
    }

    #[test]
    fn the_same_request_has_one_fingerprint_and_another_request_another() {
        let a = Fingerprint::of(&charge(700)).unwrap();
        assert_eq!(a, Fingerprint::of(&charge(700)).unwrap());
        let b = Fingerprint::of(&charge(701)).unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert!(a.matches(a.as_bytes()));
        assert!(!a.matches(b.as_bytes()));
        let lines = |skus: &[&str]| PlaceOrderRequest {
            items: skus
                .iter()
                .map(|sku| LineItem {
                    sku: (*sku).into(),
                    quantity: 1,
                })
                .collect(),
            shipping_address: Some(Address {
                country: "FR".into(),
                ..Address::default()
            }),
            ..PlaceOrderRequest::default()
        };
        assert_ne!(
            Fingerprint::of(&lines(&["A", "B"])).unwrap(),
            Fingerprint::of(&lines(&["B", "A"])).unwrap(),
            "a repeated field's order is part of the request"
        );
    }

    /// The form is frozen: this is the fingerprint every stored key of this request holds.
    /// If this test fails, stored keys no longer match their replays.
    #[test]
    fn the_canonical_form_is_frozen() {
        let hex: String = Fingerprint::of(&charge(700))
            .unwrap()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut form = Vec::new();
        // 1: idempotency_key, 2: order_id, 3: amount {1: amount_minor, 2: currency},
        // 4: payment_token: by number, whatever the declaration order.
        form.extend_from_slice(&1u32.to_be_bytes());
        form.extend_from_slice(b"y\0\0\0\0\0\0\0\x01k");
        form.extend_from_slice(&2u32.to_be_bytes());
        form.push(b'y');
        form.extend_from_slice(&36u64.to_be_bytes());
        form.extend_from_slice(b"0193c2a4-0000-7000-8000-000000000001");
        let mut money = Vec::new();
        money.extend_from_slice(&1u32.to_be_bytes());
        money.push(b'i');
        money.extend_from_slice(&700i64.to_be_bytes());
        money.extend_from_slice(&2u32.to_be_bytes());
        money.extend_from_slice(b"y\0\0\0\0\0\0\0\x03EUR");
        form.extend_from_slice(&3u32.to_be_bytes());
        form.push(b'm');
        form.extend_from_slice(&(money.len() as u64).to_be_bytes());
        form.extend_from_slice(&money);
        form.extend_from_slice(&4u32.to_be_bytes());
        form.extend_from_slice(b"y\0\0\0\0\0\0\0\x08tok_visa");
        let expected: String = Sha256::digest(&form)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn a_key_stored_over_the_encoding_still_matches_its_replay() {
        let request = charge(700);
        let stored_before = Sha256::digest(request.encode_to_vec()).to_vec();
        let now = Fingerprint::of(&request).unwrap();
        assert_ne!(now.as_bytes(), stored_before.as_slice());
        assert!(now.matches(&stored_before));
        assert!(!Fingerprint::of(&charge(1)).unwrap().matches(&stored_before));
    }
}

//! Times, durations and money as the pages write them.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{Markup, display, html};
use prost_types::Timestamp;
use shop_proto::common::v1::Money;

/// A protobuf timestamp as a UTC time, when it is set and in range.
pub fn utc(timestamp: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    let timestamp = timestamp?;
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::from_timestamp(timestamp.seconds, nanos)
}

/// `<time datetime="…">HH:MM:SS.mmm</time>` (UTC), or an em dash when unset: machines
/// read the full instant, people the time of day that tells steps apart.
pub fn time(timestamp: Option<&Timestamp>) -> Markup {
    instant(timestamp, "%H:%M:%S%.3f")
}

/// `<time datetime="…">YYYY-MM-DD HH:MM:SS UTC</time>`, for when a checkout began.
pub fn date_time(timestamp: Option<&Timestamp>) -> Markup {
    instant(timestamp, "%Y-%m-%d %H:%M:%S UTC")
}

/// `<time>` of `timestamp`, its text written with `shown` (a chrono format), or an em
/// dash when unset.
fn instant(timestamp: Option<&Timestamp>, shown: &str) -> Markup {
    html! {
        @match utc(timestamp) {
            Some(at) => {
                time datetime=(at.to_rfc3339_opts(SecondsFormat::Millis, true)) {
                    (display(at.format(shown)))
                }
            }
            None => { "—" }
        }
    }
}

/// How long from `start` to `end`, as `123 ms` or `1.2 s`, when both are set.
pub fn duration(start: Option<&Timestamp>, end: Option<&Timestamp>) -> Option<String> {
    let millis = (utc(end)? - utc(start)?).num_milliseconds().max(0);
    Some(if millis < 1000 {
        format!("{millis} ms")
    } else {
        format!("{:.1} s", millis as f64 / 1000.0)
    })
}

/// `12.00 EUR`, or an em dash when unset, as plain text. Amounts are minor units (cents).
pub fn money(money: Option<&Money>) -> String {
    match money {
        Some(money) => {
            let sign = if money.amount_minor < 0 { "-" } else { "" };
            let amount = money.amount_minor.unsigned_abs();
            format!(
                "{sign}{}.{:02} {}",
                amount / 100,
                amount % 100,
                money.currency
            )
        }
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, millis: i32) -> Timestamp {
        Timestamp {
            seconds,
            nanos: millis * 1_000_000,
        }
    }

    #[test]
    fn times_carry_the_full_instant_for_machines() {
        assert_eq!(
            time(Some(&at(1_700_000_000, 250))).into_string(),
            "<time datetime=\"2023-11-14T22:13:20.250Z\">22:13:20.250</time>"
        );
        assert_eq!(time(None).into_string(), "—");
    }

    #[test]
    fn durations_read_in_ms_or_seconds() {
        let start = at(10, 0);
        assert_eq!(
            duration(Some(&start), Some(&at(10, 42))).as_deref(),
            Some("42 ms")
        );
        assert_eq!(
            duration(Some(&start), Some(&at(11, 500))).as_deref(),
            Some("1.5 s")
        );
        assert_eq!(duration(Some(&start), None), None);
    }

    #[test]
    fn money_is_minor_units() {
        let price = Money {
            amount_minor: 2405,
            currency: "EUR".into(),
        };
        assert_eq!(money(Some(&price)), "24.05 EUR");
    }
}

//! The demo checkout form (`POST /checkouts`): sku, quantity, payment token, country,
//! mode and slow motion, each with its label, keeping what was typed when the shop
//! refuses it. The checkout is placed for the signed-in person (the form says so), and
//! the form carries the session's CSRF token.

use maud::{Markup, html};

use crate::{
    demo::{COUNTRIES, Choices, MODES, PlaceForm, SKUS, TOKENS},
    views::layout::Viewer,
};

/// `<option>`s of `choices`, the one whose value is `selected` marked so.
pub fn options(choices: Choices, selected: &str) -> Markup {
    html! {
        @for (value, label) in choices {
            option value=(value) selected[*value == selected] { (label) }
        }
    }
}

/// The form section for `viewer`, with `error` (the shop's refusal, plain text) above it
/// when set.
pub fn place(form: &PlaceForm, error: Option<&str>, viewer: &Viewer) -> Markup {
    html! {
        section id="place" aria-labelledby="place-title" class="card" {
            h2 id="place-title" { "Place a demo checkout" }
            p {
                "Pick a declined card or the undeliverable country " code { "AQ" }
                " to watch the saga undo every step it took, in reverse."
            }
            @if let Some(error) = error {
                p class="error" role="alert" id="place-error" {
                    "The shop refused this checkout: " (error)
                }
            }
            form method="post" action="/checkouts" class="grid" {
                (viewer.csrf_field())
                p class="wide" {
                    "For customer " code id="place-customer" { (viewer.subject) }
                    ": the subject of the token you signed in with."
                }
                p {
                    label for="sku" { "Product" }
                    select id="sku" name="sku" { (options(SKUS, &form.sku)) }
                }
                p {
                    label for="quantity" { "Quantity" }
                    input id="quantity" name="quantity" type="number" inputmode="numeric" min="1"
                        max="1000" value=(form.quantity) required;
                }
                p {
                    label for="token" { "Payment token" }
                    select id="token" name="token" { (options(TOKENS, &form.token)) }
                }
                p {
                    label for="country" { "Ship to" }
                    select id="country" name="country" { (options(COUNTRIES, &form.country)) }
                }
                fieldset {
                    legend { "Coordination" }
                    ul class="plain" {
                        @for (value, label) in MODES {
                            li {
                                label {
                                    input type="radio" name="mode" value=(value)
                                        checked[*value == form.mode];
                                    " " (label)
                                }
                            }
                        }
                    }
                }
                p class="wide" {
                    label {
                        input type="checkbox" name="slow" id="slow" checked[form.slow_motion()];
                        " Slow motion: hold each service call 0.7 s so every step can be \
                         watched (orchestrated only; the services must run with fault \
                         injection on: "
                        code { "scripts/run --fault-injection" }
                        ")"
                    }
                }
                p class="wide" { button type="submit" { "Place checkout" } }
            }
        }
    }
}

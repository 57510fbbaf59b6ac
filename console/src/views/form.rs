//! The demo checkout form (`POST /checkouts`): sku, quantity, payment token, country,
//! mode and slow motion, each with its label, keeping what was typed when the shop
//! refuses it. The checkout is placed for the signed-in person (the form says so), and
//! the form carries the session's CSRF token.

use crate::{
    demo::{COUNTRIES, Choices, MODES, PlaceForm, SKUS, TOKENS},
    html::escape,
    views::layout::Viewer,
};

/// `<option>`s of `choices`, the one whose value is `selected` marked so.
pub fn options(choices: Choices, selected: &str) -> String {
    choices
        .iter()
        .map(|(value, label)| {
            let mark = if *value == selected { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{mark}>{}</option>",
                escape(value),
                escape(label)
            )
        })
        .collect()
}

/// The form section for `viewer`, with `error` (the shop's refusal, plain text) above it
/// when set.
pub fn place(form: &PlaceForm, error: Option<&str>, viewer: &Viewer) -> String {
    let error = error
        .map(|error| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"place-error\">The shop refused this checkout: {}</p>",
                escape(error)
            )
        })
        .unwrap_or_default();
    let modes: String = MODES
        .iter()
        .map(|(value, label)| {
            let checked = if *value == form.mode { " checked" } else { "" };
            format!(
                "<li><label><input type=\"radio\" name=\"mode\" value=\"{}\"{checked}> {}</label></li>",
                escape(value),
                escape(label)
            )
        })
        .collect();
    let slow = if form.slow_motion() { " checked" } else { "" };
    format!(
        r#"<section id="place" aria-labelledby="place-title" class="card">
<h2 id="place-title">Place a demo checkout</h2>
<p>Pick a declined card or the undeliverable country <code>AQ</code> to watch the saga
undo every step it took, in reverse.</p>
{error}
<form method="post" action="/checkouts" class="grid">
{csrf}
<p class="wide">For customer <code id="place-customer">{customer}</code>: the subject of the
token you signed in with.</p>
<p><label for="sku">Product</label>
<select id="sku" name="sku">{skus}</select></p>
<p><label for="quantity">Quantity</label>
<input id="quantity" name="quantity" type="number" inputmode="numeric" min="1" max="1000" value="{quantity}" required></p>
<p><label for="token">Payment token</label>
<select id="token" name="token">{tokens}</select></p>
<p><label for="country">Ship to</label>
<select id="country" name="country">{countries}</select></p>
<fieldset><legend>Coordination</legend><ul class="plain">{modes}</ul></fieldset>
<p class="wide"><label><input type="checkbox" name="slow" id="slow"{slow}> Slow motion: hold each
service call 0.7 s so every step can be watched (orchestrated only; the services must run
with fault injection on: <code>scripts/run --fault-injection</code>)</label></p>
<p class="wide"><button type="submit">Place checkout</button></p>
</form>
</section>"#,
        csrf = viewer.csrf_field(),
        customer = escape(&viewer.subject),
        skus = options(SKUS, &form.sku),
        quantity = escape(&form.quantity),
        tokens = options(TOKENS, &form.token),
        countries = options(COUNTRIES, &form.country),
    )
}

//! Values put into the console's own links. HTML escaping is maud's (every `(value)` in
//! a template is escaped); a value that goes into a query string must first be
//! percent-encoded, or a customer id such as `a&b` would change the link's meaning.

use std::fmt::Write;

/// `text` percent-encoded for a query string value (everything but unreserved
/// characters), so a customer id cannot break out of the link it is put in.
pub fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use maud::html;

    use super::*;

    #[test]
    fn markup_in_values_is_inert() {
        let value = r#"<script>alert("x")</script> & 'y'"#;
        assert_eq!(
            html! { p title=(value) { (value) } }.into_string(),
            "<p title=\"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'y'\">\
             &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; 'y'</p>"
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(query_value("alice-1_2.x~"), "alice-1_2.x~");
    }
}

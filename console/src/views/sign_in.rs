//! The sign-in page (`GET /sign-in`): one field for the person's bearer token, which
//! the console checks with the shop before keeping it (`POST /sign-in`). The field is a
//! password field, never filled back in: a token shown on screen or kept in the page is
//! a token that leaks.

use crate::{
    html::escape,
    views::layout::{Head, Viewer, csrf_field, page},
};

/// Why the sign-in page is shown, besides a first visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Nothing to say.
    None,
    /// The visitor signed out.
    SignedOut,
    /// The shop refused the session's token on a later call (it expired or its key
    /// changed): the session was ended.
    Ended,
}

/// The sign-in page. `csrf` is the form's CSRF token (bound to the sign-in nonce
/// cookie); `error` why the last attempt was refused (plain text); `current` who is
/// signed in already, if anybody (signing in again replaces them).
pub fn page_of(
    csrf: &str,
    error: Option<&str>,
    notice: Notice,
    current: Option<&Viewer>,
) -> String {
    let error = error
        .map(|error| {
            format!(
                "<p class=\"error\" role=\"alert\" id=\"sign-in-error\">Not signed in: {}</p>",
                escape(error)
            )
        })
        .unwrap_or_default();
    let notice = match notice {
        Notice::None => "",
        Notice::SignedOut => "<p role=\"status\" id=\"sign-in-notice\">You are signed out.</p>",
        Notice::Ended => {
            "<p role=\"status\" id=\"sign-in-notice\">The shop no longer accepts the token you \
             signed in with (it may have expired): sign in again.</p>"
        }
    };
    let current = current
        .map(|viewer| {
            format!(
                "<p id=\"sign-in-current\">You are signed in as <strong>{}</strong> ({}); \
                 <a href=\"/\">go to the checkouts</a>, or sign in with another token below.</p>",
                escape(&viewer.subject),
                viewer.role()
            )
        })
        .unwrap_or_default();
    page(
        &Head {
            title: "Sign in",
            ..Head::default()
        },
        &format!(
            r#"<section aria-labelledby="sign-in-title" class="card sign-in">
<h1 id="sign-in-title">Sign in</h1>
{notice}{current}{error}
<p>The console shows the shop as you see it: sign in with your bearer token for the
shop's front door (a JWT). A customer's token shows that customer's checkouts; a token
with the <code>operator</code> scope shows every customer's.</p>
<form method="post" action="/sign-in">
{csrf}
<p><label for="token">Your token</label>
<input id="token" name="token" type="password" required autocomplete="off" spellcheck="false"></p>
<p><button type="submit">Sign in</button></p>
</form>
<p class="hint"><code>scripts/run</code> prints a development operator's token to paste
here; <code>orchestrator token --subject NAME [--operator]</code> signs more with the
development secret. The console keeps the token in a cookie that only its own pages
send, until the token expires or you sign out.</p>
</section>"#,
            csrf = csrf_field(csrf),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_carries_its_csrf_token_and_never_a_token() {
        let html = page_of("abc123", Some("<b>refused</b>"), Notice::None, None);
        assert!(
            html.contains(r#"<input type="hidden" name="csrf" value="abc123">"#),
            "{html}"
        );
        assert!(html.contains("type=\"password\""));
        assert!(
            html.contains("&lt;b&gt;refused&lt;/b&gt;"),
            "escaped: {html}"
        );
        assert!(!html.contains("Sign out"), "nobody is signed in");
    }
}

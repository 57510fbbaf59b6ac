//! The sign-in page (`GET /sign-in`): one field for the person's bearer token, which
//! the console checks with the shop before keeping it (`POST /sign-in`). The field is a
//! password field, never filled back in: a token shown on screen or kept in the page is
//! a token that leaks.

use maud::{Markup, html};

use crate::views::layout::{Head, Viewer, csrf_field, page};

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
) -> Markup {
    let notice = match notice {
        Notice::None => None,
        Notice::SignedOut => Some("You are signed out."),
        Notice::Ended => Some(
            "The shop no longer accepts the token you signed in with (it may have \
             expired): sign in again.",
        ),
    };
    page(
        &Head {
            title: "Sign in",
            ..Head::default()
        },
        html! {
            section aria-labelledby="sign-in-title" class="card sign-in" {
                h1 id="sign-in-title" { "Sign in" }
                @if let Some(notice) = notice {
                    p role="status" id="sign-in-notice" { (notice) }
                }
                @if let Some(viewer) = current {
                    p id="sign-in-current" {
                        "You are signed in as " strong { (viewer.subject) }
                        " (" (viewer.role()) "); "
                        a href="/" { "go to the checkouts" }
                        ", or sign in with another token below."
                    }
                }
                @if let Some(error) = error {
                    p class="error" role="alert" id="sign-in-error" { "Not signed in: " (error) }
                }
                p {
                    "The console shows the shop as you see it: sign in with your bearer token \
                     for the shop's front door (a JWT). A customer's token shows that \
                     customer's checkouts; a token with the "
                    code { "operator" }
                    " scope shows every customer's."
                }
                form method="post" action="/sign-in" {
                    (csrf_field(csrf))
                    p {
                        label for="token" { "Your token" }
                        input id="token" name="token" type="password" required autocomplete="off"
                            spellcheck="false";
                    }
                    p { button type="submit" { "Sign in" } }
                }
                p class="hint" {
                    code { "scripts/run" }
                    " prints a development operator's token to paste here; "
                    code { "orchestrator token --subject NAME [--operator]" }
                    " signs more with the development secret. The console keeps the token in a \
                     cookie that only its own pages send, until the token expires or you sign out."
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_carries_its_csrf_token_and_never_a_token() {
        let html = page_of("abc123", Some("<b>refused</b>"), Notice::None, None).into_string();
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

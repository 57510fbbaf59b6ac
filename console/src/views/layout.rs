//! The page every view shares: document head (viewport, stylesheet, script), a skip
//! link, the site header (who is signed in, and the sign-out button) and the main
//! landmark. No inline script or style anywhere: the Content-Security-Policy allows
//! only the console's own files ([`crate::site::CONTENT_SECURITY_POLICY`]).

use maud::{DOCTYPE, Markup, html};

/// The signed-in person as the pages show them, and the CSRF token their forms carry.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// The token's subject: the customer, or the operator's name.
    pub subject: String,
    /// Whether the token has the operator scope (sees every customer's checkouts).
    pub operator: bool,
    /// The session's CSRF token, for the hidden `csrf` field of every form that posts.
    pub csrf: String,
}

impl Viewer {
    /// `customer` or `operator`, as the header says it.
    pub fn role(&self) -> &'static str {
        if self.operator {
            "operator"
        } else {
            "customer"
        }
    }

    /// The hidden field every state-changing form carries.
    pub fn csrf_field(&self) -> Markup {
        csrf_field(&self.csrf)
    }
}

/// `<input type="hidden" name="csrf" value="…">`.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// What sets one page's head apart.
#[derive(Debug, Default)]
pub struct Head<'a> {
    /// The page's `<title>`, before " · shop console".
    pub title: &'a str,
    /// Reload every this many seconds when scripts are off: a running checkout's page
    /// stays current without JavaScript (with it, server-sent events replace this).
    pub refresh_without_script: Option<u32>,
    /// Who is signed in; `None` on the sign-in page and error pages, which then show no
    /// navigation into the checkouts.
    pub viewer: Option<&'a Viewer>,
}

/// A whole HTML document around `main`.
pub fn page(head: &Head<'_>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (head.title) " · shop console" }
                @if let Some(seconds) = head.refresh_without_script {
                    noscript { meta http-equiv="refresh" content=(seconds); }
                }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="site" {
                    p class="brand" { a href="/" { "shop console" } }
                    @if let Some(viewer) = head.viewer {
                        (nav(viewer))
                    }
                }
                main id="main" { (main) }
                footer class="site" {
                    p {
                        "Every page reads the shop through its public gRPC API, "
                        code { "shop.checkout.v1.CheckoutService" }
                        ", and for operators "
                        code { "shop.operations.v1.DeadLetterService" }
                        "."
                    }
                }
            }
        }
    }
}

/// The site navigation and who is signed in, with the sign-out button (a POST: signing
/// out changes something, so it carries the CSRF token like every other form).
fn nav(viewer: &Viewer) -> Markup {
    html! {
        nav aria-label="Site" {
            ul {
                li { a href="/" { "Checkouts" } }
                // Operators act on parked checkouts and dead letters: one click to what
                // waits for them.
                @if viewer.operator {
                    li {
                        a href="/?status=needs-attention" id="nav-attention" { "Needs attention" }
                    }
                    li { a href="/dead-letters" id="nav-dead-letters" { "Dead letters" } }
                }
                li { a href="/#place" { "Place a demo checkout" } }
            }
        }
        form method="post" action="/sign-out" class="who" {
            p {
                "Signed in as "
                strong id="signed-in-as" { (viewer.subject) }
                " "
                span class="role" id="signed-in-role" { "(" (viewer.role()) ")" }
                " "
                (viewer.csrf_field())
                button type="submit" class="secondary" { "Sign out" }
            }
        }
    }
}

/// A page saying what went wrong, for errors of the shop or of the request.
pub fn error_page(title: &str, detail: &str) -> Markup {
    page(
        &Head {
            title,
            ..Head::default()
        },
        html! {
            h1 { (title) }
            p role="alert" { (detail) }
            p { a href="/" { "Back to the checkouts" } }
        },
    )
}

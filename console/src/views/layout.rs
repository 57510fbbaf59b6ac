//! The page every view shares: document head (viewport, stylesheet, script), a skip
//! link, the site header (who is signed in, and the sign-out button) and the main
//! landmark. No inline script or style anywhere: the Content-Security-Policy allows
//! only the console's own files ([`crate::site::CONTENT_SECURITY_POLICY`]).

use crate::html::escape;

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
    pub fn csrf_field(&self) -> String {
        csrf_field(&self.csrf)
    }
}

/// `<input type="hidden" name="csrf" value="…">`.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(csrf)
    )
}

/// What sets one page's head apart.
#[derive(Debug, Default)]
pub struct Head<'a> {
    /// The page's `<title>`, before " · shop console"; plain text, escaped here.
    pub title: &'a str,
    /// Reload every this many seconds when scripts are off: a running checkout's page
    /// stays current without JavaScript (with it, server-sent events replace this).
    pub refresh_without_script: Option<u32>,
    /// Who is signed in; `None` on the sign-in page and error pages, which then show no
    /// navigation into the checkouts.
    pub viewer: Option<&'a Viewer>,
}

/// A whole HTML document around `main`, which is markup already escaped by its view.
pub fn page(head: &Head<'_>, main: &str) -> String {
    let refresh = head
        .refresh_without_script
        .map(|seconds| {
            format!("<noscript><meta http-equiv=\"refresh\" content=\"{seconds}\"></noscript>")
        })
        .unwrap_or_default();
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · shop console</title>
{refresh}
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<p class="brand"><a href="/">shop console</a></p>
{nav}
</header>
<main id="main">
{main}
</main>
<footer class="site"><p>Every page reads the shop through its public gRPC API,
<code>shop.checkout.v1.CheckoutService</code>, and for operators
<code>shop.operations.v1.DeadLetterService</code>.</p></footer>
</body>
</html>
"##,
        title = escape(head.title),
        nav = head.viewer.map(nav).unwrap_or_default(),
    )
}

/// The site navigation and who is signed in, with the sign-out button (a POST: signing
/// out changes something, so it carries the CSRF token like every other form).
fn nav(viewer: &Viewer) -> String {
    // Operators act on parked checkouts and dead letters: one click to what waits for them.
    let attention = if viewer.operator {
        "\n<li><a href=\"/?status=needs-attention\" id=\"nav-attention\">Needs attention</a></li>\
         \n<li><a href=\"/dead-letters\" id=\"nav-dead-letters\">Dead letters</a></li>"
    } else {
        ""
    };
    format!(
        r#"<nav aria-label="Site"><ul>
<li><a href="/">Checkouts</a></li>{attention}
<li><a href="/#place">Place a demo checkout</a></li>
</ul></nav>
<form method="post" action="/sign-out" class="who">
<p>Signed in as <strong id="signed-in-as">{subject}</strong> <span class="role" id="signed-in-role">({role})</span>
{csrf}<button type="submit" class="secondary">Sign out</button></p>
</form>"#,
        subject = escape(&viewer.subject),
        role = viewer.role(),
        csrf = viewer.csrf_field(),
    )
}

/// A page saying what went wrong, for errors of the shop or of the request.
pub fn error_page(title: &str, detail: &str) -> String {
    page(
        &Head {
            title,
            ..Head::default()
        },
        &format!(
            "<h1>{}</h1>\n<p role=\"alert\">{}</p>\n<p><a href=\"/\">Back to the checkouts</a></p>",
            escape(title),
            escape(detail)
        ),
    )
}

//! The page every view shares: document head (viewport, stylesheet, script), a skip
//! link, the site header and the main landmark.

use crate::html::escape;

/// What sets one page's head apart.
#[derive(Debug, Default)]
pub struct Head<'a> {
    /// The page's `<title>`, before " · shop console"; plain text, escaped here.
    pub title: &'a str,
    /// Reload every this many seconds when scripts are off: a running checkout's page
    /// stays current without JavaScript (with it, server-sent events replace this).
    pub refresh_without_script: Option<u32>,
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
<nav aria-label="Site"><ul>
<li><a href="/">Checkouts</a></li>
<li><a href="/#place">Place a demo checkout</a></li>
</ul></nav>
</header>
<main id="main">
{main}
</main>
<footer class="site"><p>Every page reads the shop through its public gRPC API,
<code>shop.checkout.v1.CheckoutService</code>.</p></footer>
</body>
</html>
"##,
        title = escape(head.title),
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

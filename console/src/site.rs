//! Where browsers reach the console, and the checks every response and every
//! state-changing request get because of it: the `Origin` check (403 for a request that
//! did not come from the console's own pages) and the security headers of every page.
//!
//! The console serves plain HTTP itself; in a deployment it sits behind something that
//! terminates TLS (an ingress, a proxy). It cannot tell that from a request without
//! trusting headers anyone can send (`X-Forwarded-Proto`), so it is told instead:
//! `PUBLIC_URL` (for example `https://console.shop.example`) is then the only origin
//! whose requests change anything, and an `https` one makes the cookies `Secure`, with
//! the `__Host-` prefix (which a browser accepts only from a secure origin, for
//! `Path=/`, without a `Domain`, so no sibling subdomain can plant them). Without it the
//! console's origin is `http://` and the request's `Host`: right for a console opened
//! on the machine it runs on (`scripts/run`).

use axum::{
    extract::{Request, State},
    http::{
        HeaderMap, HeaderValue, Method, StatusCode, Uri,
        header::{self, HeaderName},
    },
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::views::layout::error_page;

/// The Content-Security-Policy of every response: only this origin's files (the one
/// stylesheet and the one script are served as files, and the pages hold no inline
/// script or style), no plugins, no `<base>` rewriting, forms only back to the console,
/// and no framing by any page (the modern form of `X-Frame-Options: DENY`, which is sent
/// too for older browsers): a page of another site cannot overlay the console's buttons.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the console is reached, as configured.
#[derive(Debug, Clone, Default)]
pub struct Site {
    /// `scheme://host[:port]` of `PUBLIC_URL`, lowercase; `None` when unset.
    origin: Option<String>,
}

impl Site {
    /// The site `public_url` names (`None` or empty: the request's own `Host`), or why
    /// the URL cannot be the console's origin.
    pub fn new(public_url: Option<&str>) -> Result<Self, String> {
        let Some(url) = public_url.map(str::trim).filter(|url| !url.is_empty()) else {
            return Ok(Self::default());
        };
        let origin = origin_of(url).ok_or_else(|| {
            format!("PUBLIC_URL `{url}` is not an http(s) URL like https://console.example")
        })?;
        let uri: Uri = url
            .parse()
            .map_err(|_| format!("PUBLIC_URL `{url}` is not a URL"))?;
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(format!(
                "PUBLIC_URL `{url}` has a path: the console is served at the root of its \
                 origin, so give only scheme, host and port"
            ));
        }
        Ok(Self {
            origin: Some(origin),
        })
    }

    /// Whether browsers reach the console over HTTPS (`PUBLIC_URL` is `https://…`).
    pub fn secure(&self) -> bool {
        self.origin
            .as_deref()
            .is_some_and(|origin| origin.starts_with("https://"))
    }

    /// The session cookie's name: `__Host-` prefixed over HTTPS.
    pub fn session_cookie(&self) -> &'static str {
        if self.secure() {
            "__Host-console_session"
        } else {
            "console_session"
        }
    }

    /// The sign-in form's nonce cookie's name: `__Host-` prefixed over HTTPS.
    pub fn sign_in_cookie(&self) -> &'static str {
        if self.secure() {
            "__Host-console_sign_in"
        } else {
            "console_sign_in"
        }
    }

    /// The console's origin for this request: `PUBLIC_URL`'s, else `http://` and the
    /// request's `Host`.
    fn expected_origin(&self, headers: &HeaderMap) -> Option<String> {
        match &self.origin {
            Some(origin) => Some(origin.clone()),
            None => headers
                .get(header::HOST)
                .and_then(|host| host.to_str().ok())
                .map(|host| format!("http://{}", host.trim().to_ascii_lowercase())),
        }
    }

    /// Whether a state-changing request came from the console's own pages: its `Origin`
    /// (or, when a browser sent none, its `Referer`'s origin) is the console's. Neither
    /// header, `Origin: null`, or another origin: refused, with the reason.
    pub fn check_origin(&self, headers: &HeaderMap) -> Result<(), String> {
        let expected = self
            .expected_origin(headers)
            .ok_or("the request has no Host header to tell the console's origin by")?;
        let text = |name: HeaderName| {
            headers
                .get(name)
                .map(|value| value.to_str().unwrap_or("").trim().to_owned())
        };
        let sent = match (text(header::ORIGIN), text(header::REFERER)) {
            (Some(origin), _) => origin_of(&origin),
            (None, Some(referer)) => origin_of(&referer),
            (None, None) => {
                return Err(
                    "the request says neither where it comes from (Origin) nor which page \
                     sent it (Referer)"
                        .into(),
                );
            }
        };
        match sent {
            Some(sent) if sent == expected => Ok(()),
            Some(sent) => Err(format!(
                "it comes from {sent}, not from the console ({expected})"
            )),
            None => Err("its Origin is not a web origin".into()),
        }
    }
}

/// `scheme://host[:port]` of an http(s) URL or origin, lowercase; `None` for anything
/// else (`null`, another scheme, garbage).
fn origin_of(url: &str) -> Option<String> {
    let uri: Uri = url.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    // The default port is left out of an origin, as browsers send it.
    let port = match (authority.port_u16(), scheme.as_str()) {
        (None, _) | (Some(80), "http") | (Some(443), "https") => String::new(),
        (Some(port), _) => format!(":{port}"),
    };
    Some(format!("{scheme}://{host}{port}"))
}

/// The middleware around every route: refuses a state-changing request (anything but
/// GET and HEAD) from another origin with 403 before its handler runs, so it has no
/// effect; then adds the security headers to whatever the answer is.
pub async fn guard(State(site): State<Site>, request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    let mut response = if safe {
        next.run(request).await
    } else {
        match site.check_origin(request.headers()) {
            Ok(()) => next.run(request).await,
            Err(why) => {
                tracing::warn!(method = %request.method(), path = %request.uri().path(), %why, "refused a cross-origin request");
                forbidden(&format!("This request was refused: {why}."))
            }
        }
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages show one person's checkouts: no cache, shared or not, keeps them. The
    // assets say otherwise for themselves.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// A 403 page saying why.
pub fn forbidden(why: &str) -> Response {
    (StatusCode::FORBIDDEN, error_page("Refused", why)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn origins_are_normalized_as_browsers_send_them() {
        assert_eq!(
            origin_of("HTTPS://Console.Example:443/path?q").as_deref(),
            Some("https://console.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("file:///etc/passwd"), None);
        assert_eq!(origin_of("http://user@evil.example"), None);
    }

    #[test]
    fn without_a_public_url_the_host_is_the_origin() {
        let site = Site::default();
        let own = |extra: &[(HeaderName, &str)]| {
            let mut all = vec![(header::HOST, "127.0.0.1:8080")];
            all.extend_from_slice(extra);
            site.check_origin(&headers(&all))
        };
        assert!(own(&[(header::ORIGIN, "http://127.0.0.1:8080")]).is_ok());
        assert!(own(&[(header::REFERER, "http://127.0.0.1:8080/checkouts/x")]).is_ok());
        assert!(own(&[(header::ORIGIN, "https://evil.example")]).is_err());
        assert!(own(&[(header::ORIGIN, "http://127.0.0.1:9999")]).is_err());
        assert!(own(&[(header::ORIGIN, "null")]).is_err());
        assert!(own(&[]).is_err(), "neither Origin nor Referer");
        // Origin wins over a Referer that would pass.
        assert!(
            own(&[
                (header::ORIGIN, "https://evil.example"),
                (header::REFERER, "http://127.0.0.1:8080/")
            ])
            .is_err()
        );
        assert!(
            site.check_origin(&headers(&[(header::ORIGIN, "http://127.0.0.1:8080")]))
                .is_err(),
            "no Host"
        );
    }

    #[test]
    fn a_public_url_is_the_only_origin_and_https_makes_cookies_secure() {
        let site = Site::new(Some("https://console.example/")).unwrap();
        assert!(site.secure());
        let with = |origin: &str| {
            site.check_origin(&headers(&[
                (header::HOST, "10.0.0.7:8080"),
                (header::ORIGIN, origin),
            ]))
        };
        assert!(with("https://console.example").is_ok());
        assert!(with("http://10.0.0.7:8080").is_err());
        assert!(with("http://console.example").is_err());
        assert!(!Site::new(Some("http://console.example")).unwrap().secure());
        assert!(Site::new(Some("https://console.example/app")).is_err());
        assert!(Site::new(Some("console.example")).is_err());
        assert!(Site::new(Some("  ")).is_ok_and(|site| !site.secure()));
    }
}

//! Who is using the console: the bearer token they signed in with, kept in a cookie, and
//! the CSRF token their forms carry.
//!
//! # Why the cookie holds the token itself
//!
//! The session cookie's value is the person's front-door token (a JWT), not a session id
//! that maps to the token in the console's memory. The token is already a signed,
//! expiring credential that the orchestrator checks on every call, so the cookie needs no
//! second secret or table beside it: the console stays stateless, any replica serves any
//! request, a restart signs nobody out, and nothing has to expire entries or bound a map
//! that visitors can fill. What a server-side table would add is revocation at sign-out;
//! but the person holds the same token outside the browser anyway (they pasted it), so
//! clearing the cookie is all a console could do about it, and the token's own `exp` is
//! the real bound. The cookie is `HttpOnly` (no script reads it), `SameSite=Strict`
//! (no cross-site request carries it), `Path=/`, and `Secure` with a `__Host-` name when
//! the console is reached over HTTPS ([`crate::site::Site`]); it lives until the token
//! expires, at most [`MAX_SESSION`].
//!
//! The console reads the token's claims *without* checking its signature: it has no key,
//! and needs none. The claims only say whose name to show and which customer the demo
//! form places checkouts for; every call goes to the orchestrator with the token, which
//! checks it and shows only what it proves. A forged cookie therefore gets a refusal from
//! the shop (and is cleared), never data.
//!
//! # CSRF
//!
//! Every form that changes something carries a hidden `csrf` field: SHA-256 of a label
//! and the value of the cookie that authorizes the form (the session cookie; before
//! sign-in, a random nonce cookie set by `GET /sign-in`). A page of another origin can
//! neither read the cookie nor the page that holds the field, so it cannot send the
//! field's value; the server recomputes it from the request's cookie and compares. It
//! costs no state either, and it binds the token to the session (unlike a plain
//! double-submit cookie, which a sibling subdomain could plant). It is the second check:
//! [`crate::site`] refuses foreign `Origin`s first.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, header};
use platform::security::token::{Claims, OPERATOR_SCOPE};
use sha2::{Digest, Sha256};
use tonic::metadata::AsciiMetadataValue;

use crate::{site::Site, views::layout::Viewer};

/// The longest a session cookie lives, whatever the token's own expiry: a working day,
/// so a long-lived development token pasted once does not stay signed in for weeks.
pub const MAX_SESSION: Duration = Duration::from_secs(12 * 3600);

/// How long the sign-in form's nonce lives: a form left open longer is refused (403)
/// and shown again with a fresh one.
pub const SIGN_IN_NONCE_TTL: Duration = Duration::from_secs(3600);

/// Longest token accepted: a cookie must stay under browsers' 4 KiB limit.
const MAX_TOKEN_LEN: usize = 3800;

/// Names the CSRF digest so it cannot be mistaken for a digest of the token made for any
/// other purpose.
const CSRF_LABEL: &[u8] = b"shop-console csrf v1\0";

/// A signed-in person: their token and what it says about them.
#[derive(Clone)]
pub struct Session {
    token: String,
    subject: String,
    operator: bool,
    expires: u64,
    authorization: AsciiMetadataValue,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("subject", &self.subject)
            .field("operator", &self.operator)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session for `token` if it is a well-formed, unexpired JWT with a subject, or
    /// why it is not (a sentence for the sign-in page). The signature is the shop's to
    /// check: see the module's documentation.
    pub fn from_token(token: &str) -> Result<Self, String> {
        let token = token.trim();
        let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
        if token.is_empty() {
            return Err("paste a token: the field is empty".into());
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(format!(
                "this is {} characters long; a token is at most {MAX_TOKEN_LEN}",
                token.len()
            ));
        }
        let jwt_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=');
        if !token.chars().all(jwt_chars) || token.split('.').count() != 3 {
            return Err(
                "this is not a JWT: three base64url parts joined by dots, like eyJ….eyJ….sig"
                    .into(),
            );
        }
        let claims: Claims = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|error| format!("this JWT cannot be read as a shop token: {error}"))?;
        if claims.sub.trim().is_empty() {
            return Err("this token names nobody: its subject (`sub`) is empty".into());
        }
        if claims.exp <= now() {
            return Err("this token has expired: ask for a new one".into());
        }
        let authorization = format!("Bearer {token}")
            .parse()
            .map_err(|_| "this token is not printable ASCII".to_owned())?;
        let operator = claims
            .scope
            .as_deref()
            .is_some_and(|scope| scope.split(' ').any(|s| s == OPERATOR_SCOPE));
        Ok(Self {
            token: token.to_owned(),
            subject: claims.sub,
            operator,
            expires: claims.exp,
            authorization,
        })
    }

    /// The session the request's cookie holds, if it holds a usable one.
    pub fn of(headers: &HeaderMap, site: &Site) -> Option<Self> {
        cookie(headers, site.session_cookie()).and_then(|token| Self::from_token(token).ok())
    }

    /// The token's subject: the customer checkouts are placed for.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Whether the token has the operator scope (sees every customer's checkouts).
    pub fn is_operator(&self) -> bool {
        self.operator
    }

    /// The `authorization` metadata every call to the shop carries.
    pub fn authorization(&self) -> AsciiMetadataValue {
        self.authorization.clone()
    }

    /// The person as the pages show them.
    pub fn viewer(&self) -> Viewer {
        Viewer {
            subject: self.subject.clone(),
            operator: self.operator,
            csrf: self.csrf(),
        }
    }

    /// The value the forms of this session carry in their `csrf` field.
    pub fn csrf(&self) -> String {
        csrf_of(&self.token)
    }

    /// Whether `sent` (a form's `csrf` field) is this session's CSRF token.
    pub fn csrf_matches(&self, sent: &str) -> bool {
        csrf_matches(&self.token, sent)
    }

    /// The `Set-Cookie` value that keeps this session in the browser until the token
    /// expires (at most [`MAX_SESSION`]).
    pub fn set_cookie(&self, site: &Site) -> String {
        let left = self
            .expires
            .saturating_sub(now())
            .min(MAX_SESSION.as_secs());
        set_cookie(site, site.session_cookie(), &self.token, left)
    }
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_session(site: &Site) -> String {
    set_cookie(site, site.session_cookie(), "", 0)
}

/// The sign-in form's nonce from the request's cookie, if it has one.
pub fn sign_in_nonce(headers: &HeaderMap, site: &Site) -> Option<String> {
    cookie(headers, site.sign_in_cookie())
        .filter(|nonce| nonce.len() == 64 && nonce.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// A fresh nonce for the sign-in form: 256 random bits, in hex.
pub fn new_nonce() -> String {
    hex(&rand::random::<[u8; 32]>())
}

/// The `Set-Cookie` value that keeps `nonce` for the sign-in form.
pub fn set_sign_in_nonce(site: &Site, nonce: &str) -> String {
    set_cookie(
        site,
        site.sign_in_cookie(),
        nonce,
        SIGN_IN_NONCE_TTL.as_secs(),
    )
}

/// The `Set-Cookie` value that drops the sign-in nonce once it has been used.
pub fn clear_sign_in_nonce(site: &Site) -> String {
    set_cookie(site, site.sign_in_cookie(), "", 0)
}

/// The CSRF token of a form authorized by the cookie value `secret`.
pub fn csrf_of(secret: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(CSRF_LABEL);
    digest.update(secret.as_bytes());
    hex(&digest.finalize())
}

/// Whether `sent` is the CSRF token of `secret`, compared in constant time so the
/// comparison's timing tells nothing about how much of it was right.
pub fn csrf_matches(secret: &str, sent: &str) -> bool {
    let expected = csrf_of(secret);
    expected.len() == sent.len()
        && expected
            .bytes()
            .zip(sent.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// `name=value; Path=/; HttpOnly; SameSite=Strict; Max-Age=…` (and `Secure` over HTTPS).
fn set_cookie(site: &Site, name: &str, value: &str, max_age: u64) -> String {
    let secure = if site.secure() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The value of the first cookie called `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};

    fn token(sub: &str, scope: Option<&str>, exp: u64) -> String {
        let claims = Claims {
            sub: sub.into(),
            iss: "shop".into(),
            exp,
            scope: scope.map(str::to_owned),
        };
        let key = EncodingKey::from_secret(b"any key: the console checks no signature").unwrap();
        encode(&Header::default(), &claims, &key).unwrap()
    }

    #[test]
    fn a_well_formed_token_names_its_bearer() {
        let alice = Session::from_token(&token("alice", None, now() + 60)).unwrap();
        assert_eq!((alice.subject(), alice.is_operator()), ("alice", false));
        let ops = Session::from_token(&format!(
            "  Bearer {}\n",
            token("ops", Some("read operator"), now() + 60)
        ))
        .unwrap();
        assert_eq!((ops.subject(), ops.is_operator()), ("ops", true));
        assert!(!format!("{ops:?}").contains("eyJ"), "Debug hides the token");
    }

    #[test]
    fn malformed_expired_or_anonymous_tokens_are_refused_with_a_reason() {
        let refused = |token: &str| Session::from_token(token).err().unwrap_or_default();
        assert!(refused("").contains("empty"));
        assert!(refused("hello world").contains("not a JWT"));
        assert!(refused("a.b").contains("not a JWT"));
        assert!(refused("a;b.c.d").contains("not a JWT"));
        assert!(refused("aaaa.bbbb.cccc").contains("cannot be read"));
        assert!(refused(&token("alice", None, now() - 1)).contains("expired"));
        assert!(refused(&token(" ", None, now() + 60)).contains("subject"));
        assert!(refused(&"a".repeat(5000)).contains("at most"));
    }

    #[test]
    fn the_csrf_token_is_bound_to_its_cookie() {
        let token = csrf_of("cookie-one");
        assert!(csrf_matches("cookie-one", &token));
        assert!(!csrf_matches("cookie-two", &token));
        assert!(!csrf_matches("cookie-one", ""));
        assert!(!csrf_matches("cookie-one", &token[..10]));
        assert_eq!(token.len(), 64);
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "other_console_session=x; console_session=abc.def.ghi; z=1"
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie(&headers, "console_session"), Some("abc.def.ghi"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_over_https() {
        let plain = Site::default();
        let line = set_cookie(&plain, "console_session", "v", 60);
        assert_eq!(
            line,
            "console_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
        );
        let tls = Site::new(Some("https://console.example")).unwrap();
        let line = set_cookie(&tls, tls.session_cookie(), "v", 60);
        assert!(line.starts_with("__Host-console_session=v;"), "{line}");
        assert!(line.ends_with("; Secure"), "{line}");
    }
}

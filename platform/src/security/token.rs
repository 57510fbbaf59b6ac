//! The front door's bearer tokens: a JWT signed with a shared secret (HS256) or a private
//! key whose public half the orchestrator is given (RS256, EdDSA). Its subject is the
//! customer; the scope `operator` sees every customer's checkouts. A token lives in the
//! `authorization: Bearer <jwt>` metadata of each call; [`super::caller`] says what each
//! caller may see.
//!
//! Over 400 lines with its tests: issuing, verifying and rotating the key are checked
//! against each other.

use std::{
    fmt,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use clap::Args;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status, metadata::AsciiMetadataValue, service::Interceptor};

use super::Security;

/// The issuer tokens carry unless `AUTH_ISSUER` says otherwise.
pub const DEFAULT_ISSUER: &str = "shop";
/// The scope that sees and operates every checkout.
pub const OPERATOR_SCOPE: &str = "operator";
/// Shortest shared secret accepted: HS256 with less than 256 bits is guessable.
pub const MIN_SECRET_BYTES: usize = 32;

/// What a token says. `scope` is space-separated, as in OAuth 2.0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Who presented a valid token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    /// A customer: sees and places only their own checkouts.
    Customer(String),
    /// An operator (scope `operator`): sees and operates every checkout.
    Operator(String),
}

/// The front door's token settings.
#[derive(Debug, Clone, Default, Args)]
pub struct TokenArgs {
    /// File holding the HS256 secret tokens are signed with (at least 32 bytes; one
    /// trailing newline is ignored).
    #[arg(
        long,
        env = "AUTH_JWT_SECRET_FILE",
        conflicts_with = "auth_jwt_public_key_file"
    )]
    pub auth_jwt_secret_file: Option<PathBuf>,

    /// PEM public key (RSA for RS256, Ed25519 for EdDSA) that checks tokens signed by an
    /// identity provider.
    #[arg(long, env = "AUTH_JWT_PUBLIC_KEY_FILE")]
    pub auth_jwt_public_key_file: Option<PathBuf>,

    /// The `iss` every token must carry.
    #[arg(long, env = "AUTH_ISSUER", default_value = DEFAULT_ISSUER)]
    pub auth_issuer: String,
}

/// Where a client of the front door that acts on its own account (the load generator)
/// finds its bearer token. The console has none: it sends the signed-in person's.
#[derive(Debug, Clone, Default, Args)]
pub struct TokenFileArgs {
    /// File holding the bearer token sent to the front door (over TLS; not read with
    /// --dev-insecure). `orchestrator token` prints one; `scripts/run` writes
    /// `loadgen.token`.
    #[arg(long, env = "AUTH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl TokenFileArgs {
    /// What to send: the file's token over TLS, nothing in development mode.
    pub fn attach(&self, security: &Security) -> Result<AttachToken, TokenError> {
        if security.tls().is_none() {
            return Ok(AttachToken::none());
        }
        let path = self.token_file.as_deref().ok_or(TokenError::NoTokenFile)?;
        let token = String::from_utf8(read(path)?).map_err(|_| TokenError::BadTokenFile {
            path: path.display().to_string(),
        })?;
        AttachToken::bearer(&token).map_err(|_| TokenError::BadTokenFile {
            path: path.display().to_string(),
        })
    }
}

/// Why a token or its settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "the front door needs a token key: set AUTH_JWT_SECRET_FILE (HS256) or \
         AUTH_JWT_PUBLIC_KEY_FILE (RS256/EdDSA), or run with --dev-insecure"
    )]
    NoKey,
    #[error(
        "the front door needs a bearer token over TLS: set AUTH_TOKEN_FILE (or --token-file) \
         to a file holding one (`orchestrator token --subject NAME` prints one)"
    )]
    NoTokenFile,
    #[error("{path} does not hold a token (one line of printable ASCII)")]
    BadTokenFile { path: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: the secret is {len} bytes; at least {MIN_SECRET_BYTES} are needed")]
    WeakSecret { path: String, len: usize },
    #[error("{path} is neither an RSA nor an Ed25519 public key in PEM")]
    PublicKey { path: String },
    #[error("the token key is not usable: {0}")]
    Key(jsonwebtoken::errors::Error),
    #[error("cannot sign: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TokenError> {
    std::fs::read(path).map_err(|source| TokenError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Reads a shared secret file: without one trailing newline, long enough.
fn secret(path: &Path) -> Result<Vec<u8>, TokenError> {
    let mut secret = read(path)?;
    if secret.last() == Some(&b'\n') {
        secret.pop();
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(TokenError::WeakSecret {
            path: path.display().to_string(),
            len: secret.len(),
        });
    }
    Ok(secret)
}

/// Checks tokens. Holds the key: its `Debug` shows only the algorithm and issuer.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    issuer: String,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The verifier the settings describe.
    pub fn from_args(args: &TokenArgs) -> Result<Self, TokenError> {
        let (key, algorithm) = match (&args.auth_jwt_secret_file, &args.auth_jwt_public_key_file) {
            (Some(path), _) => (
                DecodingKey::from_secret(&secret(path)?).map_err(TokenError::Key)?,
                Algorithm::HS256,
            ),
            (None, Some(path)) => {
                let pem = read(path)?;
                if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                    (key, Algorithm::RS256)
                } else if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
                    (key, Algorithm::EdDSA)
                } else {
                    return Err(TokenError::PublicKey {
                        path: path.display().to_string(),
                    });
                }
            }
            (None, None) => return Err(TokenError::NoKey),
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&args.auth_issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        Ok(Self {
            key,
            validation,
            issuer: args.auth_issuer.clone(),
        })
    }

    /// Who the `authorization` header proves the caller to be; UNAUTHENTICATED with the
    /// reason otherwise.
    pub fn bearer(&self, headers: &http::HeaderMap) -> Result<Bearer, Status> {
        let header = headers.get("authorization").ok_or_else(|| {
            Status::unauthenticated(
                "missing bearer token: send the metadata `authorization: Bearer <jwt>`",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("the authorization metadata is not `Bearer <jwt>`")
            })?;
        let claims = jsonwebtoken::decode::<Claims>(token.trim(), &self.key, &self.validation)
            .map_err(|error| Status::unauthenticated(format!("bearer token refused: {error}")))?
            .claims;
        if claims.sub.trim().is_empty() {
            return Err(Status::unauthenticated(
                "bearer token refused: its subject is empty",
            ));
        }
        let operator = claims
            .scope
            .as_deref()
            .is_some_and(|scope| scope.split(' ').any(|s| s == OPERATOR_SCOPE));
        Ok(if operator {
            Bearer::Operator(claims.sub)
        } else {
            Bearer::Customer(claims.sub)
        })
    }
}

/// Signs tokens with a shared secret (HS256): development tokens, test tokens. A real
/// shop's tokens come from its identity provider.
pub struct Signer {
    key: EncodingKey,
    issuer: String,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with the secret in `path`.
    pub fn from_secret_file(path: &Path, issuer: &str) -> Result<Self, TokenError> {
        Ok(Self {
            key: EncodingKey::from_secret(&secret(path)?).map_err(TokenError::Key)?,
            issuer: issuer.to_owned(),
        })
    }

    /// A token for `subject`, valid for `ttl`, with the operator scope if asked.
    pub fn sign(&self, subject: &str, operator: bool, ttl: Duration) -> Result<String, TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let claims = Claims {
            sub: subject.to_owned(),
            iss: self.issuer.clone(),
            exp: (now + ttl).as_secs(),
            scope: operator.then(|| OPERATOR_SCOPE.to_owned()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(TokenError::Sign)
    }
}

/// A client-side interceptor that sends a bearer token with every call (none in
/// development mode).
#[derive(Clone, Default)]
pub struct AttachToken(Option<AsciiMetadataValue>);

impl fmt::Debug for AttachToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.0.is_some() {
            "Bearer <redacted>"
        } else {
            "none"
        };
        f.debug_tuple("AttachToken").field(&shown).finish()
    }
}

impl AttachToken {
    /// Sends `token`; an error if it cannot be a metadata value.
    pub fn bearer(token: &str) -> Result<Self, Status> {
        format!("Bearer {}", token.trim())
            .parse()
            .map(|value| Self(Some(value)))
            .map_err(|_| Status::invalid_argument("a token must be printable ASCII"))
    }

    /// Sends nothing.
    pub fn none() -> Self {
        Self(None)
    }
}

impl Interceptor for AttachToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_file(dir: &Path, secret: &str) -> PathBuf {
        let path = dir.join("secret");
        std::fs::write(&path, secret).unwrap();
        path
    }

    fn metadata(token: &str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        map.insert("authorization", format!("Bearer {token}").parse().unwrap());
        map
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("token-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_signed_token_names_its_bearer_and_scope() {
        let dir = temp_dir();
        let path = secret_file(&dir, "0123456789abcdef0123456789abcdef\n");
        let signer = Signer::from_secret_file(&path, "shop").unwrap();
        let verifier = Verifier::from_args(&TokenArgs {
            auth_jwt_secret_file: Some(path),
            auth_issuer: "shop".into(),
            ..TokenArgs::default()
        })
        .unwrap();
        let hour = Duration::from_secs(3600);
        let alice = signer.sign("alice", false, hour).unwrap();
        assert_eq!(
            verifier.bearer(&metadata(&alice)).unwrap(),
            Bearer::Customer("alice".into())
        );
        let ops = signer.sign("ops", true, hour).unwrap();
        assert_eq!(
            verifier.bearer(&metadata(&ops)).unwrap(),
            Bearer::Operator("ops".into())
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn missing_forged_expired_or_foreign_tokens_are_unauthenticated() {
        let dir = temp_dir();
        let path = secret_file(&dir, "0123456789abcdef0123456789abcdef");
        let verifier = Verifier::from_args(&TokenArgs {
            auth_jwt_secret_file: Some(path.clone()),
            auth_issuer: "shop".into(),
            ..TokenArgs::default()
        })
        .unwrap();
        let refused = |metadata: http::HeaderMap| {
            let status = verifier.bearer(&metadata).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            status.message().to_owned()
        };
        assert!(refused(http::HeaderMap::new()).contains("missing bearer token"));

        let other = secret_file(&temp_dir(), "another-secret-another-secret-xx");
        let forged = Signer::from_secret_file(&other, "shop").unwrap();
        let hour = Duration::from_secs(3600);
        assert!(refused(metadata(&forged.sign("alice", true, hour).unwrap())).contains("refused"));

        let foreign = Signer::from_secret_file(&path, "elsewhere").unwrap();
        refused(metadata(&foreign.sign("alice", false, hour).unwrap()));

        let mut claims = Claims {
            sub: "alice".into(),
            iss: "shop".into(),
            exp: 1,
            scope: None,
        };
        let key = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap();
        let expired = jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap();
        assert!(refused(metadata(&expired)).contains("xpired"));
        claims.exp = u64::MAX / 2;
        claims.sub = String::new();
        let nobody = jsonwebtoken::encode(&Header::default(), &claims, &key).unwrap();
        assert!(refused(metadata(&nobody)).contains("subject"));
        assert!(refused(metadata("not-a-jwt")).contains("refused"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_short_secret_or_no_key_is_refused_at_start() {
        let dir = temp_dir();
        let path = secret_file(&dir, "short");
        assert!(matches!(
            Signer::from_secret_file(&path, "shop"),
            Err(TokenError::WeakSecret { len: 5, .. })
        ));
        assert!(matches!(
            Verifier::from_args(&TokenArgs::default()),
            Err(TokenError::NoKey)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn debug_output_never_shows_the_token_or_key() {
        let attach = AttachToken::bearer("eyJhbGciOi.secret.part").unwrap();
        assert!(!format!("{attach:?}").contains("secret"));
    }
}

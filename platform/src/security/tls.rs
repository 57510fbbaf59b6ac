//! This binary's rustls configs, built from its three PEM files and rebuilt when one of
//! them changes, so a rotated certificate (or CA) takes effect on the next connection
//! without a restart. Connections already open keep the certificate they started with.

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock, Weak},
    time::{Duration, SystemTime},
};

use rustls::{
    ClientConfig, RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::Principal;

/// Where this binary's TLS identity and trust anchor are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// How often the files are checked for changes.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// ALPN: gRPC is HTTP/2 only, and grpc-go (grpcurl) refuses a TLS server without it.
const H2: &[u8] = b"h2";

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} from {path}: {source}")]
    Pem {
        what: &'static str,
        path: String,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("{path} holds no {what}")]
    Empty { what: &'static str, path: String },
    #[error("the CA certificate in {path} is not usable: {source}")]
    Ca {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot build a TLS config from {cert} and {key}: {source}")]
    Config {
        cert: String,
        key: String,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot verify client certificates: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Whether a server asks connecting clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Internal services: a client without a certificate the CA signed is refused in the
    /// handshake.
    Required,
    /// The front door: customers come without certificates and prove who they are with a
    /// bearer token; a certificate, if presented, must still be the CA's.
    Optional,
}

/// The configs of one load of the files.
struct Configs {
    required: Arc<ServerConfig>,
    optional: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    /// Whose certificate this is, read from it once per load.
    principal: Option<Principal>,
    stamp: Stamp,
}

/// When each file last changed and how long it is: a change to either means reload.
type Stamp = [(Option<SystemTime>, u64); 3];

/// This binary's TLS identity (certificate and key) and trust anchor (the CA).
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<Configs>>,
}

impl fmt::Debug for Tls {
    // The configs hold the private key: show where the files are, nothing else.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish()
    }
}

impl Tls {
    /// Reads the files and builds the configs; a bad file is an error at start.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let configs = build(&files)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(Arc::new(configs)),
        }))
    }

    /// The files this identity comes from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    fn current(&self) -> Arc<Configs> {
        // A poisoned lock still holds a complete config (it is only ever swapped whole).
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The server config for the next accepted connection.
    pub fn server_config(&self, client_auth: ClientAuth) -> Arc<ServerConfig> {
        let current = self.current();
        match client_auth {
            ClientAuth::Required => current.required.clone(),
            ClientAuth::Optional => current.optional.clone(),
        }
    }

    /// The client config for the next outgoing connection.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.current().client.clone()
    }

    /// The principal this binary's certificate is issued to (`None`: a name no principal
    /// has). The broker connection names its reply subjects after it, because the
    /// broker lets each principal receive on its own reply subjects only
    /// ([`crate::events::permissions`]).
    pub fn principal(&self) -> Option<Principal> {
        self.current().principal
    }

    /// Rebuilds the configs if a file changed since the last load. Returns whether it
    /// did; on an error (a file half written, a key that does not match) the configs in
    /// use stay.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        if stamp(&self.files) == self.current().stamp {
            return Ok(false);
        }
        let configs = build(&self.files)?;
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(configs),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(configs),
        }
        Ok(true)
    }

    /// Checks the files every [`RELOAD_INTERVAL`] for as long as this identity is in use.
    pub fn watch(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let tls: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RELOAD_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(tls) = tls.upgrade() else { return };
                match tls.reload_if_changed() {
                    Ok(true) => tracing::info!(files = ?tls.files, "TLS files changed: reloaded"),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(
                        %error,
                        "TLS files changed but cannot be used: keeping the previous ones"
                    ),
                }
            }
        })
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert, &files.key, &files.ca].map(|path| match std::fs::metadata(path) {
        Ok(meta) => (meta.modified().ok(), meta.len()),
        Err(_) => (None, 0),
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |source| TlsError::Pem {
        what,
        path: display(path),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(pem)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem)?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: display(path),
        });
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(files: &TlsFiles) -> Result<Configs, TlsError> {
    // Stamped before reading: a change while reading is seen at the next check.
    let stamp = stamp(files);
    let chain = certificates(&files.cert, "certificate")?;
    let principal = chain.first().and_then(Principal::of_certificate);
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Pem {
        what: "private key",
        path: display(&files.key),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for ca in certificates(&files.ca, "CA certificate")? {
        roots.add(ca).map_err(|source| TlsError::Ca {
            path: display(&files.ca),
            source,
        })?;
    }
    let roots = Arc::new(roots);
    let config_error = |source| TlsError::Config {
        cert: display(&files.cert),
        key: display(&files.key),
        source,
    };

    let server = |verifier: Arc<dyn ClientCertVerifier>| {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(config_error)?;
        config.alpn_protocols = vec![H2.to_vec()];
        Ok::<_, TlsError>(Arc::new(config))
    };
    let verifier = || WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
    let required = server(verifier().build()?)?;
    let optional = server(verifier().allow_unauthenticated().build()?)?;

    let mut client = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_error)?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(config_error)?;
    client.alpn_protocols = vec![H2.to_vec()];
    Ok(Configs {
        required,
        optional,
        client: Arc::new(client),
        principal,
        stamp,
    })
}

//! The transport settings every binary takes. Mutual TLS is the default posture: a binary
//! given neither the three TLS files nor the explicit development flag refuses to start,
//! so a forgotten setting never turns into a plaintext deployment.

use std::{path::PathBuf, sync::Arc};

use clap::Args;

use super::tls::{Tls, TlsError, TlsFiles};

/// Transport security flags, flattened into every binary's command line.
#[derive(Debug, Clone, Default, Args)]
pub struct SecurityArgs {
    /// Development only: plaintext on every hop, no certificate and no token checks.
    /// Logged as a warning at start.
    #[arg(long, env = "DEV_INSECURE", default_value_t = false)]
    pub dev_insecure: bool,

    /// This binary's certificate (PEM, leaf first), presented as server and as client.
    /// Re-read when it changes.
    #[arg(long, env = "TLS_CERT_FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// The private key of TLS_CERT_FILE (PEM). Re-read when it changes.
    #[arg(long, env = "TLS_KEY_FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// The CA that signs every peer's certificate (PEM). Re-read when it changes.
    #[arg(long, env = "TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
}

/// How a binary's connections are secured, once its files are loaded.
#[derive(Debug, Clone)]
pub enum Security {
    /// `--dev-insecure`: plaintext, no certificates, no token checks.
    DevInsecure,
    /// Mutual TLS with this identity and trust anchor.
    Tls(Arc<Tls>),
}

/// Why the transport settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(
        "no transport security configured: set TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE \
         (scripts/certs writes a development set), or pass --dev-insecure \
         (DEV_INSECURE=true) for plaintext without certificate or token checks, on a \
         development machine only"
    )]
    Unconfigured,
    #[error("{missing} is not set: TLS needs TLS_CERT_FILE, TLS_KEY_FILE and TLS_CA_FILE together")]
    Incomplete { missing: &'static str },
    #[error("--dev-insecure (DEV_INSECURE) and TLS files are both set: choose one")]
    Both,
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl SecurityArgs {
    /// Which files to use, or plaintext when asked for explicitly; nothing is read yet.
    pub fn files(&self) -> Result<Option<TlsFiles>, SecurityError> {
        let given = [&self.tls_cert_file, &self.tls_key_file, &self.tls_ca_file];
        let any = given.iter().any(|file| file.is_some());
        match (self.dev_insecure, any) {
            (true, true) => Err(SecurityError::Both),
            (true, false) => Ok(None),
            (false, false) => Err(SecurityError::Unconfigured),
            (false, true) => {
                let need = |file: &Option<PathBuf>, missing| {
                    file.clone().ok_or(SecurityError::Incomplete { missing })
                };
                Ok(Some(TlsFiles {
                    cert: need(&self.tls_cert_file, "TLS_CERT_FILE")?,
                    key: need(&self.tls_key_file, "TLS_KEY_FILE")?,
                    ca: need(&self.tls_ca_file, "TLS_CA_FILE")?,
                }))
            }
        }
    }

    /// Checks the settings and loads the TLS files (a bad file fails here, at start).
    pub fn security(&self) -> Result<Security, SecurityError> {
        Ok(match self.files()? {
            None => Security::DevInsecure,
            Some(files) => Security::Tls(Tls::load(files)?),
        })
    }
}

impl Security {
    /// The TLS identity, unless in development mode.
    pub fn tls(&self) -> Option<Arc<Tls>> {
        match self {
            Security::DevInsecure => None,
            Security::Tls(tls) => Some(tls.clone()),
        }
    }

    /// Says loudly, once at start, that this binary runs without transport security.
    pub fn announce(&self, binary: &str) {
        match self {
            Security::DevInsecure => tracing::warn!(
                binary,
                "DEV_INSECURE: plaintext on every connection, no client certificates, no \
                 token checks: anyone who reaches this port may call every RPC. For a \
                 development machine only."
            ),
            Security::Tls(tls) => tracing::info!(binary, files = ?tls.files(), "mutual TLS"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dev_insecure: bool, cert: bool, key: bool, ca: bool) -> SecurityArgs {
        let file = |set: bool, name: &str| set.then(|| PathBuf::from(name));
        SecurityArgs {
            dev_insecure,
            tls_cert_file: file(cert, "c.pem"),
            tls_key_file: file(key, "k.pem"),
            tls_ca_file: file(ca, "ca.pem"),
        }
    }

    #[test]
    fn neither_tls_nor_the_development_flag_is_refused_with_the_way_out() {
        let error = args(false, false, false, false).files().unwrap_err();
        assert!(matches!(error, SecurityError::Unconfigured));
        let message = error.to_string();
        assert!(message.contains("TLS_CERT_FILE") && message.contains("--dev-insecure"));
    }

    #[test]
    fn tls_needs_all_three_files() {
        assert!(matches!(
            args(false, true, false, true).files(),
            Err(SecurityError::Incomplete {
                missing: "TLS_KEY_FILE"
            })
        ));
        assert!(matches!(
            args(false, true, true, true).files(),
            Ok(Some(TlsFiles { .. }))
        ));
    }

    #[test]
    fn plaintext_only_when_asked_for_and_never_beside_tls_files() {
        assert!(matches!(args(true, false, false, false).files(), Ok(None)));
        assert!(matches!(
            args(true, true, true, true).files(),
            Err(SecurityError::Both)
        ));
    }
}

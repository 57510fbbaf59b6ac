//! A development PKI: one CA, one certificate per principal of the shop (each valid as
//! server and as client), and the secret front-door tokens are signed with. Made with
//! `rcgen` (pure Rust, on ring like rustls: no openssl binary needed). The stack harness
//! makes a fresh one per stack; `scripts/certs` (the `shop-certs` binary) writes one for
//! `scripts/run` and compose.
//!
//! Files in the directory: `ca.pem`, `<principal>.pem` and `<principal>.key` for each of
//! [`Principal::ALL`], `nats.pem` and `nats.key` (the broker's), `jwt-secret`, and, from
//! [`Pki::write_broker_config`], `nats.conf` (the broker's TLS and per-principal
//! authorization, for compose's broker). Keys and the secret are written readable by the
//! owner only.

use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;

use crate::nats_auth::BrokerTls;
use platform::security::{
    Principal, Security, SecurityArgs,
    token::{DEFAULT_ISSUER, Signer},
};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// How long the tokens written to files (the load generator's) are valid: a development
/// convenience, since nothing here renews them; a real deployment's service tokens come
/// from its identity provider and live minutes.
pub const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Names every server certificate carries besides its principal's, so that a local
/// client (grpcurl, a browser) reaching `127.0.0.1` or `localhost` can check it too.
const LOCAL_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// The names the broker's certificate carries: clients check it by the host of their
/// `NATS_URL`, unlike the gRPC clients, which check a server by its principal's name.
const BROKER_NAMES: [&str; 3] = ["nats", "localhost", "127.0.0.1"];

/// A CA that can issue more certificates (tests: rotation, unknown names).
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

impl Authority {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate and key (PEM) for `names`, usable as server and as client.
    pub fn issue(&self, names: &[&str]) -> anyhow::Result<(String, String)> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A PKI written to a directory.
#[derive(Debug, Clone)]
pub struct Pki {
    dir: PathBuf,
    /// The CA's key, while this process holds it (a PKI it generated): what
    /// [`Pki::reissue`] signs with.
    authority: Option<std::sync::Arc<Authority>>,
}

impl Pki {
    /// Writes a new CA, a certificate for every principal and a token secret to `dir`,
    /// replacing what is there.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let authority = std::sync::Arc::new(Authority::new("shop development CA")?);
        let pki = Self {
            dir: dir.to_path_buf(),
            authority: Some(authority.clone()),
        };
        write(&pki.ca(), authority.pem().as_bytes(), false)?;
        for principal in Principal::ALL {
            pki.reissue(principal)?;
        }
        pki.reissue_broker(&[])?;
        let secret = format!(
            "{}{}\n",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        write(&pki.secret(), secret.as_bytes(), true)?;
        Ok(pki)
    }

    /// The PKI already in `dir`, or a new one there if it holds none.
    pub fn open_or_generate(dir: &Path) -> anyhow::Result<Self> {
        let pki = Self {
            dir: dir.to_path_buf(),
            authority: None,
        };
        if pki.ca().exists() && pki.secret().exists() && pki.broker().cert.exists() {
            Ok(pki)
        } else {
            Self::generate(dir)
        }
    }

    /// Issues `principal` a new certificate and key and writes them over the old (a
    /// rotation). Only for a PKI this process generated (it holds the CA's key).
    pub fn reissue(&self, principal: Principal) -> anyhow::Result<()> {
        let authority = self
            .authority
            .as_ref()
            .context("this PKI was read from disk: its CA key is not at hand")?;
        let mut names = vec![principal.name()];
        names.extend(LOCAL_NAMES);
        let (cert, key) = authority.issue(&names)?;
        self.install(principal, &cert, &key)
    }

    /// Issues the broker a new certificate for the names clients reach it by, and
    /// `addresses` besides (a test host's IP, where the services' `NATS_URL` names it).
    /// Only for a PKI this process generated.
    pub fn reissue_broker(&self, addresses: &[&str]) -> anyhow::Result<()> {
        let mut names = BROKER_NAMES.to_vec();
        names.extend(addresses);
        let (cert, key) = self.issue(&names)?;
        write(&self.dir.join("nats.key"), key.as_bytes(), true)?;
        write(&self.dir.join("nats.pem"), cert.as_bytes(), false)
    }

    /// A certificate and key (PEM) for `names`, signed by this PKI's CA (tests: a name
    /// no principal has).
    pub fn issue(&self, names: &[&str]) -> anyhow::Result<(String, String)> {
        self.authority
            .as_ref()
            .context("this PKI was read from disk: its CA key is not at hand")?
            .issue(names)
    }

    /// Replaces `principal`'s certificate and key.
    pub fn install(&self, principal: Principal, cert: &str, key: &str) -> anyhow::Result<()> {
        write(&self.key(principal), key.as_bytes(), true)?;
        write(&self.cert(principal), cert.as_bytes(), false)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn cert(&self, principal: Principal) -> PathBuf {
        self.dir.join(format!("{}.pem", principal.name()))
    }

    pub fn key(&self, principal: Principal) -> PathBuf {
        self.dir.join(format!("{}.key", principal.name()))
    }

    /// The NATS server's certificate and key, and the CA it checks clients against.
    pub fn broker(&self) -> BrokerTls {
        BrokerTls {
            cert: self.dir.join("nats.pem"),
            key: self.dir.join("nats.key"),
            ca: self.ca(),
        }
    }

    /// Writes `nats.conf`: a broker configuration serving this PKI's `nats` certificate,
    /// checking clients against its CA and letting each certificate do only what its
    /// principal may ([`crate::nats_auth::broker_config`]), naming the files by their
    /// absolute paths so that it reads the same from any working folder. Returns its
    /// path. Written afresh each time, so a PKI kept from an earlier version gets the
    /// current permissions.
    pub fn write_broker_config(&self) -> anyhow::Result<PathBuf> {
        let dir = std::fs::canonicalize(&self.dir)
            .with_context(|| format!("cannot resolve {}", self.dir.display()))?;
        let tls = BrokerTls {
            cert: dir.join("nats.pem"),
            key: dir.join("nats.key"),
            ca: dir.join("ca.pem"),
        };
        let path = self.dir.join("nats.conf");
        write(
            &path,
            crate::nats_auth::broker_config(&tls).as_bytes(),
            false,
        )?;
        Ok(path)
    }

    /// The HS256 secret front-door tokens are signed with.
    pub fn secret(&self) -> PathBuf {
        self.dir.join("jwt-secret")
    }

    /// The settings a binary running as `principal` takes (`TLS_*`).
    pub fn env(&self, principal: Principal) -> Vec<(String, String)> {
        let path = |path: PathBuf| path.display().to_string();
        vec![
            ("TLS_CERT_FILE".into(), path(self.cert(principal))),
            ("TLS_KEY_FILE".into(), path(self.key(principal))),
            ("TLS_CA_FILE".into(), path(self.ca())),
        ]
    }

    /// This process's transport, as `principal`.
    pub fn security(&self, principal: Principal) -> anyhow::Result<Security> {
        Ok(SecurityArgs {
            dev_insecure: false,
            tls_cert_file: Some(self.cert(principal)),
            tls_key_file: Some(self.key(principal)),
            tls_ca_file: Some(self.ca()),
        }
        .security()?)
    }

    /// A front-door token for `subject` (with the operator scope if asked), valid a day.
    pub fn token(&self, subject: &str, operator: bool) -> anyhow::Result<String> {
        self.token_for(subject, operator, Duration::from_secs(24 * 3600))
    }

    fn token_for(&self, subject: &str, operator: bool, ttl: Duration) -> anyhow::Result<String> {
        let signer = Signer::from_secret_file(&self.secret(), DEFAULT_ISSUER)?;
        Ok(signer.sign(subject, operator, ttl)?)
    }
}

impl Pki {
    /// Writes a token for `subject` to `<subject>.token` (for `AUTH_TOKEN_FILE`), valid
    /// for [`SERVICE_TOKEN_TTL`], and returns its path.
    pub fn write_token(&self, subject: &str, operator: bool) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(format!("{subject}.token"));
        let token = self.token_for(subject, operator, SERVICE_TOKEN_TTL)?;
        write(&path, format!("{token}\n").as_bytes(), true)?;
        Ok(path)
    }
}

impl Pki {
    /// Writes what tools outside the stack use: the load generator's operator token, and
    /// `env` for the shell (see [`Pki::write_env_file`]), naming the files under
    /// `shown_dir`. Returns the path of `env`. The console gets no token: whoever uses it
    /// signs in with their own (`OPERATOR` of `env` for the development operator).
    pub fn write_client_files(&self, shown_dir: &Path) -> anyhow::Result<PathBuf> {
        self.write_token("loadgen", true)?;
        // Earlier versions wrote the console an operator token of its own; nothing reads
        // it now, and a month-long operator token is better gone than lying about.
        let _ = std::fs::remove_file(self.dir.join("console.token"));
        let env = self.dir.join("env");
        self.write_env_file(&env, shown_dir)?;
        Ok(env)
    }

    /// Writes a shell file that sets what the walkthrough's grpcurl commands use:
    /// `SHOP_TLS` (the CA, and the operator's certificate for the internal services),
    /// and `ALICE` and `OPERATOR`, each a whole `authorization: Bearer ...` header for
    /// `grpcurl -H`. The files are named under `shown_dir`: where the user's shell finds
    /// this PKI (the same folder, or a copy of it out of a container).
    fn write_env_file(&self, path: &Path, shown_dir: &Path) -> anyhow::Result<()> {
        let file = |name: &str| shown_dir.join(name).display().to_string();
        let text = format!(
            "# Written by scripts/run: `source` it, then `grpcurl $SHOP_TLS -H \"$ALICE\" ...`\n\
             export SHOP_TLS=\"-cacert {ca} -cert {cert} -key {key}\"\n\
             export ALICE=\"authorization: Bearer {alice}\"\n\
             export OPERATOR=\"authorization: Bearer {operator}\"\n",
            ca = file("ca.pem"),
            cert = file("operator.pem"),
            key = file("operator.key"),
            alice = self.token("alice", false)?,
            operator = self.token("operator", true)?,
        );
        write(path, text.as_bytes(), true)
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader (a
/// server reloading its certificate) never sees half a file.
fn write(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    let temp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    let mut file = options
        .open(&temp)
        .with_context(|| format!("cannot write {}", temp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

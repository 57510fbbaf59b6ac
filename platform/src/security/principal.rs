//! The parties of the shop, each named by the DNS name its certificate is issued to. A
//! peer is who its certificate (signed by the shop's CA, checked in the handshake) says
//! it is; [`super::access`] decides what each may call.

use std::{fmt, net::SocketAddr};

use rustls_pki_types::{CertificateDer, DnsName, ServerName};

/// Who a certificate belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// The checkout front door and saga driver: calls the services' saga steps.
    Orchestrator,
    OrderSvc,
    PaymentSvc,
    InventorySvc,
    ShippingSvc,
    /// The live view: a client of the front door only, with the signed-in person's token.
    Console,
    /// The load generator's invariant checker: reads everything back. (Its load sets up
    /// its products with the operator's certificate: the catalogue is the operator's.)
    Loadgen,
    /// A person or tool operating the shop: the catalogue and stock, dead letters, reads.
    /// The demo seed runs as the operator too: seeding is the operator's act.
    Operator,
}

impl Principal {
    /// Every principal, in the order a certificate's names are matched.
    pub const ALL: [Principal; 8] = [
        Principal::Orchestrator,
        Principal::OrderSvc,
        Principal::PaymentSvc,
        Principal::InventorySvc,
        Principal::ShippingSvc,
        Principal::Console,
        Principal::Loadgen,
        Principal::Operator,
    ];

    /// The name its certificate is issued to (a DNS subject alternative name); for the
    /// services also the host name clients check the server against.
    pub const fn name(self) -> &'static str {
        match self {
            Principal::Orchestrator => "orchestrator",
            Principal::OrderSvc => "order-svc",
            Principal::PaymentSvc => "payment-svc",
            Principal::InventorySvc => "inventory-svc",
            Principal::ShippingSvc => "shipping-svc",
            Principal::Console => "console",
            Principal::Loadgen => "loadgen",
            Principal::Operator => "operator",
        }
    }

    /// The principal a binary of this name runs as.
    pub fn of_binary(binary: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == binary)
    }

    /// Whose certificate this is: the first principal it is valid for. `None` for a
    /// certificate of none of them (the CA signed it for something else).
    pub fn of_certificate(cert: &CertificateDer<'_>) -> Option<Self> {
        let cert = webpki::EndEntityCert::try_from(cert).ok()?;
        Self::ALL.into_iter().find(|principal| {
            DnsName::try_from(principal.name()).is_ok_and(|name| {
                cert.verify_is_valid_for_subject_name(&ServerName::DnsName(name))
                    .is_ok()
            })
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The other end of an accepted connection; every request carries it as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub remote_addr: Option<SocketAddr>,
    /// How the connection is secured, and by whom.
    pub identity: Identity,
}

/// What the handshake proved about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// `--dev-insecure`: nothing is proven, nothing is checked.
    Plaintext,
    /// TLS without a client certificate (the front door's customers).
    Anonymous,
    /// TLS with a certificate the CA signed for a name no principal has.
    Unknown,
    /// TLS with a certificate the CA signed for this principal.
    Known(Principal),
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Plaintext => f.write_str("a plaintext peer"),
            Identity::Anonymous => f.write_str("a peer without a client certificate"),
            Identity::Unknown => f.write_str("a certificate of no known principal"),
            Identity::Known(principal) => write!(f, "{principal}"),
        }
    }
}

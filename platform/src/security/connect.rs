//! Client channels. Over TLS a channel presents this binary's certificate and accepts
//! the server only if the CA signed its certificate for the name of the service the
//! caller meant to reach: the URL says where to connect, the name says whom to trust, so
//! a wrong or hijacked address cannot pass for another service.

use std::{future::Future, pin::Pin, sync::Arc};

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use super::{Principal, Security, Tls, token::AttachToken};

/// A channel to the front door that sends a bearer token with every call.
pub type FrontDoor = InterceptedService<Channel, AttachToken>;

/// A lazily connected channel to `endpoint`, which must be `server`.
pub fn channel(endpoint: Endpoint, security: &Security, server: Principal) -> Channel {
    match security {
        Security::DevInsecure => endpoint.tcp_nodelay(true).connect_lazy(),
        Security::Tls(tls) => endpoint.connect_with_connector_lazy(TlsConnector {
            tls: tls.clone(),
            server,
        }),
    }
}

/// Opens TCP (with TCP_NODELAY) and runs the TLS handshake with the current client config.
#[derive(Debug, Clone)]
struct TlsConnector {
    tls: Arc<Tls>,
    server: Principal,
}

type Connecting =
    Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>>;

impl tower::Service<Uri> for TlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = self.tls.client_config();
        let server = self.server;
        Box::pin(async move {
            let invalid = |what: &str| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{uri}: {what}"))
            };
            let host = uri
                .host()
                .ok_or_else(|| invalid("no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().ok_or_else(|| invalid("no port"))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(server.name())
                .map_err(|_| invalid("not a DNS name"))?
                .to_owned();
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(TokioIo::new(stream))
        })
    }
}

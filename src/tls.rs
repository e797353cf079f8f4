//! TLS towards clients: the rustls acceptor built from the config's certificate and key.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {problem}")]
    Pem { path: String, problem: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client-side TLS acceptor and whether plaintext clients are refused.
#[derive(Clone)]
pub struct Acceptor {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub require: bool,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl Acceptor {
    pub fn load(cert: &Path, key: &Path, require: bool) -> Result<Acceptor, TlsError> {
        let certs: Vec<_> = rustls_pemfile::certs(&mut &read(cert)?[..])
            .collect::<Result<_, _>>()
            .map_err(|e| TlsError::Pem {
                path: cert.display().to_string(),
                problem: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Pem {
                path: cert.display().to_string(),
                problem: "no certificate found".into(),
            });
        }
        let key = rustls_pemfile::private_key(&mut &read(key)?[..])
            .map_err(|e| TlsError::Pem {
                path: key.display().to_string(),
                problem: e.to_string(),
            })?
            .ok_or_else(|| TlsError::Pem {
                path: key.display().to_string(),
                problem: "no private key found".into(),
            })?;
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Acceptor {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            require,
        })
    }
}

/// TLS towards the upstream, as configured: None for `disable`.
pub fn upstream_client_config(config: &crate::config::Config) -> Result<Option<Arc<rustls::ClientConfig>>, TlsError> {
    use crate::config::UpstreamTls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        rustls::ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let cfg = match config.upstream.tls {
        UpstreamTls::Disable => return Ok(None),
        // libpq's sslmode=require: encrypted, not authenticated.
        UpstreamTls::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
        UpstreamTls::VerifyFull => {
            let ca = config
                .upstream
                .ca
                .as_ref()
                .map(|p| config.resolve(p))
                .unwrap_or_default();
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut &read(&ca)?[..]) {
                let cert = cert.map_err(|e| TlsError::Pem {
                    path: ca.display().to_string(),
                    problem: e.to_string(),
                })?;
                roots.add(cert)?;
            }
            if roots.is_empty() {
                return Err(TlsError::Pem {
                    path: ca.display().to_string(),
                    problem: "no CA certificate found".into(),
                });
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Some(Arc::new(cfg)))
}

/// For sslmode=require: every certificate is accepted, signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, std::io::Error> {
    rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| std::io::Error::other(format!("{host}: {e}")))
}

/// Connects to the upstream: TCP, then SSLRequest and the handshake when TLS is configured.
pub async fn connect_upstream(
    config: &crate::config::Config,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> std::io::Result<crate::net::Conn> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect((config.upstream.host.as_str(), config.upstream.port)),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(crate::net::Conn::Tcp(tcp));
    };
    tcp.write_all(&crate::wire::startup::ssl_request()).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    if answer[0] != b'S' {
        return Err(std::io::Error::other(
            "the server does not accept TLS connections (upstream.tls is not disable)",
        ));
    }
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(server_name(&config.upstream.host)?, tcp)
        .await?;
    Ok(crate::net::Conn::Tls(Box::new(stream)))
}

/// tokio-postgres over the same rustls configuration, for the catalog and audit connections.
#[derive(Clone)]
pub struct PgTls(pub Arc<rustls::ClientConfig>);

pub struct PgTlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::MakeTlsConnect<S> for PgTls
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type TlsConnect = PgTlsConnect;
    type Error = std::io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, std::io::Error> {
        Ok(PgTlsConnect(self.0.clone(), server_name(domain)?))
    }
}

pub struct PgTlsConnect(Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>);

impl<S> tokio_postgres::tls::TlsConnect<S> for PgTlsConnect
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Stream = PgTlsStream<S>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<PgTlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let s = tokio_rustls::TlsConnector::from(self.0).connect(self.1, stream).await?;
            Ok(PgTlsStream(s))
        })
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for PgTlsStream<S> {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        tokio_postgres::tls::ChannelBinding::none()
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncRead for PgTlsStream<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for PgTlsStream<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

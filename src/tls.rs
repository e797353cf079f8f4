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

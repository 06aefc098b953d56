//! Mutual TLS between nodes: every node presents a certificate signed by
//! the cluster's CA and accepts only peers that do the same, in both
//! directions. The cookie challenge still runs inside the TLS session.
//!
//! The crypto provider is named explicitly (aws-lc-rs, the one
//! ractor_cluster's tokio-rustls already builds), so that no other rustls
//! user in the process can make the choice ambiguous.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{aws_lc_rs, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where a node's TLS material lives (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The node's certificate chain.
    pub cert: PathBuf,
    /// The node's private key.
    pub key: PathBuf,
    /// The CA that signs every node's certificate.
    pub ca: PathBuf,
}

/// Why the TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read {what} from {path}: {reason}")]
    Read {
        /// Which file it is.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The files do not make a usable configuration.
    #[error("invalid tls configuration: {0}")]
    Config(String),
}

/// Both sides of mutual TLS, built once per node.
#[derive(Clone)]
pub struct ClusterTls {
    /// Accepts inbound connections, requiring a client certificate.
    pub acceptor: TlsAcceptor,
    /// Dials peers, presenting this node's certificate.
    pub connector: TlsConnector,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterTls")
    }
}

impl ClusterTls {
    /// Loads the PEM files and builds the acceptor and the connector.
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let certs = read_certs(&files.cert, "the node certificate")?;
        let ca = read_certs(&files.ca, "the ca certificate")?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|err| TlsError::Read {
            what: "the node key",
            path: files.key.clone(),
            reason: err.to_string(),
        })?;
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots
                .add(cert)
                .map_err(|err| TlsError::Config(format!("ca certificate refused: {err}")))?;
        }
        let roots = Arc::new(roots);
        let provider: Arc<CryptoProvider> = Arc::new(aws_lc_rs::default_provider());
        let config_error = |err: &dyn std::fmt::Display| TlsError::Config(err.to_string());

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|err| config_error(&err))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|err| config_error(&err))?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|err| config_error(&err))?;

        let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|err| config_error(&err))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| config_error(&err))?
            .with_webpki_verifier(server_verifier)
            .with_client_auth_cert(certs, key)
            .map_err(|err| config_error(&err))?;

        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// The name a dialed peer's certificate must carry: the host of `host:port`
/// (an IP address or a DNS name; IPv6 in brackets).
pub fn server_name(target: &str) -> Result<ServerName<'static>, String> {
    let host = target
        .rsplit_once(':')
        .map(|(host, _)| host)
        .unwrap_or(target);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|err| format!("bad tls name {host:?}: {err}"))
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|err| error(err.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| error(err.to_string()))?;
    if certs.is_empty() {
        return Err(error("no certificate in the file".to_string()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_come_from_the_host() {
        assert!(matches!(
            server_name("127.0.0.1:7071"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("[::1]:7071"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("shop.example:7071"),
            Ok(ServerName::DnsName(_))
        ));
    }

    #[test]
    fn missing_files_are_named() {
        let files = TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            ca: "/nonexistent/ca.pem".into(),
        };
        let err = ClusterTls::load(&files).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/cert.pem"), "{err}");
    }
}

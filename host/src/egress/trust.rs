//! Whom outgoing HTTPS trusts: the Mozilla roots (webpki-roots), plus any CA certificates the
//! operator adds, so that tasks can reach internal services whose certificates an internal CA
//! signed. The TLS client configuration is built once, when the engine starts, not per
//! request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_rustls::TlsConnector;

/// The certificate authorities outgoing HTTPS requests trust. Cheap to clone.
#[derive(Clone)]
pub struct HttpTrust {
    /// The CA certificates added to the Mozilla roots.
    added: Arc<[CertificateDer<'static>]>,
    connector: TlsConnector,
}

/// Why CA certificates could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no certificate, or a malformed one.
    #[error(
        "{path} is not a PEM file of CA certificates (`-----BEGIN CERTIFICATE-----` blocks): {reason}"
    )]
    NotPem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate is not one TLS can use as a root.
    #[error("a certificate in {path} cannot be a trusted root: {source}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
}

impl HttpTrust {
    /// The Mozilla roots and the CA certificates in `files` (PEM, any number per file).
    pub fn with_ca_files(files: &[PathBuf]) -> Result<Self, TrustError> {
        let mut roots = mozilla_roots();
        let mut added = Vec::new();
        for path in files {
            for certificate in read_certificates(path)? {
                roots
                    .add(certificate.clone())
                    .map_err(|source| TrustError::Unusable {
                        path: path.clone(),
                        source,
                    })?;
                added.push(certificate);
            }
        }
        Ok(Self::trusting(roots, added))
    }

    /// The number of CA certificates added to the Mozilla roots.
    pub fn added(&self) -> usize {
        self.added.len()
    }

    /// What makes TLS connections that verify servers against these roots.
    pub(crate) fn connector(&self) -> TlsConnector {
        self.connector.clone()
    }

    fn trusting(roots: rustls::RootCertStore, added: Vec<CertificateDer<'static>>) -> Self {
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            added: added.into(),
            connector: TlsConnector::from(Arc::new(config)),
        }
    }
}

fn mozilla_roots() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    }
}

/// The certificates of one PEM file: at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let pem = std::fs::read(path).map_err(|source| TrustError::Read {
        path: path.to_owned(),
        source,
    })?;
    let not_pem = |reason: String| TrustError::NotPem {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| not_pem(error.to_string()))?;
    if certificates.is_empty() {
        return Err(not_pem("it holds no certificate".into()));
    }
    Ok(certificates)
}

impl Default for HttpTrust {
    /// The Mozilla roots alone.
    fn default() -> Self {
        Self::trusting(mozilla_roots(), Vec::new())
    }
}

impl PartialEq for HttpTrust {
    fn eq(&self, other: &Self) -> bool {
        self.added == other.added
    }
}

impl Eq for HttpTrust {}

impl fmt::Debug for HttpTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTrust")
            .field("added", &self.added.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taskhost_tests::tls;

    #[test]
    fn ca_files_add_their_certificates() {
        let trust = HttpTrust::with_ca_files(&[tls::CA.into()]).unwrap();
        assert_eq!(trust.added(), 1);
        assert_eq!(HttpTrust::default().added(), 0);
        assert_ne!(trust, HttpTrust::default());
    }

    #[test]
    fn a_missing_or_wrong_file_says_which_and_why() {
        let missing = HttpTrust::with_ca_files(&["/nonexistent/ca.pem".into()]).unwrap_err();
        assert!(matches!(missing, TrustError::Read { .. }), "{missing}");
        assert!(missing.to_string().contains("/nonexistent/ca.pem"));

        let dir = tempfile::tempdir().unwrap();
        let key_only = dir.path().join("key.pem");
        std::fs::copy(tls::LOCALHOST_KEY, &key_only).unwrap();
        let error = HttpTrust::with_ca_files(&[key_only]).unwrap_err();
        assert!(matches!(error, TrustError::NotPem { .. }), "{error}");
        assert!(
            error.to_string().contains("holds no certificate"),
            "{error}"
        );
    }
}

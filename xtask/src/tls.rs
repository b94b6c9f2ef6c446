//! The one rustls client setup of every command: each says what it trusts as a sum of [`Roots`] (the public
//! web roots ureq ships, a system CA bundle, a `--ca-file`), and [`Roots::client_config`] builds the config
//! the same way for all (ring, the provider ureq itself uses, named so no process-wide default is needed;
//! TLS 1.2 and 1.3; certificates always verified).

use std::{io, path::Path, sync::Arc};

use anyhow::{bail, Context, Result};
use rustls::{
    pki_types::{pem::PemObject, CertificateDer},
    RootCertStore,
};

/// Certificate authorities a client trusts.
#[derive(Clone, Debug)]
pub struct Roots(RootCertStore);

impl Roots {
    /// The public web roots ureq itself trusts.
    pub fn public() -> Roots {
        Roots(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
    }

    /// The CAs of a PEM file given on the command line: every certificate must be usable as a CA, and there
    /// must be one, so a wrong file is an error rather than a trust store that refuses everything.
    pub fn ca_file(path: &Path) -> Result<Roots> {
        let mut store = RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("read the CA file {}", path.display()))?
        {
            let certificate =
                certificate.with_context(|| format!("parse the CA file {}", path.display()))?;
            store
                .add(certificate)
                .with_context(|| format!("use a certificate of {} as a CA", path.display()))?;
        }
        if store.is_empty() {
            bail!(
                "{} holds no PEM certificate: give the CA certificate the server's chain ends in",
                path.display()
            );
        }
        Ok(Roots(store))
    }

    /// A system CA bundle: distributions ship a few certificates webpki cannot parse, which are skipped.
    pub fn bundle(path: &Path) -> io::Result<Roots> {
        let certificates = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|error| {
                io::Error::other(format!("read the CA bundle {}: {error}", path.display()))
            })?;
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(certificates);
        Ok(Roots(store))
    }

    /// These roots and `other`'s.
    pub fn and(mut self, other: &Roots) -> Roots {
        self.0.extend(other.0.roots.iter().cloned());
        self
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn client_config(self) -> Arc<rustls::ClientConfig> {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(self.0)
        .with_no_client_auth();
        Arc::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_by_name() {
        let dir = crate::util::fresh_temp_dir("tls-empty-ca").unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let err = format!("{:#}", Roots::ca_file(&file).unwrap_err());
        assert!(
            err.contains(&format!("{} holds no PEM certificate", file.display())),
            "{err}"
        );
        let err = format!(
            "{:#}",
            Roots::ca_file(&dir.join("missing.pem")).unwrap_err()
        );
        assert!(err.contains("read the CA file"), "{err}");
    }

    #[test]
    fn roots_add_up() {
        let public = Roots::public();
        assert!(public.len() > 50, "{}", public.len());
        assert_eq!(
            Roots::public().and(&Roots::public()).len(),
            2 * public.len()
        );
    }
}

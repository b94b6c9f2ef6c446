//! A throwaway certificate authority for TLS tests, made with openssl at test time: a CA and leaf
//! certificates signed by it, for a DNS name or an IP address.

use std::{net::IpAddr, path::PathBuf, process::Command};

use super::{require, text, TempDir};

pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        require("openssl", "openssl");
        let dir = TempDir::new("pki");
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                "/C=DE/O=Verify Test/CN=Verify Test CA",
            ],
        );
        Pki { dir }
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path("ca.pem")
    }

    /// A server certificate for `name` (a DNS name, or an IP address), valid for `days`: (certificate, key).
    pub fn leaf(&self, label: &str, name: &str, days: u32) -> (PathBuf, PathBuf) {
        let (key, csr, cert, ext) = (
            format!("{label}.key"),
            format!("{label}.csr"),
            format!("{label}.pem"),
            format!("{label}.ext"),
        );
        let san = if name.parse::<IpAddr>().is_ok() {
            format!("IP:{name}")
        } else {
            format!("DNS:{name}")
        };
        self.dir.file(
            &ext,
            &format!("subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"),
        );
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                &days.to_string(),
                "-extfile",
                &ext,
                "-out",
                &cert,
            ],
        );
        (self.dir.path(&cert), self.dir.path(&key))
    }
}

/// openssl in `dir`, which must succeed; its stdout.
pub fn openssl(dir: &TempDir, args: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

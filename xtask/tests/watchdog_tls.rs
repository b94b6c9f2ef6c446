//! The watchdog's TLS to the source, against a real PostgreSQL with TLS. Without the source's CA it cannot
//! verify the certificate (the service's bundled CAs are in its image), so libpq must refuse an endpoint that
//! asks for the password in clear text or lets anyone in, before the password leaves; SCRAM and md5 sources
//! (Supabase's) still work. With the CA it verifies the certificate and the name as the service does.
//!
//! The refusal is libpq's `require_auth` (libpq >= 16, as on the NixOS host's PostgreSQL 17). Debian 12's
//! libpq is 15, so the watchdog runs Debian's psql binary on the libpq 18 that psycopg-binary bundles
//! (tests/oracle/libpq/requirements.txt), and the test first proves that this libpq is the one in effect.
//!
//! Needs (Debian): bash, postgresql (server, psql, pg_recvlogical), util-linux (setpriv), openssl, nix-bin
//! (nix-instantiate, for the module's limits). A missing one fails the test with the package to install.

mod common;
use common::{
    assert_contains,
    ops::PASSWORD,
    text,
    watchdog::{Postgres, Watchdog, SLOT},
    TempDir,
};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use common::pki::Pki;

/// A PostgreSQL that speaks TLS with `cert`/`key` and authenticates TCP clients with `method`, over
/// TLS only (`hostssl`). For md5, the role's password is stored as an md5 hash, as on older sources.
fn tls_postgres(cert: &Path, key: &Path, method: &str) -> Postgres {
    for file in [cert, key] {
        let status = Command::new("chown")
            .arg("postgres")
            .arg(file)
            .status()
            .unwrap();
        assert!(status.success(), "chown {}", file.display());
    }
    let hba = format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\n");
    let settings = [
        "ssl=on".to_owned(),
        format!("ssl_cert_file={}", cert.display()),
        format!("ssl_key_file={}", key.display()),
    ];
    let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
    let pg = Postgres::start_with_hba(Some(&hba), &settings);
    if method == "md5" {
        pg.sql(&format!(
            "SET password_encryption = 'md5'; ALTER ROLE watcher PASSWORD '{PASSWORD}'"
        ));
    }
    pg.create_slot(SLOT);
    pg
}

/// Debian's psql on a libpq >= 16: a program for the watchdog's PSQL, and the libpq's directories.
struct NewLibpq {
    _dir: TempDir,
    psql: PathBuf,
}

impl NewLibpq {
    fn new(pg: &Postgres) -> NewLibpq {
        let output = Command::new("python3")
            .args([
                "-c",
                "import importlib.util, os; spec = importlib.util.find_spec('psycopg_binary'); \
                     print(os.path.dirname(os.path.dirname(spec.origin)) if spec else '')",
            ])
            .output()
            .expect("python3 is missing: apt-get install python3");
        let site = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(
            !site.is_empty(),
            "psycopg-binary (its bundled libpq) is missing: \
                 pip install -r tests/oracle/libpq/requirements.txt"
        );
        let libs = Path::new(&site).join("psycopg_binary.libs");
        let libpq = fs::read_dir(&libs)
            .unwrap()
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .find(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                name.starts_with("libpq-") && name.contains(".so.5")
            })
            .unwrap_or_else(|| panic!("no libpq-*.so.5* in {}", libs.display()));
        let dir = TempDir::new("libpq");
        std::os::unix::fs::symlink(&libpq, dir.path("libpq.so.5")).unwrap();
        let psql = dir.program(
            "psql",
            &format!(
                "LD_LIBRARY_PATH={}:{} exec {} \"$@\"",
                dir.0.display(),
                libs.display(),
                pg.bin.join("psql").display()
            ),
        );
        // The libpq in effect knows require_auth (an older one ignores PGREQUIREAUTH altogether).
        let probe = Command::new(&psql)
            .env("PGREQUIREAUTH", "no-such-method")
            .args(["-h", "127.0.0.1", "-p", "1", "-c", "SELECT 1"])
            .output()
            .unwrap();
        assert_contains(&text(&probe), "invalid require_auth value");
        NewLibpq { _dir: dir, psql }
    }
}

fn source_up(pg: &Postgres, libpq: &NewLibpq, env: &[(&str, &str)]) -> (bool, String) {
    let psql = libpq.psql.display().to_string();
    let mut all = vec![("PSQL", psql.as_str())];
    all.extend_from_slice(env);
    let run = Watchdog::new(&pg.dsn(PASSWORD)).run_now(&all);
    let up = run.value("powersync_watchdog_source_up");
    assert!(up.is_some(), "no source_up:\n{}", run.output);
    (up == Some("1"), run.output)
}

const UNVERIFIED: &[(&str, &str)] = &[("SOURCE_SSLMODE", "verify-full")];

#[test]
fn without_the_ca_a_scram_source_is_reached() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("source", "127.0.0.1", 2);
    let pg = tls_postgres(&cert, &key, "scram-sha-256");
    let libpq = NewLibpq::new(&pg);
    let (up, output) = source_up(&pg, &libpq, UNVERIFIED);
    assert!(up, "{output}");
}

/// Unverified, whoever answers may be in the middle: an md5 challenge would get a hash of the password
/// salted as that endpoint chooses, clear text the password itself, `trust` a session it controls.
#[test]
fn without_the_ca_an_endpoint_asking_for_anything_but_scram_never_gets_an_answer() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("source", "127.0.0.1", 2);
    for method in ["md5", "password", "trust"] {
        let pg = tls_postgres(&cert, &key, method);
        let libpq = NewLibpq::new(&pg);
        // The exposure: a client left to libpq's defaults hands the password over in clear text (or is
        // let in by whoever answers) and reports whatever that endpoint says.
        let exposed = Command::new(&libpq.psql)
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", pg.port.to_string())
            .env("PGUSER", "watcher")
            .env("PGDATABASE", "postgres")
            .env("PGPASSWORD", PASSWORD)
            .env("PGSSLMODE", "require")
            .args(["-w", "-X", "-q", "-c", "SELECT 1"])
            .output()
            .unwrap();
        assert!(
            exposed.status.success(),
            "{method}: the exposure did not show: {}",
            text(&exposed)
        );
        let (up, output) = source_up(&pg, &libpq, UNVERIFIED);
        assert!(!up, "{method}: the watchdog logged in:\n{output}");
        assert_contains(&output, "authentication method requirement");
    }
}

#[test]
fn with_the_ca_the_certificate_and_its_name_are_verified() {
    let pki = Pki::new();
    let other = Pki::new();
    let ca = pki.ca().display().to_string();
    let other_ca = other.ca().display().to_string();
    let verify = |mode, ca| [("SOURCE_SSLMODE", mode), ("SOURCE_CA_FILE", ca)];

    let (cert, key) = pki.leaf("source", "127.0.0.1", 2);
    let pg = tls_postgres(&cert, &key, "scram-sha-256");
    let libpq = NewLibpq::new(&pg);
    let (up, output) = source_up(&pg, &libpq, &verify("verify-full", &ca));
    assert!(up, "{output}");
    let (up, output) = source_up(&pg, &libpq, &verify("verify-full", &other_ca));
    assert!(!up, "a certificate from another CA was accepted:\n{output}");
    assert_contains(&output, "certificate verify failed");
    drop(pg);

    // A certificate from the right CA for another name: verify-full refuses it, verify-ca (which the
    // service also offers) accepts it.
    let (cert, key) = pki.leaf("elsewhere", "db.example.test", 2);
    let pg = tls_postgres(&cert, &key, "scram-sha-256");
    let (up, output) = source_up(&pg, &libpq, &verify("verify-full", &ca));
    assert!(
        !up,
        "a certificate for another name was accepted:\n{output}"
    );
    assert_contains(&output, "does not match host name");
    let (up, output) = source_up(&pg, &libpq, &verify("verify-ca", &ca));
    assert!(up, "{output}");
}

#[test]
fn a_ca_file_that_cannot_be_read_is_a_configuration_error() {
    let run = Watchdog::new("postgresql://watcher:x@127.0.0.1:5432/postgres").run_now(&[
        ("SOURCE_SSLMODE", "verify-full"),
        ("SOURCE_CA_FILE", "/nonexistent/ca.pem"),
    ]);
    assert_eq!(run.code, Some(2), "{}", run.output);
    assert_contains(
        &run.output,
        "SOURCE_CA_FILE '/nonexistent/ca.pem' is not a readable file",
    );
}

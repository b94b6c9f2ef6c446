//! The storage path of the PowerSync module (modules/powersync/storage), run for real against Debian's
//! PostgreSQL: the script that sets the storage password never lets the password reach PostgreSQL's log, and
//! systemd-socket-proxyd with the module's connection limit cannot exhaust PostgreSQL's connection slots.
//!
//! Needs (Debian): bash, coreutils, util-linux (setpriv, runuser), postgresql (server and psql), python3,
//! systemd (systemd-socket-activate, /lib/systemd/systemd-socket-proxyd). A missing one fails the test with the
//! package to install.

mod common;
use common::{
    free_port, lib_eval, require, script::assert_shellcheck_clean, text, wait_for_port, TempDir,
};

use std::{
    fs,
    io::{Read, Write},
    net::{Shutdown, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

const ROLE: &str = "powersync_storage";

fn storage_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../modules/powersync/storage")
}

/// A real PostgreSQL on 127.0.0.1 and a socket in its own directory, logging every statement to a file.
/// pg_hba: the superuser by trust over the socket (the test's own admin path), everyone else by scram over
/// the socket and TCP, as on the host.
struct Postgres(common::postgres::Postgres);

impl std::ops::Deref for Postgres {
    type Target = common::postgres::Postgres;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Postgres {
    fn start(max_connections: u32) -> Postgres {
        Postgres(common::postgres::Postgres::start(common::postgres::Setup {
            initdb: &["--auth-local=trust", "--auth-host=scram-sha-256"],
            hba: Some(
                "local all postgres trust\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
            ),
            settings: vec![
                "listen_addresses=127.0.0.1".to_owned(),
                format!("max_connections={max_connections}"),
                // The strictest logging a host may have: every statement, and each failed one with its text.
                "log_statement=all".to_owned(),
                "log_min_error_statement=error".to_owned(),
                "log_connections=on".to_owned(),
            ],
            log_file: true,
            stop_mode: "immediate",
        }))
    }

    fn socket(&self) -> PathBuf {
        self.dir.path(&format!(".s.PGSQL.{}", self.port))
    }

    /// Logs in over TCP with a password (scram), as the service does; stdout and stderr of `SELECT 1`.
    fn login(&self, user: &str, password: &str) -> Output {
        Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user])
            .args(["-d", "postgres", "-X", "-tA", "-w", "-c", "SELECT 1"])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .unwrap()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path("postgres.log")).unwrap()
    }
}

mod password {
    use super::*;

    /// Runs modules/powersync/storage/set-password.sh as the unit does (as root, psql as `postgres`).
    fn set_password(pg: &Postgres, state: &TempDir) -> Output {
        require("python3", "python3");
        require("runuser", "util-linux");
        let verifier = storage_dir().join("scram-verifier.py");
        Command::new("bash")
            .arg(storage_dir().join("set-password.sh"))
            .env("STATE_DIR", &state.0)
            .env("ENV_FILE", state.path("storage.env"))
            .env("ROLE", ROLE)
            .env("SCRAM_VERIFIER", format!("python3 {}", verifier.display()))
            .env("PGHOST", pg.socket_dir())
            .env("PGPORT", pg.port.to_string())
            .output()
            .unwrap()
    }

    /// The module passes each of these (storage.nix, runtimeEnv); without one the script stops before it
    /// writes anything.
    #[test]
    fn every_value_the_module_passes_is_required() {
        for var in ["STATE_DIR", "ENV_FILE", "ROLE", "SCRAM_VERIFIER", "PGPORT"] {
            let state = TempDir::new("storage-required");
            let output = Command::new("bash")
                .arg(storage_dir().join("set-password.sh"))
                .env("STATE_DIR", &state.0)
                .env("ENV_FILE", state.path("storage.env"))
                .env("ROLE", ROLE)
                .env("SCRAM_VERIFIER", "false")
                .env("PGPORT", "5432")
                .env_remove(var)
                .output()
                .unwrap();
            assert!(!output.status.success(), "{var}: {}", text(&output));
            assert!(text(&output).contains(var), "{var}: {}", text(&output));
            assert_eq!(fs::read_dir(&state.0).unwrap().count(), 0, "{var}");
        }
    }

    fn password(state: &TempDir) -> String {
        fs::read_to_string(state.path("storage-password"))
            .unwrap()
            .trim()
            .to_owned()
    }

    #[test]
    fn the_password_never_reaches_the_log_even_when_alter_role_fails() {
        let pg = Postgres::start(100);
        let state = TempDir::new("state");

        // No role yet: ALTER ROLE fails, and PostgreSQL logs the failed statement in full.
        let failed = set_password(&pg, &state);
        assert!(
            !failed.status.success(),
            "ALTER ROLE on a missing role must fail"
        );
        let secret = password(&state);
        assert!(secret.len() >= 40, "a weak password: {secret:?}");
        assert!(
            pg.log().contains("STATEMENT:  ALTER ROLE"),
            "the failed statement is not in the log, so this test proves nothing:\n{}",
            pg.log()
        );

        pg.sql(&format!("CREATE ROLE {ROLE} LOGIN"));
        let output = set_password(&pg, &state);
        assert!(output.status.success(), "set-password: {}", text(&output));
        assert_eq!(
            password(&state),
            secret,
            "the password must be generated once"
        );

        let log = pg.log();
        assert!(
            log.contains("ALTER ROLE \"powersync_storage\" WITH PASSWORD 'SCRAM-SHA-256$4096:"),
            "log_statement=all shows no verifier, so this test proves nothing:\n{log}"
        );
        assert!(
            !log.contains(&secret),
            "the password is in PostgreSQL's log:\n{log}"
        );
        assert!(
            !text(&output).contains(&secret),
            "the script printed the password"
        );

        // The verifier is PostgreSQL's own kind, and the password logs in with it.
        let stored = pg.sql(&format!(
            "SELECT rolpassword FROM pg_authid WHERE rolname = '{ROLE}'"
        ));
        assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
        let login = pg.login(ROLE, &secret);
        assert!(
            login.status.success(),
            "login with the password: {}",
            text(&login)
        );
        let wrong = pg.login(ROLE, "not-the-password");
        assert!(!wrong.status.success(), "a wrong password logged in");

        // The env file the container reads, podman style: KEY=value, no quotes, root only.
        let env = fs::read_to_string(state.path("storage.env")).unwrap();
        assert_eq!(env, format!("PS_STORAGE_PASSWORD={secret}\n"));
        let mode = fs::metadata(state.path("storage.env")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            mode.permissions().mode() & 0o077,
            0,
            "storage.env is readable by others"
        );
    }

    #[test]
    fn a_plaintext_alter_role_would_be_logged() {
        // The control: what the module did before, on the same server and logging, shows in the log.
        let pg = Postgres::start(100);
        pg.sql(&format!("CREATE ROLE {ROLE} LOGIN"));
        pg.sql(&format!(
            "ALTER ROLE {ROLE} WITH PASSWORD 'plaintext-Secret-42'"
        ));
        assert!(pg.log().contains("plaintext-Secret-42"));
    }
}

mod proxy {
    use super::*;

    /// What lib (the module's source of both) says, with real Nix: web-arm's default limit (one unified
    /// runner and the compaction at the service's default pool size) and the `--connections-max` the proxy
    /// unit passes for it.
    fn module_limit() -> (u32, u32) {
        let [limit, flag]: [u32; 2] = serde_json::from_value(lib_eval(
            "let limit = lib.storageProxyLimit { processes = 2; maxPoolSize = null; }; \
             in [limit (lib.proxydConnectionsMaxFor limit)]",
        ))
        .unwrap();
        (limit, flag)
    }

    /// systemd-socket-proxyd, socket-activated on 127.0.0.1 and forwarding to PostgreSQL's Unix socket, as
    /// powersync-storage-proxy.{socket,service} do; `limit` None runs it with its built-in default (256).
    struct Proxy {
        child: Child,
        port: u16,
    }

    impl Proxy {
        fn start(pg: &Postgres, limit: Option<u32>) -> Proxy {
            require("systemd-socket-activate", "systemd");
            require("/lib/systemd/systemd-socket-proxyd", "systemd");
            let port = free_port();
            let mut command = Command::new("systemd-socket-activate");
            command
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg("/lib/systemd/systemd-socket-proxyd");
            if let Some(limit) = limit {
                command.arg(format!("--connections-max={limit}"));
            }
            let child = command
                .arg(pg.socket())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            wait_for_port(port);
            Proxy { child, port }
        }

        /// A client that opens a connection, sends its startup packet as the storage role, and then stalls in
        /// the SCRAM exchange: the server holds a connection slot for it until authentication_timeout.
        fn stalled_handshake(&self) -> Option<TcpStream> {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            let mut body = Vec::new();
            body.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
            for part in ["user", ROLE, "database", "postgres"] {
                body.extend_from_slice(part.as_bytes());
                body.push(0);
            }
            body.push(0);
            let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
            packet.extend_from_slice(&body);
            stream.write_all(&packet).ok()?;
            // 'R' = an authentication request: the server now holds a backend slot for us.
            let mut kind = [0u8; 1];
            match stream.read(&mut kind) {
                Ok(1) if kind[0] == b'R' => Some(stream),
                _ => None,
            }
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Opens `attempts` stalled handshakes through the proxy, then asks whether another service on the host
    /// can still log in to PostgreSQL directly. Returns (handshakes held, that login's output).
    fn flood(limit: Option<u32>, attempts: usize) -> (usize, Output) {
        let pg = Postgres::start(100);
        pg.sql(&format!("CREATE ROLE {ROLE} LOGIN PASSWORD 'storage-Pw-1'"));
        pg.sql("CREATE ROLE other_service LOGIN PASSWORD 'other-Pw-1'");
        let proxy = Proxy::start(&pg, limit);
        let held: Vec<TcpStream> = (0..attempts)
            .filter_map(|_| proxy.stalled_handshake())
            .collect();
        let login = pg.login("other_service", "other-Pw-1");
        let count = held.len();
        for stream in held {
            let _ = stream.shutdown(Shutdown::Both);
        }
        (count, login)
    }

    #[test]
    fn stalled_handshakes_through_the_proxy_leave_postgresql_usable() {
        let (limit, flag) = module_limit();
        assert!(
            limit < 100 - 3,
            "the limit must leave slots of a default max_connections = 100"
        );
        let (held, login) = flood(Some(flag), 120);
        // Exactly the limit: as many as the service may open (the module refuses less), and no more.
        assert_eq!(
            held, limit as usize,
            "{held} handshakes got through a limit of {limit} (--connections-max={flag})"
        );
        assert!(
            login.status.success(),
            "another service could not log in: {}",
            text(&login)
        );
    }

    #[test]
    fn without_a_limit_they_exhaust_it() {
        // The control: the proxy as the module ran it before, with systemd-socket-proxyd's default of 256.
        let (held, login) = flood(None, 120);
        assert!(
            held >= 97,
            "only {held} handshakes held, so the flood proves nothing"
        );
        assert!(!login.status.success(), "PostgreSQL still had a slot");
        assert!(
            text(&login).contains("too many clients"),
            "unexpected failure: {}",
            text(&login)
        );
    }
}

/// The script as the module installs it (lib/script.nix, writeShellApplication with its runtimeEnv).
#[test]
fn the_set_password_script_passes_shellcheck_as_the_module_embeds_it() {
    assert_shellcheck_clean(
        &storage_dir().join("set-password.sh"),
        &[
            ("ENV_FILE", "/var/lib/powersync/storage.env"),
            ("PGPORT", "5432"),
            ("ROLE", ROLE),
            ("SCRAM_VERIFIER", "/nix/store/x-powersync-scram-verifier"),
            ("STATE_DIR", "/var/lib/powersync"),
        ],
    );
}

//! A real OCI registry for the bump tests and `cargo xtask bench`: Debian's `docker-registry` (CNCF distribution) on 127.0.0.1 with
//! a throwaway config, filled through the registry API with small blobs, per-platform manifests and indexes
//! (once: a test's registry starts on a copy of that storage, see [`LocalRegistry::seeded`]);
//! and, in front of it, a small proxy that demands an anonymous bearer token the way Docker Hub does, counts
//! requests and connections, and can misbehave on demand: refuse the token, rate-limit, fail, alter manifest
//! bytes, send tag-list pages to another host or round in a loop, redirect manifests to another host, stall
//! (slow-loris), send an oversize body; and, for issue 19, serve edited index entries, lie in HEAD answers, drop
//! or change the digest header, gzip unasked, rate-limit with a Retry-After, serve thousands of tags or endless
//! empty pages. It records each connection's source address, so a test can tell a forward proxy's connections
//! from direct ones. It runs in two shapes: one request per connection (Connection: close),
//! or a keep-alive server that writes the head and the body of each response separately without TCP_NODELAY,
//! the shape whose Nagle delay meets a client's delayed ACK; the latter also over TLS, with a throwaway CA made
//! by `openssl`.

use std::{
    collections::HashMap,
    fs,
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use ureq::rustls::{
    self,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
};

use crate::{cache, tools::Tool};

pub const DOCKER_REGISTRY: Tool = Tool {
    program: "docker-registry",
    install: "`apt-get install docker-registry` (in `nix develop` it is `registry`, from nixpkgs' distribution)",
};
pub const OPENSSL: Tool = Tool {
    program: "openssl",
    install: "`apt-get install openssl`",
};
/// The same program under nixpkgs' name.
const NIX_REGISTRY: Tool = Tool {
    program: "registry",
    install: "",
};

const TOKEN: &str = "anonymous-test-token";

/// Debian's registry, or nixpkgs' where only that is installed.
fn registry_program() -> &'static Tool {
    if NIX_REGISTRY.require().is_ok() && DOCKER_REGISTRY.require().is_err() {
        &NIX_REGISTRY
    } else {
        DOCKER_REGISTRY.require().unwrap();
        &DOCKER_REGISTRY
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

pub struct LocalRegistry {
    child: Child,
    pub url: String,
    dir: PathBuf,
}

/// A push a [`LocalRegistry::seeded`] registry starts with.
#[derive(Debug)]
pub enum Push {
    /// [`LocalRegistry::push_release_history`] into this repository.
    History(&'static str),
    /// [`LocalRegistry::push_index`]: repository, tag, label, architectures.
    Index(
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    ),
    /// [`LocalRegistry::push_single`]: repository, tag, label.
    Single(&'static str, &'static str, &'static str),
}

/// Where a registry keeps what is pushed to it.
enum Storage {
    /// A new directory of its own.
    Empty,
    /// Its own copy of this directory.
    CopyOf(PathBuf),
    /// This directory itself.
    At(PathBuf),
}

impl LocalRegistry {
    /// An empty registry.
    pub fn start() -> LocalRegistry {
        LocalRegistry::start_on(Storage::Empty)
    }

    /// A registry holding what `pushes` push, and each pushed tag's digest by `repository:tag`. The pushes
    /// go once into a registry whose storage is kept on disk (see cache.rs), since pushing is most of a
    /// registry's work in a test; each call starts the same real registry on its own copy of that storage, so
    /// a test may push more without touching another's.
    pub fn seeded(pushes: &[Push]) -> (LocalRegistry, HashMap<String, String>) {
        let name = format!(
            "registry-{}",
            cache::key(&[
                include_bytes!("registry.rs"),
                format!("{pushes:?}").as_bytes(),
                cache::program_identity(registry_program()).as_bytes(),
            ])
        );
        let seed = cache::made_once(&name, |dir| {
            let mut registry = LocalRegistry::start_on(Storage::At(dir.join("data")));
            let mut digests = HashMap::new();
            for push in pushes {
                match *push {
                    Push::History(repo) => {
                        for (tag, digest) in registry.push_release_history(repo) {
                            digests.insert(format!("{repo}:{tag}"), digest);
                        }
                    }
                    Push::Index(repo, tag, label, arches) => {
                        let digest = registry.push_index(repo, tag, label, arches);
                        digests.insert(format!("{repo}:{tag}"), digest);
                    }
                    Push::Single(repo, tag, label) => {
                        let digest = registry.push_single(repo, tag, label);
                        digests.insert(format!("{repo}:{tag}"), digest);
                    }
                }
            }
            // Stopped before the storage is complete on disk for others to copy.
            let _ = registry.child.kill();
            let _ = registry.child.wait();
            fs::write(
                dir.join("digests.json"),
                serde_json::to_vec(&digests).unwrap(),
            )
            .unwrap();
        });
        let digests =
            serde_json::from_slice(&fs::read(seed.join("digests.json")).unwrap()).unwrap();
        let registry = LocalRegistry::start_on(Storage::CopyOf(seed.join("data")));
        (registry, digests)
    }

    fn start_on(storage: Storage) -> LocalRegistry {
        let program = registry_program();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-registry-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).unwrap();
        let storage = match storage {
            Storage::Empty => dir.join("data"),
            Storage::CopyOf(seed) => {
                cache::copy_tree(&seed, &dir.join("data"));
                dir.join("data")
            }
            Storage::At(storage) => storage,
        };
        let port = free_port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new(program.program)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let registry = LocalRegistry {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while ureq::get(&format!("{}/v2/", registry.url)).call().is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not come up on {}",
                registry.url
            );
            thread::sleep(Duration::from_millis(10));
        }
        registry
    }

    fn push_blob(&self, repo: &str, bytes: &[u8]) -> Value {
        let digest = sha256(bytes);
        let started = ureq::post(&format!("{}/v2/{repo}/blobs/uploads/", self.url))
            .call()
            .unwrap();
        let location = started.header("location").unwrap().to_string();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.url)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        ureq::put(&format!("{location}{separator}digest={digest}"))
            .set("Content-Type", "application/octet-stream")
            .send_bytes(bytes)
            .unwrap();
        json!({ "digest": digest, "size": bytes.len() })
    }

    /// Pushes `manifest` under `reference` and returns its bytes' digest.
    fn push_manifest(&self, repo: &str, reference: &str, manifest: &Value) -> (String, usize) {
        let bytes = serde_json::to_vec(manifest).unwrap();
        let media_type = manifest["mediaType"].as_str().unwrap();
        ureq::put(&format!("{}/v2/{repo}/manifests/{reference}", self.url))
            .set("Content-Type", media_type)
            .send_bytes(&bytes)
            .unwrap();
        (sha256(&bytes), bytes.len())
    }

    /// One image manifest for `arch`, with its own config and layer blobs; returns (digest, size).
    fn push_image(&self, repo: &str, label: &str, arch: &str) -> (String, usize) {
        let config = self.push_blob(
            repo,
            json!({"architecture": arch, "os": "linux", "label": label})
                .to_string()
                .as_bytes(),
        );
        let layer = self.push_blob(repo, format!("layer of {label} for {arch}").as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": config["digest"], "size": config["size"] },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer["digest"], "size": layer["size"] }],
        });
        let digest = sha256(&serde_json::to_vec(&manifest).unwrap());
        self.push_manifest(repo, &digest, &manifest)
    }

    /// A multi-arch index for `arches` under `tag`; returns the index digest (what a bump must pin).
    pub fn push_index(&self, repo: &str, tag: &str, label: &str, arches: &[&str]) -> String {
        let manifests: Vec<Value> = arches
            .iter()
            .map(|arch| {
                let (digest, size) = self.push_image(repo, label, arch);
                json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": digest, "size": size,
                    "platform": { "architecture": arch, "os": "linux" },
                })
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        self.push_manifest(repo, tag, &index).0
    }

    /// A release history like the real one's, in `repo`: 1.26.1, 1.26.2, 1.26.3, 1.26.4-next, 1.27.0, 2.0.0
    /// and latest (the same index as 2.0.0), each a multi-arch index. Returns each tag's index digest.
    pub fn push_release_history(&self, repo: &str) -> HashMap<&'static str, String> {
        let mut digests = HashMap::new();
        for tag in [
            "1.26.1",
            "1.26.2",
            "1.26.3",
            "1.26.4-next",
            "1.27.0",
            "2.0.0",
        ] {
            digests.insert(tag, self.push_index(repo, tag, tag, &["amd64", "arm64"]));
        }
        digests.insert(
            "latest",
            self.push_index(repo, "latest", "2.0.0", &["amd64", "arm64"]),
        );
        digests
    }

    /// A single-platform manifest under `tag`.
    pub fn push_single(&self, repo: &str, tag: &str, label: &str) -> String {
        let (digest, _) = self.push_image(repo, label, "amd64");
        let response = ureq::get(&format!("{}/v2/{repo}/manifests/{digest}", self.url))
            .set("Accept", "application/vnd.oci.image.manifest.v1+json")
            .call()
            .unwrap();
        let manifest: Value = serde_json::from_reader(response.into_reader()).unwrap();
        self.push_manifest(repo, tag, &manifest).0
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    None,
    DenyToken,
    RateLimit,
    ServerError,
    TamperManifests,
    /// Tag-list pages link to this other origin for the next page.
    CrossHostLink(String),
    /// Every tag-list page links to itself.
    LinkLoop,
    /// Manifest GETs are redirected (307) to this other origin.
    RedirectManifests(String),
    /// Authorized requests get a head that trickles out a byte every 200 ms and never ends.
    SlowLoris,
    /// Authorized requests get a whole head, then a body that trickles out a byte every 200 ms.
    SlowBody,
    /// Manifest GETs get a 5 MiB body (with its own correct digest).
    OversizeManifests,
    /// Index manifests are served edited, with the digest of the edited bytes.
    EditIndex(IndexEdit),
    /// Manifest HEADs answer with this digest whatever the tag (GETs stay honest).
    LyingHead(String),
    /// Manifests come without a Docker-Content-Digest.
    NoDigestHeader,
    /// Manifests come with a sha512 Docker-Content-Digest.
    Sha512Digest,
    /// Manifests come gzip-compressed (Content-Encoding: gzip) though the client asked for no encoding.
    GzipManifests,
    /// Authorized requests get 429 with this Retry-After until the instant passes.
    RateLimitUntil(Instant, String),
    /// The tag list also holds this many old tags (0.1.N).
    ExtraTags(usize),
    /// Every tag-list page is empty and links to a new next page, each after 10 ms (a registry across a
    /// network takes at least that), so a client that follows them spends its deadline waiting, not spinning.
    EndlessPages,
}

/// How [`Fault::EditIndex`] changes an index.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexEdit {
    /// Served with an image manifest's Content-Type, the document unchanged.
    LabelledAsImage,
    /// Without its mediaType field, served as application/json.
    Unlabelled,
    /// This field of the linux/arm64 entry set to this value.
    Arm64Entry(&'static str, Value),
}

/// How the front holds connections.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Front {
    /// One request per connection (Connection: close), each response in one write.
    Closing,
    /// Keep-alive, TCP_NODELAY off, the head and the body of a response in two writes.
    KeepAliveNagle,
    /// The same over TLS, with a certificate for 127.0.0.1 from a [`TestCa`].
    TlsKeepAliveNagle,
}

/// A throwaway CA and a certificate for 127.0.0.1 it signed, made with `openssl`; `ca` is what a client trusts.
/// Made once a day (see cache.rs) and valid for two, so a test never meets an expired one.
pub struct TestCa {
    pub ca: PathBuf,
    server: Arc<rustls::ServerConfig>,
}

impl TestCa {
    pub fn generate() -> TestCa {
        OPENSSL.require().unwrap();
        let day = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400;
        let key = cache::key(&[
            include_bytes!("registry.rs"),
            cache::program_identity(&OPENSSL).as_bytes(),
        ]);
        let dir = cache::made_once(&format!("ca-{day}-{key}"), |dir| {
            let ec = [
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ];
            let openssl = |args: &[&str]| {
                let output = Command::new("openssl")
                    .args(args)
                    .current_dir(dir)
                    .output()
                    .unwrap();
                assert!(
                    output.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            };
            openssl(
                &[
                    &["req", "-x509"],
                    &ec[..],
                    &[
                        "-keyout",
                        "ca.key",
                        "-out",
                        "ca.pem",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=xtask test CA",
                    ],
                ]
                .concat(),
            );
            openssl(
                &[
                    &["req"],
                    &ec[..],
                    &[
                        "-keyout",
                        "server.key",
                        "-out",
                        "server.csr",
                        "-subj",
                        "/CN=127.0.0.1",
                    ],
                ]
                .concat(),
            );
            fs::write(
                dir.join("server.ext"),
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ]);
        });
        // Earlier days' CAs, expired or about to be; none is in use by a test that started today.
        cache::remove_older(dir.parent().unwrap(), "ca-", day.saturating_sub(2));
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join("server.pem"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let server = rustls::ServerConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        TestCa {
            ca: dir.join("ca.pem"),
            server: Arc::new(server),
        }
    }
}

/// A front's side of a connection: a socket, or TLS over one.
trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

/// The token-demanding, request-counting, fault-injecting front of a [`LocalRegistry`].
pub struct Proxy {
    pub url: String,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    peers: Arc<Mutex<Vec<std::net::IpAddr>>>,
    fault: Arc<Mutex<Fault>>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        Proxy::start_front(upstream, Front::Closing)
    }

    pub fn start_front(upstream: &str, front: Front) -> Proxy {
        assert_ne!(front, Front::TlsKeepAliveNagle, "use start_tls");
        Proxy::start_inner(upstream, front, None)
    }

    /// A keep-alive TLS front without TCP_NODELAY, its certificate from `ca`.
    pub fn start_tls(upstream: &str, ca: &TestCa) -> Proxy {
        Proxy::start_inner(upstream, Front::TlsKeepAliveNagle, Some(ca.server.clone()))
    }

    fn start_inner(upstream: &str, front: Front, tls: Option<Arc<rustls::ServerConfig>>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let fault = Arc::new(Mutex::new(Fault::None));
        let peers = Arc::new(Mutex::new(Vec::new()));
        let (upstream, own, count, opened, mode, seen) = (
            upstream.to_string(),
            url.clone(),
            requests.clone(),
            connections.clone(),
            fault.clone(),
            peers.clone(),
        );
        // The threads end with the test process; one per connection, so a stalled one holds no other.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                opened.fetch_add(1, Ordering::SeqCst);
                if let Ok(peer) = stream.peer_addr() {
                    seen.lock().unwrap().push(peer.ip());
                }
                let (upstream, own, count, mode, tls) = (
                    upstream.clone(),
                    own.clone(),
                    count.clone(),
                    mode.clone(),
                    tls.clone(),
                );
                thread::spawn(move || {
                    let _ = stream.set_nodelay(front == Front::Closing);
                    let conn: Box<dyn Conn> = match tls {
                        None => Box::new(stream),
                        Some(config) => {
                            let Ok(session) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            Box::new(rustls::StreamOwned::new(session, stream))
                        }
                    };
                    let mut reader = BufReader::new(conn);
                    loop {
                        let Ok(Some(request)) = read_request(&mut reader) else {
                            return;
                        };
                        count.fetch_add(1, Ordering::SeqCst);
                        let fault = mode.lock().unwrap().clone();
                        let out = Out {
                            stream: reader.get_mut(),
                            front,
                        };
                        if serve(out, &request, &upstream, &own, &fault).is_err()
                            || front == Front::Closing
                        {
                            return;
                        }
                    }
                });
            }
        });
        Proxy {
            url,
            requests,
            connections,
            peers,
            fault,
        }
    }

    /// The source address of every connection so far (a forward proxy bound elsewhere shows here).
    pub fn peers(&self) -> Vec<std::net::IpAddr> {
        self.peers.lock().unwrap().clone()
    }

    pub fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn reset_requests(&self) {
        self.requests.store(0, Ordering::SeqCst);
        self.connections.store(0, Ordering::SeqCst);
        self.peers.lock().unwrap().clear();
    }
}

type Headers = Vec<(String, String)>;

/// Another origin that records what reaches it: the place a hostile registry would send a token.
pub struct Collector {
    pub url: String,
    seen: Arc<Mutex<Vec<Headers>>>,
}

impl Collector {
    pub fn start() -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                if let Ok(Some(request)) = read_request(&mut reader) {
                    record.lock().unwrap().push(request.headers.clone());
                    let out = Out {
                        stream: reader.get_mut(),
                        front: Front::Closing,
                    };
                    let _ = out.respond(200, &[], b"{\"tags\":[\"9.9.9\"]}", false);
                }
            }
        });
        Collector { url, seen }
    }

    /// The headers of every request that reached it.
    pub fn requests(&self) -> Vec<Headers> {
        self.seen.lock().unwrap().clone()
    }
}

struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The next request on a connection, or None when the client closed it.
fn read_request<R: Read>(reader: &mut BufReader<R>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    // A client inside a proxy's CONNECT tunnel may send the absolute form (RFC 9112 §3.2.2), which a server
    // must accept: keep the path and query.
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    }
    .to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((key, value)) = header.split_once(':') {
            headers.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    Ok(Some(Request {
        method,
        target,
        headers,
    }))
}

struct Out<'a> {
    stream: &'a mut dyn Write,
    front: Front,
}

impl Out<'_> {
    fn respond(
        self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
        head: bool,
    ) -> std::io::Result<()> {
        let connection = match self.front {
            Front::Closing => "close",
            Front::KeepAliveNagle | Front::TlsKeepAliveNagle => "keep-alive",
        };
        let mut out = format!(
            "HTTP/1.1 {status} X\r\nConnection: {connection}\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (key, value) in headers {
            out.push_str(&format!("{key}: {value}\r\n"));
        }
        out.push_str("\r\n");
        match self.front {
            Front::Closing => {
                let mut all = out.into_bytes();
                if !head {
                    all.extend_from_slice(body);
                }
                self.stream.write_all(&all)?;
            }
            Front::KeepAliveNagle | Front::TlsKeepAliveNagle => {
                // Two writes, as a server that streams its head before its body does.
                self.stream.write_all(out.as_bytes())?;
                if !head && !body.is_empty() {
                    self.stream.write_all(body)?;
                }
            }
        }
        self.stream.flush()
    }

    /// A whole head announcing a large body, then the body one byte every 200 ms until the client gives up.
    fn trickle_body(self) -> std::io::Result<()> {
        self.stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
        )?;
        self.stream.flush()?;
        loop {
            thread::sleep(Duration::from_millis(200));
            self.stream.write_all(b" ")?;
            self.stream.flush()?;
        }
    }

    /// A head that never finishes: one byte every 200 ms until the client gives up.
    fn trickle(self) -> std::io::Result<()> {
        self.stream.write_all(b"HTTP/1.1 200 OK\r\n")?;
        loop {
            thread::sleep(Duration::from_millis(200));
            self.stream.write_all(b"X")?;
        }
    }
}

fn serve(
    out: Out,
    request: &Request,
    upstream: &str,
    own: &str,
    fault: &Fault,
) -> std::io::Result<()> {
    let head = request.method == "HEAD";
    if request.target.starts_with("/token") {
        let scoped = request.target.contains("service=test-registry")
            && request.target.contains("scope=repository");
        if *fault == Fault::DenyToken || !scoped {
            return out.respond(
                401,
                &[],
                b"{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}",
                false,
            );
        }
        return out.respond(
            200,
            &[],
            json!({ "token": TOKEN, "expires_in": 300 })
                .to_string()
                .as_bytes(),
            false,
        );
    }
    let authorized = request.header("authorization") == Some(&format!("Bearer {TOKEN}"));
    if !authorized {
        let repo = request
            .target
            .trim_start_matches("/v2/")
            .split("/tags/")
            .next()
            .unwrap_or_default();
        let repo = repo.split("/manifests/").next().unwrap_or_default();
        let challenge = format!(
            "Bearer realm=\"{own}/token\",service=\"test-registry\",scope=\"repository:{repo}:pull\""
        );
        return out.respond(401, &[("WWW-Authenticate".into(), challenge)], b"{}", head);
    }
    let manifest_get = request.target.contains("/manifests/") && !head;
    let tag_list = request.target.contains("/tags/list?");
    match fault {
        Fault::RateLimit => {
            return out.respond(429, &[("Retry-After".into(), "30".into())], b"{}", head)
        }
        Fault::RateLimitUntil(until, retry_after) if Instant::now() < *until => {
            return out.respond(
                429,
                &[("Retry-After".into(), retry_after.clone())],
                b"{}",
                head,
            )
        }
        Fault::LyingHead(digest) if head && request.target.contains("/manifests/") => {
            let headers = [("Docker-Content-Digest".to_string(), digest.clone())];
            return out.respond(200, &headers, b"", true);
        }
        Fault::ServerError => return out.respond(503, &[], b"{}", head),
        Fault::SlowLoris => return out.trickle(),
        Fault::SlowBody => return out.trickle_body(),
        Fault::RedirectManifests(other) if manifest_get => {
            let location = format!("{other}{}", request.target);
            return out.respond(307, &[("Location".into(), location)], b"", head);
        }
        Fault::EndlessPages if tag_list => {
            thread::sleep(Duration::from_millis(10));
            let empty = json!({ "name": "endless", "tags": [] }).to_string();
            let next = format!("<{}x>; rel=\"next\"", request.target);
            return out.respond(200, &[("Link".into(), next)], empty.as_bytes(), head);
        }
        Fault::OversizeManifests if manifest_get => {
            let body = vec![b' '; 5 << 20];
            let digest = ("Docker-Content-Digest".to_string(), sha256(&body));
            return out.respond(200, &[digest], &body, head);
        }
        _ => {}
    }
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut forwarded = agent.request(&request.method, &format!("{upstream}{}", request.target));
    if let Some(accept) = request.header("accept") {
        forwarded = forwarded.set("Accept", accept);
    }
    let response = match forwarded.call() {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(error) => return out.respond(502, &[], error.to_string().as_bytes(), head),
    };
    let status = response.status();
    let mut headers: Vec<(String, String)> = ["Content-Type", "Docker-Content-Digest", "Link"]
        .iter()
        .filter_map(|name| {
            response
                .header(name)
                .map(|value| (name.to_string(), value.to_string()))
        })
        .collect();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body)?;
    if status == 200 && tag_list {
        let next = match fault {
            Fault::LinkLoop => Some(request.target.clone()),
            Fault::CrossHostLink(other) => Some(format!("{other}{}", request.target)),
            _ => None,
        };
        let list: Value = serde_json::from_slice(&body).unwrap_or_default();
        let mut tags: Vec<String> = list["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        if let Fault::ExtraTags(count) = fault {
            tags.extend((0..*count).map(|n| format!("0.1.{n}")));
        }
        return respond_page(out, &request.target, list, tags, head, next);
    }
    if *fault == Fault::TamperManifests && manifest_get {
        // Still valid JSON, different bytes: only the digest check can tell.
        body.extend_from_slice(b"\n");
    }
    if status == 200 && manifest_get {
        edit_manifest(fault, &mut headers, &mut body);
    }
    out.respond(status, &headers, &body, head)
}

/// The manifest faults that change what a GET returns.
fn edit_manifest(fault: &Fault, headers: &mut Vec<(String, String)>, body: &mut Vec<u8>) {
    let set = |headers: &mut Vec<(String, String)>, name: &str, value: String| {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        headers.push((name.to_string(), value));
    };
    match fault {
        Fault::EditIndex(edit) => {
            let mut index: Value = serde_json::from_slice(body).unwrap();
            if !index["manifests"].is_array() {
                return;
            }
            match edit {
                IndexEdit::LabelledAsImage => set(
                    headers,
                    "Content-Type",
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                IndexEdit::Unlabelled => {
                    index.as_object_mut().unwrap().remove("mediaType");
                    *body = serde_json::to_vec(&index).unwrap();
                    set(headers, "Content-Type", "application/json".into());
                }
                IndexEdit::Arm64Entry(field, value) => {
                    for entry in index["manifests"].as_array_mut().unwrap() {
                        if entry["platform"]["architecture"] == "arm64" {
                            entry[*field] = value.clone();
                        }
                    }
                    *body = serde_json::to_vec(&index).unwrap();
                }
            }
            set(headers, "Docker-Content-Digest", sha256(body));
        }
        Fault::NoDigestHeader => headers.retain(|(k, _)| k != "Docker-Content-Digest"),
        Fault::Sha512Digest => set(
            headers,
            "Docker-Content-Digest",
            format!("sha512:{:x}", sha2::Sha512::digest(&body[..])),
        ),
        Fault::GzipManifests => {
            let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gzip.write_all(body).unwrap();
            *body = gzip.finish().unwrap();
            set(headers, "Content-Encoding", "gzip".into());
        }
        _ => {}
    }
}

/// Distribution 2.8 ignores `n` on tag lists (paging arrived in v3); Docker Hub pages them. So the proxy pages
/// the full list itself as the spec says: sorted, after `last`, at most `n`, with a `Link: rel="next"`.
/// `list` is the registry's answer, whose `tags` are `tags`; `next` overrides the page's own next link (a
/// hostile registry's).
fn respond_page(
    out: Out,
    target: &str,
    mut list: Value,
    mut tags: Vec<String>,
    head: bool,
    next: Option<String>,
) -> std::io::Result<()> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |name: &str| {
        query.split('&').find_map(|pair| {
            pair.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('='))
                .map(str::to_owned)
        })
    };
    let page_size: usize = param("n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    let last = param("last");
    tags.retain(|tag| last.as_ref().is_none_or(|last| tag > last));
    tags.sort_unstable();
    let rest = tags.len();
    tags.truncate(page_size);
    let page = tags;
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    if let Some(next) = next {
        headers.push(("Link".to_string(), format!("<{next}>; rel=\"next\"")));
    } else if rest > page.len() {
        let next = format!(
            "<{path}?last={}&n={page_size}>; rel=\"next\"",
            page.last().unwrap()
        );
        headers.push(("Link".to_string(), next));
    }
    list["tags"] = json!(page);
    out.respond(200, &headers, list.to_string().as_bytes(), head)
}

//! The network a bump runs in, read as curl reads it: a forward proxy per URL scheme from the environment
//! (`https_proxy`/`HTTPS_PROXY`, `http_proxy`/`HTTP_PROXY`, `all_proxy`/`ALL_PROXY`, the lowercase name first)
//! minus the hosts `no_proxy`/`NO_PROXY` names; and TLS that trusts the system CA store beside the public web
//! roots (and a `--ca-file`). Unlike curl, the uppercase `HTTP_PROXY` is read too, as skopeo and other Go tools
//! do: curl ignores it for CGI scripts, whose request headers can set it, and a bump never runs as one.
//!
//! The system store is one PEM bundle, read here with rustls' own PEM reader: `SSL_CERT_FILE` when set (as
//! OpenSSL-based tools read it), else the first of the usual bundle paths (Debian's
//! /etc/ssl/certs/ca-certificates.crt, which NixOS also provides, then Fedora's, openSUSE's, Alpine's; the
//! list Go's crypto/x509 searches). `rustls-native-certs` would do the same through `openssl-probe` with two
//! more crates to build; its one addition, hashed `SSL_CERT_DIR` directories, is not worth them here.

use std::{
    io::{Read, Write},
    net::{IpAddr, TcpStream},
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use anyhow::{bail, Context, Result};
use ureq::{rustls, ReadWrite, TlsConnector};

use crate::tls::Roots;

/// Where distributions keep their CA bundle, most common first (the list Go's crypto/x509 searches on Linux).
const BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The environment variables a bump reads, captured once (tests pass their own).
#[derive(Clone, Debug, Default)]
pub struct Env(Vec<(String, String)>);

impl Env {
    pub fn from_process() -> Env {
        Env(std::env::vars().collect())
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env(pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// The first of `names` that is set and not empty (curl treats an empty variable as unset), with its name.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, &str)> {
        names.iter().find_map(|name| {
            self.0
                .iter()
                .find(|(key, value)| key == name && !value.is_empty())
                .map(|(_, value)| (*name, value.as_str()))
        })
    }
}

/// A forward proxy from the environment: ureq's handle, and how to name it without its credentials.
#[derive(Clone, Debug)]
pub struct Proxy {
    pub shown: String,
    pub variable: &'static str,
    proxy: ureq::Proxy,
}

/// How one URL is reached.
#[derive(Clone, Debug)]
pub enum Route {
    Direct(String),
    Via(Proxy),
}

impl Route {
    pub fn describe(&self) -> String {
        match self {
            Route::Direct(why) => format!("direct ({why})"),
            Route::Via(proxy) => format!("via proxy {} (from {})", proxy.shown, proxy.variable),
        }
    }

    /// The key agents are kept under: one agent per proxy, one for direct connections.
    pub fn key(&self) -> Option<&str> {
        match self {
            Route::Direct(_) => None,
            Route::Via(proxy) => Some(&proxy.shown),
        }
    }

    pub fn proxy(&self) -> Option<ureq::Proxy> {
        match self {
            Route::Direct(_) => None,
            Route::Via(proxy) => Some(proxy.proxy.clone()),
        }
    }
}

/// The proxy settings of the environment. A setting bump cannot use fails the requests it would carry, not
/// the others (an ALL_PROXY for SOCKS does not stop a bump that HTTPS_PROXY covers).
#[derive(Clone, Debug, Default)]
pub struct Proxies {
    https: Option<Result<Proxy, String>>,
    http: Option<Result<Proxy, String>>,
    all: Option<Result<Proxy, String>>,
    no_proxy: Option<(&'static str, String)>,
}

impl Proxies {
    pub fn from_env(env: &Env) -> Proxies {
        let proxy = |names: &[&'static str]| {
            env.first(names).map(|(variable, value)| {
                parse_proxy(variable, value).map_err(|error| format!("{error:#}"))
            })
        };
        Proxies {
            https: proxy(&["https_proxy", "HTTPS_PROXY"]),
            http: proxy(&["http_proxy", "HTTP_PROXY"]),
            all: proxy(&["all_proxy", "ALL_PROXY"]),
            no_proxy: env
                .first(&["no_proxy", "NO_PROXY"])
                .map(|(name, value)| (name, value.to_string())),
        }
    }

    /// How `url` is reached: its scheme's proxy (else all_proxy), unless no_proxy names its host.
    pub fn route(&self, url: &str) -> Result<Route> {
        let scheme_proxy = if url.starts_with("https://") {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        };
        let Some(proxy) = scheme_proxy.or(self.all.as_ref()) else {
            return Ok(Route::Direct("no proxy set for it".into()));
        };
        let host = host_of(url).unwrap_or_default();
        if let Some((variable, list)) = &self.no_proxy {
            if let Some(entry) = no_proxy_match(list, &host) {
                return Ok(Route::Direct(format!(
                    "{variable} entry `{entry}` matches {host}"
                )));
            }
        }
        match proxy {
            Ok(proxy) => Ok(Route::Via(proxy.clone())),
            Err(error) => bail!("{error}"),
        }
    }
}

/// `[http://][user:password@]host[:port][/]`, as curl takes it; a TLS or SOCKS proxy is refused by name.
fn parse_proxy(variable: &'static str, value: &str) -> Result<Proxy> {
    let (scheme, rest) = match value.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => ("http".to_string(), value),
    };
    let rest = rest.trim_end_matches('/');
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let shown = format!("{scheme}://{host_port}");
    if scheme != "http" {
        bail!(
            "{variable} names a {scheme}:// proxy ({shown}); bump speaks to HTTP proxies only (http://host:port)"
        );
    }
    if host_port.starts_with('[') || host_port.is_empty() || host_port.contains('/') {
        bail!(
            "{variable} = {shown} is not http://host:port (an IPv6 proxy address is not supported)"
        );
    }
    let proxy = ureq::Proxy::new(format!("http://{rest}"))
        .with_context(|| format!("{variable} = {shown} is not a proxy URL"))?;
    Ok(Proxy {
        shown,
        variable,
        proxy,
    })
}

/// The host of an absolute URL, lowercased, without brackets or port.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    Some(host.to_ascii_lowercase())
}

/// The no_proxy entry that exempts `host`, curl's rules: `*` exempts every host; an IP address or CIDR range
/// matches addresses; a name matches itself and its subdomains, a leading dot ignored; case does not matter.
fn no_proxy_match<'a>(list: &'a str, host: &str) -> Option<&'a str> {
    let address: Option<IpAddr> = host.parse().ok();
    list.split([',', ' ']).map(str::trim).find(|entry| {
        if entry.is_empty() {
            return false;
        }
        if *entry == "*" {
            return true;
        }
        let entry_lower = entry.to_ascii_lowercase();
        let bare = entry_lower.trim_start_matches('[').trim_end_matches(']');
        if let Some(address) = address {
            return match bare.split_once('/') {
                Some((network, bits)) => in_cidr(address, network, bits),
                None => bare.parse::<IpAddr>().is_ok_and(|ip| ip == address),
            };
        }
        let name = bare.trim_start_matches('.');
        host == name || host.ends_with(&format!(".{name}"))
    })
}

fn in_cidr(address: IpAddr, network: &str, bits: &str) -> bool {
    let (Ok(network), Ok(bits)) = (network.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The system CA bundle: SSL_CERT_FILE when set (an error if it cannot be read), else the first bundle found.
pub fn system_bundle(env: &Env) -> Result<Option<(PathBuf, String)>> {
    if let Some((variable, file)) = env.first(&["SSL_CERT_FILE"]) {
        std::fs::metadata(file).with_context(|| format!("{variable} = {file} cannot be read"))?;
        return Ok(Some((PathBuf::from(file), format!("{variable} {file}"))));
    }
    Ok(BUNDLES
        .iter()
        .find(|path| Path::new(path).is_file())
        .map(|path| (PathBuf::from(path), format!("the system store {path}"))))
}

/// What TLS trusts: the public web roots ureq ships, the system bundle and --ca-file. Built on the first TLS
/// connection, so a bump over plain HTTP never reads a bundle.
pub struct Trust {
    system: Option<(PathBuf, String)>,
    extra: Option<Roots>,
    verbose: bool,
    config: OnceLock<Arc<rustls::ClientConfig>>,
}

impl Trust {
    pub fn new(system: Option<(PathBuf, String)>, extra: Option<Roots>, verbose: bool) -> Trust {
        Trust {
            system,
            extra,
            verbose,
            config: OnceLock::new(),
        }
    }

    fn config(&self) -> std::io::Result<Arc<rustls::ClientConfig>> {
        if let Some(config) = self.config.get() {
            return Ok(config.clone());
        }
        let mut roots = Roots::public();
        let mut from_system = 0;
        if let Some((path, _)) = &self.system {
            let bundle = Roots::bundle(path)?;
            from_system = bundle.len();
            roots = roots.and(&bundle);
        }
        let mut from_file = 0;
        if let Some(extra) = &self.extra {
            from_file = extra.len();
            roots = roots.and(extra);
        }
        if self.verbose {
            let system = self
                .system
                .as_ref()
                .map_or("no system store found".into(), |(_, from)| {
                    format!("{from_system} CAs from {from}")
                });
            eprintln!(
                "bump: TLS trusts the public web roots, {system} and {from_file} CAs from --ca-file"
            );
        }
        Ok(self.config.get_or_init(|| roots.client_config()).clone())
    }
}

/// rustls over a socket that asks for an immediate ACK before every read. A server that writes a response's
/// head and body separately without TCP_NODELAY holds the body (Nagle) until the head is acknowledged, and on
/// a kept-alive connection Linux delays that ACK by about 40 ms; TCP_QUICKACK is not sticky, hence every read.
pub struct QuickAckTls(pub Arc<Trust>);

impl TlsConnector for QuickAckTls {
    fn connect(
        &self,
        dns_name: &str,
        io: Box<dyn ReadWrite>,
    ) -> Result<Box<dyn ReadWrite>, ureq::Error> {
        self.0.config()?.connect(dns_name, Box::new(QuickAck(io)))
    }
}

#[derive(Debug)]
struct QuickAck(Box<dyn ReadWrite>);

impl Read for QuickAck {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(socket) = self.0.socket() {
            quick_ack(socket);
        }
        self.0.read(buf)
    }
}

impl Write for QuickAck {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl ReadWrite for QuickAck {
    fn socket(&self) -> Option<&TcpStream> {
        self.0.socket()
    }
}

#[cfg(target_os = "linux")]
fn quick_ack(socket: &TcpStream) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, a pointer to a c_int and its size, as setsockopt(2) asks. A failure
    // only costs the delay this avoids, so it is ignored.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Only Linux has TCP_QUICKACK; elsewhere the delayed-ACK stall stays possible.
#[cfg(not(target_os = "linux"))]
fn quick_ack(_socket: &TcpStream) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(pairs: &[(&str, &str)], url: &str) -> String {
        Proxies::from_env(&Env::from_pairs(pairs))
            .route(url)
            .unwrap()
            .describe()
    }

    #[test]
    fn each_scheme_takes_its_own_proxy_lowercase_first_then_all_proxy() {
        let env = [
            ("HTTPS_PROXY", "http://upper:3128"),
            ("https_proxy", "lower:3128"),
            ("HTTP_PROXY", "http://plain:8080/"),
            ("ALL_PROXY", "http://all:1"),
        ];
        assert_eq!(
            route(&env, "https://registry-1.docker.io/v2/"),
            "via proxy http://lower:3128 (from https_proxy)"
        );
        assert_eq!(
            route(&env, "http://mirror:5000/v2/"),
            "via proxy http://plain:8080 (from HTTP_PROXY)"
        );
        assert_eq!(
            route(&[("ALL_PROXY", "http://all:1")], "https://x/"),
            "via proxy http://all:1 (from ALL_PROXY)"
        );
        assert_eq!(
            route(&[("HTTPS_PROXY", "")], "https://x/"),
            "direct (no proxy set for it)"
        );
    }

    #[test]
    fn no_proxy_follows_curl() {
        let with = |list: &str, url: &str| {
            route(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", list)], url)
        };
        let direct = |list: &str, url: &str| with(list, url).starts_with("direct");
        assert!(direct("*", "https://anything.example/"));
        assert!(direct("example.com", "https://example.com/"));
        assert!(direct("example.com", "https://registry.EXAMPLE.com:443/"));
        assert!(direct(".example.com", "https://example.com/"));
        assert!(!direct("example.com", "https://notexample.com/"));
        assert!(direct("localhost, 10.0.0.0/8", "https://10.1.2.3:5000/"));
        assert!(!direct("10.0.0.0/8", "https://11.1.2.3/"));
        assert!(direct("127.0.0.1", "https://127.0.0.1:5000/"));
        assert!(direct("::1", "https://[::1]:5000/"));
        assert!(direct("fd00::/8", "https://[fd12::1]/"));
        assert!(!direct("127.0.0.2", "https://127.0.0.1/"));
        assert_eq!(
            with("mirror.internal", "https://mirror.internal/"),
            "direct (NO_PROXY entry `mirror.internal` matches mirror.internal)"
        );
    }

    #[test]
    fn a_proxy_is_shown_without_its_credentials_and_odd_ones_are_refused() {
        assert_eq!(
            route(
                &[("HTTPS_PROXY", "http://alice:s3cret@proxy:3128")],
                "https://x/"
            ),
            "via proxy http://proxy:3128 (from HTTPS_PROXY)"
        );
        for (value, why) in [
            ("https://proxy:3128", "https:// proxy"),
            ("socks5://proxy:1080", "socks5:// proxy"),
            ("http://[::1]:3128", "IPv6"),
        ] {
            let err = format!(
                "{:#}",
                Proxies::from_env(&Env::from_pairs(&[("HTTPS_PROXY", value)]))
                    .route("https://x/")
                    .unwrap_err()
            );
            assert!(
                err.contains(why) && !err.contains("s3cret"),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn the_system_store_is_found_and_read() {
        let (path, from) = system_bundle(&Env::default())
            .unwrap()
            .expect("a CA bundle (apt-get install ca-certificates)");
        assert_eq!(from, format!("the system store {}", path.display()));
        let certificates = Roots::bundle(&path).unwrap();
        assert!(certificates.len() > 50, "{}", certificates.len());
        let err = format!(
            "{:#}",
            system_bundle(&Env::from_pairs(&[(
                "SSL_CERT_FILE",
                "/nonexistent/ca.pem"
            )]))
            .unwrap_err()
        );
        assert!(
            err.contains("SSL_CERT_FILE = /nonexistent/ca.pem cannot be read"),
            "{err}"
        );
    }
}

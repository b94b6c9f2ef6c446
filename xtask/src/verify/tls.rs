//! TLS for `verify`: one rustls client config (the public roots, or a CA file for test and staging
//! certificates; verification is never switched off), a handshake that hands back the server's chain, and
//! the two facts an operator wants from its leaf certificate: who issued it and when it expires.
//!
//! Why rustls and a small DER reader rather than `openssl s_client`/`openssl x509` or x509-parser: rustls
//! is already compiled for ureq (no new crate, no compile time), it verifies the chain exactly as the HTTP
//! checks do, and it leaves no run-time dependency on an openssl binary on the operator's machine. The two
//! fields need about a hundred lines of DER walking; x509-parser would add a dozen crates for them. The
//! tests hold this reader to openssl's own reading of the same certificates.

use std::{
    io,
    net::{TcpStream, ToSocketAddrs},
    path::Path,
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, format_err, Context, Result};
use rustls::pki_types::{CertificateDer, ServerName};

/// The client config every `verify` connection uses: the CA file's roots alone when one is given (test and
/// staging certificates), else the public roots.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let roots = match ca_file {
        Some(path) => crate::tls::Roots::ca_file(path)?,
        None => crate::tls::Roots::public(),
    };
    Ok(roots.client_config())
}

/// Completes a verified handshake with `host:port` and returns the chain the server sent, leaf first.
pub fn peer_chain(
    config: Arc<rustls::ClientConfig>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<CertificateDer<'static>>> {
    let name = ServerName::try_from(host.to_owned())
        .with_context(|| format!("{host} is not a valid TLS server name"))?;
    let mut connection = rustls::ClientConnection::new(config, name).context("start TLS")?;
    let mut socket = connect(host, port, timeout)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    while connection.is_handshaking() {
        connection
            .complete_io(&mut socket)
            .map_err(|error| handshake_error(&error))?;
    }
    let chain = connection
        .peer_certificates()
        .context("the server sent no certificate")?;
    Ok(chain.iter().map(|cert| cert.clone().into_owned()).collect())
}

/// The first of the host's addresses that accepts, as a browser would try them.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let mut last = None;
    for address in (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolve {host}"))?
    {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(socket) => return Ok(socket),
            Err(error) => last = Some(format!("{address}: {error}")),
        }
    }
    bail!(
        "connect to {host}:{port}: {}",
        last.unwrap_or_else(|| "no address".to_owned())
    )
}

/// rustls reports a refused certificate as an io::Error wrapping its own error; say that part plainly.
fn handshake_error(error: &io::Error) -> anyhow::Error {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(why)) => format_err!("certificate refused: {why:?}"),
        Some(other) => format_err!("TLS handshake failed: {other}"),
        None => format_err!("TLS handshake failed: {error}"),
    }
}

/// The leaf certificate's issuer (RFC 4514-like, `C=…, O=…, CN=…` in certificate order) and notAfter.
#[derive(Debug, PartialEq, Eq)]
pub struct Leaf {
    pub issuer: String,
    pub not_after: i64,
}

/// Reads issuer and notAfter out of a DER certificate (RFC 5280 §4.1).
pub fn leaf(der: &[u8]) -> Result<Leaf> {
    let mut certificate = Der::new(der).expect(0x30, "Certificate")?;
    let mut tbs = certificate.expect(0x30, "TBSCertificate")?;
    if tbs.peek() == Some(0xa0) {
        tbs.next_any("version")?;
    }
    tbs.expect(0x02, "serialNumber")?;
    tbs.expect(0x30, "signature")?;
    let issuer = name(tbs.expect(0x30, "issuer")?)?;
    let mut validity = tbs.expect(0x30, "validity")?;
    validity.next_any("notBefore")?;
    let (tag, not_after) = validity.next_any("notAfter")?;
    Ok(Leaf {
        issuer,
        not_after: time(tag, not_after.rest)?,
    })
}

/// A Name: SEQUENCE OF SET OF AttributeTypeAndValue; the attributes an operator recognises, in order.
fn name(mut sequence: Der) -> Result<String> {
    let mut parts = Vec::new();
    while !sequence.rest.is_empty() {
        let mut set = sequence.expect(0x31, "RelativeDistinguishedName")?;
        while !set.rest.is_empty() {
            let mut attribute = set.expect(0x30, "AttributeTypeAndValue")?;
            let oid = attribute.expect(0x06, "attribute type")?.rest;
            let (_, value) = attribute.next_any("attribute value")?;
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            parts.push(format!("{label}={}", String::from_utf8_lossy(value.rest)));
        }
    }
    Ok(parts.join(", "))
}

/// UTCTime (YYMMDDHHMMSSZ, 1950–2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), as seconds since the epoch.
fn time(tag: u8, bytes: &[u8]) -> Result<i64> {
    let text = std::str::from_utf8(bytes).context("certificate time is not text")?;
    let digits = text
        .strip_suffix('Z')
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .with_context(|| format!("unsupported certificate time {text:?}"))?;
    let number = |range: std::ops::Range<usize>| -> i64 { digits[range].parse().unwrap_or(0) };
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy = number(0..2);
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (0x18, 14) => (number(0..4), 4),
        _ => bail!("unsupported certificate time {text:?}"),
    };
    let field = |i: usize| number(rest + 2 * i..rest + 2 * i + 2);
    let days = days_from_civil(year, field(0), field(1));
    Ok(days * 86_400 + field(2) * 3_600 + field(3) * 60 + field(4))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date (YYYY-MM-DD) of a time in seconds since the epoch.
pub fn date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A cursor over DER: each read takes one TLV off the front.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Der<'a> {
        Der { rest: bytes }
    }

    fn peek(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn next_any(&mut self, what: &str) -> Result<(u8, Der<'a>)> {
        let malformed = || format_err!("malformed certificate at {what}");
        let (&tag, after_tag) = self.rest.split_first().ok_or_else(malformed)?;
        let (&first, mut after_length) = after_tag.split_first().ok_or_else(malformed)?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || after_length.len() < count {
                return Err(malformed());
            }
            let (bytes, after) = after_length.split_at(count);
            after_length = after;
            bytes.iter().fold(0, |n, &b| (n << 8) | usize::from(b))
        };
        if after_length.len() < length {
            return Err(malformed());
        }
        let (content, rest) = after_length.split_at(length);
        self.rest = rest;
        Ok((tag, Der { rest: content }))
    }

    fn expect(&mut self, tag: u8, what: &str) -> Result<Der<'a>> {
        let (found, content) = self.next_any(what)?;
        if found != tag {
            bail!("malformed certificate: {what} has tag {found:#04x}, not {tag:#04x}");
        }
        Ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        for (y, m, d, days) in [
            (1970, 1, 1, 0),
            (2000, 2, 29, 11_016),
            (2049, 12, 31, 29_219),
        ] {
            assert_eq!(days_from_civil(y, m, d), days);
            assert_eq!(date(days * 86_400 + 3_599), format!("{y:04}-{m:02}-{d:02}"));
        }
    }

    #[test]
    fn utc_and_generalized_times_are_read() {
        assert_eq!(time(0x17, b"700101000000Z").unwrap(), 0);
        assert_eq!(time(0x17, b"491231235959Z").unwrap(), 2_524_607_999);
        assert_eq!(time(0x18, b"20500101000000Z").unwrap(), 2_524_608_000);
        assert!(time(0x17, b"7001010000Z").is_err());
        assert!(time(0x18, b"20500101000000+0100").is_err());
    }

    #[test]
    fn truncated_der_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x82, 0x01],
            &[0x30, 0x05, 0x02, 0x01],
        ] {
            assert!(leaf(bytes).is_err(), "{bytes:?}");
        }
    }
}

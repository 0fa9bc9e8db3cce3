//! One webhook request: an HTTP/1.1 POST over a new TCP or TLS connection (the certificate
//! checked against the system's trusted roots and the URL's host), bounded in time. Receivers
//! that are not the server's own network may be required ([`Reach::Public`]): their address,
//! once resolved, must not be loopback, private, link-local or otherwise internal.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where a request may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Anywhere (webhooks made by administrators).
    Any,
    /// Only public addresses (webhooks made by users: no way into the server's own network).
    Public,
}

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("bad URL: {0}")]
    Url(String),
    #[error("cannot resolve {0}")]
    Resolve(String),
    #[error("{0} is not a public address")]
    NotPublic(IpAddr),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The trusted roots, loaded once.
fn tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for certificate in found.certs {
                let _ = roots.add(certificate);
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("aws-lc-rs supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Whether an address is one a user's webhook may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
                || (a == 198 && (b == 18 || b == 19))) // benchmarking (RFC 2544)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0xdb8) // documentation
        }
    }
}

/// POSTs `body` to `url` with `headers`; the answer's status. The whole exchange, connection
/// included, takes at most `timeout`.
pub async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    reach: Reach,
    timeout: Duration,
) -> Result<u16, SendError> {
    tokio::time::timeout(timeout, exchange(url, headers, body, reach)).await.map_err(|_| SendError::Timeout(timeout))?
}

async fn exchange(url: &str, headers: &[(&str, String)], body: Bytes, reach: Reach) -> Result<u16, SendError> {
    let parsed = url::Url::parse(url).map_err(|e| SendError::Url(e.to_string()))?;
    let secure = match parsed.scheme() {
        "https" => true,
        "http" => false,
        other => return Err(SendError::Url(format!("scheme {other}"))),
    };
    let host = parsed.host_str().ok_or_else(|| SendError::Url("no host".into()))?.to_owned();
    let port = parsed.port_or_known_default().unwrap_or(if secure { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((bare.as_str(), port))
            .await
            .map_err(|_| SendError::Resolve(host.clone()))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(SendError::Resolve(host));
    }
    if reach == Reach::Public
        && let Some(internal) = addresses.iter().find(|a| !is_public(a.ip()))
    {
        return Err(SendError::NotPublic(internal.ip()));
    }
    let mut last = None;
    let mut stream = None;
    for address in &addresses {
        match TcpStream::connect(address).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let stream =
        stream.ok_or_else(|| SendError::Connect(last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into())))?;
    let _ = stream.set_nodelay(true);
    let path = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    let authority = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let mut request = Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, concat!("Sambung/", env!("CARGO_PKG_VERSION")));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(Full::new(body)).map_err(|e| SendError::Url(e.to_string()))?;
    if secure {
        let name = rustls::pki_types::ServerName::try_from(bare).map_err(|e| SendError::Url(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(tls()).connect(name, stream).await.map_err(SendError::Tls)?;
        send(TokioIo::new(tls), request).await
    } else {
        send(TokioIo::new(stream), request).await
    }
}

async fn send<T>(io: T, request: Request<Full<Bytes>>) -> Result<u16, SendError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(connection);
    let answer = sender.send_request(request).await;
    driver.abort();
    Ok(answer?.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}

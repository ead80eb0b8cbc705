//! `shroud healthcheck`: a liveness probe of a running Shroud for container health checks, so that an
//! image needs neither `curl` nor a shell. It reads the same configuration as `serve` (file and
//! `SHROUD__*` variables), asks the listener's `GET /healthz` on loopback and reports the outcome.
//!
//! The probe sends nothing but the request line, so on a TLS listener it does not verify the
//! certificate (issued for a public name, not for loopback): it only learns whether Shroud answers.

use crate::config::Config;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long the probe waits for an answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Why the probe failed.
#[derive(Debug)]
pub enum ProbeError {
    /// `server.listen` is not an `address:port` the probe can connect to.
    Listen(String),
    /// Nothing answered at the URL, or not in time.
    Unreachable(String),
    /// The answer was not 200.
    Status(String, u16),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Listen(listen) => write!(f, "server.listen {listen:?} is not an address:port"),
            ProbeError::Unreachable(url) => write!(f, "{url} did not answer"),
            ProbeError::Status(url, status) => write!(f, "{url} answered {status}"),
        }
    }
}

/// The URL of the listener's `/healthz` as seen from the same host: a wildcard address (`0.0.0.0`, `::`)
/// becomes loopback; `https` when `[server.tls]` is set.
pub fn healthz_url(config: &Config) -> Result<String, ProbeError> {
    let listen = &config.server.listen;
    let addr: SocketAddr = listen.parse().map_err(|_| ProbeError::Listen(listen.clone()))?;
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if config.server.tls.cert_file.is_empty() { "http" } else { "https" };
    Ok(format!("{scheme}://{}/healthz", SocketAddr::new(ip, addr.port())))
}

/// Asks `url` once, within [`TIMEOUT`]: `Ok` when it answers 200.
pub fn probe(url: &str) -> Result<(), ProbeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|_| ProbeError::Unreachable(url.to_string()))?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .danger_accept_invalid_certs(true)
            .build()
            .map_err(|_| ProbeError::Unreachable(url.to_string()))?;
        let response = client.get(url).send().await.map_err(|_| ProbeError::Unreachable(url.to_string()))?;
        match response.status().as_u16() {
            200 => Ok(()),
            status => Err(ProbeError::Status(url.to_string(), status)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(listen: &str, cert: &str) -> Result<String, ProbeError> {
        let mut config = Config::default();
        config.server.listen = listen.into();
        config.server.tls.cert_file = cert.into();
        healthz_url(&config)
    }

    #[test]
    fn wildcards_are_probed_on_loopback_and_tls_listeners_over_https() {
        assert_eq!(url("0.0.0.0:8080", "").unwrap(), "http://127.0.0.1:8080/healthz");
        assert_eq!(url("[::]:8443", "cert.pem").unwrap(), "https://[::1]:8443/healthz");
        assert_eq!(url("10.1.2.3:80", "").unwrap(), "http://10.1.2.3:80/healthz");
        assert!(matches!(url("localhost:80", ""), Err(ProbeError::Listen(_))));
    }
}

//! Stages 2b and 3b, **throttle**: the route's rate limits. Per source IP before the credential is even
//! read (so a flood of invalid tokens never becomes a flood of introspections), and per client after the
//! exchange (keyed by the token's `client_id`, else its `sub`). Over the limit → 429 with `Retry-After`
//! and `RateLimit-*` headers.

use crate::cache::redis::RedisTier;
use crate::cache::seal::Sealer;
use crate::config::RateLimitConfig;
use crate::error::Rejection;
use crate::grant::Grant;
use crate::rate_limit::{Limiter, Rate};
use actix_web::HttpRequest;
use ipnet::{IpNet, Ipv6Net};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// A route's limits.
#[derive(Default)]
pub struct RouteLimits {
    per_ip: Option<Limiter>,
    per_client: Option<Limiter>,
    /// IPv6 sources share a per-IP budget per prefix of this length.
    ipv6_prefix_length: u8,
}

/// What every route's limits are built from: the `[rate_limit]` defaults and, with the Redis cache
/// backend, the shared store.
pub struct LimitSource<'a> {
    /// `[rate_limit]`.
    pub defaults: &'a RateLimitConfig,
    /// Redis and the key hasher, when limits are shared.
    pub shared: Option<(Arc<RedisTier>, Sealer)>,
}

fn rate(text: &str) -> Option<Rate> {
    // Validated at start; an unreadable rate cannot reach this point.
    Rate::parse(text).ok().flatten()
}

impl RouteLimits {
    /// The limits of the route at `index` (its own settings first, then the defaults).
    pub fn build(index: usize, own: Option<&RateLimitConfig>, source: &LimitSource<'_>) -> RouteLimits {
        let pick = |own: Option<&str>, default: &str| rate(own.filter(|o| !o.is_empty()).unwrap_or(default));
        let limiter = |rate: Option<Rate>, kind: &str| {
            rate.map(|rate| Limiter::new(rate, &format!("{index}:{kind}"), source.shared.clone()))
        };
        RouteLimits {
            per_ip: limiter(pick(own.map(|o| o.per_ip.as_str()), &source.defaults.per_ip), "ip"),
            per_client: limiter(pick(own.map(|o| o.per_client.as_str()), &source.defaults.per_client), "client"),
            ipv6_prefix_length: source.defaults.ipv6_prefix_length(),
        }
    }

    /// Forgets idle keys (bounded memory).
    pub fn forget_idle(&self) {
        self.per_ip.iter().chain(self.per_client.iter()).for_each(Limiter::forget_idle);
    }
}

/// Which peers may name the client in `X-Forwarded-For`.
#[derive(Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From `rate_limit.trusted_proxies` (validated at start).
    pub fn new(entries: &[String]) -> TrustedProxies {
        TrustedProxies(entries.iter().filter_map(|e| parse_net(e).ok()).collect())
    }

    fn trusts(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(ip))
    }

    /// The request's source: the peer, or, when the peer is a trusted proxy, the last address in
    /// `X-Forwarded-For` that is not one (entries to its left could be forged by the client). Entries may
    /// carry a port (`192.0.2.1:4711`, `[2001:db8::1]:443`). The walk from the right stops at the first
    /// entry it cannot read (`unknown`, an obfuscated name, garbage): the source is then the last trusted
    /// hop, since nothing to its left can be told apart from what the client wrote.
    pub fn source_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip().to_canonical();
        if !self.trusts(&peer) {
            return Some(peer);
        }
        let mut last_trusted = peer;
        for value in req.headers().get_all("x-forwarded-for").rev() {
            let Ok(value) = value.to_str() else { return Some(last_trusted) };
            for entry in value.rsplit(',') {
                match forwarded_hop(entry.trim()) {
                    Some(ip) if self.trusts(&ip) => last_trusted = ip,
                    Some(ip) => return Some(ip),
                    None => return Some(last_trusted),
                }
            }
        }
        Some(last_trusted)
    }
}

/// One `X-Forwarded-For` entry: an IP, with or without a port (`[v6]:port`, `[v6]`, `v4:port`).
fn forwarded_hop(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
        .or_else(|_| {
            let bracketed = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).unwrap_or_default();
            bracketed.parse::<Ipv6Addr>().map(IpAddr::V6)
        })
        .ok()?;
    Some(ip.to_canonical())
}

/// What a per-IP budget is keyed on: an IPv4 address, or the first `ipv6_prefix_length` bits of an IPv6
/// address (IPv4-mapped IPv6 addresses count as their IPv4 address).
pub fn source_key(ip: IpAddr, ipv6_prefix_length: u8) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => {
            let network = Ipv6Net::new(v6, ipv6_prefix_length.min(128)).map_or(v6, |net| net.network());
            network.octets().to_vec()
        }
    }
}

/// Reads an IP (`10.0.0.1`) or a network (`10.0.0.0/8`).
pub fn parse_net(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{entry}` is not an IP address or network"))
}

/// Counts the request from `source` (see [`TrustedProxies::source_ip`]) against the route's per-IP limit.
pub async fn per_ip(limits: &RouteLimits, source: Option<IpAddr>) -> Result<(), Rejection> {
    let (Some(limiter), Some(ip)) = (&limits.per_ip, source) else { return Ok(()) };
    limiter.check(&source_key(ip, limits.ipv6_prefix_length)).await.map_err(Rejection::RateLimited)
}

/// Counts the request against the route's per-client limit.
pub async fn per_client(limits: &RouteLimits, grant: Option<&Grant>) -> Result<(), Rejection> {
    let (Some(limiter), Some(client)) = (&limits.per_client, grant.and_then(Grant::client)) else { return Ok(()) };
    limiter.check(client.as_bytes()).await.map_err(Rejection::RateLimited)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_hops_may_carry_ports() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(forwarded_hop("192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(forwarded_hop("192.0.2.1:4711"), Some(ip("192.0.2.1")));
        assert_eq!(forwarded_hop("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(forwarded_hop("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(forwarded_hop("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(forwarded_hop("::ffff:192.0.2.1"), Some(ip("192.0.2.1")), "IPv4-mapped is IPv4");
        for unreadable in ["unknown", "_hidden", "", "192.0.2.1:", "[192.0.2.1]", "2001:db8::1:443]", "host:80"] {
            assert_eq!(forwarded_hop(unreadable), None, "{unreadable}");
        }
    }

    #[test]
    fn ipv6_sources_are_keyed_by_prefix() {
        let key = |text: &str, length: u8| source_key(text.parse().unwrap(), length);
        assert_eq!(key("192.0.2.1", 64), vec![192, 0, 2, 1]);
        assert_eq!(key("::ffff:192.0.2.1", 64), vec![192, 0, 2, 1]);
        assert_eq!(key("2001:db8:1:2::1", 64), key("2001:db8:1:2:ffff:ffff:ffff:ffff", 64));
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_eq!(key("2001:db8:1:2::1", 48), key("2001:db8:1:ff::1", 48));
        assert_ne!(key("2001:db8:1:2::1", 128), key("2001:db8:1:2::2", 128));
        assert_eq!(key("2001:db8:1:2::1", 64), "2001:db8:1:2::".parse::<Ipv6Addr>().unwrap().octets().to_vec());
    }
}

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
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// A route's limits.
#[derive(Default)]
pub struct RouteLimits {
    per_ip: Option<Limiter>,
    per_client: Option<Limiter>,
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
    /// `X-Forwarded-For` that is not one (entries to its left could be forged by the client).
    pub fn source_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusts(&peer) {
            return Some(peer);
        }
        let chain: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse().ok())
            .collect();
        Some(chain.iter().rev().find(|ip| !self.trusts(ip)).or(chain.first()).copied().unwrap_or(peer))
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

/// Counts the request against the route's per-IP limit.
pub async fn per_ip(limits: &RouteLimits, trusted: &TrustedProxies, req: &HttpRequest) -> Result<(), Rejection> {
    let Some(limiter) = &limits.per_ip else { return Ok(()) };
    let Some(ip) = trusted.source_ip(req) else { return Ok(()) };
    let key = match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    limiter.check(&key).await.map_err(Rejection::RateLimited)
}

/// Counts the request against the route's per-client limit.
pub async fn per_client(limits: &RouteLimits, grant: Option<&Grant>) -> Result<(), Rejection> {
    let (Some(limiter), Some(client)) = (&limits.per_client, grant.and_then(Grant::client)) else { return Ok(()) };
    limiter.check(client.as_bytes()).await.map_err(Rejection::RateLimited)
}

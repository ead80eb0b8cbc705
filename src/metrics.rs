//! Prometheus metrics: requests by route and status, introspections by result, cache lookups by tier,
//! OPA decisions by outcome, latency histograms. One registry per gateway (tests run several in one process).

use crate::cache::{CacheObserver, Tier};
use prometheus::{Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    /// `shroud_requests_total{route,status}`.
    pub requests: IntCounterVec,
    /// `shroud_request_duration_seconds{route}`.
    pub request_latency: HistogramVec,
    /// `shroud_introspections_total{result}`: active, inactive, unverifiable, error.
    pub introspections: IntCounterVec,
    /// `shroud_introspection_duration_seconds`.
    pub introspection_latency: Histogram,
    /// `shroud_cache_lookups_total{tier,result}`.
    pub cache_lookups: IntCounterVec,
    /// `shroud_opa_decisions_total{route,outcome}`: allow, deny, error, cached.
    pub opa_decisions: IntCounterVec,
}

const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("shroud_requests_total", "Requests handled, by route and status"),
            &["route", "status"],
        )
        .expect("valid metric");
        let request_latency = HistogramVec::new(
            HistogramOpts::new("shroud_request_duration_seconds", "Request latency, by route")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        let introspections =
            IntCounterVec::new(Opts::new("shroud_introspections_total", "Introspection calls, by result"), &["result"])
                .expect("valid metric");
        let introspection_latency = Histogram::with_opts(
            HistogramOpts::new("shroud_introspection_duration_seconds", "Introspection call latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let cache_lookups = IntCounterVec::new(
            Opts::new("shroud_cache_lookups_total", "Cache lookups, by tier and result"),
            &["tier", "result"],
        )
        .expect("valid metric");
        let opa_decisions = IntCounterVec::new(
            Opts::new("shroud_opa_decisions_total", "Open Policy Agent decisions, by route and outcome"),
            &["route", "outcome"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(request_latency.clone()),
            Box::new(introspections.clone()),
            Box::new(introspection_latency.clone()),
            Box::new(cache_lookups.clone()),
            Box::new(opa_decisions.clone()),
        ] {
            registry.register(collector).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            request_latency,
            introspections,
            introspection_latency,
            cache_lookups,
            opa_decisions,
        }
    }

    /// Counts one introspection with `result`.
    pub fn introspection(&self, result: &str) {
        self.introspections.with_label_values(&[result]).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Statuses whose counters are resolved once per route, so that the request path does no label lookup.
const COMMON_STATUSES: &[u16] = &[200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 429, 500, 502, 503, 504];

/// One route's metric handles, resolved at start.
pub struct RouteMetrics {
    label: String,
    latency: Histogram,
    statuses: Vec<(u16, prometheus::IntCounter)>,
    requests: IntCounterVec,
}

impl RouteMetrics {
    /// Counts a request with `status` that took `seconds`.
    pub fn record(&self, status: u16, seconds: f64) {
        self.latency.observe(seconds);
        match self.statuses.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => counter.inc(),
            None => self.requests.with_label_values(&[&self.label, &status.to_string()]).inc(),
        }
    }
}

impl Metrics {
    /// The handles for the route labelled `label` (its prefix, or `-` for requests no route matched).
    pub fn for_route(&self, label: &str) -> RouteMetrics {
        RouteMetrics {
            label: label.to_string(),
            latency: self.request_latency.with_label_values(&[label]),
            statuses: COMMON_STATUSES
                .iter()
                .map(|s| (*s, self.requests.with_label_values(&[label, &s.to_string()])))
                .collect(),
            requests: self.requests.clone(),
        }
    }
}

/// How an OPA decision was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpaOutcome {
    /// OPA allowed the request.
    Allow,
    /// OPA denied it (`false`, `allow: false`, or an undefined document).
    Deny,
    /// OPA could not be asked or answered nonsense (the request failed closed).
    Error,
    /// A cached decision was reused.
    Cached,
}

/// One route's OPA decision counters, resolved at start.
pub struct OpaMetrics {
    counters: [prometheus::IntCounter; 4],
}

impl OpaMetrics {
    /// Counts one decision.
    pub fn count(&self, outcome: OpaOutcome) {
        self.counters[outcome as usize].inc();
    }
}

impl Metrics {
    /// The OPA counters of the route labelled `label`.
    pub fn for_opa(&self, label: &str) -> OpaMetrics {
        let counter = |outcome: &str| self.opa_decisions.with_label_values(&[label, outcome]);
        OpaMetrics { counters: [counter("allow"), counter("deny"), counter("error"), counter("cached")] }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl CacheObserver for Metrics {
    fn lookup(&self, tier: Tier, hit: bool) {
        self.cache_lookups.with_label_values(&[tier.label(), if hit { "hit" } else { "miss" }]).inc();
    }
}

//! Stage 5, **OPA**: on routes with `[routes.opa]`, after scopes and claim rules pass, Open Policy Agent
//! decides through its Data API: `POST url` with `{"input": {method, path, route, headers, claims}}`.
//!
//! - `{"result": true}` or `{"result": {"allow": true, "headers": {…}}}` allows; those of the headers that
//!   `[routes.opa] headers` lists are set on the upstream request (the client's copies were removed), others
//!   are dropped and logged.
//! - `false`, `{"allow": false}` or an undefined document (no `result`) → 403 `access_denied` naming the
//!   rule `opa`, with an audit line.
//! - Unreachable, timed out, non-2xx or malformed → 503 `policy_service_unavailable`: fail closed.
//!
//! Decisions may be cached per route for `cache_seconds`, keyed by a SHA-256 of the claims, method, path
//! and route; failures are never cached.

use super::route::Route;
use crate::config::OpaConfig;
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::metrics::{Metrics, OpaMetrics, OpaOutcome};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::HttpRequest;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Headers an allowing decision adds to the upstream request.
pub type DecisionHeaders = Arc<[(HeaderName, HeaderValue)]>;

/// Decisions kept per route when caching is on.
const CACHED_DECISIONS: u64 = 10_000;

/// Largest answer read from OPA.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What OPA decided.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Allowed, with the headers to add upstream.
    Allow(DecisionHeaders),
    /// Denied, or the document is undefined.
    Deny,
}

/// A route's OPA settings, built once at start.
pub struct Opa {
    url: String,
    timeout: Duration,
    /// `[routes.opa] headers`, lower-case and hyphenated: the only headers a decision may set.
    headers: Vec<String>,
    /// The route's prefix, for log lines.
    route: String,
    decisions: Option<moka::future::Cache<[u8; 32], Decision>>,
    metrics: OpaMetrics,
}

impl Opa {
    /// Builds the stage for the route labelled `route` from its validated `[routes.opa]`.
    pub fn from_config(config: &OpaConfig, route: &str, metrics: &Metrics) -> Opa {
        let decisions = (config.cache_seconds > 0).then(|| {
            moka::future::Cache::builder()
                .max_capacity(CACHED_DECISIONS)
                .time_to_live(Duration::from_secs(config.cache_seconds))
                .build()
        });
        Opa {
            url: config.url.clone(),
            timeout: Duration::from_millis(config.timeout_ms),
            headers: config.headers.iter().map(|h| h.to_ascii_lowercase().replace('_', "-")).collect(),
            route: route.to_string(),
            decisions,
            metrics: metrics.for_opa(route),
        }
    }

    /// Asks OPA; the error says why no decision could be read (never a claim or token value).
    async fn ask(&self, http: &reqwest::Client, query: &Query<'_>) -> Result<Decision, String> {
        let mut response = http
            .post(&self.url)
            .timeout(self.timeout)
            .json(query)
            .send()
            .await
            .map_err(|e| crate::issuer::without_url(&e))?;
        if !response.status().is_success() {
            return Err(format!("answered status {}", response.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| crate::issuer::without_url(&e))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!("answer larger than {MAX_ANSWER_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        read_answer(&body).map(|decision| self.keep_listed(decision)).map_err(str::to_string)
    }

    /// The decision with only the headers `[routes.opa] headers` lists; each other one is dropped with a
    /// log line naming it (never its value).
    fn keep_listed(&self, decision: Decision) -> Decision {
        let Decision::Allow(headers) = decision else { return decision };
        let listed = |name: &HeaderName| self.headers.iter().any(|h| *h == super::forward::hyphenated(name));
        if headers.iter().all(|(name, _)| listed(name)) {
            return Decision::Allow(headers);
        }
        let kept = headers
            .iter()
            .filter(|(name, _)| {
                let keep = listed(name);
                if !keep {
                    log::warn!(
                        "policy decision for route {} sets header {name}, which [routes.opa] headers does not list: dropped",
                        self.route
                    );
                }
                keep
            })
            .cloned()
            .collect();
        Decision::Allow(kept)
    }
}

/// The HTTP client for every OPA call (pooled, no redirects, `[tls_client]` verification); each call
/// carries its route's timeout.
pub fn http_client(tls: &crate::transport::OutboundTls) -> Result<reqwest::Client, reqwest::Error> {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("shroud/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60));
    tls.reqwest(builder).build()
}

/// The Data API request body.
#[derive(Serialize)]
struct Query<'a> {
    input: Input<'a>,
}

/// OPA's `input` document.
#[derive(Serialize)]
struct Input<'a> {
    method: &'a str,
    path: &'a str,
    route: &'a str,
    headers: BTreeMap<&'a str, String>,
    claims: &'a Map<String, Value>,
}

/// The request's headers by lower-case name (repeated ones joined by `, `), minus every credential:
/// `Authorization`, `Proxy-Authorization`, `Cookie`, the token handler's CSRF header, and the headers the
/// route sets itself (`forward_claims`, `[routes.opa] headers`, in either spelling), which never reach the
/// upstream from the client either.
fn visible_headers<'r>(route: &Route, req: &'r HttpRequest, csrf: Option<&HeaderName>) -> BTreeMap<&'r str, String> {
    let mut headers: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in req.headers().iter() {
        let credential = [header::AUTHORIZATION, header::PROXY_AUTHORIZATION, header::COOKIE].contains(name)
            || csrf == Some(name)
            || route.sets_header(name);
        if credential {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        headers
            .entry(name.as_str())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(value);
            })
            .or_insert_with(|| value.to_string());
    }
    headers
}

/// Reads OPA's answer: the decision, or why the answer is malformed.
fn read_answer(body: &[u8]) -> Result<Decision, &'static str> {
    let answer: Value = serde_json::from_slice(body).map_err(|_| "the answer is not JSON")?;
    let answer = answer.as_object().ok_or("the answer is not a JSON object")?;
    match answer.get("result") {
        None | Some(Value::Bool(false)) => Ok(Decision::Deny),
        Some(Value::Bool(true)) => Ok(Decision::Allow(Arc::from([]))),
        Some(Value::Object(result)) => match result.get("allow") {
            Some(Value::Bool(true)) => decision_headers(result.get("headers")).map(Decision::Allow),
            None | Some(Value::Bool(false)) => Ok(Decision::Deny),
            Some(_) => Err("`result.allow` is not a boolean"),
        },
        Some(_) => Err("`result` is neither a boolean nor an object"),
    }
}

/// The `headers` of an allowing answer: names and values must be valid, and no header Shroud manages
/// itself (`Authorization`, `Host`, hop-by-hop, `X-Forwarded-*`, `Cookie`, framing) may be set.
fn decision_headers(headers: Option<&Value>) -> Result<DecisionHeaders, &'static str> {
    let Some(headers) = headers else { return Ok(Arc::from([])) };
    let headers = headers.as_object().ok_or("`result.headers` is not an object")?;
    headers
        .iter()
        .map(|(name, value)| {
            let name = HeaderName::try_from(name.as_str()).map_err(|_| "`result.headers` has an invalid name")?;
            if super::forward::is_managed(&name) {
                return Err("`result.headers` sets a header Shroud manages");
            }
            let value = value.as_str().ok_or("`result.headers` has a value that is not a string")?;
            let value = HeaderValue::from_str(value).map_err(|_| "`result.headers` has an invalid value")?;
            Ok((name, value))
        })
        .collect()
}

/// Canonical JSON: object keys sorted at every level, no whitespace.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => canonical_object(map, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("JSON scalars serialise"),
    }
}

fn canonical_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_unstable_by_key(|(key, _)| *key);
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key).expect("strings serialise");
        out.push(b':');
        canonical(value, out);
    }
    out.push(b'}');
}

/// The decision cache key: SHA-256 of the canonical JSON `[route, method, path, claims]`.
fn decision_key(route: &str, method: &str, path: &str, claims: &Map<String, Value>) -> [u8; 32] {
    let mut text = Vec::with_capacity(256);
    text.push(b'[');
    for part in [route, method, path] {
        serde_json::to_writer(&mut text, part).expect("strings serialise");
        text.push(b',');
    }
    canonical_object(claims, &mut text);
    text.push(b']');
    Sha256::digest(&text).into()
}

/// Asks OPA when the route has `[routes.opa]`: the headers an allowing decision adds upstream (`None` on
/// routes without OPA), 403 when denied, 503 when no decision could be had. `path` is the normalised
/// path (OPA sees it without segment parameters); `claims` are the verified claims (`{}` on routes without a token).
pub async fn authorize(
    gateway: &Gateway,
    route: &Route,
    req: &HttpRequest,
    path: &str,
    claims: Option<&Map<String, Value>>,
) -> Result<Option<DecisionHeaders>, Rejection> {
    let Some(opa) = &route.opa else { return Ok(None) };
    // OPA decides on the path as Tomcat- and Spring-style upstreams route it: without segment parameters,
    // so `/x/admin;p/users` cannot pass a policy written for `/x/admin/users`.
    let bare;
    let path = if super::route::has_parameters(path) {
        bare = super::route::without_parameters(path);
        bare.as_str()
    } else {
        path
    };
    // Boxed: the call's state would otherwise sit in every request's future, on routes without OPA too.
    Box::pin(decide(gateway, opa, route, req, path, claims)).await
}

/// [`authorize`] on a route with OPA.
async fn decide(
    gateway: &Gateway,
    opa: &Opa,
    route: &Route,
    req: &HttpRequest,
    path: &str,
    claims: Option<&Map<String, Value>>,
) -> Result<Option<DecisionHeaders>, Rejection> {
    let no_claims = Map::new();
    let claims_or_none = claims.unwrap_or(&no_claims);
    let method = req.method().as_str();
    let cache = opa.decisions.as_ref().map(|c| (c, decision_key(&route.prefix, method, path, claims_or_none)));
    let cached = match &cache {
        Some((decisions, key)) => decisions.get(key).await,
        None => None,
    };
    let decision = match cached {
        Some(decision) => {
            opa.metrics.count(OpaOutcome::Cached);
            decision
        }
        None => {
            let csrf = gateway.token_handler.as_ref().map(|th| th.jar.csrf_header());
            let headers = visible_headers(route, req, csrf);
            let query = Query { input: Input { method, path, route: &route.prefix, headers, claims: claims_or_none } };
            match opa.ask(&gateway.opa_http, &query).await {
                Ok(decision) => {
                    let outcome = if decision == Decision::Deny { OpaOutcome::Deny } else { OpaOutcome::Allow };
                    opa.metrics.count(outcome);
                    if let Some((decisions, key)) = cache {
                        decisions.insert(key, decision.clone()).await;
                    }
                    decision
                }
                Err(reason) => {
                    opa.metrics.count(OpaOutcome::Error);
                    log::error!("policy service for route {} failed ({reason}): request refused", route.prefix);
                    return Err(Rejection::PolicyServiceUnavailable);
                }
            }
        }
    };
    match decision {
        Decision::Allow(headers) => Ok(Some(headers)),
        Decision::Deny => Err(Rejection::PolicyDenied("opa".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(answer: Value) -> Result<Decision, &'static str> {
        read_answer(answer.to_string().as_bytes())
    }

    #[test]
    fn only_true_or_allow_true_allows() {
        assert_eq!(read(json!({"result": true})), Ok(Decision::Allow(Arc::from([]))));
        let Ok(Decision::Allow(headers)) = read(json!({"result": {"allow": true, "headers": {"X-Tenant": "acme"}}}))
        else {
            panic!("allowed with headers")
        };
        assert_eq!(headers[0].0.as_str(), "x-tenant");
        assert_eq!(headers[0].1, "acme");
        for deny in [
            json!({"result": false}),
            json!({"result": {"allow": false, "headers": {"X-A": "b"}}}),
            json!({}),
            json!({"result": {}}),
        ] {
            assert_eq!(read(deny.clone()), Ok(Decision::Deny), "{deny}");
        }
    }

    #[test]
    fn only_listed_decision_headers_are_kept() {
        let config = OpaConfig {
            url: "http://opa/v1/data/x".into(),
            timeout_ms: 100,
            cache_seconds: 0,
            headers: vec!["X-Tenant".into(), "X_Dept".into()],
        };
        let opa = Opa::from_config(&config, "/t", &Metrics::new());
        let answer = json!({"result": {"allow": true, "headers": {"X-Tenant": "a", "x-dept": "b", "X-Other": "c"}}});
        let Decision::Allow(headers) = opa.keep_listed(read(answer).unwrap()) else { panic!("allowed") };
        let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-tenant", "x-dept"]);
        assert_eq!(opa.keep_listed(Decision::Deny), Decision::Deny);
    }

    #[test]
    fn malformed_answers_are_errors() {
        for malformed in [
            json!({"result": "true"}),
            json!({"result": 1}),
            json!({"result": null}),
            json!({"result": {"allow": "yes"}}),
            json!({"result": {"allow": true, "headers": ["X-A"]}}),
            json!({"result": {"allow": true, "headers": {"X-A": 1}}}),
            json!({"result": {"allow": true, "headers": {"bad name": "x"}}}),
            json!({"result": {"allow": true, "headers": {"X-A": "line\nbreak"}}}),
            json!({"result": {"allow": true, "headers": {"Authorization": "Bearer x"}}}),
            json!({"result": {"allow": true, "headers": {"X-Forwarded-For": "1.2.3.4"}}}),
            json!([true]),
        ] {
            assert!(read(malformed.clone()).is_err(), "{malformed}");
        }
        assert!(read_answer(b"{\"result\": tru").is_err());
    }

    #[test]
    fn cache_keys_ignore_claim_order_but_not_values() {
        let a = json!({"sub": "alice", "roles": ["hr"], "x": {"b": 1, "a": 2}});
        let b = json!({"x": {"a": 2, "b": 1}, "roles": ["hr"], "sub": "alice"});
        let key =
            |claims: &Value, method: &str, path: &str| decision_key("/hr", method, path, claims.as_object().unwrap());
        assert_eq!(key(&a, "GET", "/hr/x"), key(&b, "GET", "/hr/x"));
        assert_ne!(key(&a, "GET", "/hr/x"), key(&a, "POST", "/hr/x"));
        assert_ne!(key(&a, "GET", "/hr/x"), key(&a, "GET", "/hr/y"));
        assert_ne!(key(&a, "GET", "/hr/x"), key(&json!({"sub": "bob", "roles": ["hr"]}), "GET", "/hr/x"));
        assert_ne!(decision_key("/hr", "GET", "/hr/x", &Map::new()), decision_key("/h", "GET", "/hr/x", &Map::new()));
        let mut text = Vec::new();
        canonical(&b, &mut text);
        assert_eq!(String::from_utf8(text).unwrap(), r#"{"roles":["hr"],"sub":"alice","x":{"a":2,"b":1}}"#);
    }
}

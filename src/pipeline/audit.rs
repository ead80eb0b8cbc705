//! The audit log: one JSON line per authentication and authorization decision, on its own log target
//! (`shroud::audit`), apart from the access log (`shroud::access`). Lines carry who (client and subject),
//! what (route, method, path), the decision and its reason, the cache tier and the latency, joined to
//! the upstream's logs by the request id. Never a token, a cookie or a claim's value beyond `sub` and
//! `client_id`.

use crate::cache::Tier;
use crate::error::Rejection;
use crate::grant::Grant;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpRequest;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// The log target of audit lines.
pub const TARGET: &str = "shroud::audit";

/// `X-Request-Id`: the request's id, passed upstream and back.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The most an incoming `X-Request-Id` may hold to be kept.
const MAX_REQUEST_ID: usize = 64;

/// The request's id: the client's `X-Request-Id` when it is short and plain (letters, digits, `-`, `_`,
/// `.`, `:`), else a fresh one (a per-process random prefix and a counter).
pub fn request_id(req: &HttpRequest) -> HeaderValue {
    let incoming = req.headers().get(X_REQUEST_ID).filter(|v| {
        v.len() <= MAX_REQUEST_ID
            && !v.is_empty()
            && v.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    });
    if let Some(id) = incoming {
        return id.clone();
    }
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 6];
        openssl::rand::rand_bytes(&mut bytes).expect("the system CSPRNG is available");
        hex::encode(bytes)
    });
    let id = format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed));
    HeaderValue::from_str(&id).expect("hex and '-' make a valid header value")
}

/// Whether audit lines are being written (so that nothing is assembled for nobody).
pub fn enabled() -> bool {
    log::log_enabled!(target: TARGET, log::Level::Info)
}

/// What a decision was: the request allowed (whatever the upstream then said), denied, or not decidable
/// (a dependency failed, and the request was refused: fail closed).
fn decision(rejection: Option<&Rejection>) -> (&'static str, String) {
    let Some(rejection) = rejection else { return ("allow", "ok".into()) };
    let kind = match rejection {
        Rejection::UpstreamUnavailable | Rejection::UpstreamTimeout | Rejection::FileNotFound => "allow",
        Rejection::AuthorizationServerUnavailable
        | Rejection::AuthorizationServerError
        | Rejection::PolicyServiceUnavailable => "error",
        _ => "deny",
    };
    (kind, rejection.code().to_string())
}

/// One decision, as the request's journey saw it.
pub struct Record<'a> {
    /// The request.
    pub req: &'a HttpRequest,
    /// Its id.
    pub request_id: &'a HeaderValue,
    /// The route's prefix.
    pub route: &'a str,
    /// The grant the exchange produced, if it got that far.
    pub grant: Option<&'a Grant>,
    /// Why the request was refused, if it was.
    pub rejection: Option<&'a Rejection>,
    /// The answer's status.
    pub status: u16,
    /// Where the exchange found its answer.
    pub tier: Option<Tier>,
    /// Time from arrival to answer.
    pub latency: Duration,
}

/// Writes the line for `record`.
pub fn write(record: &Record<'_>) {
    let (decision, reason) = decision(record.rejection);
    let claims = record.grant.map(Grant::claims).unwrap_or_default();
    let claim = |name: &str| claims.get(name).filter(|v| v.is_string()).cloned().unwrap_or(Value::Null);
    let time =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let mut line = json!({
        "time": time,
        "request_id": record.request_id.to_str().unwrap_or_default(),
        "route": record.route,
        "method": record.req.method().as_str(),
        "path": record.req.path(),
        "client_id": claim("client_id"),
        "sub": claim("sub"),
        "decision": decision,
        "reason": reason,
        "status": record.status,
        "cache": record.tier.map(|t| t.label()),
        "latency_ms": (record.latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
    });
    if let Some(Rejection::PolicyDenied(rule)) = record.rejection {
        line["rule"] = Value::String(rule.clone());
    }
    log::info!(target: TARGET, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_plain_request_ids_and_replaces_the_rest() {
        let with = |id: &str| {
            request_id(&actix_web::test::TestRequest::default().insert_header(("x-request-id", id)).to_http_request())
        };
        assert_eq!(with("abc-123_x.y:z"), "abc-123_x.y:z");
        for hostile in ["a b", "x\"y", &"z".repeat(65), "<script>"] {
            let id = with(hostile);
            assert_ne!(id, hostile);
            assert!(id.to_str().unwrap().contains('-'));
        }
        let fresh = request_id(&actix_web::test::TestRequest::default().to_http_request());
        assert_ne!(fresh, request_id(&actix_web::test::TestRequest::default().to_http_request()), "unique");
    }

    #[test]
    fn classifies_decisions() {
        assert_eq!(decision(None), ("allow", "ok".into()));
        assert_eq!(decision(Some(&Rejection::UpstreamTimeout)).0, "allow");
        assert_eq!(decision(Some(&Rejection::AuthorizationServerUnavailable)).0, "error");
        assert_eq!(decision(Some(&Rejection::PolicyDenied("roles".into()))), ("deny", "access_denied".into()));
        assert_eq!(decision(Some(&Rejection::Unauthorized)), ("deny", "unauthorized".into()));
    }
}

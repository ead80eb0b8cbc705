//! The admin API, on its own listener (`[admin] listen`), off unless configured:
//!
//! - `POST /purge` with exactly one of `{"token": "…"}`, `{"sub": "…"}`, `{"client_id": "…"}` or
//!   `{"all": true}` → `{"purged": N}`. The purge reaches every instance sharing Redis.
//! - `GET /stats` → cache statistics.
//! - `GET /metrics` → the Prometheus text (see [`crate::ops`]), without the admin token: a scraper must not
//!   hold the token that purges.
//!
//! Every other call carries `Authorization: Bearer <[admin] token>`, compared in constant time; anything
//! else is a 401. Each purge writes an audit line (what kind of purge and how many entries, never the value).

use crate::cache::PurgeTarget;
use crate::gateway::Gateway;
use crate::secret::constant_time_eq;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Largest accepted purge body.
const MAX_BODY: usize = 16 * 1024;

/// Registers the admin endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(MAX_BODY))
        .service(web::resource("/purge").route(web::post().to(purge)).default_service(web::to(not_allowed("POST"))))
        .service(web::resource("/stats").route(web::get().to(stats)).default_service(web::to(not_allowed("GET"))))
        .service(crate::ops::metrics_resource())
        .default_service(web::to(not_found));
}

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "code": code, "message": message }))
}

/// Whether the request carries the admin token (digests compared, so neither length nor content leaks).
fn authorized(req: &HttpRequest, gateway: &Gateway) -> bool {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let expected = Sha256::digest(gateway.config.admin.token.expose().as_bytes());
    presented.is_some_and(|token| constant_time_eq(&Sha256::digest(token.as_bytes()), &expected))
}

/// The 401 for a caller without the admin token (and its audit line).
fn unauthorized(req: &HttpRequest) -> HttpResponse {
    log::warn!(target: "shroud::audit", "{}", json!({ "admin": "denied", "path": req.path() }));
    let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", "a valid admin token is required");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
    response
}

/// Reads a purge request: a JSON object with exactly one of the four forms.
fn target(body: &[u8]) -> Result<PurgeTarget, &'static str> {
    const FORMS: &str = "send exactly one of {\"token\": …}, {\"sub\": …}, {\"client_id\": …} or {\"all\": true}";
    let object: Map<String, Value> = serde_json::from_slice(body).map_err(|_| FORMS)?;
    let mut entries = object.into_iter();
    let (Some((name, value)), None) = (entries.next(), entries.next()) else { return Err(FORMS) };
    let text = |value: Value| match value {
        Value::String(s) if !s.is_empty() && s.len() <= 4096 => Ok(s),
        _ => Err("the value must be a non-empty string of at most 4096 characters"),
    };
    match (name.as_str(), value) {
        ("all", Value::Bool(true)) => Ok(PurgeTarget::All),
        ("all", _) => Err("`all` must be true"),
        ("token", v) => text(v).map(PurgeTarget::Token),
        ("sub", v) => text(v).map(PurgeTarget::Subject),
        ("client_id", v) => text(v).map(PurgeTarget::Client),
        _ => Err(FORMS),
    }
}

fn target_kind(target: &PurgeTarget) -> &'static str {
    match target {
        PurgeTarget::Token(_) => "token",
        PurgeTarget::Subject(_) => "sub",
        PurgeTarget::Client(_) => "client_id",
        PurgeTarget::All => "all",
    }
}

async fn purge(req: HttpRequest, body: web::Bytes, gateway: web::Data<Gateway>) -> HttpResponse {
    if !authorized(&req, &gateway) {
        return unauthorized(&req);
    }
    let target = match target(&body) {
        Ok(target) => target,
        Err(message) => {
            log::info!("admin purge refused: {message}");
            return error(StatusCode::BAD_REQUEST, "invalid_request", message);
        }
    };
    let kind = target_kind(&target);
    match gateway.cache.purge(&target).await {
        Ok(purged) => {
            log::info!(target: "shroud::audit", "{}", json!({ "admin": "purge", "kind": kind, "purged": purged }));
            HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({ "purged": purged }))
        }
        Err(incomplete) => {
            log::error!(
                target: "shroud::audit",
                "{}",
                json!({ "admin": "purge", "kind": kind, "purged": incomplete.purged, "error": incomplete.reason })
            );
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Redis is unreachable: the purge took effect on this instance only; retry",
            )
        }
    }
}

async fn stats(req: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    if !authorized(&req, &gateway) {
        return unauthorized(&req);
    }
    let lookups = |tier: &str, result: &str| gateway.metrics.cache_lookups.with_label_values(&[tier, result]).get();
    let memory_hits = lookups("memory", "hit");
    let redis_hits = lookups("redis", "hit");
    let misses = lookups("memory", "miss").saturating_sub(redis_hits);
    let introspections: u64 = ["active", "inactive", "unverifiable", "error"]
        .iter()
        .map(|r| gateway.metrics.introspections.with_label_values(&[r]).get())
        .sum();
    let redis = match gateway.cache.redis() {
        Some(tier) => json!({ "configured": true, "connected": tier.ping().await }),
        None => json!({ "configured": false, "connected": false }),
    };
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(json!({
        "cache": {
            "entries": gateway.cache.entries(),
            "hits": { "memory": memory_hits, "redis": redis_hits },
            "misses": misses,
        },
        "introspections": introspections,
        "purged": gateway.cache.purged(),
        "redis": redis,
    }))
}

fn not_allowed(allow: &'static str) -> impl Fn() -> std::future::Ready<HttpResponse> + Clone {
    move || {
        let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed here");
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static(allow));
        std::future::ready(response)
    }
}

async fn not_found() -> HttpResponse {
    error(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exactly_one_purge_form() {
        assert_eq!(target(br#"{"all": true}"#), Ok(PurgeTarget::All));
        assert_eq!(target(br#"{"token": "abc"}"#), Ok(PurgeTarget::Token("abc".into())));
        assert_eq!(target(br#"{"sub": "alice"}"#), Ok(PurgeTarget::Subject("alice".into())));
        assert_eq!(target(br#"{"client_id": "spa"}"#), Ok(PurgeTarget::Client("spa".into())));
        for bad in [
            &br#"{}"#[..],
            br#"{"all": false}"#,
            br#"{"all": "yes"}"#,
            br#"{"sub": ""}"#,
            br#"{"sub": 7}"#,
            br#"{"sub": "a", "client_id": "b"}"#,
            br#"{"everything": true}"#,
            br#"["all"]"#,
            b"not json",
        ] {
            assert!(target(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}

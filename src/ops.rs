//! Operational endpoints: `/healthz` (alive), `/readyz` (discovery done and keys loaded; an unreachable
//! Redis is reported as a degradation, not as unreadiness, since Shroud serves on without it),
//! `/metrics` (Prometheus text) and `/.well-known/jwks.json` (the phantom JWT's public key).

use crate::gateway::Gateway;
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde_json::json;

/// Registers the operational endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/.well-known/jwks.json", web::get().to(jwks));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn readyz(gateway: web::Data<Gateway>) -> HttpResponse {
    let (mut discovered, mut keys) = gateway.issuer.is_ready();
    if !(discovered && keys) && gateway.issuer.metadata().await.is_ok() {
        (discovered, keys) = gateway.issuer.is_ready();
    }
    let redis = match gateway.cache.redis() {
        Some(tier) => Some(tier.ping().await),
        None => None,
    };
    let ready = discovered && keys;
    let body = json!({
        "ready": ready,
        "degraded": redis == Some(false),
        "checks": { "discovery": discovered, "jwks": keys, "redis": redis.map_or("not configured", |ok| if ok { "ok" } else { "unreachable" }) }
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics(gateway: web::Data<Gateway>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(gateway.metrics.render())
}

async fn jwks(gateway: web::Data<Gateway>) -> HttpResponse {
    let body = gateway.signer.as_ref().map_or_else(|| r#"{"keys":[]}"#.to_string(), |s| s.jwks_json().to_string());
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}

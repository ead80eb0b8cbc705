//! Operational endpoints: `/healthz` (alive), `/readyz` (discovery done and keys loaded; an unreachable
//! Redis is reported as a degradation, not as unreadiness, since Shroud serves on without it),
//! `/metrics` (Prometheus text; on the admin listener, and here only when `[server] public_metrics = true`),
//! `/.well-known/jwks.json` (the phantom JWT's public key) and, when `[server] openapi = true`,
//! `/.well-known/openapi.yaml` (the API description).

use crate::error::Rejection;
use crate::gateway::Gateway;
use actix_web::http::header;
use actix_web::{web, HttpResponse, ResponseError};
use serde_json::json;
use std::borrow::Cow;

/// The OpenAPI document of Shroud's own API (`openapi.yaml` at the repository root), embedded at build time.
pub const OPENAPI_YAML: &str = include_str!("../openapi.yaml");

/// Registers the operational endpoints; the metrics only when `serve_metrics`, the OpenAPI document only
/// when `serve_openapi`.
pub fn configure(serve_metrics: bool, serve_openapi: bool) -> impl Fn(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(get_only("/healthz").route(web::get().to(healthz)))
            .service(get_only("/readyz").route(web::get().to(readyz)))
            .service(get_only("/.well-known/jwks.json").route(web::get().to(jwks)));
        if serve_metrics {
            cfg.service(metrics_resource());
        }
        if serve_openapi {
            cfg.service(get_only("/.well-known/openapi.yaml").route(web::get().to(openapi)));
        }
    }
}

/// `GET /metrics`, Prometheus text (every other method: 405), on whichever listener serves it.
pub fn metrics_resource() -> actix_web::Resource {
    get_only("/metrics").route(web::get().to(metrics))
}

/// A resource that answers every method but GET with 405 and `Allow: GET`, so that no other method
/// falls through to the routes.
fn get_only(path: &str) -> actix_web::Resource {
    web::resource(path)
        .default_service(web::to(|| async { Rejection::MethodNotAllowed(Cow::Borrowed("GET")).error_response() }))
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

async fn openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/yaml").body(OPENAPI_YAML)
}

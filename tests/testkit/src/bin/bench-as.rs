//! A fast fake authorization server for benchmarks: every token is active.
//!
//! ```text
//! bench-as --addr 127.0.0.1:9191
//! ```
//! Serves OIDC discovery (issuer `http://<addr>`), an empty JWKS, `POST /introspect` (client
//! `gateway`/`gateway-secret`, HTTP Basic) answering every token as an active RFC 7662 token with scope
//! `read` that expires in five minutes, except tokens that start with `invalid` (`{"active": false}`, for
//! the soak test's invalid tokens), and `GET /stats` → `{"introspections": N}`.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Basic credentials of the introspecting client: base64("gateway:gateway-secret").
const GATEWAY_BASIC: &str = "Basic Z2F0ZXdheTpnYXRld2F5LXNlY3JldA==";

struct State {
    issuer: String,
    introspections: AtomicU64,
}

async fn discovery(state: web::Data<Arc<State>>) -> HttpResponse {
    let issuer = &state.issuer;
    HttpResponse::Ok().json(serde_json::json!({
        "issuer": issuer,
        "introspection_endpoint": format!("{issuer}/introspect"),
        "jwks_uri": format!("{issuer}/jwks"),
        "token_endpoint": format!("{issuer}/token"),
        "authorization_endpoint": format!("{issuer}/authorize"),
    }))
}

async fn jwks() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(r#"{"keys":[]}"#)
}

async fn introspect(req: HttpRequest, body: web::Bytes, state: web::Data<Arc<State>>) -> HttpResponse {
    state.introspections.fetch_add(1, Ordering::Relaxed);
    if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some(GATEWAY_BASIC) {
        return HttpResponse::Unauthorized().json(serde_json::json!({"error": "invalid_client"}));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    if form.iter().any(|(k, v)| k == "token" && v.starts_with("invalid")) {
        return HttpResponse::Ok()
            .insert_header(("cache-control", "no-store"))
            .json(serde_json::json!({"active": false}));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(serde_json::json!({
        "active": true,
        "sub": "bench-user",
        "client_id": "bench-client",
        "scope": "read",
        "token_type": "Bearer",
        "iat": now,
        "exp": now + 300,
    }))
}

async fn stats(state: web::Data<Arc<State>>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"introspections": state.introspections.load(Ordering::Relaxed)}))
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:9191".to_string();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--addr", Some(value)) => addr = value,
            _ => {
                eprintln!("usage: bench-as [--addr HOST:PORT]");
                std::process::exit(2);
            }
        }
    }
    let state = Arc::new(State { issuer: format!("http://{addr}"), introspections: AtomicU64::new(0) });
    actix_web::rt::System::new().block_on(async move {
        let data = web::Data::new(state);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/.well-known/openid-configuration", web::get().to(discovery))
                .route("/jwks", web::get().to(jwks))
                .route("/introspect", web::post().to(introspect))
                .route("/stats", web::get().to(stats))
        })
        .workers(2)
        .bind(&addr)?
        .run();
        println!("bench-as listening on http://{addr}");
        server.await
    })
}

//! The request's journey, one named stage after another:
//!
//! ```text
//! request ─► route ─► credential ─► exchange ─► policy ─► opa ─► forward ─► response
//!                                                                 (or static files)
//! ```
//! Each stage takes a narrow typed input and returns its output or a [`Rejection`]; [`handle`] renders
//! either, writes the access-log line and counts the request.

pub mod admit;
pub mod audit;
pub mod credential;
pub mod exchange;
pub mod forward;
pub mod opa;
pub mod policy;
pub mod route;
pub mod rules;
pub mod static_files;
pub mod throttle;

use crate::cache::Tier;
use crate::config::CredentialKind;
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::token_handler::proxy::CookieContext;
use actix_web::http::header::HeaderValue;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use route::Route;
use std::time::Instant;

/// What the access log and metrics learn about a request as it travels.
struct Trace<'g> {
    route: Option<&'g Route>,
    tier: Option<Tier>,
    /// The exchange's grant, for the audit line.
    grant: Option<std::sync::Arc<crate::grant::Grant>>,
    /// The request's id, passed upstream and back.
    request_id: HeaderValue,
    /// A trusted Origin on a cookie route: every answer gets CORS headers for it.
    cors_origin: Option<HeaderValue>,
}

/// The journey itself: route → credential → exchange → policy → opa → forward.
async fn journey<'g>(
    gateway: &'g Gateway,
    client: &awc::Client,
    req: &HttpRequest,
    payload: web::Payload,
    trace: &mut Trace<'g>,
) -> Result<HttpResponse, Rejection> {
    admit::headers(req, gateway.config.server.max_header_bytes)?;
    let (route, path) = gateway.routes.select(req.path())?;
    trace.route = Some(route);
    admit::declared_body(req, route.max_body_bytes)?;
    let token_handler = gateway.token_handler.as_ref();
    let cookies = token_handler.filter(|_| route.takes_cookies()).map(|th| CookieContext::new(th, req));
    if let Some(cookies) = &cookies {
        trace.cors_origin = cookies.trusted_origin().cloned();
        if let Some(answer) = cookies.preflight(req) {
            return answer;
        }
    }
    route.check_method(req.method())?;
    let source_ip = gateway.trusted_proxies.source_ip(req);
    throttle::per_ip(&route.limits, source_ip).await?;
    let credential = credential::extract(route.credentials, req, cookies.as_ref())?;
    let exchanged = exchange::exchange(gateway, &credential).await?;
    trace.tier = exchanged.tier;
    trace.grant = exchanged.grant.clone();
    throttle::per_client(&route.limits, exchanged.grant.as_deref()).await?;
    let claims = exchanged.grant.as_deref().filter(|_| route.needs_claims()).map(|g| g.claims());
    policy::authorize(route, exchanged.grant.as_deref(), claims.as_ref())?;
    let decision_headers = opa::authorize(gateway, route, req, &path, claims.as_ref()).await?;
    if let Some(dir) = &route.static_dir {
        return static_files::serve(route, dir, &path, req).await;
    }
    let cookie_policy = forward::CookiePolicy::for_route(route, token_handler.map(|th| &th.jar));
    let identity = forward::Identity {
        grant: exchanged.grant.as_deref(),
        claims: claims.as_ref(),
        decision_headers: decision_headers.as_deref().unwrap_or_default(),
        request_id: &trace.request_id,
        source_ip,
    };
    forward::forward(route, &path, req, payload, identity, cookie_policy, client).await
}

/// The handler for every proxied request.
pub async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    gateway: web::Data<Gateway>,
    client: web::Data<awc::Client>,
) -> HttpResponse {
    let started = Instant::now();
    let mut trace =
        Trace { route: None, tier: None, grant: None, request_id: audit::request_id(&req), cors_origin: None };
    let (mut response, rejection) = match journey(&gateway, &client, &req, payload, &mut trace).await {
        Ok(response) => (response, None),
        Err(rejection) => (rejection.error_response(), Some(rejection)),
    };
    if let (Some(origin), Some(th)) = (&trace.cors_origin, &gateway.token_handler) {
        th.cors.decorate(response.headers_mut(), origin);
    }
    response.headers_mut().insert(audit::X_REQUEST_ID, trace.request_id.clone());
    if gateway.server_tls.is_some() && gateway.token_handler.is_some() && trace.route.is_some_and(Route::takes_cookies)
    {
        response.headers_mut().insert(
            actix_web::http::header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(crate::transport::HSTS),
        );
    }
    let elapsed = started.elapsed();
    let route = trace.route.map_or("-", |r| r.prefix.as_str());
    let cache = trace.tier.map_or("-", |t| t.label());
    let status = response.status().as_u16();
    log::info!(
        target: "shroud::access",
        "{} {} route={route} status={status} cache={cache} latency_ms={:.3} request_id={}",
        req.method(),
        req.path(),
        elapsed.as_secs_f64() * 1000.0,
        trace.request_id.to_str().unwrap_or_default()
    );
    let decided = trace.route.is_some_and(|r| r.credentials != CredentialKind::None)
        || matches!(rejection, Some(Rejection::RateLimited(_)));
    if decided && audit::enabled() {
        audit::write(&audit::Record {
            req: &req,
            request_id: &trace.request_id,
            route,
            grant: trace.grant.as_deref(),
            rejection: rejection.as_ref(),
            status,
            tier: trace.tier,
            latency: elapsed,
        });
    }
    let metrics = trace.route.map_or(&gateway.routes.unrouted, |r| &r.metrics);
    metrics.record(status, elapsed.as_secs_f64());
    response
}

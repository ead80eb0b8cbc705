//! The OAuth Agent API, wire-compatible with Curity's: `login/start`, `login/end`, `userInfo`, `claims`,
//! `refresh`, `logout`, plus `backchannel-logout`. Every answer to a trusted origin carries CORS headers,
//! errors included, so the SPA can read them.

use super::cookies::{Kind, ALL};
use super::cors::{is_preflight, OriginCheck};
use super::error::AgentError;
use super::oauth::{GrantError, LoginState, TokenResponse, RESERVED_PARAMS};
use super::sessions::{Listed, SESSION_TTL};
use super::TokenHandler;
use crate::gateway::Gateway;
use crate::issuer::Metadata;
use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `Allow` of the endpoints that take POST (and answer preflights).
const POST_ENDPOINT: &str = "POST, OPTIONS";
/// `Allow` of the endpoints that take GET (and answer preflights).
const GET_ENDPOINT: &str = "GET, OPTIONS";

/// Registers the agent's endpoints under `base_path`; with `hsts` (the listener serves HTTPS) every
/// answer carries `Strict-Transport-Security`.
pub fn configure(base_path: &str, hsts: bool) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        let hsts = actix_web::middleware::Condition::new(
            hsts,
            actix_web::middleware::DefaultHeaders::new()
                .add((header::STRICT_TRANSPORT_SECURITY, crate::transport::HSTS)),
        );
        cfg.service(
            web::scope(base_path)
                .wrap(hsts)
                .service(resource("/login/start", POST_ENDPOINT).route(web::post().to(login_start)))
                .service(resource("/login/end", POST_ENDPOINT).route(web::post().to(login_end)))
                .service(resource("/userInfo", GET_ENDPOINT).route(web::get().to(user_info)))
                .service(resource("/claims", GET_ENDPOINT).route(web::get().to(claims)))
                .service(resource("/refresh", POST_ENDPOINT).route(web::post().to(refresh)))
                .service(resource("/logout", POST_ENDPOINT).route(web::post().to(logout)))
                .service(resource("/backchannel-logout", POST_ENDPOINT).route(web::post().to(backchannel_logout)))
                .default_service(web::to(other)),
        );
    }
}

/// An endpoint's resource, whose other methods are answered by [`other_method`] with `allow`.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest, gateway: web::Data<Gateway>| async move {
        other_method(&req, &gateway, allow).await
    }))
}

/// What an endpoint produces before CORS and logging.
type Outcome = Result<HttpResponse, AgentError>;

/// Finishes an agent answer: the error as JSON (clearing the session when it says so), CORS for a
/// trusted origin, and the access-log line.
fn finish(
    th: &TokenHandler,
    req: &HttpRequest,
    origin: &OriginCheck,
    started: Instant,
    outcome: Outcome,
) -> HttpResponse {
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => {
            log::info!(target: "shroud::agent", "{} {} refused: {}", req.method(), req.path(), error);
            let mut response = error.error_response();
            if error.clears_session {
                for kind in ALL {
                    response.headers_mut().append(header::SET_COOKIE, th.jar.clear(kind));
                }
            }
            response
        }
    };
    if let OriginCheck::Trusted(value) = origin {
        th.cors.decorate(response.headers_mut(), value);
    }
    log::info!(
        target: "shroud::access",
        "{} {} route=agent status={} latency_ms={:.3}",
        req.method(),
        req.path(),
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

/// Runs one endpoint with the token handler, the request's origin check, the session's rate limit and
/// the common finish; a request that carries one of the token handler's cookies twice is refused first.
async fn run<'a, F, Fut>(req: &'a HttpRequest, gateway: &'a Gateway, endpoint: F) -> HttpResponse
where
    F: FnOnce(&'a TokenHandler, OriginCheck) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    run_counted(req, gateway, true, endpoint).await
}

/// [`run`], counting the call against the session's `agent_rate` when `counted`.
async fn run_counted<'a, F, Fut>(req: &'a HttpRequest, gateway: &'a Gateway, counted: bool, endpoint: F) -> HttpResponse
where
    F: FnOnce(&'a TokenHandler, OriginCheck) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let started = Instant::now();
    let Some(th) = gateway.token_handler.as_ref() else {
        return AgentError::server().error_response();
    };
    let origin = th.cors.check(req.headers());
    let outcome = match th.jar.duplicated(req.headers()) {
        Some(name) => {
            log::warn!(target: "shroud::agent", "the cookie {name} was sent more than once (cookie tossing?)");
            Err(AgentError::unauthorized("a token handler cookie was sent more than once"))
        }
        None if counted => match throttle(th, gateway, req).await {
            Ok(()) => endpoint(th, origin.clone()).await,
            Err(error) => Err(error),
        },
        None => endpoint(th, origin.clone()).await,
    };
    finish(th, req, &origin, started, outcome)
}

/// The session a call belongs to, for its rate limit: the ID token's `sid`, else the refresh token, else
/// the access token (from cookies that decrypt), as an HMAC. `None` for calls without a session.
fn session_key(th: &TokenHandler, req: &HttpRequest) -> Option<crate::cache::seal::CacheKey> {
    let decrypted = |kind| th.jar.read(req.headers(), kind).and_then(Result::ok);
    let sid = decrypted(Kind::IdToken)
        .and_then(|t| stored_claims(&t))
        .and_then(|c| c.get("sid").and_then(Value::as_str).map(|sid| format!("sid:{sid}")));
    let session = sid
        .or_else(|| decrypted(Kind::RefreshToken).map(|t| format!("rt:{t}")))
        .or_else(|| decrypted(Kind::AccessToken).map(|t| format!("at:{t}")))?;
    Some(th.sealer().key(&session))
}

/// Counts the call against its source IP's `agent_rate_per_ip` and its session's `agent_rate`: over
/// either, 429 with `Retry-After`, and an audit line naming the limit.
async fn throttle(th: &TokenHandler, gateway: &Gateway, req: &HttpRequest) -> Result<(), AgentError> {
    let over = |limit: &'static str| {
        move |exceeded: crate::rate_limit::Exceeded| {
            let retry_after = exceeded.retry_after_secs();
            log::warn!(
                target: "shroud::audit",
                "{}",
                json!({ "agent": "rate_limited", "limit": limit, "method": req.method().as_str(), "path": req.path(), "retry_after": retry_after })
            );
            AgentError::too_many_requests(retry_after)
        }
    };
    let source = || gateway.trusted_proxies.source_ip(req);
    if let Some((limiter, ip)) = th.agent_limit_per_ip.as_ref().and_then(|limiter| Some((limiter, source()?))) {
        // Keyed as the routes' per-IP limits are: IPv6 sources per `rate_limit.ipv6_prefix_length` network.
        let key = crate::pipeline::throttle::source_key(ip, gateway.config.rate_limit.ipv6_prefix_length());
        limiter.check(&key).await.map_err(over("ip"))?;
    }
    if let (Some(limiter), Some(session)) = (&th.agent_limit, session_key(th, req)) {
        limiter.check(&session).await.map_err(over("session"))?;
    }
    Ok(())
}

/// Data-changing endpoints: Origin must be present and trusted.
fn require_origin(origin: &OriginCheck) -> Result<(), AgentError> {
    match origin {
        OriginCheck::Trusted(_) => Ok(()),
        OriginCheck::Absent => Err(AgentError::unauthorized("an Origin header is required")),
        OriginCheck::Untrusted => Err(AgentError::unauthorized("the Origin is not trusted")),
    }
}

/// Reading endpoints: Origin, when sent, must be trusted (browsers omit it on same-origin GETs).
fn origin_if_sent(origin: &OriginCheck) -> Result<(), AgentError> {
    match origin {
        OriginCheck::Untrusted => Err(AgentError::unauthorized("the Origin is not trusted")),
        _ => Ok(()),
    }
}

fn require_csrf(th: &TokenHandler, req: &HttpRequest) -> Result<(), AgentError> {
    th.check_csrf(req.headers()).map_err(AgentError::unauthorized)
}

fn cookie(th: &TokenHandler, req: &HttpRequest, kind: Kind) -> Result<String, AgentError> {
    match th.jar.read(req.headers(), kind) {
        Some(Ok(value)) => Ok(value),
        Some(Err(_)) => Err(AgentError::unauthorized("a cookie could not be decrypted")),
        None => Err(AgentError::unauthorized("a required cookie is missing")),
    }
}

/// The largest request body the agent reads: its JSON bodies and logout tokens are small.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Reads the request body, refusing one over [`MAX_BODY_BYTES`] with 413 (as a JSON error with CORS, like
/// every agent answer).
async fn read_body(payload: web::Payload) -> Result<web::Bytes, AgentError> {
    match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(AgentError::invalid_request("the request body could not be read")),
        Err(_) => Err(AgentError::body_too_large()),
    }
}

/// Parses an optional JSON object body: real SPAs POST with no body and no Content-Type. Anything but an
/// object is refused, also an array that serde would read as the struct's fields in order.
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, AgentError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|_| AgentError::invalid_request("the request body is not valid JSON"))?;
    if !value.is_object() {
        return Err(AgentError::invalid_request("the request body is not a JSON object"));
    }
    serde_json::from_value(value)
        .map_err(|_| AgentError::invalid_request("the request body has a member of the wrong type"))
}

async fn metadata(th: &TokenHandler) -> Result<Arc<Metadata>, AgentError> {
    th.issuer().metadata().await.map_err(|e| {
        log::warn!("authorization server not available: {e}");
        AgentError::authorization_server()
    })
}

fn endpoint(value: Option<&str>, name: &str) -> Result<String, AgentError> {
    value.map(str::to_string).ok_or_else(|| {
        log::error!("the authorization server publishes no {name}");
        AgentError::server()
    })
}

/// Reads a JWT's claims without verifying it: only for tokens Shroud verified before storing them in
/// its own authenticated cookies.
fn stored_claims(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

#[derive(Deserialize, Default)]
struct StartBody {
    #[serde(rename = "extraParams", default)]
    extra_params: Vec<ExtraParam>,
}

#[derive(Deserialize)]
struct ExtraParam {
    key: String,
    value: String,
}

async fn login_start(http_req: HttpRequest, payload: web::Payload, gateway: web::Data<Gateway>) -> HttpResponse {
    let req = &http_req;
    run(req, &gateway, |th, origin| async move {
        require_origin(&origin)?;
        let start: StartBody = optional_json(&read_body(payload).await?)?;
        let mut extra = Vec::with_capacity(start.extra_params.len());
        for p in start.extra_params {
            if RESERVED_PARAMS.contains(&p.key.as_str()) || p.key.is_empty() {
                return Err(AgentError::invalid_request("extraParams may not set a protocol parameter"));
            }
            extra.push((p.key, p.value));
        }
        let metadata = metadata(th).await?;
        let authorize = endpoint(metadata.authorization_endpoint.as_deref(), "authorization_endpoint")?;
        let login = LoginState::fresh();
        let url = th.oauth.authorization_url(&authorize, &login, &extra).ok_or_else(AgentError::server)?;
        let state = serde_json::to_string(&login).map_err(|_| AgentError::server())?;
        Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .append_header((header::SET_COOKIE, th.jar.set(Kind::Login, &state)))
            .json(json!({ "authorizationRequestUrl": url })))
    })
    .await
}

#[derive(Deserialize, Default)]
struct EndBody {
    #[serde(rename = "pageUrl")]
    page_url: Option<String>,
}

/// The session report of `login/end` when the page is not an OAuth callback.
fn session_report(th: &TokenHandler, req: &HttpRequest) -> HttpResponse {
    let logged_in = matches!(th.jar.read(req.headers(), Kind::AccessToken), Some(Ok(_)));
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    if !logged_in {
        if th.jar.raw(req.headers(), Kind::AccessToken).is_some() {
            clear_session(th, &mut builder);
        }
        return builder.json(json!({ "handled": false, "isLoggedIn": false }));
    }
    let csrf = match th.jar.read(req.headers(), Kind::Csrf) {
        Some(Ok(csrf)) => csrf,
        _ => {
            let fresh = super::oauth::random_token();
            builder.append_header((header::SET_COOKIE, th.jar.set(Kind::Csrf, &fresh)));
            fresh
        }
    };
    builder.json(json!({ "handled": false, "isLoggedIn": true, "csrf": csrf }))
}

fn clear_session(th: &TokenHandler, builder: &mut HttpResponseBuilder) {
    for kind in ALL {
        builder.append_header((header::SET_COOKIE, th.jar.clear(kind)));
    }
}

async fn login_end(http_req: HttpRequest, payload: web::Payload, gateway: web::Data<Gateway>) -> HttpResponse {
    let req = &http_req;
    run(req, &gateway, |th, origin| async move {
        require_origin(&origin)?;
        let end: EndBody = optional_json(&read_body(payload).await?)?;
        let page = match end.page_url.as_deref().map(url::Url::parse) {
            Some(Ok(page)) => page,
            Some(Err(_)) => return Err(AgentError::invalid_request("pageUrl is not a URL")),
            None => return Ok(session_report(th, req)),
        };
        let param = |name: &str| page.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        if let Some(error) = param("error") {
            return Err(AgentError::from_callback(&error));
        }
        let Some(code) = param("code") else { return Ok(session_report(th, req)) };
        let state = param("state").ok_or_else(|| AgentError::invalid_request("the callback has no state"))?;
        let login: LoginState = serde_json::from_str(&cookie(th, req, Kind::Login)?)
            .map_err(|_| AgentError::unauthorized("the login cookie is not valid"))?;
        if !crate::secret::constant_time_eq(state.as_bytes(), login.state.as_bytes()) {
            return Err(AgentError::invalid_request("the state does not match the login in progress"));
        }
        let metadata = metadata(th).await?;
        let token_endpoint = endpoint(metadata.token_endpoint.as_deref(), "token_endpoint")?;
        let tokens =
            th.oauth.code_grant(&token_endpoint, &metadata.issuer, &code, &login.code_verifier).await.map_err(|e| {
                match e {
                    GrantError::Refused(_) => AgentError::invalid_request("the authorization code was refused"),
                    GrantError::Unavailable => AgentError::authorization_server(),
                }
            })?;
        let id_claims = match tokens.id_token.as_deref() {
            Some(id_token) => {
                Some(th.verify_id_token(id_token, &metadata.issuer, Some(&login.nonce)).await.map_err(|e| {
                    log::warn!("ID token refused: {}", e.reason());
                    AgentError::invalid_request("the ID token is not valid")
                })?)
            }
            None if th.oauth.wants_id_token() => return Err(AgentError::invalid_request("no ID token was issued")),
            None => None,
        };
        remember_session(th, id_claims.as_ref(), &tokens).await;
        let csrf = super::oauth::random_token();
        let mut builder = HttpResponse::Ok();
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        set_token_cookies(th, &mut builder, &tokens);
        builder.append_header((header::SET_COOKIE, th.jar.set(Kind::Csrf, &csrf)));
        builder.append_header((header::SET_COOKIE, th.jar.clear(Kind::Login)));
        Ok(builder.json(json!({ "handled": true, "isLoggedIn": true, "csrf": csrf })))
    })
    .await
}

fn set_token_cookies(th: &TokenHandler, builder: &mut HttpResponseBuilder, tokens: &TokenResponse) {
    builder.append_header((header::SET_COOKIE, th.jar.set(Kind::AccessToken, &tokens.access_token)));
    if let Some(refresh_token) = &tokens.refresh_token {
        builder.append_header((header::SET_COOKIE, th.jar.set(Kind::RefreshToken, refresh_token)));
    }
    if let Some(id_token) = &tokens.id_token {
        builder.append_header((header::SET_COOKIE, th.jar.set(Kind::IdToken, id_token)));
    }
}

/// Indexes the session's tokens by `sid` and `sub`, for logout and back-channel logout: the access
/// token for its `expires_in` (the longest a session is remembered when not told), the refresh token for
/// that longest time.
async fn remember_session(th: &TokenHandler, id_claims: Option<&Map<String, Value>>, tokens: &TokenResponse) {
    let claim = |name: &str| id_claims.and_then(|c| c.get(name)).and_then(Value::as_str);
    let mut owned = vec![Listed {
        token: &tokens.access_token,
        lifetime: tokens.expires_in.map_or(SESSION_TTL, Duration::from_secs),
    }];
    if let Some(rt) = &tokens.refresh_token {
        owned.push(Listed { token: rt, lifetime: SESSION_TTL });
    }
    th.sessions.record(claim("sid"), claim("sub"), &owned).await;
}

async fn user_info(http_req: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    let req = &http_req;
    run(req, &gateway, |th, origin| async move {
        origin_if_sent(&origin)?;
        let access_token = cookie(th, req, Kind::AccessToken)?;
        let metadata = metadata(th).await?;
        let userinfo = endpoint(metadata.userinfo_endpoint.as_deref(), "userinfo_endpoint")?;
        match th.oauth.userinfo(&userinfo, &access_token).await {
            Ok(info) => Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(info)),
            Err(super::oauth::UserinfoError::TokenRejected) => Err(AgentError::token_expired()),
            Err(super::oauth::UserinfoError::Failed) => Err(AgentError::authorization_server()),
        }
    })
    .await
}

async fn claims(http_req: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    let req = &http_req;
    run(req, &gateway, |th, origin| async move {
        origin_if_sent(&origin)?;
        let id_token = cookie(th, req, Kind::IdToken)?;
        let claims =
            stored_claims(&id_token).ok_or_else(|| AgentError::unauthorized("the ID token cookie is not valid"))?;
        Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(claims))
    })
    .await
}

async fn refresh(http_req: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    let gw = gateway.clone();
    let req = &http_req;
    run(req, &gateway, |th, origin| async move {
        require_origin(&origin)?;
        require_csrf(th, req)?;
        let refresh_token = cookie(th, req, Kind::RefreshToken)?;
        if th.sessions.is_denied_shared(&gw.cache.key(&refresh_token)).await {
            return Err(AgentError::session_expired());
        }
        let metadata = metadata(th).await?;
        let token_endpoint = endpoint(metadata.token_endpoint.as_deref(), "token_endpoint")?;
        let outcome = th.shared_refresh(&token_endpoint, &metadata.issuer, &refresh_token).await?;
        let tokens = match outcome.as_ref() {
            Ok(tokens) => tokens,
            Err(_) => return Err(AgentError::session_expired()),
        };
        let id_claims = match tokens.id_token.as_deref() {
            Some(id_token) => Some(th.verify_id_token(id_token, &metadata.issuer, None).await.map_err(|e| {
                log::warn!("refreshed ID token refused: {}", e.reason());
                AgentError::authorization_server()
            })?),
            None => th.jar.read(req.headers(), Kind::IdToken).and_then(Result::ok).and_then(|t| stored_claims(&t)),
        };
        remember_session(th, id_claims.as_ref(), tokens).await;
        let mut builder = HttpResponse::NoContent();
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        set_token_cookies(th, &mut builder, tokens);
        Ok(builder.finish())
    })
    .await
}

async fn logout(http_req: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    let gw = gateway.clone();
    let req = &http_req;
    run(req, &gateway, |th, origin| async move {
        require_origin(&origin)?;
        require_csrf(th, req)?;
        let access_token = cookie(th, req, Kind::AccessToken)?;
        let refresh_token = th.jar.read(req.headers(), Kind::RefreshToken).and_then(Result::ok);
        let id_token = th.jar.read(req.headers(), Kind::IdToken).and_then(Result::ok);
        let metadata = metadata(th).await?;
        if let (Some(rt), Some(revocation)) = (&refresh_token, metadata.revocation_endpoint.as_deref()) {
            th.oauth.revoke(revocation, &metadata.issuer, rt).await;
        }
        // Every token the session index holds for this session (earlier access tokens included), and
        // this request's own.
        let sid = id_token.as_deref().and_then(stored_claims).and_then(|c| c.get("sid")?.as_str().map(str::to_string));
        let mut ended = th.sessions.listed(sid.as_deref(), None).await;
        ended.push(gw.cache.key(&access_token));
        ended.extend(refresh_token.as_deref().map(|rt| gw.cache.key(rt)));
        ended.sort_unstable();
        ended.dedup();
        th.sessions.deny(&ended, &gw.cache).await;
        log::info!(target: "shroud::agent", "logout ended {} token(s)", ended.len());
        let url = th.oauth.end_session_url(metadata.end_session_endpoint.as_deref(), id_token.as_deref());
        let mut builder = HttpResponse::Ok();
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        clear_session(th, &mut builder);
        Ok(builder.json(json!({ "url": url })))
    })
    .await
}

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

async fn backchannel_logout(http_req: HttpRequest, payload: web::Payload, gateway: web::Data<Gateway>) -> HttpResponse {
    let gw = gateway.clone();
    let req = &http_req;
    // Not counted against a session: the authorization server calls it for many users.
    run_counted(req, &gateway, false, |th, _origin| async move {
        let form: LogoutForm = serde_urlencoded::from_bytes(&read_body(payload).await?)
            .map_err(|_| AgentError::invalid_request("no logout_token").with_oauth_fields())?;
        let metadata = metadata(th).await?;
        let claims = th.verify_logout_token(&form.logout_token, &metadata.issuer).await.map_err(|e| {
            log::warn!("logout token refused: {}", e.reason());
            AgentError::invalid_request(e.message()).with_oauth_fields()
        })?;
        let sid = claims.get("sid").and_then(Value::as_str);
        let sub = claims.get("sub").and_then(Value::as_str);
        // With a sid, only that session ends; without one, every session of the subject.
        let ended = th.sessions.end(sid, if sid.is_some() { None } else { sub }, &gw.cache).await;
        log::info!(target: "shroud::agent", "back-channel logout ended {ended} token(s)");
        Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish())
    })
    .await
}

/// The answer to a CORS preflight: the grants for a trusted origin, 401 otherwise.
fn preflight(th: &TokenHandler, origin: OriginCheck) -> Outcome {
    match origin {
        OriginCheck::Trusted(value) => Ok(th.cors.preflight(&value)),
        _ => Err(AgentError::unauthorized("the Origin is not trusted")),
    }
}

/// Another method on an endpoint: a CORS preflight is answered, a plain OPTIONS gets 204 with `Allow`,
/// anything else 405 with `Allow`.
async fn other_method(req: &HttpRequest, gateway: &Gateway, allow: &'static str) -> HttpResponse {
    run(req, gateway, |th, origin| async move {
        if is_preflight(req.method(), req.headers()) {
            preflight(th, origin)
        } else if req.method() == Method::OPTIONS {
            Ok(HttpResponse::NoContent().insert_header((header::ALLOW, allow)).finish())
        } else {
            Err(AgentError::method_not_allowed(allow))
        }
    })
    .await
}

/// Paths under the base path that are no endpoint: preflights are answered, anything else is 404.
async fn other(http_req: HttpRequest, gateway: web::Data<Gateway>) -> HttpResponse {
    let req = &http_req;
    run(req, &gateway, |th, origin| async move {
        if is_preflight(req.method(), req.headers()) {
            preflight(th, origin)
        } else {
            Err(AgentError::not_found())
        }
    })
    .await
}

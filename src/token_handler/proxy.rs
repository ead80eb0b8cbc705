//! The OAuth Proxy step for routes with `credentials = "cookie"` or `"any"`: preflight → Origin → CSRF
//! on data-changing methods → decrypt `<p>-at`. The opaque access token then goes through the phantom
//! exchange like a bearer token.

use super::cookies::Kind;
use super::cors::{is_data_changing, is_preflight, OriginCheck};
use super::TokenHandler;
use crate::error::Rejection;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse};

/// Answers a CORS preflight for a cookie route, if this is one: 204 with grants for trusted origins.
pub fn preflight(th: &TokenHandler, req: &HttpRequest) -> Option<Result<HttpResponse, Rejection>> {
    if !is_preflight(req.method(), req.headers()) {
        return None;
    }
    Some(match th.cors.check(req.headers()) {
        OriginCheck::Trusted(origin) => Ok(th.cors.preflight(&origin)),
        _ => Err(Rejection::CookieRejected("the Origin is not trusted")),
    })
}

/// The trusted origin of a request, for CORS on whatever answer it gets (`None` when absent or untrusted).
pub fn trusted_origin(th: &TokenHandler, req: &HttpRequest) -> Option<HeaderValue> {
    match th.cors.check(req.headers()) {
        OriginCheck::Trusted(origin) => Some(origin),
        _ => None,
    }
}

/// Checks Origin and CSRF and decrypts the access-token cookie.
pub fn access_token(th: &TokenHandler, req: &HttpRequest) -> Result<String, Rejection> {
    let changing = is_data_changing(req.method());
    match th.cors.check(req.headers()) {
        OriginCheck::Untrusted => return Err(Rejection::CookieRejected("the Origin is not trusted")),
        OriginCheck::Absent if changing => return Err(Rejection::CookieRejected("an Origin header is required")),
        _ => {}
    }
    if changing {
        th.check_csrf(req.headers()).map_err(Rejection::CookieRejected)?;
    }
    match th.jar.read(req.headers(), Kind::AccessToken) {
        Some(Ok(token)) => Ok(token),
        Some(Err(_)) => Err(Rejection::CookieRejected("the access token cookie could not be decrypted")),
        None => Err(Rejection::CookieRejected("no access token cookie")),
    }
}

//! The OAuth Proxy step for routes with `credentials = "cookie"` or `"any"`: preflight → no duplicated
//! cookie → Origin → CSRF on data-changing methods → decrypt `<p>-at`. The opaque access token then goes through the phantom
//! exchange like a bearer token.

use super::cookies::Kind;
use super::cors::{is_data_changing, is_preflight, OriginCheck};
use super::TokenHandler;
use crate::error::Rejection;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse};

/// A request on a cookie route, with its Origin classified once.
pub struct CookieContext<'a> {
    /// The token handler.
    pub th: &'a TokenHandler,
    /// The request's Origin.
    pub origin: OriginCheck,
}

impl<'a> CookieContext<'a> {
    /// Classifies the request's Origin for `th`.
    pub fn new(th: &'a TokenHandler, req: &HttpRequest) -> CookieContext<'a> {
        CookieContext { th, origin: th.cors.check(req.headers()) }
    }

    /// The trusted origin, for CORS on whatever answer the request gets (`None` when absent or untrusted).
    pub fn trusted_origin(&self) -> Option<&HeaderValue> {
        match &self.origin {
            OriginCheck::Trusted(origin) => Some(origin),
            _ => None,
        }
    }

    /// Answers a CORS preflight, if this is one: 204 with grants for trusted origins.
    pub fn preflight(&self, req: &HttpRequest) -> Option<Result<HttpResponse, Rejection>> {
        if !is_preflight(req.method(), req.headers()) {
            return None;
        }
        Some(match self.trusted_origin() {
            Some(origin) => Ok(self.th.cors.preflight(origin)),
            None => Err(Rejection::CookieRejected("the Origin is not trusted")),
        })
    }

    /// Checks Origin and CSRF and decrypts the access-token cookie; refuses a request that carries one of
    /// the token handler's cookies twice.
    pub fn access_token(&self, req: &HttpRequest) -> Result<String, Rejection> {
        if let Some(name) = self.th.jar.duplicated(req.headers()) {
            log::warn!("refused a request carrying the cookie {name} more than once (cookie tossing?)");
            return Err(Rejection::CookieRejected("a token handler cookie was sent more than once"));
        }
        let changing = is_data_changing(req.method());
        match self.origin {
            OriginCheck::Untrusted => return Err(Rejection::CookieRejected("the Origin is not trusted")),
            OriginCheck::Absent if changing => return Err(Rejection::CookieRejected("an Origin header is required")),
            _ => {}
        }
        if changing {
            self.th.check_csrf(req.headers()).map_err(Rejection::CookieRejected)?;
        }
        match self.th.jar.read(req.headers(), Kind::AccessToken) {
            Some(Ok(token)) => Ok(token),
            Some(Err(_)) => Err(Rejection::CookieRejected("the access token cookie could not be decrypted")),
            None => Err(Rejection::CookieRejected("no access token cookie")),
        }
    }
}

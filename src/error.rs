//! One type for every refusal, mapped to a response in one place, so that status codes, JSON bodies and
//! `WWW-Authenticate` headers can never disagree between paths.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use std::borrow::Cow;

/// Realm advertised in every `WWW-Authenticate` challenge.
pub const REALM: &str = "shroud";

/// Seconds a client is asked to wait when the authorization server or the policy service is unavailable.
pub const RETRY_AFTER_SECONDS: &str = "5";

/// Why a request was not forwarded (or could not be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 400 `invalid_request`; `bearer` adds the RFC 6750 challenge (credential problems).
    InvalidRequest {
        /// What was wrong, for the client.
        message: Cow<'static, str>,
        /// Whether the problem is with the bearer credential.
        bearer: bool,
    },
    /// 401 `unauthorized`: no credential (RFC 6750 §3.1: the challenge carries no error code).
    Unauthorized,
    /// 401 `invalid_token`: inactive, expired or unverifiable.
    InvalidToken(Cow<'static, str>),
    /// 401 `unauthorized_request`: the token handler's cookie credential is missing or refused (Origin,
    /// CSRF, decryption).
    CookieRejected(&'static str),
    /// 403 `insufficient_scope`, naming the scopes the route requires.
    InsufficientScope(String),
    /// 404 `not_found`: no route matches.
    NotFound,
    /// 404 `not_found`: a static route has no such file.
    FileNotFound,
    /// 405 `method_not_allowed`, with the `Allow` list.
    MethodNotAllowed(Cow<'static, str>),
    /// 403 `access_denied`: a claim rule of the route does not hold (named, never the claim's value).
    PolicyDenied(String),
    /// 502 `authorization_server_error`: the AS refused Shroud's own credentials or answered nonsense.
    AuthorizationServerError,
    /// 503 `authorization_server_unavailable`: unreachable, timed out, 5xx, or not yet discovered.
    AuthorizationServerUnavailable,
    /// 503 `policy_service_unavailable`: Open Policy Agent is unreachable, timed out, failed or answered
    /// nonsense; the request fails closed.
    PolicyServiceUnavailable,
    /// 413 `request_too_large`: the body is over the route's `max_body_bytes`.
    PayloadTooLarge,
    /// 431 `request_header_fields_too_large`: the header block is over `server.max_header_bytes`.
    HeadersTooLarge,
    /// 429 `too_many_requests`: over the route's per-IP or per-client rate.
    RateLimited(crate::rate_limit::Exceeded),
    /// 502 `upstream_unavailable`.
    UpstreamUnavailable,
    /// 504 `upstream_timeout`.
    UpstreamTimeout,
}

impl Rejection {
    /// A 400 about the bearer credential.
    pub fn bad_credential(message: &'static str) -> Self {
        Rejection::InvalidRequest { message: Cow::Borrowed(message), bearer: true }
    }

    /// A 400 about the request itself (path, headers).
    pub fn bad_request(message: &'static str) -> Self {
        Rejection::InvalidRequest { message: Cow::Borrowed(message), bearer: false }
    }

    /// The `code` field of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidRequest { .. } => "invalid_request",
            Rejection::Unauthorized => "unauthorized",
            Rejection::InvalidToken(_) => "invalid_token",
            Rejection::CookieRejected(_) => "unauthorized_request",
            Rejection::InsufficientScope(_) => "insufficient_scope",
            Rejection::NotFound | Rejection::FileNotFound => "not_found",
            Rejection::MethodNotAllowed(_) => "method_not_allowed",
            Rejection::PolicyDenied(_) => "access_denied",
            Rejection::AuthorizationServerError => "authorization_server_error",
            Rejection::AuthorizationServerUnavailable => "authorization_server_unavailable",
            Rejection::PolicyServiceUnavailable => "policy_service_unavailable",
            Rejection::RateLimited(_) => "too_many_requests",
            Rejection::PayloadTooLarge => "request_too_large",
            Rejection::HeadersTooLarge => "request_header_fields_too_large",
            Rejection::UpstreamUnavailable => "upstream_unavailable",
            Rejection::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The human-readable `message` field: says what failed, never why internally.
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Rejection::InvalidRequest { message, .. } | Rejection::InvalidToken(message) => message.clone(),
            Rejection::Unauthorized => "an access token is required".into(),
            Rejection::CookieRejected(message) => Cow::Borrowed(message),
            Rejection::InsufficientScope(scopes) => {
                format!("the access token lacks a required scope ({scopes})").into()
            }
            Rejection::NotFound => "no route matches this path".into(),
            Rejection::FileNotFound => "no such file".into(),
            Rejection::MethodNotAllowed(_) => "this method is not allowed here".into(),
            Rejection::PolicyDenied(rule) => format!("the request does not satisfy the rule `{rule}`").into(),
            Rejection::AuthorizationServerError => "the authorization server refused the gateway's request".into(),
            Rejection::AuthorizationServerUnavailable => "the authorization server is unavailable; retry later".into(),
            Rejection::PolicyServiceUnavailable => "the policy service is unavailable; retry later".into(),
            Rejection::RateLimited(exceeded) => {
                format!("rate limit exceeded; retry in {} s", exceeded.retry_after_secs()).into()
            }
            Rejection::PayloadTooLarge => "the request body is too large".into(),
            Rejection::HeadersTooLarge => "the request headers are too large".into(),
            Rejection::UpstreamUnavailable => "the upstream service is unavailable".into(),
            Rejection::UpstreamTimeout => "the upstream service did not answer in time".into(),
        }
    }

    fn challenge(&self) -> Option<String> {
        match self {
            Rejection::Unauthorized => Some(format!("Bearer realm=\"{REALM}\"")),
            Rejection::InvalidRequest { message, bearer: true } => {
                Some(format!("Bearer realm=\"{REALM}\", error=\"invalid_request\", error_description=\"{message}\""))
            }
            Rejection::InvalidToken(message) => {
                Some(format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{message}\""))
            }
            Rejection::InsufficientScope(scopes) => {
                Some(format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scopes}\""))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        match self {
            Rejection::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            Rejection::Unauthorized | Rejection::InvalidToken(_) | Rejection::CookieRejected(_) => {
                StatusCode::UNAUTHORIZED
            }
            Rejection::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Rejection::NotFound | Rejection::FileNotFound => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::PolicyDenied(_) => StatusCode::FORBIDDEN,
            Rejection::AuthorizationServerError | Rejection::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Rejection::AuthorizationServerUnavailable | Rejection::PolicyServiceUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Rejection::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Rejection::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Rejection::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        builder.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(challenge) = self.challenge() {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                builder.insert_header((header::WWW_AUTHENTICATE, value));
            }
        }
        if let Rejection::MethodNotAllowed(allow) = self {
            if let Ok(value) = HeaderValue::from_str(allow) {
                builder.insert_header((header::ALLOW, value));
            }
        }
        if matches!(self, Rejection::AuthorizationServerUnavailable | Rejection::PolicyServiceUnavailable) {
            builder.insert_header((header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS)));
        }
        if let Rejection::RateLimited(exceeded) = self {
            // RFC 6585 §4 and the IETF RateLimit header fields draft (limit, remaining, reset, policy).
            let wait = exceeded.retry_after_secs().to_string();
            let limit = exceeded.rate.limit.to_string();
            let policy = format!("{limit};w={}", exceeded.rate.period.as_secs());
            for (name, value) in [
                ("retry-after", wait.as_str()),
                ("ratelimit-limit", limit.as_str()),
                ("ratelimit-remaining", "0"),
                ("ratelimit-reset", wait.as_str()),
                ("ratelimit-policy", policy.as_str()),
            ] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    builder.insert_header((name, value));
                }
            }
        }
        builder.json(serde_json::json!({ "code": self.code(), "message": self.message() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn render(r: &Rejection) -> (u16, Option<String>, serde_json::Value) {
        let resp = r.error_response();
        let challenge = resp.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_string());
        let status = resp.status().as_u16();
        let body = resp.into_body().try_into_bytes().unwrap();
        (status, challenge, serde_json::from_slice(&body).unwrap())
    }

    #[test]
    fn unauthorized_has_a_bare_challenge() {
        let (status, challenge, body) = render(&Rejection::Unauthorized);
        assert_eq!(status, 401);
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"shroud\""));
        assert_eq!(body["code"], "unauthorized");
    }

    #[test]
    fn insufficient_scope_names_the_scopes() {
        let (status, challenge, body) = render(&Rejection::InsufficientScope("read write".into()));
        assert_eq!(status, 403);
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer realm=\"shroud\", error=\"insufficient_scope\", scope=\"read write\"")
        );
        assert_eq!(body["code"], "insufficient_scope");
    }

    #[test]
    fn upstream_errors_carry_no_challenge() {
        for (r, status) in [
            (Rejection::UpstreamTimeout, 504),
            (Rejection::UpstreamUnavailable, 502),
            (Rejection::AuthorizationServerError, 502),
            (Rejection::AuthorizationServerUnavailable, 503),
            (Rejection::PolicyServiceUnavailable, 503),
            (Rejection::NotFound, 404),
        ] {
            let (s, challenge, body) = render(&r);
            assert_eq!(s, status);
            assert!(challenge.is_none());
            assert_eq!(body["code"], r.code());
        }
    }

    #[test]
    fn unavailable_services_ask_to_retry_without_saying_where() {
        for r in [Rejection::AuthorizationServerUnavailable, Rejection::PolicyServiceUnavailable] {
            let resp = r.error_response();
            assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), RETRY_AFTER_SECONDS);
        }
        let (_, _, body) = render(&Rejection::PolicyServiceUnavailable);
        assert_eq!(body["code"], "policy_service_unavailable");
        assert_eq!(body["message"], "the policy service is unavailable; retry later");
    }
}

//! Errors of the OAuth Agent API, with Curity's codes: JSON `{"code","message"}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use std::borrow::Cow;

/// An OAuth Agent error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentError {
    /// HTTP status.
    pub status: StatusCode,
    /// Curity-compatible error code.
    pub code: Cow<'static, str>,
    /// What failed, for the SPA developer.
    pub message: Cow<'static, str>,
    /// Whether the session's cookies are cleared with this answer.
    pub clears_session: bool,
    /// The `Allow` header of a 405: the methods the endpoint takes.
    pub allow: Option<&'static str>,
    /// The `Retry-After` header of a 429, in seconds.
    pub retry_after: Option<u64>,
    /// Whether the body also carries OAuth 2.0's `error` and `error_description` (RFC 6749 §5.2), as
    /// OpenID Connect Back-Channel Logout §2.8 asks of a refused logout token.
    pub oauth_fields: bool,
}

impl AgentError {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> AgentError {
        AgentError {
            status,
            code: code.into(),
            message: message.into(),
            clears_session: false,
            allow: None,
            retry_after: None,
            oauth_fields: false,
        }
    }

    /// 401 `unauthorized_request`: bad Origin, missing or undecryptable cookie, CSRF mismatch.
    pub fn unauthorized(message: &'static str) -> AgentError {
        AgentError::new(StatusCode::UNAUTHORIZED, "unauthorized_request", message)
    }

    /// 401 `session_expired`: the refresh token was rejected; the cookies are cleared.
    pub fn session_expired() -> AgentError {
        AgentError {
            clears_session: true,
            ..AgentError::new(StatusCode::UNAUTHORIZED, "session_expired", "the session has expired: log in again")
        }
    }

    /// 401 `token_expired`: the access token was rejected; the SPA should call `/refresh`.
    pub fn token_expired() -> AgentError {
        AgentError::new(StatusCode::UNAUTHORIZED, "token_expired", "the access token has expired: refresh it")
    }

    /// 401 `login_required`: the authorization server needs the user to log in.
    pub fn login_required() -> AgentError {
        AgentError::new(StatusCode::UNAUTHORIZED, "login_required", "the user must log in")
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(message: &'static str) -> AgentError {
        AgentError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 400 with the error code the authorization server put in the callback URL.
    pub fn from_callback(code: &str) -> AgentError {
        if code == "login_required" {
            return AgentError::login_required();
        }
        let safe = !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        AgentError {
            status: StatusCode::BAD_REQUEST,
            code: if safe { Cow::Owned(code.to_string()) } else { Cow::Borrowed("authorization_error") },
            message: "the authorization server returned an error".into(),
            clears_session: false,
            allow: None,
            retry_after: None,
            oauth_fields: false,
        }
    }

    /// 413 `request_too_large`: the body is larger than the agent reads.
    pub fn body_too_large() -> AgentError {
        AgentError::new(StatusCode::PAYLOAD_TOO_LARGE, "request_too_large", "the request body is too large")
    }

    /// 404 `not_found`: no such endpoint under the base path.
    pub fn not_found() -> AgentError {
        AgentError::new(StatusCode::NOT_FOUND, "not_found", "no such OAuth Agent endpoint")
    }

    /// 405 `method_not_allowed`, with the methods the endpoint takes (`allow`) in `Allow`.
    pub fn method_not_allowed(allow: &'static str) -> AgentError {
        AgentError {
            allow: Some(allow),
            ..AgentError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this method is not allowed here")
        }
    }

    /// The same error, its body also carrying `error` and `error_description`.
    pub fn with_oauth_fields(self) -> AgentError {
        AgentError { oauth_fields: true, ..self }
    }

    /// 429 `too_many_requests`: the session's `agent_rate` is spent; `retry_after` seconds until the next
    /// call is allowed (`Retry-After`).
    pub fn too_many_requests(retry_after: u64) -> AgentError {
        AgentError {
            retry_after: Some(retry_after),
            ..AgentError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many calls for this session: retry later",
            )
        }
    }

    /// 502 `authorization_server_error`.
    pub fn authorization_server() -> AgentError {
        AgentError::new(
            StatusCode::BAD_GATEWAY,
            "authorization_server_error",
            "the authorization server could not complete the request",
        )
    }

    /// 500 `server_error`.
    pub fn server() -> AgentError {
        AgentError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the token handler failed")
    }
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for AgentError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header(("cache-control", "no-store"));
        if let Some(allow) = self.allow {
            builder.insert_header(("allow", allow));
        }
        if let Some(seconds) = self.retry_after {
            builder.insert_header(("retry-after", seconds.to_string()));
        }
        let mut body = serde_json::json!({ "code": self.code, "message": self.message });
        if self.oauth_fields {
            body["error"] = serde_json::json!(self.code);
            body["error_description"] = serde_json::json!(self.message);
        }
        builder.json(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_codes_are_passed_through_only_when_plain() {
        assert_eq!(AgentError::from_callback("access_denied").code, "access_denied");
        assert_eq!(AgentError::from_callback("<script>").code, "authorization_error");
        assert_eq!(AgentError::from_callback("login_required").status, StatusCode::UNAUTHORIZED);
    }
}

//! Stage 2, **credential**: RFC 6750 bearer parsing. All header hygiene for credentials lives here.

use crate::config::CredentialKind;
use crate::error::Rejection;
use crate::token_handler::proxy::CookieContext;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use actix_web::HttpRequest;

/// Longest accepted access token, in bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The credential a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential<'a> {
    /// An opaque bearer token.
    Bearer(&'a str),
    /// An opaque access token from the token handler's cookie.
    Cookie(String),
    /// None (routes with `credentials = "none"`).
    None,
}

impl Credential<'_> {
    /// The opaque token, if any.
    pub fn token(&self) -> Option<&str> {
        match self {
            Credential::Bearer(token) => Some(token),
            Credential::Cookie(token) => Some(token),
            Credential::None => None,
        }
    }
}

/// Extracts the credential the route asks for: bearer (RFC 6750), cookie (OAuth Proxy), either, or none.
/// For `any`, an Authorization header decides: present means bearer, malformed means 400.
pub fn extract<'r>(
    kind: CredentialKind,
    req: &'r HttpRequest,
    cookies: Option<&CookieContext<'_>>,
) -> Result<Credential<'r>, Rejection> {
    let cookies = || cookies.ok_or(Rejection::CookieRejected("the token handler is not enabled"));
    match kind {
        CredentialKind::None => Ok(Credential::None),
        CredentialKind::Bearer => bearer(req.headers()),
        CredentialKind::Cookie => cookies()?.access_token(req).map(Credential::Cookie),
        CredentialKind::Any if req.headers().contains_key(AUTHORIZATION) => bearer(req.headers()),
        CredentialKind::Any => cookies()?.access_token(req).map(Credential::Cookie),
    }
}

/// RFC 6750 §2.1 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// Parses `Authorization: Bearer`.
///
/// Missing header, or another scheme (Basic, …) → 401 without an error code. Several Authorization
/// headers, a malformed Bearer value, a token over [`MAX_TOKEN_LEN`] or with characters outside
/// b64token → 400 `invalid_request`; never a fallback to another credential.
pub fn bearer(headers: &HeaderMap) -> Result<Credential<'_>, Rejection> {
    let mut values = headers.get_all(AUTHORIZATION);
    let value = values.next().ok_or(Rejection::Unauthorized)?;
    if values.next().is_some() {
        return Err(Rejection::bad_credential("several Authorization headers"));
    }
    let value = value.to_str().map_err(|_| Rejection::bad_credential("malformed Authorization header"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::Unauthorized);
    }
    let token = rest.trim_start_matches(' ');
    if token.len() > MAX_TOKEN_LEN {
        return Err(Rejection::bad_credential("access token too long"));
    }
    if !is_b64token(token) {
        return Err(Rejection::bad_credential("malformed Bearer credential"));
    }
    Ok(Credential::Bearer(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn parse(values: &[&str]) -> Result<Option<String>, Rejection> {
        let h = headers(values);
        bearer(&h).map(|c| c.token().map(str::to_string))
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(parse(&["Bearer abc.DEF-_~+/=="]).unwrap().as_deref(), Some("abc.DEF-_~+/=="));
        assert_eq!(parse(&["bEaReR  tok"]).unwrap().as_deref(), Some("tok"));
        assert_eq!(parse(&[]).unwrap_err(), Rejection::Unauthorized);
        assert_eq!(parse(&["Basic dXNlcjpwYXNz"]).unwrap_err(), Rejection::Unauthorized);
        for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer =abc", "Bearer tok "] {
            assert_eq!(parse(&[bad]).unwrap_err().code(), "invalid_request", "{bad}");
        }
        assert_eq!(parse(&["Bearer a", "Bearer b"]).unwrap_err().code(), "invalid_request");
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(parse(&[&long]).unwrap_err().code(), "invalid_request");
        let max = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN));
        assert!(parse(&[&max]).is_ok());
    }
}

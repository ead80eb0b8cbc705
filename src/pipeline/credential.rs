//! Stage 2, **credential**: RFC 6750 bearer parsing. All header hygiene for credentials lives here.

use crate::config::CredentialKind;
use crate::error::Rejection;
use actix_web::http::header::{HeaderMap, AUTHORIZATION};

/// Longest accepted access token, in bytes.
pub const MAX_TOKEN_LEN: usize = 4096;

/// The credential a request presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// An opaque bearer token.
    Bearer(&'a str),
    /// None (routes with `credentials = "none"`).
    None,
}

/// RFC 6750 §2.1 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
}

/// Extracts the credential the route asks for.
///
/// Missing header, or another scheme (Basic, …) → 401 without an error code. Several Authorization
/// headers, a malformed Bearer value, a token over [`MAX_TOKEN_LEN`] or with characters outside
/// b64token → 400 `invalid_request`; never a fallback to another credential.
pub fn extract(kind: CredentialKind, headers: &HeaderMap) -> Result<Credential<'_>, Rejection> {
    if kind == CredentialKind::None {
        return Ok(Credential::None);
    }
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

    fn bearer(values: &[&str]) -> Result<Option<String>, Rejection> {
        let h = headers(values);
        extract(CredentialKind::Bearer, &h).map(|c| match c {
            Credential::Bearer(t) => Some(t.to_string()),
            Credential::None => None,
        })
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        assert_eq!(bearer(&["Bearer abc.DEF-_~+/=="]).unwrap().as_deref(), Some("abc.DEF-_~+/=="));
        assert_eq!(bearer(&["bEaReR  tok"]).unwrap().as_deref(), Some("tok"));
        assert_eq!(bearer(&[]).unwrap_err(), Rejection::Unauthorized);
        assert_eq!(bearer(&["Basic dXNlcjpwYXNz"]).unwrap_err(), Rejection::Unauthorized);
        for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer =abc", "Bearer tok "] {
            assert_eq!(bearer(&[bad]).unwrap_err().code(), "invalid_request", "{bad}");
        }
        assert_eq!(bearer(&["Bearer a", "Bearer b"]).unwrap_err().code(), "invalid_request");
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(bearer(&[&long]).unwrap_err().code(), "invalid_request");
        let max = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN));
        assert!(bearer(&[&max]).is_ok());
    }

    #[test]
    fn none_routes_ignore_headers() {
        assert_eq!(extract(CredentialKind::None, &headers(&["Bearer a", "Bearer b"])), Ok(Credential::None));
    }
}

//! Origin checks and CORS for the token handler: trusted origins only, matched exactly.

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::HttpResponse;

/// How long browsers may cache a preflight answer, in seconds.
const PREFLIGHT_MAX_AGE: &str = "86400";

/// What the request's `Origin` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// No Origin header (same-origin GETs, non-browser clients).
    Absent,
    /// A trusted origin: its exact header value.
    Trusted(HeaderValue),
    /// Anything else: an unknown origin, `null`, a look-alike, several headers.
    Untrusted,
}

/// The trusted web origins and the CORS headers granted to them.
pub struct Cors {
    trusted: Vec<String>,
    allow_headers: HeaderValue,
}

/// Whether a method may change data (and so needs Origin and CSRF): every method but RFC 9110's safe
/// ones (GET, HEAD, OPTIONS, TRACE). Not only POST, PUT, PATCH and DELETE: an upstream may act on
/// WebDAV's or its own methods too.
pub fn is_data_changing(method: &Method) -> bool {
    !method.is_safe()
}

impl Cors {
    /// CORS for `trusted` origins, allowing the CSRF header and `content-type`.
    pub fn new(trusted: &[String], csrf_header: &HeaderName) -> Cors {
        let allow_headers = HeaderValue::from_str(&format!("{}, content-type", csrf_header.as_str()))
            .expect("header names are valid header values");
        Cors { trusted: trusted.to_vec(), allow_headers }
    }

    /// Classifies the request's Origin (exact, case-sensitive match).
    pub fn check(&self, headers: &HeaderMap) -> OriginCheck {
        let mut values = headers.get_all(header::ORIGIN);
        let Some(origin) = values.next() else { return OriginCheck::Absent };
        if values.next().is_some() {
            return OriginCheck::Untrusted;
        }
        match origin.to_str() {
            Ok(text) if self.trusted.iter().any(|t| t == text) => OriginCheck::Trusted(origin.clone()),
            _ => OriginCheck::Untrusted,
        }
    }

    /// Adds the CORS response headers for a trusted origin.
    pub fn decorate(&self, headers: &mut HeaderMap, origin: &HeaderValue) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }

    /// The answer to a preflight from a trusted origin: 204 with the CORS grants.
    pub fn preflight(&self, origin: &HeaderValue) -> HttpResponse {
        let mut response = HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PUT, PATCH, DELETE, OPTIONS"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, self.allow_headers.clone()))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE))
            .finish();
        self.decorate(response.headers_mut(), origin);
        response
    }
}

/// Whether a request is a CORS preflight.
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    *method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors::new(&["https://app.example".to_string()], &HeaderName::from_static("x-shroud-csrf"))
    }

    fn with_origin(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::ORIGIN, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_match_exactly() {
        let c = cors();
        assert_eq!(c.check(&with_origin(&[])), OriginCheck::Absent);
        assert!(matches!(c.check(&with_origin(&["https://app.example"])), OriginCheck::Trusted(_)));
        for bad in [
            "null",
            "https://app.example.evil",
            "https://app.example/",
            "http://app.example",
            "HTTPS://APP.EXAMPLE",
            "https://evil.app.example",
        ] {
            assert_eq!(c.check(&with_origin(&[bad])), OriginCheck::Untrusted, "{bad}");
        }
        assert_eq!(c.check(&with_origin(&["https://app.example", "https://app.example"])), OriginCheck::Untrusted);
    }

    #[test]
    fn only_safe_methods_change_nothing() {
        for safe in [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE] {
            assert!(!is_data_changing(&safe), "{safe}");
        }
        for changing in ["POST", "PUT", "PATCH", "DELETE", "PROPPATCH", "MOVE", "PURGE", "X-CUSTOM"] {
            assert!(is_data_changing(&Method::from_bytes(changing.as_bytes()).unwrap()), "{changing}");
        }
    }

    #[test]
    fn preflight_grants() {
        let r = cors().preflight(&HeaderValue::from_static("https://app.example"));
        assert_eq!(r.status(), 204);
        let h = r.headers();
        assert_eq!(h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(), "https://app.example");
        assert_eq!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).unwrap(), "true");
        assert_eq!(h.get(header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap(), "x-shroud-csrf, content-type");
        assert_eq!(h.get(header::VARY).unwrap(), "Origin");
        assert!(h.contains_key(header::ACCESS_CONTROL_MAX_AGE));
    }
}

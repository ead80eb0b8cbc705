//! The token handler's cookies, all built and read in one place.
//!
//! | cookie | holds | path |
//! |---|---|---|
//! | `<p>-login` | state, PKCE verifier, nonce of a login in progress | `<base_path>` |
//! | `<p>-at` | the access token, exactly | `/` |
//! | `<p>-auth` | the refresh token | `<base_path>` |
//! | `<p>-id` | the ID token | `<base_path>` |
//! | `<p>-csrf` | the CSRF token, exactly | `/` |
//!
//! All are encrypted ([`CookieCipher`], each value bound to its cookie's name unless the Curity v1 format
//! is configured), HttpOnly, `SameSite=Strict`, `Secure` unless configured off, with `Domain` when
//! configured, and session cookies. Each is cleared on the path it was set with.
//!
//! With `cookie_host_prefix`, the names are `__Host-<p>-…` and every cookie is on `Path=/` (what the
//! prefix requires, with `Secure` and no `Domain`), so a sibling subdomain cannot set one. A request that
//! carries one of these cookies more than once (a tossed cookie shadowing the genuine one) is refused.

use super::crypto::CookieCipher;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, COOKIE};
use cookie::time::{Duration, OffsetDateTime};
use cookie::{Cookie, SameSite};

/// The five cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A login in progress.
    Login,
    /// The access token.
    AccessToken,
    /// The refresh token.
    RefreshToken,
    /// The ID token.
    IdToken,
    /// The CSRF token.
    Csrf,
}

/// Every kind, for clearing a whole session.
pub const ALL: [Kind; 5] = [Kind::Login, Kind::AccessToken, Kind::RefreshToken, Kind::IdToken, Kind::Csrf];

/// A cookie that is present but cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undecryptable;

/// Names, attributes and encryption of the token handler's cookies.
pub struct CookieJar {
    names: [String; 5],
    base_path: String,
    domain: Option<String>,
    secure: bool,
    cipher: CookieCipher,
    csrf_header: HeaderName,
}

impl CookieJar {
    /// A jar for cookies named `<prefix>-…`, or `__Host-<prefix>-…` with `host_prefix` (then every cookie
    /// is on `Path=/`).
    pub fn new(
        prefix: &str,
        base_path: &str,
        domain: &str,
        secure: bool,
        host_prefix: bool,
        cipher: CookieCipher,
    ) -> CookieJar {
        let name = |suffix: &str| format!("{}{prefix}-{suffix}", if host_prefix { "__Host-" } else { "" });
        CookieJar {
            names: [name("login"), name("at"), name("auth"), name("id"), name("csrf")],
            base_path: if host_prefix { "/".to_string() } else { base_path.to_string() },
            domain: (!domain.is_empty()).then(|| domain.to_string()),
            secure,
            cipher,
            csrf_header: HeaderName::try_from(format!("x-{prefix}-csrf")).expect("validated cookie prefix"),
        }
    }

    /// The cookie's name.
    pub fn name(&self, kind: Kind) -> &str {
        &self.names[kind as usize]
    }

    /// The path a cookie is set (and cleared) on.
    pub fn path(&self, kind: Kind) -> &str {
        match kind {
            Kind::AccessToken | Kind::Csrf => "/",
            Kind::Login | Kind::RefreshToken | Kind::IdToken => &self.base_path,
        }
    }

    /// The CSRF request header, `x-<prefix>-csrf`.
    pub fn csrf_header(&self) -> &HeaderName {
        &self.csrf_header
    }

    /// Whether `name` is one of this jar's cookies.
    pub fn owns(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    fn attributes<'c>(&self, kind: Kind, value: String) -> cookie::CookieBuilder<'c> {
        let mut builder = Cookie::build((self.name(kind).to_string(), value))
            .path(self.path(kind).to_string())
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(self.secure);
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        builder
    }

    /// `Set-Cookie` for `plaintext`, encrypted.
    pub fn set(&self, kind: Kind, plaintext: &str) -> HeaderValue {
        let cookie = self.attributes(kind, self.cipher.encrypt(self.name(kind), plaintext)).build();
        HeaderValue::from_str(&cookie.to_string()).expect("cookie values are base64url")
    }

    /// `Set-Cookie` that deletes the cookie on the path it was set with.
    pub fn clear(&self, kind: Kind) -> HeaderValue {
        let cookie =
            self.attributes(kind, String::new()).max_age(Duration::ZERO).expires(OffsetDateTime::UNIX_EPOCH).build();
        HeaderValue::from_str(&cookie.to_string()).expect("cookie attributes are ASCII")
    }

    /// Every `name=value` pair of the request's `Cookie` headers.
    fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
        headers
            .get_all(COOKIE)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .map(|(n, value)| (n.trim(), value.trim()))
    }

    /// The raw value of the cookie, if the request carries it (the first one, across `Cookie` headers:
    /// callers refuse requests with [`CookieJar::duplicated`] cookies first).
    pub fn raw<'h>(&self, headers: &'h HeaderMap, kind: Kind) -> Option<&'h str> {
        let name = self.name(kind);
        Self::pairs(headers).find_map(|(n, value)| (n == name).then_some(value))
    }

    /// The name of a token-handler cookie the request carries more than once, if any: a browser sends two
    /// cookies of one name when another site (a sibling subdomain) has set one with another `Domain` or
    /// `Path`, so no copy can be trusted to be Shroud's. One pass over the `Cookie` headers: this runs on
    /// every cookie-route request.
    pub fn duplicated(&self, headers: &HeaderMap) -> Option<&str> {
        let mut seen = [false; ALL.len()];
        for (name, _) in Self::pairs(headers) {
            if let Some(i) = self.names.iter().position(|own| own == name) {
                if std::mem::replace(&mut seen[i], true) {
                    return Some(&self.names[i]);
                }
            }
        }
        None
    }

    /// The decrypted cookie: `None` when absent, `Err` when present but not decryptable (under its name).
    pub fn read(&self, headers: &HeaderMap, kind: Kind) -> Option<Result<String, Undecryptable>> {
        self.raw(headers, kind).map(|value| self.cipher.decrypt(self.name(kind), value).ok_or(Undecryptable))
    }

    /// The `Cookie` header without this jar's cookies (what non-cookie routes forward), or `None` when
    /// nothing is left.
    pub fn without_own(&self, value: &str) -> Option<String> {
        let kept: Vec<&str> = value
            .split(';')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
            .filter(|pair| pair.split_once('=').is_none_or(|(name, _)| !self.owns(name.trim())))
            .collect();
        (!kept.is_empty()).then(|| kept.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CookieFormat;

    fn cipher() -> CookieCipher {
        CookieCipher::new(&[[9; 32]], CookieFormat::Bound)
    }

    fn jar(secure: bool, domain: &str) -> CookieJar {
        CookieJar::new("shroud", "/oauth-agent", domain, secure, false, cipher())
    }

    #[test]
    fn attributes_and_paths() {
        let j = jar(true, "");
        let at = j.set(Kind::AccessToken, "tok");
        let at = at.to_str().unwrap();
        assert!(at.starts_with("shroud-at="));
        for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(at.contains(attr), "{attr} in {at}");
        }
        assert!(!at.contains("Domain") && !at.contains("Max-Age") && !at.contains("tok;"));
        let auth = j.set(Kind::RefreshToken, "rt");
        assert!(auth.to_str().unwrap().contains("Path=/oauth-agent"));
        let cleared = j.clear(Kind::IdToken);
        let cleared = cleared.to_str().unwrap();
        assert!(
            cleared.starts_with("shroud-id=;")
                && cleared.contains("Max-Age=0")
                && cleared.contains("Path=/oauth-agent")
        );
        let dev = jar(false, "example.com").set(Kind::Csrf, "c");
        let dev = dev.to_str().unwrap();
        assert!(!dev.contains("Secure") && dev.contains("Domain=example.com"));
    }

    #[test]
    fn reading_cookies() {
        let j = jar(true, "");
        let mut headers = HeaderMap::new();
        let at = cipher().encrypt("shroud-at", "opaque");
        let value = format!("other=1; shroud-at={at}; shroud-csrf=garbage");
        headers.insert(COOKIE, HeaderValue::from_str(&value).unwrap());
        assert_eq!(j.read(&headers, Kind::AccessToken), Some(Ok("opaque".to_string())));
        assert_eq!(j.read(&headers, Kind::Csrf), Some(Err(Undecryptable)));
        assert_eq!(j.read(&headers, Kind::IdToken), None);
        assert_eq!(j.without_own(&value).as_deref(), Some("other=1"));
        assert_eq!(j.without_own("shroud-at=x"), None);
        assert_eq!(j.csrf_header().as_str(), "x-shroud-csrf");
    }

    #[test]
    fn values_are_bound_to_their_names() {
        let j = jar(true, "");
        let auth = cipher().encrypt("shroud-auth", "refresh");
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&format!("shroud-at={auth}; shroud-auth={auth}")).unwrap());
        assert_eq!(j.read(&headers, Kind::RefreshToken), Some(Ok("refresh".to_string())));
        assert_eq!(j.read(&headers, Kind::AccessToken), Some(Err(Undecryptable)), "moved to another name");
    }

    #[test]
    fn duplicates_and_host_prefixed_names() {
        let j = jar(true, "");
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("shroud-at=a; other=1; other=2"));
        headers.append(COOKIE, HeaderValue::from_static("shroud-csrf=c"));
        assert_eq!(j.duplicated(&headers), None, "other cookies may repeat");
        headers.append(COOKIE, HeaderValue::from_static("shroud-at=b"));
        assert_eq!(j.duplicated(&headers), Some("shroud-at"), "across Cookie headers too");

        let host = CookieJar::new("shroud", "/oauth-agent", "", true, true, cipher());
        assert_eq!(host.name(Kind::RefreshToken), "__Host-shroud-auth");
        let line = host.set(Kind::RefreshToken, "rt");
        let line = line.to_str().unwrap();
        let attributes: Vec<&str> = line.split("; ").collect();
        assert!(line.starts_with("__Host-shroud-auth=") && attributes.contains(&"Path=/"), "{line}");
        assert!(attributes.contains(&"Secure"), "{line}");
        assert!(!line.contains("Domain"));
        assert!(host.owns("__Host-shroud-at") && !host.owns("shroud-at"));
        assert_eq!(host.csrf_header().as_str(), "x-shroud-csrf");
    }
}

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
//! All are encrypted ([`CookieCipher`]), HttpOnly, `SameSite=Strict`, `Secure` unless configured off, with
//! `Domain` when configured, and session cookies. Each is cleared on the path it was set with.

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
    /// A jar for cookies named `<prefix>-…`.
    pub fn new(prefix: &str, base_path: &str, domain: &str, secure: bool, cipher: CookieCipher) -> CookieJar {
        let name = |suffix: &str| format!("{prefix}-{suffix}");
        CookieJar {
            names: [name("login"), name("at"), name("auth"), name("id"), name("csrf")],
            base_path: base_path.to_string(),
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
        let cookie = self.attributes(kind, self.cipher.encrypt(plaintext)).build();
        HeaderValue::from_str(&cookie.to_string()).expect("cookie values are base64url")
    }

    /// `Set-Cookie` that deletes the cookie on the path it was set with.
    pub fn clear(&self, kind: Kind) -> HeaderValue {
        let cookie =
            self.attributes(kind, String::new()).max_age(Duration::ZERO).expires(OffsetDateTime::UNIX_EPOCH).build();
        HeaderValue::from_str(&cookie.to_string()).expect("cookie attributes are ASCII")
    }

    /// The raw value of the cookie, if the request carries it (the first one, across `Cookie` headers).
    pub fn raw<'h>(&self, headers: &'h HeaderMap, kind: Kind) -> Option<&'h str> {
        let name = self.name(kind);
        headers.get_all(COOKIE).filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|pair| {
            let (n, value) = pair.trim().split_once('=')?;
            (n == name).then_some(value.trim())
        })
    }

    /// The decrypted cookie: `None` when absent, `Err` when present but not decryptable.
    pub fn read(&self, headers: &HeaderMap, kind: Kind) -> Option<Result<String, Undecryptable>> {
        self.raw(headers, kind).map(|value| self.cipher.decrypt(value).ok_or(Undecryptable))
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

    fn jar(secure: bool, domain: &str) -> CookieJar {
        CookieJar::new("shroud", "/oauth-agent", domain, secure, CookieCipher::new(&[[9; 32]]))
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
        let at = CookieCipher::new(&[[9; 32]]).encrypt("opaque");
        let value = format!("other=1; shroud-at={at}; shroud-csrf=garbage");
        headers.insert(COOKIE, HeaderValue::from_str(&value).unwrap());
        assert_eq!(j.read(&headers, Kind::AccessToken), Some(Ok("opaque".to_string())));
        assert_eq!(j.read(&headers, Kind::Csrf), Some(Err(Undecryptable)));
        assert_eq!(j.read(&headers, Kind::IdToken), None);
        assert_eq!(j.without_own(&value).as_deref(), Some("other=1"));
        assert_eq!(j.without_own("shroud-at=x"), None);
        assert_eq!(j.csrf_header().as_str(), "x-shroud-csrf");
    }
}

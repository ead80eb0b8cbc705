//! A browser stand-in for token-handler tests: keeps cookies by name and path as a browser would, sends
//! the SPA's Origin and CSRF header, and follows the login redirect without a human.

use crate::support::*;
use shroud::config::{Config, CookieFormat, CredentialKind};
use shroud::secret::Secret;
use shroud::token_handler::crypto::CookieCipher;
use std::collections::BTreeMap;

/// The SPA's origin (trusted by default).
pub const ORIGIN: &str = "http://127.0.0.1:8080";
/// First cookie key.
pub const KEY1: &str = "11a1b2c3d4e5f60718293a4b5c6d7e8f9000112233445566778899aabbccddee";
/// Second cookie key (rotation).
pub const KEY2: &str = "22f1e2d3c4b5a69788796a5b4c3d2e1f0ffeeddccbbaa9988776655443322110";

/// Enables the token handler with `/spa` (cookie) and `/any` (any) routes to the echo upstream.
pub fn token_handler_config(mut c: Config) -> Config {
    c.token_handler.enabled = true;
    c.token_handler.client_secret = Secret::new("webapp-secret");
    c.token_handler.cookie_encryption_keys = vec![Secret::new(KEY1)];
    let upstream = c.routes[0].upstream.clone();
    let mut spa = route("/spa", &upstream, &["read"]);
    spa.credentials = CredentialKind::Cookie;
    let mut any = route("/any", &upstream, &["read"]);
    any.credentials = CredentialKind::Any;
    c.routes.push(spa);
    c.routes.push(any);
    c
}

/// One stored cookie.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Its value.
    pub value: String,
    /// Its path.
    pub path: String,
    /// The whole Set-Cookie line it came from.
    pub line: String,
}

/// A browser session against one Shroud.
pub struct Browser {
    /// Shroud's base URL.
    pub base: String,
    /// Cookies by name.
    pub cookies: BTreeMap<String, Stored>,
    /// The CSRF token learnt from login/end.
    pub csrf: Option<String>,
    /// The Origin sent (None = no Origin header).
    pub origin: Option<String>,
    /// The cookie format Shroud is configured with (for [`Browser::decrypt`] and [`Browser::encrypt`]).
    pub format: CookieFormat,
    http: reqwest::Client,
}

impl Browser {
    /// A fresh browser for `base`.
    pub fn new(base: &str) -> Browser {
        Browser::trusting(base, None)
    }

    /// A fresh browser for `base` that also trusts the CA certificate `ca_pem` (HTTPS tests).
    pub fn trusting(base: &str, ca_pem: Option<&[u8]>) -> Browser {
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
        }
        let http = http.build().unwrap();
        Browser {
            base: base.into(),
            cookies: BTreeMap::new(),
            csrf: None,
            origin: Some(ORIGIN.into()),
            format: CookieFormat::Bound,
            http,
        }
    }

    /// Applies the response's Set-Cookie lines: stores, or deletes on `Max-Age=0`.
    pub fn absorb(&mut self, resp: &reqwest::Response) {
        for line in resp.headers().get_all("set-cookie") {
            let line = line.to_str().unwrap().to_string();
            let (pair, attrs) = line.split_once(';').unwrap_or((&line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let path = attrs
                .split(';')
                .find_map(|a| a.trim().strip_prefix("Path=").map(str::to_string))
                .unwrap_or_else(|| "/".into());
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.into(), Stored { value: value.into(), path, line: line.clone() });
            }
        }
    }

    /// The Cookie header a browser would send to `path`.
    pub fn cookie_header(&self, path: &str) -> String {
        self.cookies
            .iter()
            .filter(|(_, c)| path.starts_with(&c.path))
            .map(|(n, c)| format!("{n}={}", c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Sends a request as the SPA would (Origin, cookies, CSRF header once known) and absorbs cookies.
    pub async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        let cookies = self.cookie_header(path);
        if !cookies.is_empty() {
            req = req.header("cookie", cookies);
        }
        if let Some(origin) = &self.origin {
            req = req.header("origin", origin);
        }
        if let Some(csrf) = &self.csrf {
            req = req.header("x-shroud-csrf", csrf);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        self.absorb(&resp);
        resp
    }

    /// `login/start` then the authorization server's redirect: returns the callback URL with code and state.
    pub async fn start_login(&mut self) -> String {
        let resp = self.send(reqwest::Method::POST, "/oauth-agent/login/start", None).await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        let url = body["authorizationRequestUrl"].as_str().unwrap().to_string();
        let redirect = self.http.get(url).send().await.unwrap();
        assert_eq!(redirect.status(), 302, "the fake AS logs in without a human");
        redirect.headers()["location"].to_str().unwrap().to_string()
    }

    /// `login/end` with `page_url`.
    pub async fn end_login(&mut self, page_url: &str) -> reqwest::Response {
        self.send(reqwest::Method::POST, "/oauth-agent/login/end", Some(serde_json::json!({ "pageUrl": page_url })))
            .await
    }

    /// A whole login; remembers the CSRF token.
    pub async fn login(&mut self) -> serde_json::Value {
        let callback = self.start_login().await;
        let resp = self.end_login(&callback).await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        self.csrf = body["csrf"].as_str().map(str::to_string);
        body
    }

    /// Decrypts one of this browser's cookies with `keys`.
    pub fn decrypt(&self, name: &str, keys: &[&str]) -> Option<String> {
        cipher(keys, self.format).decrypt(name, &self.cookies.get(name)?.value)
    }

    /// Encrypts `plaintext` with `key` for the cookie `name`, as Shroud would (with another key: a forgery).
    pub fn encrypt(&self, name: &str, key: &[u8; 32], plaintext: &str) -> String {
        CookieCipher::new(&[*key], self.format).encrypt(name, plaintext)
    }
}

/// A cookie cipher over the hex `keys`, in `format`.
pub fn cipher(keys: &[&str], format: CookieFormat) -> CookieCipher {
    let keys: Vec<[u8; 32]> = keys.iter().map(|k| hex::decode(k).unwrap().try_into().unwrap()).collect();
    CookieCipher::new(&keys, format)
}

//! The authorization server as Shroud knows it: discovered metadata (OIDC Discovery, falling back to
//! RFC 8414) with configured overrides, and its JWKS, refreshed when an unknown `kid` appears (at most once
//! per [`KEY_REFRESH_INTERVAL`]).
//!
//! Discovery is lazy and retried: Shroud starts while the authorization server is still down, answers
//! 503 until it can reach it, and reports the state on `/readyz`.
//!
//! A discovered endpoint is used only if it is `https` (or on a loopback host), and the endpoints that
//! receive Shroud's client credentials or a token (introspection, token, revocation, userinfo) only if
//! they are on the issuer's own origin: a tampered document cannot send them elsewhere. Endpoints set in
//! `[issuer]` are trusted as written. A refused document counts as no document (503 until fixed).

pub use crate::as_body::without_url;
use crate::as_body::AsAnswer;
use crate::config::IssuerConfig;
use crate::jose::keys::KeySet;
use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::{Host, Url};

/// Minimum time between two JWKS downloads triggered by unknown key ids.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Minimum time between two discovery attempts while the authorization server is unreachable.
const DISCOVERY_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// The endpoints Shroud uses, after discovery and overrides.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The issuer identifier, exactly as the authorization server states it.
    pub issuer: String,
    /// RFC 7662 introspection endpoint.
    pub introspection_endpoint: Option<String>,
    /// JWKS URI.
    pub jwks_uri: Option<String>,
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// Authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// Userinfo endpoint.
    pub userinfo_endpoint: Option<String>,
    /// End-session endpoint.
    pub end_session_endpoint: Option<String>,
    /// Revocation endpoint.
    pub revocation_endpoint: Option<String>,
}

/// Why the authorization server's metadata or keys are not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerError(pub String);

impl std::fmt::Display for IssuerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Discovered metadata and keys of the authorization server.
pub struct Issuer {
    http: reqwest::Client,
    config: IssuerConfig,
    needs_keys: bool,
    metadata: ArcSwapOption<Metadata>,
    keys: ArcSwap<KeySet>,
    keys_loaded: AtomicBool,
    discovery_lock: tokio::sync::Mutex<Option<Instant>>,
    last_key_refresh: Mutex<Option<Instant>>,
    key_refresh_lock: tokio::sync::Mutex<()>,
    /// The `kid`s the last JWKS download dropped (a retired or withdrawn key), announced to whoever
    /// purges what those keys vouched for.
    retired: tokio::sync::watch::Sender<Vec<String>>,
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// Whether `url` names a loopback host (`localhost`, `127.0.0.0/8`, `::1`), where plain HTTP is allowed.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks one discovered endpoint: `https` unless on a loopback host, and on `issuer`'s origin when it
/// receives client credentials or tokens (`confidential`).
fn check_discovered(name: &str, endpoint: &str, issuer: &Url, confidential: bool) -> Result<(), IssuerError> {
    let refuse = |why: String| {
        IssuerError(format!(
            "discovery document refused: {name} {endpoint} {why}; set [issuer] {name} to use another endpoint"
        ))
    };
    let url = Url::parse(endpoint).map_err(|e| refuse(format!("is not a URL ({e})")))?;
    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
        return Err(refuse("is neither https nor on a loopback host".into()));
    }
    if confidential && url.origin() != issuer.origin() {
        return Err(refuse(format!(
            "is not on the issuer's origin {} and would receive Shroud's credentials or tokens",
            issuer.origin().ascii_serialization()
        )));
    }
    Ok(())
}

impl Issuer {
    /// Prepares an issuer; nothing is fetched until first needed. `needs_keys` is false in `json` mode,
    /// where no JWT from the issuer is verified.
    pub fn new(http: reqwest::Client, config: IssuerConfig, needs_keys: bool) -> Issuer {
        Issuer {
            http,
            config,
            needs_keys,
            metadata: ArcSwapOption::empty(),
            keys: ArcSwap::from_pointee(KeySet::default()),
            keys_loaded: AtomicBool::new(false),
            discovery_lock: tokio::sync::Mutex::new(None),
            last_key_refresh: Mutex::new(None),
            key_refresh_lock: tokio::sync::Mutex::new(()),
            retired: tokio::sync::watch::Sender::new(Vec::new()),
        }
    }

    /// Announces the `kid`s each JWKS download drops (sorted), as they are seen.
    pub fn retired_keys(&self) -> tokio::sync::watch::Receiver<Vec<String>> {
        self.retired.subscribe()
    }

    /// Whether keys are verified at all (not in `json` mode without the token handler).
    pub fn needs_keys(&self) -> bool {
        self.needs_keys
    }

    /// The metadata, discovering it (and loading the keys) first if needed.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, IssuerError> {
        if let Some(found) = self.metadata.load_full() {
            return Ok(found);
        }
        let mut last_attempt = self.discovery_lock.lock().await;
        if let Some(found) = self.metadata.load_full() {
            return Ok(found);
        }
        if last_attempt.is_some_and(|at| at.elapsed() < DISCOVERY_RETRY_INTERVAL) {
            return Err(IssuerError("authorization server metadata not yet available".into()));
        }
        *last_attempt = Some(Instant::now());
        let metadata = Arc::new(self.discover().await?);
        if self.needs_keys {
            let uri = metadata.jwks_uri.as_deref().ok_or_else(|| IssuerError("no jwks_uri in metadata".into()))?;
            self.load_keys(uri).await?;
        }
        log::info!("authorization server {} discovered", metadata.issuer);
        self.metadata.store(Some(metadata.clone()));
        Ok(metadata)
    }

    /// The current verification keys.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Whether metadata is known and, where needed, keys are loaded.
    pub fn is_ready(&self) -> (bool, bool) {
        (self.metadata.load().is_some(), !self.needs_keys || self.keys_loaded.load(Ordering::Acquire))
    }

    /// Downloads the JWKS again because a JWT named an unknown key, unless such a refresh happened less
    /// than [`KEY_REFRESH_INTERVAL`] ago (the download at discovery does not count).
    /// Returns whether new keys were loaded.
    pub async fn refresh_keys(&self) -> Result<bool, IssuerError> {
        let _single = self.key_refresh_lock.lock().await;
        {
            let Ok(mut last) = self.last_key_refresh.lock() else { return Ok(false) };
            if last.is_some_and(|at| at.elapsed() < KEY_REFRESH_INTERVAL) {
                return Ok(false);
            }
            *last = Some(Instant::now());
        }
        let metadata = self.metadata().await?;
        let uri = metadata.jwks_uri.as_deref().ok_or_else(|| IssuerError("no jwks_uri in metadata".into()))?;
        self.load_keys(uri).await?;
        Ok(true)
    }

    async fn load_keys(&self, uri: &str) -> Result<(), IssuerError> {
        let body = self.get(uri, AsAnswer::Jwks).await?;
        let keys = KeySet::from_jwks(&body).map_err(IssuerError)?;
        if keys.is_empty() {
            log::warn!("JWKS at {uri} holds no usable signing key");
        }
        let previous = self.keys.swap(Arc::new(keys));
        let current = self.keys.load();
        let mut dropped: Vec<String> =
            previous.kids().filter(|kid| !current.kids().any(|k| k == *kid)).map(str::to_string).collect();
        self.keys_loaded.store(true, Ordering::Release);
        log::info!("loaded issuer keys from {uri}");
        if !dropped.is_empty() {
            dropped.sort();
            log::warn!("the issuer withdrew signing keys {dropped:?}: cached grants they vouched for are purged");
            self.retired.send_replace(dropped);
        }
        Ok(())
    }

    async fn get(&self, uri: &str, kind: AsAnswer) -> Result<bytes::Bytes, IssuerError> {
        let response = self
            .http
            .get(uri)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| IssuerError(format!("GET {uri} failed: {}", without_url(&e))))?;
        if !response.status().is_success() {
            return Err(IssuerError(format!("GET {uri} answered {}", response.status().as_u16())));
        }
        crate::as_body::read(response, kind).await.map_err(|e| IssuerError(format!("GET {uri} failed: {e}")))
    }

    async fn discover(&self) -> Result<Metadata, IssuerError> {
        let base = self.config.url.trim_end_matches('/');
        let mut found = None;
        let mut last_error = IssuerError("no discovery document".into());
        for suffix in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
            match self.get(&format!("{base}{suffix}"), AsAnswer::Discovery).await {
                Ok(body) => {
                    found = Some(
                        serde_json::from_slice::<Metadata>(&body)
                            .map_err(|e| IssuerError(format!("invalid discovery document: {e}")))?,
                    );
                    break;
                }
                Err(e) => last_error = e,
            }
        }
        let mut metadata = match found {
            Some(m) => m,
            None if self.config.introspection_endpoint.is_some() => {
                log::warn!("discovery failed ({last_error}); using configured endpoints only");
                Metadata {
                    issuer: self.config.url.clone(),
                    introspection_endpoint: None,
                    jwks_uri: None,
                    token_endpoint: None,
                    authorization_endpoint: None,
                    userinfo_endpoint: None,
                    end_session_endpoint: None,
                    revocation_endpoint: None,
                }
            }
            None => return Err(last_error),
        };
        if !same_issuer(&metadata.issuer, &self.config.url) {
            return Err(IssuerError(format!(
                "discovery document names issuer {} but issuer.url is {}",
                metadata.issuer, self.config.url
            )));
        }
        let issuer = Url::parse(&self.config.url).map_err(|e| IssuerError(format!("issuer.url is not a URL ({e})")))?;
        let c = &self.config;
        // (name, discovered value, configured value, whether it receives credentials or tokens)
        let endpoints = [
            ("introspection_endpoint", &mut metadata.introspection_endpoint, &c.introspection_endpoint, true),
            ("jwks_uri", &mut metadata.jwks_uri, &c.jwks_uri, false),
            ("token_endpoint", &mut metadata.token_endpoint, &c.token_endpoint, true),
            ("authorization_endpoint", &mut metadata.authorization_endpoint, &c.authorization_endpoint, false),
            ("userinfo_endpoint", &mut metadata.userinfo_endpoint, &c.userinfo_endpoint, true),
            ("end_session_endpoint", &mut metadata.end_session_endpoint, &c.end_session_endpoint, false),
            ("revocation_endpoint", &mut metadata.revocation_endpoint, &c.revocation_endpoint, true),
        ];
        for (name, slot, configured, confidential) in endpoints {
            if configured.is_some() {
                slot.clone_from(configured);
            } else if let Some(discovered) = slot.as_deref() {
                check_discovered(name, discovered, &issuer, confidential).inspect_err(|e| log::error!("{e}"))?;
            }
        }
        if metadata.introspection_endpoint.is_none() {
            return Err(IssuerError("the authorization server publishes no introspection_endpoint".into()));
        }
        Ok(metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(endpoint: &str, confidential: bool) -> Result<(), IssuerError> {
        check_discovered(
            "token_endpoint",
            endpoint,
            &Url::parse("https://as.example:8443/realms/x").unwrap(),
            confidential,
        )
    }

    #[test]
    fn discovered_endpoints_need_https_outside_loopback() {
        assert!(check("https://login.example/authorize", false).is_ok());
        for loopback in ["http://localhost:9/a", "http://127.0.0.2/a", "http://[::1]:80/a", "http://LOCALHOST/a"] {
            assert!(check(loopback, false).is_ok(), "{loopback}");
        }
        for bad in ["http://as.example:8443/token", "http://localhost.example/a", "ftp://as.example/a", "/token"] {
            let e = check(bad, false).unwrap_err();
            assert!(e.0.contains("token_endpoint"), "{e}");
        }
    }

    #[test]
    fn confidential_endpoints_stay_on_the_issuers_origin() {
        assert!(check("https://as.example:8443/realms/x/token", true).is_ok());
        assert!(check("https://AS.example:8443/other/path", true).is_ok());
        for elsewhere in [
            "https://as.example/token",
            "https://as.example:8444/token",
            "https://evil.example:8443/token",
            "http://as.example:8443/t",
        ] {
            let e = check(elsewhere, true).unwrap_err();
            assert!(e.0.contains("token_endpoint") && e.0.contains("[issuer] token_endpoint"), "{e}");
        }
        assert!(check("https://as.example/token", false).is_ok(), "an endpoint that gets nothing may be elsewhere");
    }
}

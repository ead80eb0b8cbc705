//! The authorization server as Shroud knows it: discovered metadata (OIDC Discovery, falling back to
//! RFC 8414) with configured overrides, and its JWKS, refreshed when an unknown `kid` appears (at most once
//! per [`KEY_REFRESH_INTERVAL`]).
//!
//! Discovery is lazy and retried: Shroud starts while the authorization server is still down, answers
//! 503 until it can reach it, and reports the state on `/readyz`.

use crate::config::IssuerConfig;
use crate::jose::keys::KeySet;
use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        let body = self.get(uri).await?;
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

    async fn get(&self, uri: &str) -> Result<bytes::Bytes, IssuerError> {
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
        response.bytes().await.map_err(|e| IssuerError(format!("GET {uri} failed: {}", without_url(&e))))
    }

    async fn discover(&self) -> Result<Metadata, IssuerError> {
        let base = self.config.url.trim_end_matches('/');
        let mut found = None;
        let mut last_error = IssuerError("no discovery document".into());
        for suffix in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
            match self.get(&format!("{base}{suffix}")).await {
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
        let c = &self.config;
        let overrides = [
            (&mut metadata.introspection_endpoint, &c.introspection_endpoint),
            (&mut metadata.jwks_uri, &c.jwks_uri),
            (&mut metadata.token_endpoint, &c.token_endpoint),
            (&mut metadata.authorization_endpoint, &c.authorization_endpoint),
            (&mut metadata.userinfo_endpoint, &c.userinfo_endpoint),
            (&mut metadata.end_session_endpoint, &c.end_session_endpoint),
            (&mut metadata.revocation_endpoint, &c.revocation_endpoint),
        ];
        for (slot, configured) in overrides {
            if configured.is_some() {
                slot.clone_from(configured);
            }
        }
        if metadata.introspection_endpoint.is_none() {
            return Err(IssuerError("the authorization server publishes no introspection_endpoint".into()));
        }
        Ok(metadata)
    }
}

/// A transport error's description without its URL (which is ours anyway, and never holds a token).
pub fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_decode() || err.is_body() {
        "bad response body"
    } else {
        "request failed"
    };
    kind.to_string()
}

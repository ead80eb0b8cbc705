//! The token handler for single-page apps: the **OAuth Agent** ([`agent`]: login, session, refresh,
//! logout, back-channel logout) and the **OAuth Proxy** ([`proxy`]: cookie → bearer on API routes).
//! Tokens live only in encrypted, HttpOnly, `SameSite=Strict` cookies ([`cookies`], [`crypto`]).

pub mod agent;
pub mod backchannel;
pub mod cookies;
pub mod cors;
pub mod crypto;
pub mod error;
pub mod oauth;
pub mod proxy;
pub mod sessions;

use crate::cache::redis::RedisTier;
use crate::cache::seal::{CacheKey, Sealer};
use crate::config::{validate::hex_key, Config, TokenHandlerConfig};
use crate::gateway::BuildError;
use crate::grant::now_secs;
use crate::issuer::Issuer;
use crate::jose::verify::{verify, Expectations, TypRule, VerifyError};
use crate::rate_limit::{Limiter, Rate};
use backchannel::UsedLogoutTokens;
use cookies::{CookieJar, Kind};
use cors::Cors;
use crypto::CookieCipher;
use error::AgentError;
use oauth::{GrantError, OAuthClient, TokenResponse};
use serde_json::{Map, Value};
use sessions::Sessions;
use std::sync::Arc;
use std::time::Duration;

/// How long the result of a refresh grant is shared with other calls carrying the same refresh token.
const REFRESH_SHARING: Duration = Duration::from_secs(30);

/// The outcome of a (shared) refresh grant.
type RefreshOutcome = Result<TokenResponse, String>;

/// The token handler's runtime state.
pub struct TokenHandler {
    /// Its configuration.
    pub config: TokenHandlerConfig,
    /// Cookie names, attributes and encryption.
    pub jar: CookieJar,
    /// Trusted origins and CORS.
    pub cors: Cors,
    /// Calls to the authorization server for the SPA's client.
    pub oauth: OAuthClient,
    /// Sessions: index and denylist.
    pub sessions: Arc<Sessions>,
    /// `agent_rate`: calls to the agent per session, if limited.
    pub agent_limit: Option<Limiter>,
    /// `agent_rate_per_ip`: calls to the agent per source IP, if limited.
    pub agent_limit_per_ip: Option<Limiter>,
    /// Back-channel logout tokens taken (replay detection).
    used_logout_tokens: UsedLogoutTokens,
    issuer: Arc<Issuer>,
    refreshes: moka::future::Cache<CacheKey, Arc<RefreshOutcome>>,
    sealer: Sealer,
    leeway: u64,
}

impl TokenHandler {
    /// Builds the token handler from a validated configuration; `redis` (with the Redis cache backend)
    /// shares the agent's rate limit and the logout tokens taken between instances.
    pub fn build(
        config: &Config,
        http: reqwest::Client,
        auth: crate::client_auth::ClientAuth,
        issuer: Arc<Issuer>,
        sealer: Sealer,
        redis: Option<Arc<RedisTier>>,
    ) -> Result<TokenHandler, BuildError> {
        let t = &config.token_handler;
        let keys = t
            .cookie_encryption_keys
            .iter()
            .map(|k| hex_key("token_handler.cookie_encryption_keys", k.expose()))
            .collect::<Result<Vec<_>, _>>()?;
        let jar = CookieJar::new(
            &t.cookie_name_prefix,
            &t.base_path,
            &t.cookie_domain,
            t.cookie_secure,
            t.cookie_host_prefix,
            CookieCipher::new(&keys, t.cookie_format),
        );
        let cors = Cors::new(&t.trusted_web_origins, jar.csrf_header());
        // Validated at start: an unreadable rate cannot reach this point.
        let rate = |text: &str| Rate::parse(text).ok().flatten();
        let shared = redis.as_ref().map(|redis| (redis.clone(), sealer.clone()));
        Ok(TokenHandler {
            config: t.clone(),
            cors,
            oauth: OAuthClient::new(http, auth, t),
            sessions: Arc::new(Sessions::new(sealer.clone(), redis.clone())),
            agent_limit: rate(&t.agent_rate).map(|rate| Limiter::new(rate, "agent:session", shared.clone())),
            agent_limit_per_ip: rate(&t.agent_rate_per_ip).map(|rate| Limiter::new(rate, "agent:ip", shared)),
            used_logout_tokens: UsedLogoutTokens::new(sealer.clone(), redis, config.issuer.leeway_seconds),
            issuer,
            refreshes: moka::future::Cache::builder().max_capacity(100_000).time_to_live(REFRESH_SHARING).build(),
            jar,
            sealer,
            leeway: config.issuer.leeway_seconds,
        })
    }

    /// The key hasher (HMACs of tokens and session ids).
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Checks the CSRF header against the decrypted `<p>-csrf` cookie, in constant time.
    pub fn check_csrf(&self, headers: &actix_web::http::header::HeaderMap) -> Result<(), &'static str> {
        let expected = match self.jar.read(headers, Kind::Csrf) {
            Some(Ok(value)) => value,
            Some(Err(_)) => return Err("the CSRF cookie cannot be read"),
            None => return Err("no CSRF cookie"),
        };
        let sent = headers.get(self.jar.csrf_header()).ok_or("no CSRF header")?;
        if crate::secret::constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err("the CSRF header does not match")
        }
    }

    /// Verifies an ID token from the token endpoint: signature (one JWKS refresh on an unknown key),
    /// `iss` = `issuer` (from the metadata the caller holds), `aud` = our client (and `azp` when several
    /// audiences), `exp`, `iat`, and `nonce` when given.
    pub async fn verify_id_token(
        &self,
        jwt: &str,
        issuer: &str,
        nonce: Option<&str>,
    ) -> Result<Map<String, Value>, VerifyError> {
        let expect = Expectations {
            issuer,
            audience: Some(&self.config.client_id),
            typ: TypRule::IdToken,
            require_exp: true,
            require_iat: true,
            leeway: self.leeway,
            now: now_secs(),
        };
        let claims = self.verify_refreshing_keys(jwt, &expect).await?;
        if let Some(Value::Array(audiences)) = claims.get("aud") {
            if audiences.len() > 1 && claims.get("azp").and_then(Value::as_str) != Some(self.config.client_id.as_str())
            {
                return Err(VerifyError::Audience);
            }
        }
        if let Some(expected) = nonce {
            let sent = claims.get("nonce").and_then(Value::as_str).unwrap_or_default();
            if !crate::secret::constant_time_eq(sent.as_bytes(), expected.as_bytes()) {
                return Err(VerifyError::Malformed);
            }
        }
        Ok(claims)
    }

    /// Verifies with the issuer's keys, refreshing them once when the key is unknown.
    pub async fn verify_refreshing_keys(
        &self,
        jwt: &str,
        expect: &Expectations<'_>,
    ) -> Result<Map<String, Value>, VerifyError> {
        match verify(jwt, &self.issuer.keys(), expect) {
            Err(VerifyError::Key(_)) if self.issuer.refresh_keys().await.unwrap_or(false) => {
                verify(jwt, &self.issuer.keys(), expect).map(|v| v.claims)
            }
            other => other.map(|v| v.claims),
        }
    }

    /// Runs the refresh grant once for all concurrent (and, for a short while, later) calls carrying the
    /// same refresh token, so rotating refresh tokens cannot log parallel tabs out.
    pub async fn shared_refresh(
        &self,
        endpoint: &str,
        issuer: &str,
        refresh_token: &str,
    ) -> Result<Arc<RefreshOutcome>, AgentError> {
        let key = self.sealer.key(refresh_token);
        self.refreshes
            .try_get_with(key, async {
                match self.oauth.refresh_grant(endpoint, issuer, refresh_token).await {
                    Ok(tokens) => Ok(Arc::new(Ok(tokens))),
                    Err(GrantError::Refused(code)) => Ok(Arc::new(Err(code))),
                    Err(GrantError::Unavailable) => Err(AgentError::authorization_server()),
                }
            })
            .await
            .map_err(|e: Arc<AgentError>| (*e).clone())
    }
}

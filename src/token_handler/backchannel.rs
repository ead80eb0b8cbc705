//! OpenID Connect Back-Channel Logout 1.0: verify the `logout_token` and end its sessions everywhere.
//! A token is taken once: its `jti` is remembered ([`UsedLogoutTokens`]) for as long as its `iat` lets
//! it be accepted ([`MAX_AGE`] plus the leeway), so a captured token cannot log a user out again.

use super::TokenHandler;
use crate::cache::redis::RedisTier;
use crate::cache::seal::{CacheKey, Sealer};
use crate::grant::now_secs;
use crate::jose::verify::{Expectations, TypRule, VerifyError};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// The event a logout token must carry.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The oldest a logout token's `iat` may be (plus the leeway).
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// The most logout tokens remembered in process.
const MAX_REMEMBERED: u64 = 100_000;

/// Why a logout token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutTokenError {
    /// Signature, type, issuer, audience or time checks failed.
    Jwt(VerifyError),
    /// No `events` claim with the back-channel logout event.
    NoEvent,
    /// Neither `sid` nor `sub`.
    NoSubject,
    /// A `nonce` claim (forbidden, so an ID token cannot pass as a logout token).
    Nonce,
    /// No `jti` (required: it is what makes a replay detectable).
    NoJti,
    /// `iat` older than [`MAX_AGE`] plus the leeway.
    TooOld,
    /// Its `jti` was taken already (a replay).
    Replayed,
}

impl LogoutTokenError {
    /// A short reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            LogoutTokenError::Jwt(e) => e.reason(),
            LogoutTokenError::NoEvent => "no back-channel logout event",
            LogoutTokenError::NoSubject => "neither sid nor sub",
            LogoutTokenError::Nonce => "nonce present",
            LogoutTokenError::NoJti => "no jti",
            LogoutTokenError::TooOld => "issued too long ago",
            LogoutTokenError::Replayed => "jti already used (a replay)",
        }
    }

    /// What the authorization server is told (400 `invalid_request`): specific for an old or replayed
    /// token, which may be a retry it should not repeat; generic otherwise.
    pub fn message(&self) -> &'static str {
        match self {
            LogoutTokenError::TooOld => "the logout token was issued too long ago",
            LogoutTokenError::Replayed => "the logout token was used already",
            _ => "the logout token is not valid",
        }
    }
}

/// Checks the claims specific to logout tokens.
pub fn check_logout_claims(claims: &Map<String, Value>) -> Result<(), LogoutTokenError> {
    match claims.get("events") {
        Some(Value::Object(events)) if events.get(BACKCHANNEL_EVENT).is_some_and(Value::is_object) => {}
        _ => return Err(LogoutTokenError::NoEvent),
    }
    if claims.get("nonce").is_some() {
        return Err(LogoutTokenError::Nonce);
    }
    let has = |name: &str| claims.get(name).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    if !has("sid") && !has("sub") {
        return Err(LogoutTokenError::NoSubject);
    }
    if !has("jti") {
        return Err(LogoutTokenError::NoJti);
    }
    Ok(())
}

/// Checks that `iat` (verified present) is no older than [`MAX_AGE`] plus `leeway` at `now`.
pub fn check_age(claims: &Map<String, Value>, now: u64, leeway: u64) -> Result<(), LogoutTokenError> {
    let iat = claims.get("iat").and_then(Value::as_f64).unwrap_or(0.0);
    match iat < now.saturating_sub(MAX_AGE.as_secs() + leeway) as f64 {
        true => Err(LogoutTokenError::TooOld),
        false => Ok(()),
    }
}

/// The logout tokens taken, by issuer and `jti`: in process, and in Redis (SET NX with a TTL) when the
/// cache is shared, so that a token taken by one instance is a replay on every other.
pub struct UsedLogoutTokens {
    local: moka::sync::Cache<CacheKey, ()>,
    redis: Option<Arc<RedisTier>>,
    sealer: Sealer,
    /// How long a `jti` is remembered: as long as its token can be accepted (an `iat` up to the leeway
    /// ahead and up to [`MAX_AGE`] plus the leeway behind).
    ttl: Duration,
}

impl UsedLogoutTokens {
    /// Remembers taken tokens for the window `leeway` (seconds) allows; shared through `redis` when given.
    pub fn new(sealer: Sealer, redis: Option<Arc<RedisTier>>, leeway: u64) -> UsedLogoutTokens {
        let ttl = MAX_AGE + Duration::from_secs(2 * leeway + 1);
        UsedLogoutTokens {
            local: moka::sync::Cache::builder().max_capacity(MAX_REMEMBERED).time_to_live(ttl).build(),
            redis,
            sealer,
            ttl,
        }
    }

    /// Takes the token `jti` of `issuer`: `false` when it was taken before, here or on another instance.
    /// When Redis cannot answer, this instance decides.
    pub async fn take(&self, issuer: &str, jti: &str) -> bool {
        let key = self.sealer.key(&format!("{issuer}\n{jti}"));
        let first_here = self.local.entry(key).or_insert(()).is_fresh();
        let Some(redis) = &self.redis else { return first_here };
        match redis.try_lock(&format!("shroud:v1:logout-jti:{}", hex::encode(key)), "1", self.ttl).await {
            Ok(first_anywhere) => first_here && first_anywhere,
            Err(e) => {
                log::log!(RedisTier::log_level(&e), "shared logout-token replay check unavailable ({e})");
                first_here
            }
        }
    }
}

impl TokenHandler {
    /// Verifies a logout token: signature, `typ`, `iss` = `issuer`, `aud` = our client, `iat` (not in
    /// the future, at most [`MAX_AGE`] old), the logout claims, and that its `jti` was not taken before.
    pub async fn verify_logout_token(&self, jwt: &str, issuer: &str) -> Result<Map<String, Value>, LogoutTokenError> {
        let now = now_secs();
        let expect = Expectations {
            issuer,
            audience: Some(&self.config.client_id),
            typ: TypRule::LogoutToken,
            require_exp: false,
            require_iat: true,
            leeway: self.leeway,
            now,
        };
        let claims = self.verify_refreshing_keys(jwt, &expect).await.map_err(LogoutTokenError::Jwt)?;
        check_logout_claims(&claims)?;
        check_age(&claims, now, self.leeway)?;
        let jti = claims.get("jti").and_then(Value::as_str).unwrap_or_default();
        if !self.used_logout_tokens.take(issuer, jti).await {
            return Err(LogoutTokenError::Replayed);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn logout_claims() {
        let ok = claims(json!({"events": {BACKCHANNEL_EVENT: {}}, "sid": "s1", "jti": "j"}));
        assert_eq!(check_logout_claims(&ok), Ok(()));
        let no_jti = claims(json!({"events": {BACKCHANNEL_EVENT: {}}, "sid": "s1"}));
        assert_eq!(check_logout_claims(&no_jti), Err(LogoutTokenError::NoJti));
        let by_sub = claims(json!({"events": {BACKCHANNEL_EVENT: {}}, "sub": "alice", "jti": "j"}));
        assert_eq!(check_logout_claims(&by_sub), Ok(()));
        assert_eq!(check_logout_claims(&claims(json!({"sid": "s"}))), Err(LogoutTokenError::NoEvent));
        let wrong_event = claims(json!({"events": {"other": {}}, "sid": "s"}));
        assert_eq!(check_logout_claims(&wrong_event), Err(LogoutTokenError::NoEvent));
        let nonce = claims(json!({"events": {BACKCHANNEL_EVENT: {}}, "sid": "s", "nonce": "n"}));
        assert_eq!(check_logout_claims(&nonce), Err(LogoutTokenError::Nonce));
        let nobody = claims(json!({"events": {BACKCHANNEL_EVENT: {}}}));
        assert_eq!(check_logout_claims(&nobody), Err(LogoutTokenError::NoSubject));
    }

    #[test]
    fn logout_tokens_older_than_five_minutes_and_the_leeway_are_too_old() {
        let at = |iat: u64| claims(json!({ "iat": iat }));
        assert_eq!(check_age(&at(10_000 - 330), 10_000, 30), Ok(()));
        assert_eq!(check_age(&at(10_000 - 331), 10_000, 30), Err(LogoutTokenError::TooOld));
    }

    #[tokio::test]
    async fn a_jti_is_taken_once_per_issuer() {
        let used = UsedLogoutTokens::new(Sealer::new([7; 32]), None, 30);
        assert!(used.take("https://as", "j1").await);
        assert!(!used.take("https://as", "j1").await, "a replay");
        assert!(used.take("https://other", "j1").await, "another issuer's jti");
    }
}

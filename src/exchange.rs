//! The exchange of an opaque token for a JWT: introspect, read the answer in the configured mode,
//! verify, and (in `json`/`rfc9701` modes) mint the phantom JWT. No caching here: see [`crate::cache`].

use crate::cache::{Exchanged, Outcome};
use crate::config::{Config, ResponseMode};
use crate::error::Rejection;
use crate::grant::{now_secs, Grant};
use crate::introspection::answer::{interpret, AnswerError, Context, Introspected};
use crate::introspection::client::{CallError, IntrospectionClient};
use crate::issuer::Issuer;
use crate::jose::mint::PhantomSigner;
use crate::metrics::Metrics;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// Introspection members that describe the introspection itself and are not copied into phantom JWTs.
const NOT_COPIED: &[&str] = &["active", "token_type", "iss", "exp", "iat", "nbf", "jti"];

/// Turns opaque tokens into grants.
pub struct Exchanger {
    issuer: Arc<Issuer>,
    client: IntrospectionClient,
    mode: ResponseMode,
    client_id: String,
    leeway: u64,
    signer: Option<Arc<PhantomSigner>>,
    phantom_issuer: String,
    phantom_max_ttl: u64,
    token_types: Vec<String>,
    metrics: Arc<Metrics>,
}

impl Exchanger {
    /// Builds the exchanger; `signer` is required in `json` and `rfc9701` modes.
    pub fn new(
        config: &Config,
        issuer: Arc<Issuer>,
        client: IntrospectionClient,
        signer: Option<Arc<PhantomSigner>>,
        metrics: Arc<Metrics>,
    ) -> Exchanger {
        Exchanger {
            issuer,
            client,
            mode: config.introspection.response,
            client_id: config.introspection.client_id.clone(),
            leeway: config.issuer.leeway_seconds,
            signer,
            phantom_issuer: config.phantom.issuer.clone(),
            phantom_max_ttl: config.phantom.max_ttl_seconds,
            token_types: config.introspection.token_types.iter().map(|t| t.to_ascii_lowercase()).collect(),
            metrics,
        }
    }

    /// Exchanges `token`: one introspection call, then verification and (if needed) minting.
    pub async fn exchange(&self, token: &str) -> Result<Exchanged, Rejection> {
        let metadata = self.issuer.metadata().await.map_err(|e| {
            log::warn!("authorization server not available: {e}");
            Rejection::AuthorizationServerUnavailable
        })?;
        let endpoint = metadata.introspection_endpoint.as_deref().unwrap_or_default();
        let started = Instant::now();
        let called = self.client.call(endpoint, &metadata.issuer, token).await;
        self.metrics.introspection_latency.observe(started.elapsed().as_secs_f64());
        let raw = called.map_err(|e| self.call_failed(e))?;
        let ctx = Context {
            mode: self.mode,
            issuer: &metadata.issuer,
            client_id: &self.client_id,
            leeway: self.leeway,
            now: now_secs(),
            token_types: &self.token_types,
        };
        let mut read = interpret(&raw, &self.issuer.keys(), &ctx);
        if read.as_ref().is_err_and(AnswerError::wants_key_refresh) {
            match self.issuer.refresh_keys().await {
                Ok(true) => read = interpret(&raw, &self.issuer.keys(), &ctx),
                Ok(false) => {}
                Err(e) => {
                    log::warn!("issuer key refresh failed: {e}");
                    self.metrics.introspection("error");
                    return Err(Rejection::AuthorizationServerUnavailable);
                }
            }
        }
        let outcome = match read {
            Ok(Introspected::Inactive) => {
                self.metrics.introspection("inactive");
                Outcome::Inactive
            }
            Ok(Introspected::Active { claims, jwt }) => {
                self.metrics.introspection("active");
                Outcome::Active(Arc::new(self.grant(claims, jwt)?))
            }
            // A JWT that fails verification is a definitive answer about this token: cached like an
            // inactive one, so a flood of forged tokens does not become a flood of introspections.
            Err(AnswerError::TokenUnverifiable(e)) => {
                self.metrics.introspection("unverifiable");
                log::warn!("access token JWT refused: {}", e.reason());
                Outcome::Inactive
            }
            Err(e) => return Err(self.answer_failed(e)),
        };
        Ok(Exchanged { outcome, max_age: raw.max_age })
    }

    fn call_failed(&self, error: CallError) -> Rejection {
        self.metrics.introspection("error");
        match error {
            CallError::Unavailable(why) => {
                log::warn!("introspection failed: {why}");
                Rejection::AuthorizationServerUnavailable
            }
            CallError::ClientRejected(status) => {
                log::error!(
                    "the authorization server rejected Shroud's client credentials (status {status}): check introspection.client_id/client_secret/auth_method"
                );
                Rejection::AuthorizationServerError
            }
            CallError::UnexpectedStatus(status) => {
                log::error!("introspection endpoint answered unexpected status {status}");
                Rejection::AuthorizationServerError
            }
        }
    }

    fn answer_failed(&self, error: AnswerError) -> Rejection {
        self.metrics.introspection("error");
        log::error!("introspection response refused: {}", error.reason());
        Rejection::AuthorizationServerError
    }

    fn grant(&self, claims: Map<String, Value>, jwt: Option<String>) -> Result<Grant, Rejection> {
        let refuse = |why: &str| {
            log::error!("cannot build the JWT to forward: {why}");
            Rejection::AuthorizationServerError
        };
        if let Some(jwt) = jwt {
            return Grant::new(&jwt, &claims).map_err(refuse);
        }
        let signer = self.signer.as_ref().ok_or_else(|| refuse("no phantom signing key"))?;
        let phantom = phantom_claims(&claims, &self.phantom_issuer, self.phantom_max_ttl, now_secs());
        let grant_claims = phantom.clone();
        let jwt = signer.mint(phantom).map_err(|e| refuse(&e))?;
        Grant::new(&jwt, &grant_claims).map_err(refuse)
    }
}

/// The claims of a phantom JWT for an introspected token: `iss` = Shroud, `sub` (the client's `client_id`
/// when the token has no resource owner, as RFC 9068 §2.2 asks), `aud` (if any), `scope`, `client_id`,
/// `iat`, a fresh `jti`, `exp` = min(token `exp`, now + `max_ttl`), plus the token's other claims (roles,
/// custom attributes) minus the introspection metadata.
pub fn phantom_claims(members: &Map<String, Value>, issuer: &str, max_ttl: u64, now: u64) -> Map<String, Value> {
    let mut claims = Map::new();
    for (name, value) in members {
        if !NOT_COPIED.contains(&name.as_str()) {
            claims.insert(name.clone(), value.clone());
        }
    }
    if !claims.get("sub").is_some_and(Value::is_string) {
        if let Some(client_id) = members.get("client_id").filter(|c| c.is_string()) {
            claims.insert("sub".into(), client_id.clone());
        }
    }
    let token_exp = members.get("exp").and_then(Value::as_f64).map(|e| e as u64);
    let exp = token_exp.map_or(now + max_ttl, |e| e.min(now + max_ttl));
    let mut jti = [0u8; 16];
    openssl::rand::rand_bytes(&mut jti).expect("the system CSPRNG is available");
    claims.insert("iss".into(), Value::from(issuer));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(exp));
    claims.insert("jti".into(), Value::from(URL_SAFE_NO_PAD.encode(jti)));
    claims
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phantom_claims_bound_exp_and_drop_introspection_metadata() {
        let members = json!({"active": true, "token_type": "Bearer", "iss": "https://as", "sub": "alice",
            "scope": "read", "client_id": "c", "aud": ["api"], "exp": 5000, "iat": 1, "roles": ["x"]});
        let c = phantom_claims(members.as_object().unwrap(), "https://shroud", 300, 1000);
        assert_eq!(c["iss"], "https://shroud");
        assert_eq!(c["exp"], 1300);
        assert_eq!(c["iat"], 1000);
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["aud"], json!(["api"]));
        assert_eq!(c["roles"], json!(["x"]));
        assert!(!c.contains_key("active") && !c.contains_key("token_type"));
        let short = json!({"active": true, "exp": 1100});
        assert_eq!(phantom_claims(short.as_object().unwrap(), "i", 300, 1000)["exp"], 1100);
        let none = json!({"active": true});
        let c = phantom_claims(none.as_object().unwrap(), "i", 300, 1000);
        assert_eq!(c["exp"], 1300);
        assert!(!c.contains_key("aud") && !c.contains_key("sub"));
        assert_ne!(c["jti"], phantom_claims(none.as_object().unwrap(), "i", 300, 1000)["jti"]);
    }

    #[test]
    fn a_token_without_resource_owner_has_the_client_as_sub() {
        let members = json!({"active": true, "client_id": "demo-client", "scope": "read", "exp": 5000});
        let c = phantom_claims(members.as_object().unwrap(), "i", 300, 1000);
        assert_eq!(c["sub"], "demo-client");
        assert_eq!(c["client_id"], "demo-client");
        let owned = json!({"active": true, "client_id": "webapp", "sub": "alice"});
        assert_eq!(phantom_claims(owned.as_object().unwrap(), "i", 300, 1000)["sub"], "alice");
    }
}

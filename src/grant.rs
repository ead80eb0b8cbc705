//! The result of a successful exchange: the JWT to forward and the claims policy needs, parsed once.

use actix_web::http::header::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// A verified (or minted) JWT ready to forward, with its claims pre-parsed for the policy stage.
#[derive(Debug)]
pub struct Grant {
    /// `Bearer <jwt>`, built once so cache hits do no formatting.
    authorization: HeaderValue,
    /// The JWT's claims.
    claims: Map<String, Value>,
    /// The JWT's scopes.
    scopes: Vec<String>,
    /// The JWT's `exp`, in seconds since the epoch.
    expires_at: u64,
}

impl Grant {
    /// A grant for `jwt`, whose `claims` the caller has verified or written.
    /// Fails when the JWT has no `exp` or cannot go into a header.
    pub fn new(jwt: &str, claims: Map<String, Value>) -> Result<Grant, &'static str> {
        let expires_at = claims.get("exp").and_then(Value::as_f64).ok_or("JWT without exp")? as u64;
        let authorization =
            HeaderValue::from_str(&format!("Bearer {jwt}")).map_err(|_| "JWT not usable in a header")?;
        let scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(s)) => s.split_ascii_whitespace().map(str::to_string).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            _ => Vec::new(),
        };
        Ok(Grant { authorization, claims, scopes, expires_at })
    }

    /// Rebuilds a grant from a JWT Shroud itself stored (authenticated by the cache's AES-GCM seal),
    /// reading its claims without verifying the signature again.
    pub fn from_stored_jwt(jwt: &str) -> Result<Grant, &'static str> {
        let payload = jwt.split('.').nth(1).ok_or("stored JWT malformed")?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "stored JWT malformed")?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(claims)) => Grant::new(jwt, claims),
            _ => Err("stored JWT malformed"),
        }
    }

    /// The `Authorization` value to send upstream.
    pub fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// The JWT itself.
    pub fn jwt(&self) -> &str {
        // The header value was built from "Bearer " + an ASCII JWT.
        self.authorization.to_str().map(|v| &v[7..]).unwrap_or_default()
    }

    /// The JWT's claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// `exp`, in seconds since the epoch.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// A string claim such as `sub` or `client_id`.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_jwts_round_trip() {
        let claims = r#"{"sub":"u","scope":"read write","exp":2000}"#;
        let jwt = format!("eyJhbGciOiJFUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(claims));
        let grant = Grant::from_stored_jwt(&jwt).unwrap();
        assert_eq!(grant.jwt(), jwt);
        assert!(grant.has_scope("write") && !grant.has_scope("admin"));
        assert_eq!(grant.expires_at(), 2000);
        assert_eq!(grant.claim_str("sub"), Some("u"));
        assert!(Grant::from_stored_jwt("garbage").is_err());
    }
}

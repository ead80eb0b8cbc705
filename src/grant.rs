//! The result of a successful exchange: the JWT to forward and what the policy stage needs, parsed once.
//! Kept small, since the in-process tier holds one per cached token: the ready `Authorization` value,
//! the scopes and `exp`. Other claims are decoded from the JWT on demand.

use actix_web::http::header::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

/// A verified (or minted) JWT ready to forward, with the claims the policy stage needs pre-parsed.
#[derive(Debug)]
pub struct Grant {
    /// `Bearer <jwt>`, built once so cache hits do no formatting.
    authorization: HeaderValue,
    /// The JWT's scopes.
    scopes: Box<[Box<str>]>,
    /// The JWT's `exp`, in seconds since the epoch.
    expires_at: u64,
    /// Who the token was issued to: `client_id`, else `sub` (the per-client rate limit's key).
    client: Option<Box<str>>,
}

/// Decodes a JWT's claims without verifying them.
fn decode_claims(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?) {
        Ok(Value::Object(claims)) => Some(claims),
        _ => None,
    }
}

impl Grant {
    /// A grant for `jwt`, whose `claims` the caller has verified or written.
    /// Fails when the JWT has no `exp` or cannot go into a header.
    pub fn new(jwt: &str, claims: &Map<String, Value>) -> Result<Grant, &'static str> {
        let expires_at = claims.get("exp").and_then(Value::as_f64).ok_or("JWT without exp")? as u64;
        let authorization =
            HeaderValue::from_str(&format!("Bearer {jwt}")).map_err(|_| "JWT not usable in a header")?;
        let scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(s)) => s.split_ascii_whitespace().map(Box::from).collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(Box::from).collect(),
            _ => Box::default(),
        };
        let client = ["client_id", "sub"].iter().find_map(|c| claims.get(*c).and_then(Value::as_str)).map(Box::from);
        Ok(Grant { authorization, scopes, expires_at, client })
    }

    /// Rebuilds a grant from a JWT Shroud itself stored (authenticated by the cache's AES-GCM seal),
    /// reading its claims without verifying the signature again.
    pub fn from_stored_jwt(jwt: &str) -> Result<Grant, &'static str> {
        let claims = decode_claims(jwt).ok_or("stored JWT malformed")?;
        Grant::new(jwt, &claims)
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

    /// The JWT's claims, decoded on demand (the grant holds only what the hot path needs).
    pub fn claims(&self) -> Map<String, Value> {
        decode_claims(self.jwt()).unwrap_or_default()
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| &**s == scope)
    }

    /// Who the token was issued to: its `client_id`, else its `sub`.
    pub fn client(&self) -> Option<&str> {
        self.client.as_deref()
    }

    /// `exp`, in seconds since the epoch.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
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
        assert_eq!(grant.claims()["sub"], "u");
        assert!(Grant::from_stored_jwt("garbage").is_err());
    }
}

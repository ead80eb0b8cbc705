//! OpenID Connect Back-Channel Logout 1.0: verify the `logout_token` and end its sessions everywhere.

use super::TokenHandler;
use crate::grant::now_secs;
use crate::jose::verify::{Expectations, TypRule, VerifyError};
use serde_json::{Map, Value};

/// The event a logout token must carry.
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

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
}

impl LogoutTokenError {
    /// A short reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            LogoutTokenError::Jwt(e) => e.reason(),
            LogoutTokenError::NoEvent => "no back-channel logout event",
            LogoutTokenError::NoSubject => "neither sid nor sub",
            LogoutTokenError::Nonce => "nonce present",
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
    Ok(())
}

impl TokenHandler {
    /// Verifies a logout token: signature, `typ`, `iss` = `issuer`, `aud` = our client, `iat`, then the
    /// logout claims.
    pub async fn verify_logout_token(&self, jwt: &str, issuer: &str) -> Result<Map<String, Value>, LogoutTokenError> {
        let expect = Expectations {
            issuer,
            audience: Some(&self.config.client_id),
            typ: TypRule::LogoutToken,
            require_exp: false,
            require_iat: true,
            leeway: self.leeway,
            now: now_secs(),
        };
        let claims = self.verify_refreshing_keys(jwt, &expect).await.map_err(LogoutTokenError::Jwt)?;
        check_logout_claims(&claims)?;
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
        let ok = claims(json!({"events": {BACKCHANNEL_EVENT: {}}, "sid": "s1"}));
        assert_eq!(check_logout_claims(&ok), Ok(()));
        let by_sub = claims(json!({"events": {BACKCHANNEL_EVENT: {}}, "sub": "alice"}));
        assert_eq!(check_logout_claims(&by_sub), Ok(()));
        assert_eq!(check_logout_claims(&claims(json!({"sid": "s"}))), Err(LogoutTokenError::NoEvent));
        let wrong_event = claims(json!({"events": {"other": {}}, "sid": "s"}));
        assert_eq!(check_logout_claims(&wrong_event), Err(LogoutTokenError::NoEvent));
        let nonce = claims(json!({"events": {BACKCHANNEL_EVENT: {}}, "sid": "s", "nonce": "n"}));
        assert_eq!(check_logout_claims(&nonce), Err(LogoutTokenError::Nonce));
        let nobody = claims(json!({"events": {BACKCHANNEL_EVENT: {}}}));
        assert_eq!(check_logout_claims(&nobody), Err(LogoutTokenError::NoSubject));
    }
}

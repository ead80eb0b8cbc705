//! Reading an introspection answer in each mode:
//! - `json`: RFC 7662 JSON; `active` must be the boolean `true`.
//! - `rfc9701`: a JWT addressed to Shroud (`typ`, signature, `iss`, `aud` = our client id, `iat`), whose
//!   `token_introspection` claim is the RFC 7662 answer. Never forwarded.
//! - `jwt`: Curity's phantom-token contract: 200 is the access token as a JWT (verified, then forwarded),
//!   204 or `{"active":false}` means inactive.

use super::client::RawAnswer;
use crate::config::ResponseMode;
use crate::jose::keys::KeySet;
use crate::jose::verify::{verify, Expectations, TypRule, VerifyError};
use serde_json::{Map, Value};

/// The meaning of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Introspected {
    /// The token is not active.
    Inactive,
    /// The token is active.
    Active {
        /// The token's claims (the RFC 7662 members, or the JWT's claims in `jwt` mode).
        claims: Map<String, Value>,
        /// In `jwt` mode, the verified access-token JWT to forward.
        jwt: Option<String>,
    },
}

/// Why an answer could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerError {
    /// The access token JWT (`jwt` mode) failed verification: the client's token is unusable.
    TokenUnverifiable(VerifyError),
    /// The introspection response itself is unusable (bad JSON, a signed response that does not verify).
    ResponseUnverifiable(VerifyError),
    /// The response is not what the mode expects.
    Malformed(&'static str),
}

impl AnswerError {
    /// Whether refreshing the issuer's keys could change the outcome.
    pub fn wants_key_refresh(&self) -> bool {
        matches!(
            self,
            AnswerError::TokenUnverifiable(VerifyError::Key(_))
                | AnswerError::ResponseUnverifiable(VerifyError::Key(_))
        )
    }

    /// A short reason for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            AnswerError::TokenUnverifiable(e) | AnswerError::ResponseUnverifiable(e) => e.reason(),
            AnswerError::Malformed(what) => what,
        }
    }
}

/// Who the signed answers must come from and be addressed to.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The introspection mode.
    pub mode: ResponseMode,
    /// The issuer identifier from discovery.
    pub issuer: &'a str,
    /// Shroud's client id (the `aud` of RFC 9701 answers).
    pub client_id: &'a str,
    /// Clock skew tolerance.
    pub leeway: u64,
    /// Now, in seconds since the epoch.
    pub now: u64,
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, AnswerError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AnswerError::Malformed("introspection response is not a JSON object")),
    }
}

/// Whether the answer describes a refresh token (RFC 7662 `token_type` as Curity and node-oidc-provider
/// write it, or Keycloak's `typ`): only access tokens may pass the gateway, even when a refresh token is
/// presented where an access token belongs (e.g. moved into the access-token cookie).
fn is_refresh_token(members: &Map<String, Value>) -> bool {
    let says = |name: &str| members.get(name).and_then(Value::as_str).map(str::to_ascii_lowercase);
    matches!(says("token_type").as_deref(), Some("refresh_token" | "refresh"))
        || matches!(says("typ").as_deref(), Some("refresh" | "offline"))
}

/// Reads an RFC 7662 member set: `active` must be exactly the boolean `true`, and the token must not be a
/// refresh token.
fn from_members(members: Map<String, Value>) -> Result<Introspected, AnswerError> {
    match members.get("active") {
        Some(Value::Bool(true)) if is_refresh_token(&members) => {
            log::warn!("a refresh token was presented as an access token; refused");
            Ok(Introspected::Inactive)
        }
        Some(Value::Bool(true)) => Ok(Introspected::Active { claims: members, jwt: None }),
        Some(Value::Bool(false)) => Ok(Introspected::Inactive),
        _ => Err(AnswerError::Malformed("introspection response has no boolean `active`")),
    }
}

fn body_text(raw: &RawAnswer) -> Result<&str, AnswerError> {
    std::str::from_utf8(&raw.body)
        .map(str::trim)
        .map_err(|_| AnswerError::Malformed("introspection response is not text"))
}

/// Interprets `raw` according to `ctx.mode`, verifying signed answers with `keys`.
pub fn interpret(raw: &RawAnswer, keys: &KeySet, ctx: &Context<'_>) -> Result<Introspected, AnswerError> {
    match ctx.mode {
        ResponseMode::Json => {
            if raw.status == 204 {
                return Err(AnswerError::Malformed("empty introspection response"));
            }
            from_members(parse_object(&raw.body)?)
        }
        ResponseMode::Rfc9701 => {
            if raw.status == 204 {
                return Err(AnswerError::Malformed("empty introspection response"));
            }
            let expect = Expectations {
                issuer: ctx.issuer,
                audience: Some(ctx.client_id),
                typ: TypRule::IntrospectionResponse,
                require_exp: false,
                require_iat: true,
                leeway: ctx.leeway,
                now: ctx.now,
            };
            let verified = verify(body_text(raw)?, keys, &expect).map_err(AnswerError::ResponseUnverifiable)?;
            match verified.claims.get("token_introspection") {
                Some(Value::Object(members)) => from_members(members.clone()),
                _ => Err(AnswerError::Malformed("signed introspection response has no token_introspection claim")),
            }
        }
        ResponseMode::Jwt => {
            if raw.status == 204 {
                return Ok(Introspected::Inactive);
            }
            let text = body_text(raw)?;
            if text.starts_with('{') {
                return match from_members(parse_object(text.as_bytes())?)? {
                    Introspected::Inactive => Ok(Introspected::Inactive),
                    Introspected::Active { .. } => Err(AnswerError::Malformed("expected a JWT, got JSON")),
                };
            }
            let expect = Expectations {
                issuer: ctx.issuer,
                audience: None,
                typ: TypRule::AccessToken,
                require_exp: true,
                require_iat: false,
                leeway: ctx.leeway,
                now: ctx.now,
            };
            let verified = verify(text, keys, &expect).map_err(AnswerError::TokenUnverifiable)?;
            Ok(Introspected::Active { claims: verified.claims, jwt: Some(text.to_string()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, body: &str) -> RawAnswer {
        RawAnswer { status, content_type: String::new(), max_age: None, body: bytes::Bytes::from(body.to_string()) }
    }

    fn ctx(mode: ResponseMode) -> Context<'static> {
        Context { mode, issuer: "https://as", client_id: "gateway", leeway: 30, now: 1000 }
    }

    #[test]
    fn refresh_tokens_never_pass_as_access_tokens() {
        let (keys, c) = (KeySet::default(), ctx(ResponseMode::Json));
        for answer in [
            r#"{"active":true,"sub":"a","token_type":"refresh_token"}"#,
            r#"{"active":true,"sub":"a","token_type":"Refresh"}"#,
            r#"{"active":true,"sub":"a","typ":"Refresh"}"#,
            r#"{"active":true,"sub":"a","typ":"Offline"}"#,
        ] {
            assert_eq!(interpret(&raw(200, answer), &keys, &c), Ok(Introspected::Inactive), "{answer}");
        }
        let bearer = r#"{"active":true,"sub":"a","token_type":"Bearer"}"#;
        assert!(matches!(interpret(&raw(200, bearer), &keys, &c), Ok(Introspected::Active { .. })));
    }

    #[test]
    fn json_answers_need_a_boolean_active() {
        let keys = KeySet::default();
        let c = ctx(ResponseMode::Json);
        assert_eq!(interpret(&raw(200, r#"{"active":false}"#), &keys, &c), Ok(Introspected::Inactive));
        assert!(matches!(
            interpret(&raw(200, r#"{"active":true,"sub":"a"}"#), &keys, &c),
            Ok(Introspected::Active { jwt: None, .. })
        ));
        assert!(matches!(interpret(&raw(200, r#"{"active":"true"}"#), &keys, &c), Err(AnswerError::Malformed(_))));
        assert!(matches!(interpret(&raw(200, "[]"), &keys, &c), Err(AnswerError::Malformed(_))));
    }

    #[test]
    fn jwt_mode_inactive_forms() {
        let keys = KeySet::default();
        let c = ctx(ResponseMode::Jwt);
        assert_eq!(interpret(&raw(204, ""), &keys, &c), Ok(Introspected::Inactive));
        assert_eq!(interpret(&raw(200, r#"{"active":false}"#), &keys, &c), Ok(Introspected::Inactive));
        assert!(matches!(interpret(&raw(200, "a.b.c"), &keys, &c), Err(AnswerError::TokenUnverifiable(_))));
    }
}

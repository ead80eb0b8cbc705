//! Reading an introspection answer in each mode:
//! - `json`: RFC 7662 JSON; `active` must be the boolean `true`.
//! - `rfc9701`: a JWT addressed to Shroud (`typ`, signature, `iss`, `aud` = our client id, `iat`), whose
//!   `token_introspection` claim is the RFC 7662 answer. Never forwarded.
//! - `jwt`: Curity's phantom-token contract: 200 is the access token as a JWT (verified, then forwarded),
//!   204 or `{"active":false}` means inactive.
//!
//! In `json` and `rfc9701` modes an active answer must also show an access token (`token_type` in
//! `introspection.token_types`, Keycloak's `typ`, or Ory Hydra's `token_use`), and be within its
//! `nbf`..`exp` window give or take the leeway. In every mode, an answer or JWT that says the token is a
//! refresh token (or anything but an access token) is refused.

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
    /// The accepted access-token types, lower case (`introspection.token_types`); `["*"]` accepts an
    /// answer that gives no evidence of an access token.
    pub token_types: &'a [String],
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, AnswerError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AnswerError::Malformed("introspection response is not a JSON object")),
    }
}

/// A string member of an answer (or claim of a JWT), lower case.
fn lower(members: &Map<String, Value>, name: &str) -> Option<String> {
    members.get(name).and_then(Value::as_str).map(str::to_ascii_lowercase)
}

/// Whether the answer says the token is no access token: a refresh token by RFC 7662 `token_type` (as
/// Curity writes it), Keycloak's `typ` (`Refresh`, `Offline`), Ory Hydra's `token_use`, or Curity's
/// `purpose` claim.
fn says_not_an_access_token(members: &Map<String, Value>) -> bool {
    matches!(lower(members, "token_type").as_deref(), Some("refresh_token" | "refresh"))
        || matches!(lower(members, "typ").as_deref(), Some("refresh" | "offline"))
        || lower(members, "token_use").is_some_and(|u| u != "access_token" && u != "access")
        || lower(members, "purpose").is_some_and(|p| p != "access_token")
}

/// Whether the answer shows that the token is an access token: its `token_type` (RFC 7662) or `typ`
/// (Keycloak) is one of `accepted`, or its `token_use` (Ory Hydra) is `access_token`. An authorization
/// server may answer for every token it issued, refresh tokens included (node-oidc-provider does, without
/// `token_type`), so the absence of evidence is no evidence.
fn shows_an_access_token(members: &Map<String, Value>, accepted: &[String]) -> bool {
    if accepted.iter().any(|t| t == "*") {
        return true;
    }
    let listed = |name| lower(members, name).is_some_and(|t| accepted.contains(&t));
    listed("token_type") || listed("typ") || lower(members, "token_use").as_deref() == Some("access_token")
}

/// A numeric time claim: `Ok(None)` when absent, an error when not a number.
fn time(members: &Map<String, Value>, name: &str) -> Result<Option<f64>, AnswerError> {
    match members.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            value.as_f64().map(Some).ok_or(AnswerError::Malformed("introspection response has a non-numeric time"))
        }
    }
}

/// Reads an RFC 7662 member set: `active` must be exactly the boolean `true`, the token must be shown to
/// be an access token, and it must be within its `nbf`..`exp` window (give or take the leeway). A token
/// that fails a check is inactive (so 401 `invalid_token`, never cached as active).
fn from_members(members: Map<String, Value>, ctx: &Context<'_>) -> Result<Introspected, AnswerError> {
    match members.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(Introspected::Inactive),
        _ => return Err(AnswerError::Malformed("introspection response has no boolean `active`")),
    }
    let (now, leeway) = (ctx.now as f64, ctx.leeway as f64);
    if time(&members, "exp")?.is_some_and(|exp| exp + leeway < now) {
        log::warn!("the authorization server answered active for an expired token; refused");
        return Ok(Introspected::Inactive);
    }
    if time(&members, "nbf")?.is_some_and(|nbf| nbf - leeway > now) {
        log::warn!("the authorization server answered active for a token not valid yet (nbf); refused");
        return Ok(Introspected::Inactive);
    }
    if says_not_an_access_token(&members) {
        log::warn!("a token that is no access token (a refresh token?) was presented as one; refused");
        return Ok(Introspected::Inactive);
    }
    if !shows_an_access_token(&members, ctx.token_types) {
        log::warn!(
            "the introspection answer shows no access token (token_type not in introspection.token_types): a refresh token?; refused"
        );
        return Ok(Introspected::Inactive);
    }
    Ok(Introspected::Active { claims: members, jwt: None })
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
            from_members(parse_object(&raw.body)?, ctx)
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
                Some(Value::Object(members)) => from_members(members.clone(), ctx),
                _ => Err(AnswerError::Malformed("signed introspection response has no token_introspection claim")),
            }
        }
        ResponseMode::Jwt => {
            if raw.status == 204 {
                return Ok(Introspected::Inactive);
            }
            let text = body_text(raw)?;
            if text.starts_with('{') {
                return match parse_object(text.as_bytes())?.get("active") {
                    Some(Value::Bool(false)) => Ok(Introspected::Inactive),
                    _ => Err(AnswerError::Malformed("expected a JWT, got JSON")),
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
            // The contract returns a JWT for access tokens only; a JWT that says otherwise is refused.
            if says_not_an_access_token(&verified.claims) {
                log::warn!("the access token JWT says it is no access token; refused");
                return Ok(Introspected::Inactive);
            }
            Ok(Introspected::Active { claims: verified.claims, jwt: Some(text.to_string()) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    fn raw(status: u16, body: &str) -> RawAnswer {
        RawAnswer { status, content_type: String::new(), max_age: None, body: bytes::Bytes::from(body.to_string()) }
    }

    static DEFAULT_TYPES: LazyLock<Vec<String>> = LazyLock::new(|| vec!["bearer".into(), "dpop".into()]);
    static ANY_TYPE: LazyLock<Vec<String>> = LazyLock::new(|| vec!["*".into()]);

    fn ctx(mode: ResponseMode) -> Context<'static> {
        Context { mode, issuer: "https://as", client_id: "gateway", leeway: 30, now: 1000, token_types: &DEFAULT_TYPES }
    }

    fn read(answer: &str, c: &Context<'_>) -> Result<Introspected, AnswerError> {
        interpret(&raw(200, answer), &KeySet::default(), c)
    }

    fn active(answer: &str, c: &Context<'_>) -> bool {
        matches!(read(answer, c), Ok(Introspected::Active { .. }))
    }

    #[test]
    fn refresh_tokens_never_pass_as_access_tokens() {
        let c = ctx(ResponseMode::Json);
        for answer in [
            r#"{"active":true,"sub":"a","token_type":"refresh_token"}"#,
            r#"{"active":true,"sub":"a","token_type":"Refresh"}"#,
            r#"{"active":true,"sub":"a","typ":"Refresh"}"#,
            r#"{"active":true,"sub":"a","typ":"Offline"}"#,
            r#"{"active":true,"sub":"a","token_type":"Bearer","token_use":"refresh_token"}"#,
            // node-oidc-provider's answer for a refresh token: no token_type, no aud.
            r#"{"active":true,"sub":"a","client_id":"webapp","scope":"openid","sid":"s","exp":2000,"iat":900,"iss":"https://as"}"#,
            r#"{"active":true,"sub":"a","token_type":"mac"}"#,
        ] {
            assert_eq!(read(answer, &c), Ok(Introspected::Inactive), "{answer}");
        }
        for answer in [
            r#"{"active":true,"sub":"a","token_type":"Bearer"}"#,
            r#"{"active":true,"sub":"a","token_type":"DPoP"}"#,
            r#"{"active":true,"sub":"a","typ":"Bearer"}"#,
            r#"{"active":true,"sub":"a","token_use":"access_token"}"#,
        ] {
            assert!(active(answer, &c), "{answer}");
        }
    }

    #[test]
    fn the_opt_out_accepts_answers_without_evidence_but_not_refresh_tokens() {
        let c = Context { token_types: &ANY_TYPE, ..ctx(ResponseMode::Json) };
        assert!(active(r#"{"active":true,"sub":"a"}"#, &c));
        assert_eq!(read(r#"{"active":true,"sub":"a","typ":"Refresh"}"#, &c), Ok(Introspected::Inactive));
    }

    #[test]
    fn expired_and_not_yet_valid_answers_are_inactive() {
        let c = ctx(ResponseMode::Json);
        let bearer = |extra: &str| format!(r#"{{"active":true,"sub":"a","token_type":"Bearer"{extra}}}"#);
        assert_eq!(read(&bearer(r#","exp":969"#), &c), Ok(Introspected::Inactive), "expired beyond the leeway");
        assert!(active(&bearer(r#","exp":970"#), &c), "within the leeway");
        assert_eq!(read(&bearer(r#","nbf":1031"#), &c), Ok(Introspected::Inactive), "not valid yet");
        assert!(active(&bearer(r#","nbf":1030,"exp":2000"#), &c));
        assert!(matches!(read(&bearer(r#","exp":"2000""#), &c), Err(AnswerError::Malformed(_))));
    }

    #[test]
    fn json_answers_need_a_boolean_active() {
        let c = ctx(ResponseMode::Json);
        assert_eq!(read(r#"{"active":false}"#, &c), Ok(Introspected::Inactive));
        assert!(matches!(
            read(r#"{"active":true,"sub":"a","token_type":"Bearer"}"#, &c),
            Ok(Introspected::Active { jwt: None, .. })
        ));
        assert!(matches!(read(r#"{"active":"true"}"#, &c), Err(AnswerError::Malformed(_))));
        assert!(matches!(read("[]", &c), Err(AnswerError::Malformed(_))));
    }

    #[test]
    fn jwt_mode_inactive_forms() {
        let keys = KeySet::default();
        let c = ctx(ResponseMode::Jwt);
        assert_eq!(interpret(&raw(204, ""), &keys, &c), Ok(Introspected::Inactive));
        assert_eq!(read(r#"{"active":false}"#, &c), Ok(Introspected::Inactive));
        assert!(matches!(read(r#"{"active":true}"#, &c), Err(AnswerError::Malformed(_))));
        assert!(matches!(read("a.b.c", &c), Err(AnswerError::TokenUnverifiable(_))));
    }

    #[test]
    fn a_jwt_that_says_it_is_no_access_token_is_refused() {
        let claims = |json: &str| serde_json::from_str::<Map<String, Value>>(json).unwrap();
        assert!(says_not_an_access_token(&claims(r#"{"purpose":"refresh_token"}"#)));
        assert!(says_not_an_access_token(&claims(r#"{"typ":"Refresh"}"#)));
        assert!(!says_not_an_access_token(&claims(r#"{"purpose":"access_token","typ":"Bearer"}"#)));
        assert!(!says_not_an_access_token(&claims(r#"{"sub":"a"}"#)));
    }
}

//! JWT verification (RFC 7519, RFC 8725): signature with a key chosen by [`KeySet::select`], then the
//! claims, in a fixed readable order: type → issuer → audience → expiry → not-before → issued-at.

use super::keys::{KeyChoiceError, KeySet};
use josekit::jws::JwsHeader;
use serde_json::{Map, Value};
use std::cell::Cell;

/// What the JWT must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypRule {
    /// An RFC 9701 introspection response: `typ` must be `token-introspection+jwt`.
    IntrospectionResponse,
    /// An access token: any `typ` except an introspection response (no cross-JWT confusion).
    AccessToken,
    /// An OIDC ID token: no `typ`, or `JWT`; never an access token, introspection or logout token.
    IdToken,
    /// An OIDC Back-Channel Logout token: no `typ`, `JWT` or `logout+jwt`.
    LogoutToken,
}

fn media_type(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    lower.strip_prefix("application/").map(str::to_string).unwrap_or(lower)
}

impl TypRule {
    /// Whether a JWT with header `typ` may be taken for what this rule describes.
    pub fn allows(&self, typ: Option<&str>) -> bool {
        let typ = typ.map(media_type);
        match (self, typ.as_deref()) {
            (TypRule::IntrospectionResponse, Some(t)) => t == "token-introspection+jwt",
            (TypRule::IntrospectionResponse, None) => false,
            (TypRule::AccessToken, t) => t != Some("token-introspection+jwt") && t != Some("logout+jwt"),
            (TypRule::IdToken, t) => matches!(t, None | Some("jwt")),
            (TypRule::LogoutToken, t) => matches!(t, None | Some("jwt") | Some("logout+jwt")),
        }
    }
}

/// The checks a JWT must pass besides its signature.
#[derive(Debug, Clone, Copy)]
pub struct Expectations<'a> {
    /// Required `iss`.
    pub issuer: &'a str,
    /// Required member of `aud`, if any.
    pub audience: Option<&'a str>,
    /// Rule for the `typ` header.
    pub typ: TypRule,
    /// Whether `exp` must be present.
    pub require_exp: bool,
    /// Whether `iat` must be present.
    pub require_iat: bool,
    /// Tolerated clock skew in seconds.
    pub leeway: u64,
    /// The current time, in seconds since the epoch.
    pub now: u64,
}

/// Why a JWT was refused. The reason strings go to logs and to the client's error description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// Not a compact JWS with a JSON claims set.
    Malformed,
    /// No acceptable key or algorithm.
    Key(KeyChoiceError),
    /// The signature does not verify.
    Signature,
    /// Wrong `typ`.
    Type,
    /// Wrong `iss`.
    Issuer,
    /// Wrong or missing `aud`.
    Audience,
    /// No `exp`.
    MissingExp,
    /// `exp` has passed.
    Expired,
    /// `nbf` is in the future.
    NotYetValid,
    /// No `iat`.
    MissingIat,
    /// `iat` is in the future.
    IssuedInFuture,
}

impl VerifyError {
    /// A short reason, safe to log and to show.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Malformed => "malformed JWT",
            VerifyError::Key(KeyChoiceError::DisallowedAlg) => "signature algorithm not allowed",
            VerifyError::Key(KeyChoiceError::UnknownKey) => "unknown signing key",
            VerifyError::Key(KeyChoiceError::AmbiguousKey) => "no key id and several candidate keys",
            VerifyError::Signature => "invalid signature",
            VerifyError::Type => "wrong JWT type",
            VerifyError::Issuer => "wrong issuer",
            VerifyError::Audience => "wrong audience",
            VerifyError::MissingExp => "no expiry",
            VerifyError::Expired => "expired",
            VerifyError::NotYetValid => "not yet valid",
            VerifyError::MissingIat => "no issued-at time",
            VerifyError::IssuedInFuture => "issued in the future",
        }
    }
}

/// A JWT that passed every check.
#[derive(Debug)]
pub struct Verified {
    /// Its header.
    pub header: JwsHeader,
    /// Its claims.
    pub claims: Map<String, Value>,
}

fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, VerifyError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_f64().filter(|v| *v >= 0.0).map(|v| Some(v as u64)).ok_or(VerifyError::Malformed)
        }
        Some(_) => Err(VerifyError::Malformed),
    }
}

/// Whether `aud` (a string or an array of strings) contains `expected`.
pub fn audience_contains(aud: Option<&Value>, expected: &str) -> bool {
    match aud {
        Some(Value::String(s)) => s == expected,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(expected)),
        _ => false,
    }
}

/// Verifies `token` against `keys` and `expect`.
pub fn verify(token: &str, keys: &KeySet, expect: &Expectations<'_>) -> Result<Verified, VerifyError> {
    let choice = Cell::new(None);
    let decoded = josekit::jwt::decode_with_verifier_selector(token, |header| match keys.select(header) {
        Ok(verifier) => Ok(Some(verifier)),
        Err(e) => {
            choice.set(Some(e));
            Ok(None)
        }
    });
    let (payload, header) = match decoded {
        Ok(ok) => ok,
        Err(err) => {
            if let Some(e) = choice.get() {
                return Err(VerifyError::Key(e));
            }
            return Err(match err {
                josekit::JoseError::InvalidSignature(_) => VerifyError::Signature,
                _ => VerifyError::Malformed,
            });
        }
    };
    let claims = payload.claims_set().clone();
    check_claims(header.token_type(), &claims, expect)?;
    Ok(Verified { header, claims })
}

fn check_claims(typ: Option<&str>, claims: &Map<String, Value>, expect: &Expectations<'_>) -> Result<(), VerifyError> {
    if !expect.typ.allows(typ) {
        return Err(VerifyError::Type);
    }
    if claims.get("iss").and_then(Value::as_str) != Some(expect.issuer) {
        return Err(VerifyError::Issuer);
    }
    if let Some(audience) = expect.audience {
        if !audience_contains(claims.get("aud"), audience) {
            return Err(VerifyError::Audience);
        }
    }
    match numeric(claims, "exp")? {
        None if expect.require_exp => return Err(VerifyError::MissingExp),
        Some(exp) if expect.now >= exp.saturating_add(expect.leeway) => return Err(VerifyError::Expired),
        _ => {}
    }
    if let Some(nbf) = numeric(claims, "nbf")? {
        if nbf > expect.now + expect.leeway {
            return Err(VerifyError::NotYetValid);
        }
    }
    match numeric(claims, "iat")? {
        None if expect.require_iat => Err(VerifyError::MissingIat),
        Some(iat) if iat > expect.now + expect.leeway => Err(VerifyError::IssuedInFuture),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect(now: u64) -> Expectations<'static> {
        Expectations {
            issuer: "https://as",
            audience: Some("gateway"),
            typ: TypRule::IntrospectionResponse,
            require_exp: false,
            require_iat: true,
            leeway: 30,
            now,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn claim_checks_in_order() {
        let ok = claims(json!({"iss": "https://as", "aud": ["x", "gateway"], "iat": 1000}));
        let t = Some("token-introspection+jwt");
        assert_eq!(check_claims(t, &ok, &expect(1000)), Ok(()));
        assert_eq!(check_claims(Some("application/Token-Introspection+JWT"), &ok, &expect(1000)), Ok(()));
        assert_eq!(check_claims(Some("JWT"), &ok, &expect(1000)), Err(VerifyError::Type));
        assert_eq!(check_claims(None, &ok, &expect(1000)), Err(VerifyError::Type));
        let wrong_iss = claims(json!({"iss": "https://evil", "aud": "gateway", "iat": 1000}));
        assert_eq!(check_claims(t, &wrong_iss, &expect(1000)), Err(VerifyError::Issuer));
        let wrong_aud = claims(json!({"iss": "https://as", "aud": "other", "iat": 1000}));
        assert_eq!(check_claims(t, &wrong_aud, &expect(1000)), Err(VerifyError::Audience));
        assert_eq!(check_claims(t, &ok, &expect(900)), Err(VerifyError::IssuedInFuture));
        let no_iat = claims(json!({"iss": "https://as", "aud": "gateway"}));
        assert_eq!(check_claims(t, &no_iat, &expect(1000)), Err(VerifyError::MissingIat));
        let expired = claims(json!({"iss": "https://as", "aud": "gateway", "iat": 1, "exp": 100}));
        assert_eq!(check_claims(t, &expired, &expect(1000)), Err(VerifyError::Expired));
        let string_exp = claims(json!({"iss": "https://as", "aud": "gateway", "iat": 1, "exp": "9999999999"}));
        assert_eq!(check_claims(t, &string_exp, &expect(1000)), Err(VerifyError::Malformed));
    }

    #[test]
    fn access_tokens_may_not_be_introspection_responses() {
        let mut e = expect(1000);
        e.typ = TypRule::AccessToken;
        e.audience = None;
        e.require_exp = true;
        let c = claims(json!({"iss": "https://as", "iat": 1000, "exp": 2000}));
        assert_eq!(check_claims(Some("at+jwt"), &c, &e), Ok(()));
        assert_eq!(check_claims(Some("token-introspection+jwt"), &c, &e), Err(VerifyError::Type));
        let no_exp = claims(json!({"iss": "https://as", "iat": 1000}));
        assert_eq!(check_claims(None, &no_exp, &e), Err(VerifyError::MissingExp));
        let nbf = claims(json!({"iss": "https://as", "exp": 5000, "nbf": 1500}));
        assert_eq!(check_claims(None, &nbf, &e), Err(VerifyError::NotYetValid));
    }

    #[test]
    fn each_kind_of_jwt_has_its_types() {
        assert!(TypRule::IdToken.allows(None) && TypRule::IdToken.allows(Some("JWT")));
        assert!(!TypRule::IdToken.allows(Some("at+jwt")) && !TypRule::IdToken.allows(Some("logout+jwt")));
        assert!(TypRule::LogoutToken.allows(Some("logout+jwt")) && TypRule::LogoutToken.allows(None));
        assert!(!TypRule::LogoutToken.allows(Some("at+jwt")));
        assert!(!TypRule::AccessToken.allows(Some("application/logout+jwt")));
        assert!(TypRule::AccessToken.allows(Some("at+jwt")) && TypRule::AccessToken.allows(None));
    }
}

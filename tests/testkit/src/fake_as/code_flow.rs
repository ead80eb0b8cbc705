//! The token-handler side of the fake authorization server: `GET /authorize` with PKCE S256,
//! the `authorization_code` and `refresh_token` grants, userinfo, refresh-token revocation,
//! ID tokens and back-channel logout tokens.
//!
//! All state lives in [`Flow`], one mutex inside the server's shared state. The token store
//! used by introspection (`Inner::tokens`) is only locked while the flow lock is not held.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::{b64_json, json_response, lock, now, random_b64, Inner, LogoutSpec, State, TokenSpec};

/// The scope granted when `/authorize` was called without one.
const DEFAULT_SCOPE: &str = "openid profile read";
/// Lifetime of an authorization code.
const CODE_TTL_SECS: i64 = 600;
/// Lifetime of refresh tokens (a day, as the dev IdP's).
const REFRESH_TTL_SECS: i64 = 86_400;
/// Lifetime of ID tokens.
const ID_TOKEN_TTL_SECS: i64 = 300;
/// Lifetime of back-channel logout tokens (`exp - iat`).
const LOGOUT_TOKEN_TTL_SECS: i64 = 120;
/// The event a back-channel logout token announces.
const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// An authorization code handed out by `/authorize` and not yet redeemed.
struct AuthCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    scope: String,
    sub: String,
    sid: String,
    auth_time: i64,
    expires_at: i64,
}

/// A login session, created when a code is redeemed; keyed by its `sid`.
struct Session {
    sub: String,
    scope: String,
    client_id: String,
    auth_time: i64,
    /// Every access token issued for this session (by the code and refresh grants).
    access_tokens: Vec<String>,
}

/// A refresh token; it stops being usable once rotated or revoked.
struct RefreshToken {
    sid: String,
    usable: bool,
}

/// Mutable state of the authorization-code flow and its knobs.
pub(super) struct Flow {
    pub(super) login_user: String,
    pub(super) authorize_error: Option<String>,
    pub(super) last_authorize: Option<Vec<(String, String)>>,
    pub(super) refresh_delay_ms: u64,
    pub(super) access_ttl: i64,
    pub(super) id_token_on_refresh: bool,
    pub(super) revoked: Vec<String>,
    codes: HashMap<String, AuthCode>,
    sessions: HashMap<String, Session>,
    refresh_tokens: HashMap<String, RefreshToken>,
    /// Access token -> `sid`.
    access_sessions: HashMap<String, String>,
}

impl Flow {
    pub(super) fn new() -> Flow {
        Flow {
            login_user: "alice".to_string(),
            authorize_error: None,
            last_authorize: None,
            refresh_delay_ms: 0,
            access_ttl: 300,
            id_token_on_refresh: false,
            revoked: Vec::new(),
            codes: HashMap::new(),
            sessions: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_sessions: HashMap::new(),
        }
    }
}

/// An OAuth error answer (`{"error": .., "error_description": ..}`).
pub(super) struct OAuthError {
    error: &'static str,
    description: String,
}

impl OAuthError {
    pub(super) fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError { error, description: description.into() }
    }

    fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new("invalid_grant", description)
    }

    pub(super) fn to_json(&self) -> Value {
        json!({ "error": self.error, "error_description": self.description })
    }
}

/// `base64url-no-pad(SHA-256(verifier))`, the S256 code challenge (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 characters of `[A-Za-z0-9-._~]`.
fn is_valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// An S256 challenge is the unpadded base64url form of 32 bytes: 43 characters.
fn is_valid_s256_challenge(c: &str) -> bool {
    c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `base` with `params` appended to its query (form-encoded).
fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).expect("form-encode redirect parameters");
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{query}")
}

impl Inner {
    /// Validates an authorization request; on success answers the redirect location (with a
    /// code, or with the error chosen by [`super::FakeAs::set_authorize_error`]).
    fn authorize_request(&self, query: &[(String, String)]) -> Result<String, OAuthError> {
        let bad = |d: String| OAuthError::new("invalid_request", d);
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in query {
            if seen.contains(&k.as_str()) {
                return Err(bad(format!("parameter {k} is repeated")));
            }
            seen.push(k);
        }
        let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());

        match get("response_type") {
            Some("code") => {}
            Some(other) => {
                return Err(OAuthError::new("unsupported_response_type", format!("response_type {other:?}")));
            }
            None => return Err(bad("missing response_type".into())),
        }
        let client_id = get("client_id").ok_or_else(|| bad("missing client_id".into()))?;
        if client_id != self.opts.web_client_id {
            return Err(OAuthError::new("unauthorized_client", format!("unknown client_id {client_id:?}")));
        }
        let redirect_uri = get("redirect_uri").ok_or_else(|| bad("missing redirect_uri".into()))?;
        if redirect_uri != self.opts.web_redirect_uri {
            return Err(bad(format!("redirect_uri {redirect_uri:?} is not registered")));
        }
        let state = get("state").filter(|s| !s.is_empty()).ok_or_else(|| bad("missing state".into()))?;
        let challenge = get("code_challenge").ok_or_else(|| bad("missing code_challenge (PKCE is required)".into()))?;
        match get("code_challenge_method") {
            Some("S256") => {}
            Some(m) => return Err(bad(format!("code_challenge_method {m:?} is not supported, use S256"))),
            None => return Err(bad("missing code_challenge_method (only S256 is supported)".into())),
        }
        if !is_valid_s256_challenge(challenge) {
            return Err(bad("code_challenge is not 43 base64url characters".into()));
        }

        let mut flow = lock(&self.flow);
        if let Some(error) = flow.authorize_error.clone() {
            let description = format!("{error} forced by the test");
            return Ok(with_query(
                redirect_uri,
                &[("error", &error), ("error_description", &description), ("state", state), ("iss", &self.url)],
            ));
        }
        let code = random_b64(32);
        let now = now();
        let grant = AuthCode {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            code_challenge: challenge.to_string(),
            nonce: get("nonce").map(str::to_string),
            scope: get("scope").filter(|s| !s.trim().is_empty()).unwrap_or(DEFAULT_SCOPE).to_string(),
            sub: flow.login_user.clone(),
            sid: random_b64(16),
            auth_time: now,
            expires_at: now + CODE_TTL_SECS,
        };
        flow.codes.insert(code.clone(), grant);
        Ok(with_query(redirect_uri, &[("code", &code), ("state", state), ("iss", &self.url)]))
    }

    /// Issues a new access token and refresh token for session `sid` (which must exist) and
    /// registers the access token in the introspection store. Returns (access, refresh, ttl).
    fn mint_tokens(&self, sid: &str) -> (String, String, i64) {
        let access = random_b64(32);
        let refresh = random_b64(32);
        let (spec, refresh_spec, ttl) = {
            let mut flow = lock(&self.flow);
            let ttl = flow.access_ttl;
            let session = flow.sessions.get_mut(sid).expect("session exists");
            session.access_tokens.push(access.clone());
            let spec = TokenSpec {
                active: true,
                sub: Some(session.sub.clone()),
                scope: Some(session.scope.clone()),
                client_id: Some(session.client_id.clone()),
                aud: None,
                exp: Some(now() + ttl),
                extra: Map::new(),
                token_type: Some("Bearer".to_string()),
            };
            let refresh_spec =
                TokenSpec::refresh_token(&session.sub, &session.client_id, &session.scope, sid, REFRESH_TTL_SECS);
            flow.access_sessions.insert(access.clone(), sid.to_string());
            flow.refresh_tokens.insert(refresh.clone(), RefreshToken { sid: sid.to_string(), usable: true });
            (spec, refresh_spec, ttl)
        };
        self.issue(&access, spec);
        // Introspectable like node-oidc-provider's refresh tokens: active, without token_type.
        self.issue(&refresh, refresh_spec);
        (access, refresh, ttl)
    }

    /// A signed compact JWS with header `{typ, alg, kid}` of the current key, signed with
    /// that key or (with `wrong_key`) with a key that is not in the JWKS.
    fn sign_jwt(&self, typ: &str, claims: &Map<String, Value>, wrong_key: bool) -> String {
        let key = self.current_key();
        let mut header = Map::new();
        header.insert("typ".into(), json!(typ));
        header.insert("alg".into(), json!(key.alg));
        header.insert("kid".into(), json!(key.kid));
        let input = format!("{}.{}", b64_json(&header), b64_json(claims));
        let signature = if wrong_key { self.other_key().sign(input.as_bytes()) } else { key.sign(input.as_bytes()) };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// An ID token for session `sid`.
    fn id_token(&self, sid: &str, nonce: Option<&str>) -> String {
        let (sub, client_id, auth_time) = {
            let flow = lock(&self.flow);
            let s = flow.sessions.get(sid).expect("session exists");
            (s.sub.clone(), s.client_id.clone(), s.auth_time)
        };
        let now = now();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.url));
        claims.insert("sub".into(), json!(sub));
        claims.insert("aud".into(), json!(client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + ID_TOKEN_TTL_SECS));
        claims.insert("auth_time".into(), json!(auth_time));
        claims.insert("sid".into(), json!(sid));
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        self.sign_jwt("JWT", &claims, false)
    }

    /// The token answer for a session after minting new tokens.
    fn token_answer(&self, sid: &str, id_token: Option<Option<&str>>) -> Value {
        let (access, refresh, ttl) = self.mint_tokens(sid);
        let scope = lock(&self.flow).sessions.get(sid).map(|s| s.scope.clone()).unwrap_or_default();
        let mut answer = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "refresh_token": refresh,
            "scope": scope,
        });
        if let Some(nonce) = id_token {
            answer["id_token"] = json!(self.id_token(sid, nonce));
        }
        answer
    }

    /// The `authorization_code` grant for an authenticated `client_id`. The code is consumed
    /// by any attempt to redeem it, successful or not.
    pub(super) fn exchange_code(&self, form: &[(String, String)], client_id: &str) -> Result<Value, OAuthError> {
        let code = super::form_get(form, "code").ok_or_else(|| OAuthError::new("invalid_request", "missing code"))?;
        let grant = lock(&self.flow)
            .codes
            .remove(code)
            .ok_or_else(|| OAuthError::invalid_grant("unknown or already used code"))?;
        if grant.client_id != client_id {
            return Err(OAuthError::invalid_grant("code was issued to another client"));
        }
        if grant.expires_at < now() {
            return Err(OAuthError::invalid_grant("code expired"));
        }
        if super::form_get(form, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant("redirect_uri differs from the authorization request"));
        }
        let verifier = super::form_get(form, "code_verifier")
            .ok_or_else(|| OAuthError::invalid_grant("missing code_verifier (PKCE)"))?;
        if !is_valid_verifier(verifier) || s256(verifier) != grant.code_challenge {
            return Err(OAuthError::invalid_grant("code_verifier does not match code_challenge"));
        }
        lock(&self.flow).sessions.insert(
            grant.sid.clone(),
            Session {
                sub: grant.sub,
                scope: grant.scope,
                client_id: grant.client_id,
                auth_time: grant.auth_time,
                access_tokens: Vec::new(),
            },
        );
        Ok(self.token_answer(&grant.sid, Some(grant.nonce.as_deref())))
    }

    /// The `refresh_token` grant for an authenticated `client_id`: rotates the refresh token.
    pub(super) fn refresh(&self, form: &[(String, String)], client_id: &str) -> Result<Value, OAuthError> {
        let token = super::form_get(form, "refresh_token")
            .ok_or_else(|| OAuthError::new("invalid_request", "missing refresh_token"))?;
        let (sid, with_id_token) = {
            let mut flow = lock(&self.flow);
            let sid = match flow.refresh_tokens.get(token) {
                Some(rt) if rt.usable => rt.sid.clone(),
                Some(_) => return Err(OAuthError::invalid_grant("refresh token was rotated or revoked")),
                None => return Err(OAuthError::invalid_grant("unknown refresh token")),
            };
            let session = flow.sessions.get(&sid).expect("session of a refresh token exists");
            if session.client_id != client_id {
                return Err(OAuthError::invalid_grant("refresh token was issued to another client"));
            }
            if let Some(requested) = super::form_get(form, "scope") {
                let granted: Vec<&str> = session.scope.split_whitespace().collect();
                if let Some(extra) = requested.split_whitespace().find(|s| !granted.contains(s)) {
                    return Err(OAuthError::new("invalid_scope", format!("scope {extra:?} was not granted")));
                }
            }
            flow.refresh_tokens.get_mut(token).expect("refresh token exists").usable = false;
            (sid, flow.id_token_on_refresh)
        };
        self.revoke(token);
        Ok(self.token_answer(&sid, with_id_token.then_some(None)))
    }

    /// Revokes a refresh token (a no-op for other values) and, as RFC 7009 §2.1 suggests,
    /// every access token of the same session.
    pub(super) fn revoke_refresh_token(&self, token: &str) {
        let access_tokens = {
            let mut flow = lock(&self.flow);
            let Some(rt) = flow.refresh_tokens.get_mut(token) else {
                return;
            };
            rt.usable = false;
            let sid = rt.sid.clone();
            flow.sessions.get(&sid).map(|s| s.access_tokens.clone()).unwrap_or_default()
        };
        self.revoke(token);
        for access in access_tokens {
            self.revoke(&access);
        }
    }

    pub(super) fn session_of(&self, access_token: &str) -> Option<(String, String)> {
        let flow = lock(&self.flow);
        let sid = flow.access_sessions.get(access_token)?;
        let session = flow.sessions.get(sid)?;
        Some((sid.clone(), session.sub.clone()))
    }

    pub(super) fn logout_token(&self, spec: LogoutSpec) -> String {
        let typ = spec.typ.as_deref().unwrap_or("logout+jwt").to_string();
        let iat = spec.iat.unwrap_or_else(now);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(spec.iss.unwrap_or_else(|| self.url.clone())));
        claims.insert("aud".into(), json!(spec.aud.unwrap_or_else(|| self.opts.web_client_id.clone())));
        claims.insert("iat".into(), json!(iat));
        claims.insert("exp".into(), json!(iat + spec.lifetime.unwrap_or(LOGOUT_TOKEN_TTL_SECS)));
        if spec.jti {
            claims.insert("jti".into(), json!(random_b64(16)));
        }
        if spec.events {
            claims.insert("events".into(), json!({ BACKCHANNEL_LOGOUT_EVENT: {} }));
        }
        if let Some(sub) = spec.sub {
            claims.insert("sub".into(), json!(sub));
        }
        if let Some(sid) = spec.sid {
            claims.insert("sid".into(), json!(sid));
        }
        if spec.nonce {
            claims.insert("nonce".into(), json!(random_b64(12)));
        }
        self.sign_jwt(&typ, &claims, spec.wrong_key)
    }
}

/// `GET /authorize`: logs the configured user in and redirects back with a code.
pub(super) async fn authorize(req: HttpRequest, st: State) -> HttpResponse {
    let parsed = serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string());
    let query = parsed.as_ref().cloned().unwrap_or_default();
    lock(&st.flow).last_authorize = Some(query.clone());
    let result = match parsed {
        Ok(_) => st.authorize_request(&query),
        Err(e) => Err(OAuthError::new("invalid_request", format!("malformed query: {e}"))),
    };
    match result {
        Ok(location) => HttpResponse::Found()
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => json_response(StatusCode::BAD_REQUEST, &e.to_json(), "no-store"),
    }
}

/// `GET|POST /userinfo` with a bearer access token from the `Authorization` header.
pub(super) async fn userinfo(req: HttpRequest, st: State) -> HttpResponse {
    st.userinfo_calls.fetch_add(1, Ordering::SeqCst);
    let auth = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim);
    let token = auth.filter(|a| a.len() > 7 && a[..7].eq_ignore_ascii_case("bearer ")).map(|a| a[7..].trim());
    let Some(token) = token else {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"fake-as\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    };
    let access = if st.is_access_token(token) { st.active_claims(token) } else { None };
    let sub = access.and_then(|(claims, _)| claims.get("sub").and_then(Value::as_str).map(str::to_string));
    match sub {
        Some(sub) => json_response(
            StatusCode::OK,
            &json!({ "sub": sub, "name": format!("{sub} Example"), "email": format!("{sub}@example.com") }),
            "no-store",
        ),
        None => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\""))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    }
}

/// `GET /logout`: the end-session endpoint, a stub.
pub(super) async fn end_session() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; charset=utf-8").body("logged out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(is_valid_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!is_valid_verifier("short"));
        assert!(!is_valid_verifier(&"a+".repeat(30)));
        assert!(is_valid_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_valid_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="));
    }

    #[test]
    fn with_query_appends() {
        assert_eq!(with_query("http://x/cb", &[("a", "1 2"), ("b", "&")]), "http://x/cb?a=1+2&b=%26");
        assert_eq!(with_query("http://x/cb?k=v", &[("a", "1")]), "http://x/cb?k=v&a=1");
    }
}

//! The token handler's calls to the authorization server for the SPA's client: the authorization URL
//! (PKCE S256), the code and refresh grants, userinfo, revocation (RFC 7009) and the end-session URL.

use crate::as_body::AsAnswer;
use crate::client_auth::ClientAuth;
use crate::issuer::without_url;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::{form_urlencoded, Url};

/// Parameters Shroud sets itself; `extraParams` may not override them.
pub const RESERVED_PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "request",
    "request_uri",
];

/// A random URL-safe string of 32 bytes of entropy (state, nonce, PKCE verifier, CSRF token).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    openssl::rand::rand_bytes(&mut bytes).expect("the system CSPRNG is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE S256 challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What `<p>-login` holds while a login is in progress.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginState {
    /// The `state` sent to the authorization server.
    pub state: String,
    /// The PKCE verifier.
    #[serde(rename = "codeVerifier")]
    pub code_verifier: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
}

impl LoginState {
    /// Fresh random state, verifier and nonce.
    pub fn fresh() -> LoginState {
        LoginState { state: random_token(), code_verifier: random_token(), nonce: random_token() }
    }
}

/// A token endpoint answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token (opaque to Shroud until exchanged).
    pub access_token: String,
    /// The access token's lifetime in seconds, if told.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The refresh token, if issued.
    pub refresh_token: Option<String>,
    /// The ID token, if issued.
    pub id_token: Option<String>,
}

/// Why a grant failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantError {
    /// The authorization server refused it (4xx), with its error code.
    Refused(String),
    /// Unreachable, timed out, 5xx, nonsense or an answer over the size limit.
    Unavailable,
}

/// Why a userinfo call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserinfoError {
    /// 401: the access token is no longer accepted.
    TokenRejected,
    /// Anything else.
    Failed,
}

/// The SPA client's calls to the authorization server.
pub struct OAuthClient {
    http: reqwest::Client,
    auth: ClientAuth,
    client_id: String,
    redirect_uri: String,
    scope: String,
    post_logout_redirect_uri: String,
}

impl OAuthClient {
    /// A client for `[token_handler]` with its credentials (and an HTTP client that presents their
    /// certificate, if any).
    pub fn new(http: reqwest::Client, auth: ClientAuth, config: &crate::config::TokenHandlerConfig) -> OAuthClient {
        OAuthClient {
            http,
            auth,
            client_id: config.client_id.clone(),
            redirect_uri: config.redirect_uri.clone(),
            scope: config.scope.clone(),
            post_logout_redirect_uri: config.post_logout_redirect_uri.clone(),
        }
    }

    /// Whether the configured scope asks for an ID token.
    pub fn wants_id_token(&self) -> bool {
        self.scope.split_ascii_whitespace().any(|s| s == "openid")
    }

    /// The authorization request URL (code flow, PKCE S256), with the SPA's extra parameters.
    pub fn authorization_url(&self, endpoint: &str, login: &LoginState, extra: &[(String, String)]) -> Option<String> {
        let mut url = Url::parse(endpoint).ok()?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("scope", &self.scope)
                .append_pair("state", &login.state)
                .append_pair("nonce", &login.nonce)
                .append_pair("code_challenge", &pkce_challenge(&login.code_verifier))
                .append_pair("code_challenge_method", "S256");
            for (key, value) in extra {
                query.append_pair(key, value);
            }
        }
        Some(url.into())
    }

    /// An authenticated form POST to the authorization server `issuer`.
    fn post(&self, endpoint: &str, issuer: &str, fields: &[(&str, &str)]) -> Result<reqwest::RequestBuilder, String> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        let request = self.auth.apply(self.http.post(endpoint), &mut form, issuer)?;
        Ok(request.header("content-type", "application/x-www-form-urlencoded").body(form.finish()))
    }

    async fn grant(&self, endpoint: &str, issuer: &str, form: &[(&str, &str)]) -> Result<TokenResponse, GrantError> {
        let request = self.post(endpoint, issuer, form).map_err(|e| {
            log::error!("cannot sign the client assertion: {e}");
            GrantError::Unavailable
        })?;
        let response = request.header("accept", "application/json").send().await.map_err(|e| {
            log::warn!("token endpoint call failed: {}", without_url(&e));
            GrantError::Unavailable
        })?;
        let status = response.status().as_u16();
        let body = crate::as_body::read(response, AsAnswer::Token).await.map_err(|e| {
            log::warn!("token endpoint answer not read: {e}");
            GrantError::Unavailable
        })?;
        let body: serde_json::Value = serde_json::from_slice(&body).map_err(|_| GrantError::Unavailable)?;
        match status {
            200 => serde_json::from_value(body).map_err(|_| {
                log::error!("token endpoint answered 200 without an access_token");
                GrantError::Unavailable
            }),
            400..=499 => {
                let code = body.get("error").and_then(|e| e.as_str()).unwrap_or("invalid_grant").to_string();
                log::info!("token endpoint refused the grant: {code} (status {status})");
                Err(GrantError::Refused(code))
            }
            _ => {
                log::warn!("token endpoint answered status {status}");
                Err(GrantError::Unavailable)
            }
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier) at the token endpoint of `issuer`.
    pub async fn code_grant(
        &self,
        endpoint: &str,
        issuer: &str,
        code: &str,
        verifier: &str,
    ) -> Result<TokenResponse, GrantError> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        self.grant(endpoint, issuer, &form).await
    }

    /// Uses a refresh token at the token endpoint of `issuer`.
    pub async fn refresh_grant(
        &self,
        endpoint: &str,
        issuer: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, GrantError> {
        self.grant(endpoint, issuer, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    /// Calls the userinfo endpoint with the access token.
    pub async fn userinfo(&self, endpoint: &str, access_token: &str) -> Result<serde_json::Value, UserinfoError> {
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|_| UserinfoError::Failed)?;
        match response.status().as_u16() {
            200 => {
                let body = crate::as_body::read(response, AsAnswer::Userinfo).await.map_err(|e| {
                    log::warn!("userinfo answer not read: {e}");
                    UserinfoError::Failed
                })?;
                serde_json::from_slice(&body).map_err(|_| UserinfoError::Failed)
            }
            401 => Err(UserinfoError::TokenRejected),
            status => {
                log::warn!("userinfo endpoint answered status {status}");
                Err(UserinfoError::Failed)
            }
        }
    }

    /// Revokes a refresh token (RFC 7009) at the revocation endpoint of `issuer`. Failures are logged,
    /// never fatal to logout.
    pub async fn revoke(&self, endpoint: &str, issuer: &str, refresh_token: &str) {
        let request =
            match self.post(endpoint, issuer, &[("token", refresh_token), ("token_type_hint", "refresh_token")]) {
                Ok(request) => request,
                Err(e) => {
                    log::error!("cannot sign the client assertion: {e}");
                    return;
                }
            };
        let sent = request.send().await;
        match sent {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => log::warn!("revocation endpoint answered status {}", r.status().as_u16()),
            Err(e) => log::warn!("revocation failed: {}", without_url(&e)),
        }
    }

    /// The end-session URL (RP-initiated logout), or the post-logout URI when there is no endpoint.
    pub fn end_session_url(&self, endpoint: Option<&str>, id_token_hint: Option<&str>) -> String {
        let Some(mut url) = endpoint.and_then(|e| Url::parse(e).ok()) else {
            return self.post_logout_redirect_uri.clone();
        };
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("client_id", &self.client_id);
            query.append_pair("post_logout_redirect_uri", &self.post_logout_redirect_uri);
            if let Some(hint) = id_token_hint {
                query.append_pair("id_token_hint", hint);
            }
        }
        url.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn authorization_url_carries_the_flow_parameters() {
        let config =
            crate::config::TokenHandlerConfig { client_secret: crate::secret::Secret::new("s"), ..Default::default() };
        let auth = ClientAuth::load(&config.client_auth()).unwrap();
        let client = OAuthClient::new(reqwest::Client::new(), auth, &config);
        let login = LoginState::fresh();
        let url = client
            .authorization_url("https://as/authorize?tenant=1", &login, &[("prompt".into(), "login".into())])
            .unwrap();
        let parsed = Url::parse(&url).unwrap();
        let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "1");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["state"], login.state);
        assert_eq!(q["nonce"], login.nonce);
        assert_eq!(q["code_challenge"], pkce_challenge(&login.code_verifier));
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["prompt"], "login");
        assert!(!url.contains(&login.code_verifier), "the verifier never leaves Shroud");
    }
}

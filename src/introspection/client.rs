//! The introspection call: request building (client authentication, `Accept` by mode) and the raw answer.

use crate::as_body::AsAnswer;
use crate::client_auth::ClientAuth;
use crate::config::ResponseMode;
use crate::issuer::without_url;
use url::form_urlencoded;

/// The `Accept` header sent in each mode.
pub fn accept_for(mode: ResponseMode) -> &'static str {
    match mode {
        ResponseMode::Rfc9701 => "application/token-introspection+jwt",
        ResponseMode::Jwt => "application/jwt",
        ResponseMode::Json => "application/json",
    }
}

/// What the introspection endpoint answered, before interpretation.
#[derive(Debug)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, lower-cased, without parameters.
    pub content_type: String,
    /// `max-age` of `Cache-Control`, if present (`no-store`/`no-cache` are deliberately ignored).
    pub max_age: Option<u64>,
    /// The body (at most [`AsAnswer::Introspection`]'s limit).
    pub body: bytes::Bytes,
}

/// Why the call did not produce an answer worth reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Unreachable, timed out, 5xx or an answer over the size limit: not the client's fault, retry later.
    Unavailable(String),
    /// 401/403: the authorization server refused Shroud's own client credentials.
    ClientRejected(u16),
    /// Any other unexpected status.
    UnexpectedStatus(u16),
}

/// Makes introspection calls with Shroud's client credentials.
pub struct IntrospectionClient {
    http: reqwest::Client,
    auth: ClientAuth,
    mode: ResponseMode,
}

/// Reads `max-age` from a `Cache-Control` value.
pub fn max_age(cache_control: &str) -> Option<u64> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            value.trim().trim_matches('"').parse().ok()
        } else {
            None
        }
    })
}

impl IntrospectionClient {
    /// A client with these credentials (and an HTTP client that presents their certificate, if any),
    /// asking for answers in `mode`.
    pub fn new(http: reqwest::Client, auth: ClientAuth, mode: ResponseMode) -> Self {
        IntrospectionClient { http, auth, mode }
    }

    /// Builds the request (no I/O): form body, client authentication (addressed to `issuer`) and `Accept`.
    pub fn request(&self, endpoint: &str, issuer: &str, token: &str) -> Result<reqwest::RequestBuilder, CallError> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("token", token).append_pair("token_type_hint", "access_token");
        let request = self.http.post(endpoint).header("accept", accept_for(self.mode));
        let request = self.auth.apply(request, &mut form, issuer).map_err(|e| {
            log::error!("cannot sign the client assertion: {e}");
            CallError::Unavailable("client assertion not signed".into())
        })?;
        Ok(request.header("content-type", "application/x-www-form-urlencoded").body(form.finish()))
    }

    /// Calls the endpoint of the authorization server `issuer` and classifies transport failures and
    /// error statuses.
    ///
    /// A request that fails before any answer, on a connection that was open (not a refused connection, not
    /// a timeout), is sent once more: a pooled keep-alive connection that the server closed while it sat idle
    /// fails the next request sent on it, and introspection is a query, safe to repeat (found by the soak
    /// test: about one introspection in 170,000 under constant load).
    pub async fn call(&self, endpoint: &str, issuer: &str, token: &str) -> Result<RawAnswer, CallError> {
        let response = match self.request(endpoint, issuer, token)?.send().await {
            Ok(response) => response,
            Err(e) if e.is_request() && !e.is_connect() && !e.is_timeout() => {
                log::debug!("introspection request failed on an open connection ({}); retrying once", without_url(&e));
                self.request(endpoint, issuer, token)?
                    .send()
                    .await
                    .map_err(|e| CallError::Unavailable(without_url(&e)))?
            }
            Err(e) => return Err(CallError::Unavailable(without_url(&e))),
        };
        let status = response.status().as_u16();
        match status {
            200 | 204 => {}
            401 | 403 => return Err(CallError::ClientRejected(status)),
            500..=599 => return Err(CallError::Unavailable(format!("status {status}"))),
            _ => return Err(CallError::UnexpectedStatus(status)),
        }
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type = header("content-type")
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
            .unwrap_or_default();
        let max_age = header("cache-control").as_deref().and_then(max_age);
        let body = crate::as_body::read(response, AsAnswer::Introspection)
            .await
            .map_err(|e| CallError::Unavailable(e.to_string()))?;
        Ok(RawAnswer { status, content_type, max_age, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    use crate::config::{AuthMethod, IntrospectionConfig};
    use crate::secret::Secret;

    fn client(method: AuthMethod) -> IntrospectionClient {
        let config = IntrospectionConfig {
            client_id: "gate way".into(),
            client_secret: Secret::new("s:é"),
            auth_method: method,
            ..IntrospectionConfig::default()
        };
        let auth = ClientAuth::load(&config.client_auth()).unwrap();
        IntrospectionClient::new(reqwest::Client::new(), auth, config.response)
    }

    fn request(method: AuthMethod, token: &str) -> reqwest::Request {
        client(method).request("http://as/introspect", "http://as", token).unwrap().build().unwrap()
    }

    #[test]
    fn basic_auth_form_encodes_both_parts() {
        let req = request(AuthMethod::ClientSecretBasic, "t+k");
        let auth = req.headers()["authorization"].to_str().unwrap();
        let decoded = String::from_utf8(STANDARD.decode(auth.strip_prefix("Basic ").unwrap()).unwrap()).unwrap();
        assert_eq!(decoded, "gate+way:s%3A%C3%A9");
        assert_eq!(req.headers()["accept"], "application/token-introspection+jwt");
        let body = std::str::from_utf8(req.body().unwrap().as_bytes().unwrap()).unwrap();
        assert_eq!(body, "token=t%2Bk&token_type_hint=access_token");
    }

    #[test]
    fn post_auth_puts_credentials_in_the_body() {
        let req = request(AuthMethod::ClientSecretPost, "tok");
        assert!(req.headers().get("authorization").is_none());
        let body = std::str::from_utf8(req.body().unwrap().as_bytes().unwrap()).unwrap();
        assert!(body.contains("client_id=gate+way&client_secret=s%3A%C3%A9"));
    }

    #[test]
    fn max_age_is_read_and_no_store_ignored() {
        assert_eq!(max_age("no-store, max-age=60"), Some(60));
        assert_eq!(max_age("Max-Age = 5"), Some(5));
        assert_eq!(max_age("no-store"), None);
    }
}

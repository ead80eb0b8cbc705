//! Client authentication to the authorization server, for the introspection, token and revocation
//! calls alike:
//! - `client_secret_basic`: HTTP Basic with both parts form-encoded first (RFC 6749 §2.3.1);
//! - `client_secret_post`: `client_id` and `client_secret` in the form;
//! - `private_key_jwt`: a fresh JWT signed with the client's key (RFC 7523 §2.2, OIDC Core §9):
//!   `iss` = `sub` = the client id, `aud` = the issuer identifier, a random `jti`, `iat`, and
//!   `exp` = `iat` + 60 s, sent as `client_assertion` with its type and `client_id`;
//! - `tls_client_auth`: the client certificate on the TLS connection (RFC 8705 §2), and `client_id` in the
//!   form. The certificate is given to the HTTP client that makes the client's calls ([`ClientAuth::identity`]).
//!
//! Secrets, keys and assertions are never logged: [`ClientAuth`]'s `Debug` shows the method only.

use crate::config::{AuthMethod, ClientAuthSettings, ConfigError};
use crate::jose::mint::SigningKey;
use crate::secret::Secret;
use crate::transport::CertKeyPair;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use josekit::jws::JwsHeader;
use josekit::jwt::JwtPayload;
use url::form_urlencoded;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Lifetime of a client assertion.
pub const ASSERTION_TTL_SECONDS: u64 = 60;

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `Basic …` for `client_secret_basic`: both parts are form-encoded before base64.
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(client_id), form_encode(client_secret));
    format!("Basic {}", STANDARD.encode(pair))
}

/// Signs client assertions for `private_key_jwt`.
struct AssertionSigner {
    key: SigningKey,
    kid: Option<String>,
}

impl AssertionSigner {
    /// A fresh assertion for `client_id`, addressed to `audience`, issued at `now`.
    fn assertion(&self, client_id: &str, audience: &str, now: u64) -> Result<String, String> {
        let mut jti = [0u8; 24];
        openssl::rand::rand_bytes(&mut jti).map_err(|e| e.to_string())?;
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "iat": now,
            "exp": now + ASSERTION_TTL_SECONDS,
        });
        let serde_json::Value::Object(claims) = claims else { unreachable!("a JSON object") };
        let payload = JwtPayload::from_map(claims).map_err(|e| e.to_string())?;
        let mut header = JwsHeader::new();
        header.set_token_type("JWT");
        if let Some(kid) = &self.kid {
            header.set_key_id(kid);
        }
        josekit::jwt::encode_with_signer(&payload, &header, self.key.signer.as_ref()).map_err(|e| e.to_string())
    }
}

enum Credential {
    SecretBasic(Secret),
    SecretPost(Secret),
    PrivateKeyJwt(AssertionSigner),
    TlsClientAuth(reqwest::Identity),
}

/// One client's credentials at the authorization server, ready to authenticate its calls.
pub struct ClientAuth {
    client_id: String,
    credential: Credential,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth").field("client_id", &self.client_id).field("method", &self.method()).finish()
    }
}

impl ClientAuth {
    /// Builds the credentials from validated settings, reading the key or certificate files; errors name
    /// the key at fault.
    pub fn load(settings: &ClientAuthSettings<'_>) -> Result<ClientAuth, ConfigError> {
        let key = |name: &str| format!("{}.{name}", settings.section);
        let credential = match settings.method {
            AuthMethod::ClientSecretBasic => Credential::SecretBasic(settings.client_secret.clone()),
            AuthMethod::ClientSecretPost => Credential::SecretPost(settings.client_secret.clone()),
            AuthMethod::PrivateKeyJwt => {
                let path = settings.private_key_file;
                let pem = std::fs::read(path)
                    .map_err(|e| ConfigError::new(key("private_key_file"), format!("cannot read {path}: {e}")))?;
                let signing = SigningKey::from_pem(&pem)
                    .map_err(|e| ConfigError::new(key("private_key_file"), format!("{path}: {e}")))?;
                let kid = Some(settings.private_key_kid.to_string()).filter(|k| !k.is_empty());
                Credential::PrivateKeyJwt(AssertionSigner { key: signing, kid })
            }
            AuthMethod::TlsClientAuth => {
                let pair = CertKeyPair::load(
                    (&key("client_cert_file"), settings.client_cert_file),
                    (&key("client_key_file"), settings.client_key_file),
                )?;
                let identity = pair.reqwest_identity().map_err(|e| {
                    ConfigError::new(key("client_cert_file"), format!("unusable client certificate: {e}"))
                })?;
                Credential::TlsClientAuth(identity)
            }
        };
        Ok(ClientAuth { client_id: settings.client_id.to_string(), credential })
    }

    /// The method.
    pub fn method(&self) -> AuthMethod {
        match self.credential {
            Credential::SecretBasic(_) => AuthMethod::ClientSecretBasic,
            Credential::SecretPost(_) => AuthMethod::ClientSecretPost,
            Credential::PrivateKeyJwt(_) => AuthMethod::PrivateKeyJwt,
            Credential::TlsClientAuth(_) => AuthMethod::TlsClientAuth,
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The client certificate that the client's HTTP connections must present (`tls_client_auth`).
    pub fn identity(&self) -> Option<&reqwest::Identity> {
        match &self.credential {
            Credential::TlsClientAuth(identity) => Some(identity),
            _ => None,
        }
    }

    /// Authenticates a form POST to the authorization server whose issuer identifier is `issuer`: an
    /// `Authorization` header on `request`, or fields appended to `form`. Fails only if an assertion
    /// cannot be signed.
    pub fn apply(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut form_urlencoded::Serializer<'_, String>,
        issuer: &str,
    ) -> Result<reqwest::RequestBuilder, String> {
        Ok(match &self.credential {
            Credential::SecretBasic(secret) => {
                request.header("authorization", basic_authorization(&self.client_id, secret.expose()))
            }
            Credential::SecretPost(secret) => {
                form.append_pair("client_id", &self.client_id).append_pair("client_secret", secret.expose());
                request
            }
            Credential::PrivateKeyJwt(signer) => {
                let assertion = signer.assertion(&self.client_id, issuer, crate::grant::now_secs())?;
                form.append_pair("client_id", &self.client_id)
                    .append_pair("client_assertion_type", ASSERTION_TYPE)
                    .append_pair("client_assertion", &assertion);
                request
            }
            Credential::TlsClientAuth(_) => {
                form.append_pair("client_id", &self.client_id);
                request
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::mint::generate_pem;

    #[test]
    fn assertions_carry_the_rfc7523_claims_and_verify_with_the_public_key() {
        for kind in ["es256", "rs256", "eddsa"] {
            let key = SigningKey::from_pem(generate_pem(kind).unwrap().as_bytes()).unwrap();
            let public = key.public.clone();
            let alg = key.alg;
            let signer = AssertionSigner { key, kid: Some("k-1".into()) };
            let jwt = signer.assertion("gate way", "https://as.example", 1_000).unwrap();
            let verifier: Box<dyn josekit::jws::JwsVerifier> = match alg {
                "ES256" => Box::new(josekit::jws::ES256.verifier_from_jwk(&public).unwrap()),
                "RS256" => Box::new(josekit::jws::RS256.verifier_from_jwk(&public).unwrap()),
                _ => Box::new(josekit::jws::EdDSA.verifier_from_jwk(&public).unwrap()),
            };
            let (payload, header) = josekit::jwt::decode_with_verifier(&jwt, verifier.as_ref()).unwrap();
            assert_eq!(header.algorithm(), Some(alg));
            assert_eq!(header.key_id(), Some("k-1"));
            assert_eq!(payload.issuer(), Some("gate way"));
            assert_eq!(payload.subject(), Some("gate way"));
            assert_eq!(payload.audience(), Some(vec!["https://as.example"]));
            let claims = payload.claims_set();
            assert_eq!((claims["iat"].as_u64(), claims["exp"].as_u64()), (Some(1_000), Some(1_060)));
            assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));
            let again = signer.assertion("gate way", "https://as.example", 1_000).unwrap();
            assert_ne!(jwt, again, "a fresh jti every time");
        }
    }
}

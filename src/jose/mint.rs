//! The phantom JWT signer: Shroud's own key, the JWTs it mints for internal APIs (RFC 9068 `at+jwt`),
//! and the public JWKS it serves so those APIs can verify them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::Jwk;
use josekit::jws::{EdDSA, JwsHeader, JwsSigner, ES256, RS256};
use josekit::jwt::JwtPayload;
use openssl::pkey::{Id, PKey};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Shroud's signing key and its public JWKS.
pub struct PhantomSigner {
    signer: Box<dyn JwsSigner>,
    kid: String,
    alg: &'static str,
    jwks: String,
}

impl std::fmt::Debug for PhantomSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhantomSigner").field("alg", &self.alg).field("kid", &self.kid).finish()
    }
}

/// RFC 7638 thumbprint: SHA-256 over the required public members in lexicographic order.
fn thumbprint(jwk: &Jwk) -> Option<String> {
    let members: &[&str] = match jwk.key_type() {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = Map::new();
    for name in members {
        canonical.insert((*name).to_string(), jwk.parameter(name)?.clone());
    }
    let json = serde_json::to_string(&canonical).ok()?;
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(json.as_bytes())))
}

/// A private signing key with the algorithm its type implies, and its public JWK.
pub struct SigningKey {
    /// `ES256`, `RS256` or `EdDSA`.
    pub alg: &'static str,
    /// The signer.
    pub signer: Box<dyn JwsSigner>,
    /// The public key as a JWK (no `kid`, `alg` or `use` set).
    pub public: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads a PEM private key (PKCS#8): EC P-256 → ES256, RSA ≥ 2048 bits → RS256, Ed25519 → EdDSA.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, String> {
        let pkey = PKey::private_key_from_pem(pem).map_err(|_| "not a PEM private key".to_string())?;
        let (alg, signer, public): (&'static str, Box<dyn JwsSigner>, Jwk) = match pkey.id() {
            Id::EC => {
                let curve = pkey.ec_key().ok().and_then(|k| k.group().curve_name());
                if curve != Some(openssl::nid::Nid::X9_62_PRIME256V1) {
                    return Err("EC keys must be on P-256 (ES256)".into());
                }
                let pair = ES256.key_pair_from_pem(pem).map_err(|e| e.to_string())?;
                ("ES256", Box::new(ES256.signer_from_pem(pem).map_err(|e| e.to_string())?), pair.to_jwk_public_key())
            }
            Id::RSA => {
                if pkey.bits() < 2048 {
                    return Err("RSA keys must have at least 2048 bits".into());
                }
                let pair = RS256.key_pair_from_pem(pem).map_err(|e| e.to_string())?;
                ("RS256", Box::new(RS256.signer_from_pem(pem).map_err(|e| e.to_string())?), pair.to_jwk_public_key())
            }
            Id::ED25519 => {
                let pair = EdDSA.key_pair_from_pem(pem).map_err(|e| e.to_string())?;
                ("EdDSA", Box::new(EdDSA.signer_from_pem(pem).map_err(|e| e.to_string())?), pair.to_jwk_public_key())
            }
            _ => return Err("unsupported key type: use EC P-256, RSA or Ed25519".into()),
        };
        Ok(SigningKey { alg, signer, public })
    }
}

impl PhantomSigner {
    /// Loads a PKCS#8 PEM private key; the algorithm follows from the key type.
    pub fn from_pem(pem: &[u8]) -> Result<PhantomSigner, String> {
        let SigningKey { alg, signer, public } = SigningKey::from_pem(pem)?;
        let kid = thumbprint(&public).ok_or("cannot compute the key's thumbprint")?;
        let mut public = public;
        public.set_key_id(&kid);
        public.set_algorithm(alg);
        public.set_key_use("sig");
        let jwks = serde_json::json!({ "keys": [Value::Object(public.as_ref().clone())] }).to_string();
        Ok(PhantomSigner { signer, kid, alg, jwks })
    }

    /// Loads the key file named by `phantom.signing_key_file`.
    pub fn from_file(path: &str) -> Result<PhantomSigner, String> {
        let pem = std::fs::read(path).map_err(|e| {
            format!("cannot read {path} ({e}); create one with `shroud keygen --phantom-key es256 > {path}`")
        })?;
        PhantomSigner::from_pem(&pem)
    }

    /// The signature algorithm (`ES256`, `RS256` or `EdDSA`).
    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// The key id published in the JWKS and set on every minted JWT.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWKS document served at `/.well-known/jwks.json`.
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }

    /// Signs `claims` as an RFC 9068 access token (`typ: at+jwt`).
    pub fn mint(&self, claims: Map<String, Value>) -> Result<String, String> {
        let mut header = JwsHeader::new();
        header.set_token_type("at+jwt");
        header.set_key_id(&self.kid);
        let payload = JwtPayload::from_map(claims).map_err(|e| e.to_string())?;
        josekit::jwt::encode_with_signer(&payload, &header, self.signer.as_ref()).map_err(|e| e.to_string())
    }
}

/// Generates a fresh PKCS#8 PEM private key for `phantom.signing_key_file`.
pub fn generate_pem(kind: &str) -> Result<String, String> {
    let pem = match kind {
        "es256" => ES256.generate_key_pair().map_err(|e| e.to_string())?.to_pem_private_key(),
        "rs256" => RS256.generate_key_pair(2048).map_err(|e| e.to_string())?.to_pem_private_key(),
        "eddsa" | "ed25519" => EdDSA
            .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
            .map_err(|e| e.to_string())?
            .to_pem_private_key(),
        other => return Err(format!("unknown key kind {other}: use es256, rs256 or eddsa")),
    };
    String::from_utf8(pem).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::keys::KeySet;
    use crate::jose::verify::{verify, Expectations, TypRule};

    #[test]
    fn minted_tokens_verify_against_the_served_jwks() {
        for kind in ["es256", "rs256", "eddsa"] {
            let signer = PhantomSigner::from_pem(generate_pem(kind).unwrap().as_bytes()).unwrap();
            let keys = KeySet::from_jwks(signer.jwks_json().as_bytes()).unwrap();
            let claims =
                serde_json::json!({"iss": "https://shroud.local", "sub": "u", "exp": 4_000_000_000u64, "iat": 1})
                    .as_object()
                    .unwrap()
                    .clone();
            let jwt = signer.mint(claims).unwrap();
            let expect = Expectations {
                issuer: "https://shroud.local",
                audience: None,
                typ: TypRule::AccessToken,
                require_exp: true,
                require_iat: true,
                leeway: 0,
                now: 100,
            };
            let verified = verify(&jwt, &keys, &expect).unwrap();
            assert_eq!(verified.header.token_type(), Some("at+jwt"));
            assert_eq!(verified.header.key_id(), Some(signer.kid()));
            assert_eq!(verified.header.algorithm(), Some(signer.alg()));
        }
    }

    #[test]
    fn weak_or_unknown_keys_are_refused() {
        assert!(PhantomSigner::from_pem(b"not a key").is_err());
        assert!(generate_pem("hs256").is_err());
    }
}

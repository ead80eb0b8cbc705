//! The issuer's verification keys, built once per JWKS download into ready verifiers.
//!
//! Algorithms come from an allowlist of asymmetric signatures; a key's type decides which of them it may
//! verify (an RSA key never verifies an EC or HMAC signature), and `none` and every `HS*` are refused
//! before a key is even looked up. Keys named in token headers (`jku`, `x5u`, `jwk`, `x5c`) are never used.

use josekit::jwk::{Jwk, JwkSet};
use josekit::jws::{EdDSA, JwsHeader, JwsVerifier, ES256, ES384, ES512, PS256, PS384, PS512, RS256, RS384, RS512};

/// Signature algorithms Shroud accepts on issuer JWTs.
pub const ALLOWED_ALGS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

/// Why no key could be chosen for a JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoiceError {
    /// `alg` missing, `none`, symmetric or otherwise outside [`ALLOWED_ALGS`].
    DisallowedAlg,
    /// No key with this `kid` (and algorithm): the JWKS may need a refresh.
    UnknownKey,
    /// No `kid` and more than one key could apply.
    AmbiguousKey,
}

struct VerifyingKey {
    kid: Option<String>,
    alg: &'static str,
    verifier: Box<dyn JwsVerifier>,
}

/// A parsed JWKS: one verifier per (key, permitted algorithm).
#[derive(Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| (k.kid.as_deref().unwrap_or("-"), k.alg)).collect();
        f.debug_struct("KeySet").field("keys", &kids).finish()
    }
}

/// Which algorithms a JWK may verify, from its type and curve (and its own `alg`, when it names one).
fn algorithms_for(jwk: &Jwk) -> Vec<&'static str> {
    let by_type: &[&'static str] = match (jwk.key_type(), jwk.curve()) {
        ("RSA", _) => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
        ("EC", Some("P-256")) => &["ES256"],
        ("EC", Some("P-384")) => &["ES384"],
        ("EC", Some("P-521")) => &["ES512"],
        ("OKP", Some("Ed25519")) => &["EdDSA"],
        _ => &[],
    };
    match jwk.algorithm() {
        Some(named) => by_type.iter().copied().filter(|a| *a == named).collect(),
        None => by_type.to_vec(),
    }
}

fn verifier_for(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    let built: Result<Box<dyn JwsVerifier>, _> = match alg {
        "RS256" => RS256.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "RS384" => RS384.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "RS512" => RS512.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "PS256" => PS256.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "PS384" => PS384.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "PS512" => PS512.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "ES256" => ES256.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "ES384" => ES384.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "ES512" => ES512.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        "EdDSA" => EdDSA.verifier_from_jwk(jwk).map(|v| Box::new(v) as _),
        _ => return None,
    };
    built.ok()
}

impl KeySet {
    /// Parses a JWKS document. Keys that cannot verify signatures (encryption keys, symmetric keys,
    /// unknown types) are skipped; an unparseable document is an error.
    pub fn from_jwks(bytes: &[u8]) -> Result<KeySet, String> {
        let set = JwkSet::from_bytes(bytes).map_err(|e| format!("invalid JWKS: {e}"))?;
        let mut keys = Vec::new();
        for jwk in set.keys() {
            if jwk.key_use().is_some_and(|u| u != "sig") {
                continue;
            }
            // The kid is matched by `select`; a verifier without one also serves JWTs that name no kid.
            let mut anonymous = jwk.clone();
            if anonymous.set_parameter("kid", None).is_err() {
                continue;
            }
            for alg in algorithms_for(jwk) {
                if let Some(verifier) = verifier_for(alg, &anonymous) {
                    keys.push(VerifyingKey { kid: jwk.key_id().map(str::to_string), alg, verifier });
                }
            }
        }
        Ok(KeySet { keys })
    }

    /// The `kid`s of the keys that have one.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// Whether the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Chooses the verifier for a JWT header: allowed `alg`, then `kid` (or the only key for that alg).
    pub fn select(&self, header: &JwsHeader) -> Result<&dyn JwsVerifier, KeyChoiceError> {
        let alg = header.algorithm().ok_or(KeyChoiceError::DisallowedAlg)?;
        if !ALLOWED_ALGS.contains(&alg) {
            return Err(KeyChoiceError::DisallowedAlg);
        }
        let mut candidates = self.keys.iter().filter(|k| k.alg == alg);
        let chosen = match header.key_id() {
            Some(kid) => candidates.find(|k| k.kid.as_deref() == Some(kid)),
            None => {
                let first = candidates.next();
                if first.is_some() && candidates.next().is_some() {
                    return Err(KeyChoiceError::AmbiguousKey);
                }
                first
            }
        };
        chosen.map(|k| k.verifier.as_ref()).ok_or(KeyChoiceError::UnknownKey)
    }
}

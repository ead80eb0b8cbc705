//! Shared fixtures: a fake authorization server, an echo upstream and a Shroud wired to them.

use shroud::config::{CacheBackend, Config, CredentialKind, ResponseMode, RouteConfig};
use shroud::secret::Secret;
use shroud::server::Running;
use shroud_testkit::{EchoUpstream, FakeAs, TokenSpec};
use std::path::PathBuf;

/// A 64-hex key secret shared by instances in Redis tests.
pub const KEY_SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Writes a fresh ES256 signing key to a unique temporary file.
pub fn signing_key_file() -> PathBuf {
    let mut suffix = [0u8; 8];
    openssl::rand::rand_bytes(&mut suffix).unwrap();
    let path = std::env::temp_dir().join(format!("shroud-test-{}.pem", hex::encode(suffix)));
    std::fs::write(&path, shroud::jose::mint::generate_pem("es256").unwrap()).unwrap();
    path
}

/// A route to `upstream` under `prefix`.
pub fn route(prefix: &str, upstream: &str, scopes: &[&str]) -> RouteConfig {
    RouteConfig {
        path_prefix: prefix.into(),
        upstream: upstream.into(),
        static_dir: String::new(),
        credentials: CredentialKind::Bearer,
        required_scopes: scopes.iter().map(|s| s.to_string()).collect(),
        strip_prefix: false,
        timeout_ms: 2000,
        ..Default::default()
    }
}

/// A configuration for `idp` and `api` in `mode`: `/api` needs scope `read`, `/public` takes no token.
pub fn config(idp: &FakeAs, api: &EchoUpstream, mode: ResponseMode) -> Config {
    let mut c = Config::default();
    c.server.listen = "127.0.0.1:0".into();
    c.server.workers = 1;
    // Tests run many servers at once on two cores: a client may take seconds to write its request.
    c.server.client_request_timeout_ms = 30_000;
    c.issuer.url = idp.url();
    c.introspection.client_secret = Secret::new("gateway-secret");
    c.introspection.response = mode;
    c.introspection.timeout_ms = 1000;
    c.phantom.signing_key_file = signing_key_file().to_string_lossy().into_owned();
    let mut public = route("/public", &api.url(), &[]);
    public.credentials = CredentialKind::None;
    c.routes = vec![route("/api", &api.url(), &["read"]), public];
    c
}

/// The same configuration with the Redis tier.
pub fn with_redis(mut c: Config, redis_url: &str) -> Config {
    c.cache.backend = CacheBackend::Redis;
    c.cache.redis_url = redis_url.into();
    c.cache.key_secret = Secret::new(KEY_SECRET);
    c
}

/// The admin token of [`with_admin`].
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123";

/// The same configuration with an admin listener on a free port (it serves the admin API and `/metrics`).
pub fn with_admin(mut c: Config) -> Config {
    c.admin.listen = "127.0.0.1:0".into();
    c.admin.token = Secret::new(ADMIN_TOKEN);
    c
}

/// `GET /metrics` on the admin listener of `shroud` (started [`with_admin`]): the Prometheus text.
pub async fn metrics(shroud: &Running) -> String {
    let admin = shroud.admin_addr.expect("an admin listener serves /metrics");
    let resp = client().get(format!("http://{admin}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "GET /metrics on the admin listener");
    resp.text().await.unwrap()
}

/// Validates and starts Shroud.
pub fn start(config: Config) -> Running {
    // Shroud's log lines show in a failing test's output when RUST_LOG asks for them.
    let _ = env_logger::builder().is_test(true).try_init();
    config.validate().expect("test configuration is valid");
    shroud::server::spawn(config).expect("shroud starts")
}

/// A fake authorization server, an echo upstream and Shroud, in one mode.
pub struct Env {
    /// The authorization server.
    pub idp: FakeAs,
    /// The upstream API.
    pub api: EchoUpstream,
    /// Shroud.
    pub shroud: Running,
    /// A client.
    pub http: reqwest::Client,
}

impl Env {
    /// Starts all three for `mode`.
    pub fn new(mode: ResponseMode) -> Env {
        Env::with(mode, |c| c)
    }

    /// Starts all three, letting the caller adjust the configuration.
    pub fn with(mode: ResponseMode, adjust: impl FnOnce(Config) -> Config) -> Env {
        let idp = FakeAs::start();
        let api = EchoUpstream::start();
        let shroud = start(adjust(config(&idp, &api, mode)));
        Env { idp, api, shroud, http: client() }
    }

    /// Registers an active token with `scope` for 300 s.
    pub fn token(&self, name: &str, scope: &str) -> String {
        self.idp.issue(name, TokenSpec::active("alice", scope, 300));
        name.to_string()
    }

    /// `GET {shroud}{path}` with optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.shroud.url()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }
}

/// A plain HTTP client.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

/// Asserts status, JSON `code` and (optionally) `WWW-Authenticate` of a refusal.
pub async fn assert_refusal(resp: reqwest::Response, status: u16, code: &str, challenge: Option<&str>) {
    assert_eq!(resp.status().as_u16(), status, "status");
    let got = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    match challenge {
        Some(expected) => {
            let got = got.expect("WWW-Authenticate present");
            assert!(got.starts_with(expected), "WWW-Authenticate {got:?} should start with {expected:?}");
        }
        None => assert_eq!(got, None, "no WWW-Authenticate expected"),
    }
    let body: serde_json::Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["code"], code, "code in {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "message in {body}");
}

/// Decodes a JWT's payload without verifying it.
pub fn claims_of(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Verifies `jwt` against a JWKS document (ES256/RS256/EdDSA keys), returning its header's `typ`.
pub fn verify_against(jwt: &str, jwks: &serde_json::Value) -> Option<String> {
    let set = josekit::jwk::JwkSet::from_bytes(jwks.to_string().as_bytes()).unwrap();
    for jwk in set.keys() {
        let verifier: Box<dyn josekit::jws::JwsVerifier> = match jwk.key_type() {
            "EC" => Box::new(josekit::jws::ES256.verifier_from_jwk(jwk).unwrap()),
            "RSA" => Box::new(josekit::jws::RS256.verifier_from_jwk(jwk).unwrap()),
            "OKP" => Box::new(josekit::jws::EdDSA.verifier_from_jwk(jwk).unwrap()),
            _ => continue,
        };
        if let Ok((_, header)) = josekit::jwt::decode_with_verifier(jwt, verifier.as_ref()) {
            return Some(header.token_type().unwrap_or_default().to_string());
        }
    }
    None
}

/// The bearer token the upstream received.
pub fn forwarded_jwt(api: &EchoUpstream) -> String {
    let echo = api.last().expect("the upstream was reached");
    echo.header("authorization").expect("Authorization forwarded").strip_prefix("Bearer ").unwrap().to_string()
}

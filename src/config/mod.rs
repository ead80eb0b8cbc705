//! Configuration as the user writes it: serde types with the public key names, their defaults,
//! loading (TOML file + `SHROUD__SECTION__KEY` environment overrides) and validation.
//!
//! These types describe input only; the request path uses runtime types built from them once at start.

mod load;
pub mod validate;

pub use load::{from_toml_str, load, resolve_path, ConfigSource};
pub use validate::ConfigError;

use crate::secret::{redact_url, Secret};
use serde::{Deserialize, Serialize, Serializer};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`: the listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// `[issuer]`: the authorization server and optional endpoint overrides.
    #[serde(default)]
    pub issuer: IssuerConfig,
    /// `[introspection]`: how Shroud calls the introspection endpoint.
    #[serde(default)]
    pub introspection: IntrospectionConfig,
    /// `[phantom]`: the JWT Shroud mints in `json` and `rfc9701` modes.
    #[serde(default)]
    pub phantom: PhantomConfig,
    /// `[cache]`: in-process and Redis tiers.
    #[serde(default)]
    pub cache: CacheConfig,
    /// `[token_handler]`: the OAuth Agent and OAuth Proxy for single-page apps.
    #[serde(default)]
    pub token_handler: TokenHandlerConfig,
    /// `[admin]`: the admin API's own listener (off unless `listen` is set).
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[[routes]]`: what is proxied where, with which credential and policy.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Socket address of the admin listener, e.g. `127.0.0.1:9901`; empty = no admin API.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub listen: String,
    /// The bearer token admin callers send (at least 32 characters; prefer `SHROUD__ADMIN__TOKEN`).
    pub token: Secret,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Socket address to listen on.
    pub listen: String,
    /// Worker threads; 0 = one per core.
    pub workers: usize,
    /// Whether Shroud serves its OpenAPI document (`openapi.yaml`, embedded in the binary) at
    /// `GET /.well-known/openapi.yaml`. When false, that path is not Shroud's and goes through the routes.
    pub openapi: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: "127.0.0.1:8080".into(), workers: 0, openapi: false }
    }
}

/// `[issuer]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// Issuer identifier; discovery is fetched from `{url}/.well-known/openid-configuration`,
    /// falling back to `{url}/.well-known/oauth-authorization-server`.
    pub url: String,
    /// Overrides the discovered introspection endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// Overrides the discovered token endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// Overrides the discovered authorization endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// Overrides the discovered userinfo endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// Overrides the discovered end-session endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// Overrides the discovered revocation endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Overrides the discovered JWKS URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    pub leeway_seconds: u64,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        IssuerConfig {
            url: "http://127.0.0.1:9090".into(),
            introspection_endpoint: None,
            token_endpoint: None,
            authorization_endpoint: None,
            userinfo_endpoint: None,
            end_session_endpoint: None,
            revocation_endpoint: None,
            jwks_uri: None,
            leeway_seconds: 30,
        }
    }
}

/// How Shroud authenticates to the introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-encoded client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// What the introspection endpoint is asked for and how its answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// RFC 9701 signed introspection response; Shroud mints the phantom JWT.
    Rfc9701,
    /// Plain RFC 7662 JSON; Shroud mints the phantom JWT.
    Json,
    /// Curity's phantom-token contract: the answer is the access token as a JWT, forwarded as is.
    Jwt,
}

/// `[introspection]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntrospectionConfig {
    /// Shroud's client id at the authorization server.
    pub client_id: String,
    /// Shroud's client secret (prefer `SHROUD__INTROSPECTION__CLIENT_SECRET`).
    pub client_secret: Secret,
    /// `client_secret_basic` or `client_secret_post`.
    pub auth_method: AuthMethod,
    /// `rfc9701`, `json` or `jwt`.
    pub response: ResponseMode,
    /// Timeout of one introspection call, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for IntrospectionConfig {
    fn default() -> Self {
        IntrospectionConfig {
            client_id: "gateway".into(),
            client_secret: Secret::default(),
            auth_method: AuthMethod::ClientSecretBasic,
            response: ResponseMode::Rfc9701,
            timeout_ms: 2000,
        }
    }
}

/// `[phantom]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhantomConfig {
    /// `iss` of minted JWTs.
    pub issuer: String,
    /// PKCS#8 PEM private key; the algorithm follows from its type (EC P-256 → ES256, RSA → RS256,
    /// Ed25519 → EdDSA).
    pub signing_key_file: String,
    /// Upper bound of a minted JWT's lifetime.
    pub max_ttl_seconds: u64,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        PhantomConfig {
            issuer: "https://shroud.local".into(),
            signing_key_file: "config/keys/phantom-es256.pem".into(),
            max_ttl_seconds: 300,
        }
    }
}

/// Which tiers cache exchanged tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheBackend {
    /// In-process tier only.
    Memory,
    /// In-process tier in front of a shared Redis tier.
    Redis,
}

/// `[cache]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// `memory` or `redis`.
    pub backend: CacheBackend,
    /// Redis URL (used with `backend = "redis"`): `redis://` or `rediss://` for one node,
    /// `redis+cluster://host:port,host:port` for Redis Cluster seed nodes,
    /// `redis+sentinel://host:port,host:port/service` for Sentinel (and their `rediss+…` TLS forms).
    #[serde(serialize_with = "serialize_redacted_url")]
    pub redis_url: String,
    /// PEM CA certificate(s) trusted for `rediss` connections instead of the system's store.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub redis_ca_file: String,
    /// Upper bound of any cache entry's lifetime.
    pub max_ttl_seconds: u64,
    /// Lifetime of "inactive" answers; 0 disables negative caching.
    pub negative_ttl_seconds: u64,
    /// Capacity of the in-process tier; 0 disables it (every lookup goes to Redis).
    pub max_entries: u64,
    /// 64 hex chars: HMAC key for cache keys. Required with Redis; random per start otherwise.
    pub key_secret: Secret,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            backend: CacheBackend::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_ca_file: String::new(),
            max_ttl_seconds: 300,
            negative_ttl_seconds: 5,
            max_entries: 100_000,
            key_secret: Secret::default(),
        }
    }
}

/// Which credential a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// `Authorization: Bearer <opaque token>`.
    Bearer,
    /// No credential: the request is forwarded without one (any Authorization header is removed).
    None,
    /// Only the token handler's cookies (OAuth Proxy: Origin, CSRF, decrypt the access-token cookie).
    Cookie,
    /// A bearer token when an Authorization header is present (a malformed one is a 400), else cookies.
    Any,
}

/// `[token_handler]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenHandlerConfig {
    /// Whether the OAuth Agent endpoints and cookie routes are on.
    pub enabled: bool,
    /// Path under which the OAuth Agent API is served.
    pub base_path: String,
    /// The SPA's client id at the authorization server.
    pub client_id: String,
    /// Its secret (prefer `SHROUD__TOKEN_HANDLER__CLIENT_SECRET`).
    pub client_secret: Secret,
    /// The SPA page the authorization server redirects back to.
    pub redirect_uri: String,
    /// Where the end-session endpoint sends the browser after logout.
    pub post_logout_redirect_uri: String,
    /// Scopes requested at login.
    pub scope: String,
    /// Exact origins (`scheme://host[:port]`) allowed to call the agent and cookie routes.
    pub trusted_web_origins: Vec<String>,
    /// Cookie names are `<prefix>-login`, `-at`, `-auth`, `-id`, `-csrf`; the CSRF header is `x-<prefix>-csrf`.
    pub cookie_name_prefix: String,
    /// 64-hex AES-256 keys: the first encrypts, every one decrypts (rotation).
    pub cookie_encryption_keys: Vec<Secret>,
    /// `Domain` attribute of the cookies; empty = host-only cookies.
    pub cookie_domain: String,
    /// `Secure` attribute; false only for plain-http local development.
    pub cookie_secure: bool,
}

impl Default for TokenHandlerConfig {
    fn default() -> Self {
        TokenHandlerConfig {
            enabled: false,
            base_path: "/oauth-agent".into(),
            client_id: "webapp".into(),
            client_secret: Secret::default(),
            redirect_uri: "http://127.0.0.1:8080/callback".into(),
            post_logout_redirect_uri: "http://127.0.0.1:8080/".into(),
            scope: "openid profile read".into(),
            trusted_web_origins: vec!["http://127.0.0.1:8080".into()],
            cookie_name_prefix: "shroud".into(),
            cookie_encryption_keys: Vec::new(),
            cookie_domain: String::new(),
            cookie_secure: true,
        }
    }
}

/// `[[routes]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Path prefix, matched on whole segments; the longest match wins.
    pub path_prefix: String,
    /// Base URL of the upstream (exactly one of `upstream` and `static_dir`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub upstream: String,
    /// Serve files from this directory instead of proxying (e.g. an SPA's build).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub static_dir: String,
    /// `bearer`, `none`, `cookie` or `any`.
    #[serde(default = "default_credentials")]
    pub credentials: CredentialKind,
    /// Scopes that must all be in the token's `scope`.
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// Remove `path_prefix` from the path before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Time allowed for the upstream to answer (headers), in milliseconds.
    #[serde(default = "default_upstream_timeout")]
    pub timeout_ms: u64,
    /// Allowed methods; empty = all. Others get 405 before any credential is looked at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// `[routes.require]`: named claim rules that must all hold (RBAC/ABAC), e.g.
    /// `roles = { claim = "roles", any_of = ["hr"] }`, `dept = { claim = "dept", equals = "hr" }`,
    /// `hours = { utc_between = ["07:00", "19:00"] }`. Checked strictly at start.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub require: std::collections::BTreeMap<String, serde_json::Value>,
    /// `[routes.forward_claims]`: claim (dotted path) → upstream header set from the verified claims;
    /// incoming headers of those names are always removed first.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub forward_claims: std::collections::BTreeMap<String, String>,
    /// Whether the JWT is forwarded in `Authorization` (default true).
    #[serde(default = "default_true")]
    pub forward_token: bool,
    /// `[routes.opa]`: ask Open Policy Agent for a decision after scopes and claim rules pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opa: Option<OpaConfig>,
}

/// `[routes.opa]`: an Open Policy Agent decision per request, through OPA's Data API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpaConfig {
    /// The Data API URL of the decision document, e.g. `http://127.0.0.1:8181/v1/data/shroud/allow`.
    pub url: String,
    /// Time OPA has to answer, in milliseconds.
    #[serde(default = "default_opa_timeout")]
    pub timeout_ms: u64,
    /// How long a decision is reused for the same claims, method, path and route; 0 = no cache.
    #[serde(default)]
    pub cache_seconds: u64,
}

fn default_opa_timeout() -> u64 {
    500
}

fn default_true() -> bool {
    true
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            path_prefix: "/".into(),
            upstream: String::new(),
            static_dir: String::new(),
            credentials: default_credentials(),
            required_scopes: Vec::new(),
            strip_prefix: false,
            timeout_ms: default_upstream_timeout(),
            methods: Vec::new(),
            require: Default::default(),
            forward_claims: Default::default(),
            forward_token: true,
            opa: None,
        }
    }
}

fn default_credentials() -> CredentialKind {
    CredentialKind::Bearer
}

fn default_upstream_timeout() -> u64 {
    30_000
}

fn serialize_redacted_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

impl Config {
    /// The effective configuration as TOML with every secret redacted (for `shroud check-config`).
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

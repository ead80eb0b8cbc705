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
    /// `[rate_limit]`: default request rates per source IP and per client, for every route.
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// `[admin]`: the admin API's own listener (off unless `listen` is set).
    #[serde(default)]
    pub admin: AdminConfig,
    /// `[tls_client]`: certificate verification of every outbound TLS connection (authorization server,
    /// upstreams, OPA).
    #[serde(default)]
    pub tls_client: TlsClientConfig,
    /// `[[routes]]`: what is proxied where, with which credential and policy.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// `[rate_limit]`, and `routes[].rate_limit` (which overrides it per route). Rates read `"100/s"`,
/// `"6000/min"`, `"50000/h"`, or `"off"`.
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests per source IP, counted before the exchange (empty or `"off"` = no limit).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub per_ip: String,
    /// Requests per client (the token's `client_id`, else its `sub`), counted after the exchange.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub per_client: String,
    /// Peers (IPs or CIDRs) whose `X-Forwarded-For` names the source IP (only in `[rate_limit]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// IPv6 sources share one per-IP budget per prefix of this length (only in `[rate_limit]`; unset =
    /// [`DEFAULT_IPV6_PREFIX_LENGTH`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_prefix_length: Option<u8>,
}

/// IPv6 sources share one per-IP budget per /64 unless `rate_limit.ipv6_prefix_length` says otherwise: one
/// subscriber or host usually holds a whole /64, so counting each /128 on its own would hand out 2^64 budgets.
pub const DEFAULT_IPV6_PREFIX_LENGTH: u8 = 64;

impl RateLimitConfig {
    /// The IPv6 prefix length per-IP limits key on.
    pub fn ipv6_prefix_length(&self) -> u8 {
        self.ipv6_prefix_length.unwrap_or(DEFAULT_IPV6_PREFIX_LENGTH)
    }
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
    /// Whether `GET /metrics` is served on this (the main) listener too. Off by default: the metrics are
    /// served on the admin listener only (`[admin] listen`), and not at all without one.
    pub public_metrics: bool,
    /// Largest request header block (names + values), in bytes; larger → 431.
    pub max_header_bytes: usize,
    /// Time a client has to send the request line and headers, in milliseconds (slow clients → 408).
    pub client_request_timeout_ms: u64,
    /// How long an idle keep-alive connection is kept open, in seconds.
    pub keep_alive_seconds: u64,
    /// Connections per worker; more wait to be accepted.
    pub max_connections: usize,
    /// `[server.tls]`: serve HTTPS only, with this certificate and key (off while `cert_file` is empty).
    #[serde(skip_serializing_if = "ServerTlsConfig::is_off")]
    pub tls: ServerTlsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            openapi: false,
            public_metrics: false,
            tls: ServerTlsConfig::default(),
            max_header_bytes: 16 * 1024,
            client_request_timeout_ms: 5_000,
            keep_alive_seconds: 30,
            max_connections: 25_000,
        }
    }
}

/// `[server.tls]`
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTlsConfig {
    /// PEM certificate, followed by its intermediate certificates (the chain sent to clients).
    pub cert_file: String,
    /// PEM private key of the certificate (PKCS#8 or the key type's own format).
    pub key_file: String,
}

impl ServerTlsConfig {
    /// Whether the listener serves HTTPS.
    pub fn is_on(&self) -> bool {
        !self.cert_file.is_empty() || !self.key_file.is_empty()
    }

    fn is_off(&self) -> bool {
        !self.is_on()
    }
}

/// `[tls_client]`
#[derive(Debug, Clone, Deserialize, Serialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsClientConfig {
    /// PEM CA certificate(s) trusted in addition to the system's store, for every outbound connection.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub ca_file: String,
    /// Turns certificate and host name verification off for every outbound connection. Never in
    /// production: Shroud logs a warning at every start while it is set.
    pub insecure_skip_verify: bool,
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

/// How Shroud authenticates its clients to the authorization server (introspection, token and
/// revocation calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-encoded client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523 §2.2, OIDC Core §9).
    PrivateKeyJwt,
    /// A client certificate on the TLS connection (RFC 8705 §2); the form carries `client_id` only.
    TlsClientAuth,
}

impl AuthMethod {
    /// Whether the method sends the client secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)
    }
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
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `tls_client_auth`.
    pub auth_method: AuthMethod,
    /// `private_key_jwt`: PKCS#8 PEM private key signing the client assertions.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub private_key_file: String,
    /// `private_key_jwt`: the `kid` header of the client assertions (none when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub private_key_kid: String,
    /// `tls_client_auth`: PEM client certificate (and chain) presented to the authorization server.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_cert_file: String,
    /// `tls_client_auth`: PEM private key of the client certificate.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_key_file: String,
    /// `rfc9701`, `json` or `jwt`.
    pub response: ResponseMode,
    /// Timeout of one introspection call, in milliseconds.
    pub timeout_ms: u64,
    /// The evidence that an active answer is about an access token (`json` and `rfc9701` modes): its
    /// RFC 7662 `token_type` (or Keycloak's `typ`) must be one of these, compared case-insensitively, or
    /// Ory Hydra's `token_use` must be `access_token`. `["*"]` accepts answers that give no evidence (weaker:
    /// only answers that say "refresh" are refused then).
    pub token_types: Vec<String>,
}

impl Default for IntrospectionConfig {
    fn default() -> Self {
        IntrospectionConfig {
            client_id: "gateway".into(),
            client_secret: Secret::default(),
            auth_method: AuthMethod::ClientSecretBasic,
            private_key_file: String::new(),
            private_key_kid: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            response: ResponseMode::Rfc9701,
            timeout_ms: 2000,
            token_types: vec!["Bearer".into(), "DPoP".into()],
        }
    }
}

/// One client's authentication settings at the authorization server, from `[introspection]` or
/// `[token_handler]`: what validation checks and what [`crate::client_auth::ClientAuth`] is built from.
#[derive(Debug, Clone, Copy)]
pub struct ClientAuthSettings<'a> {
    /// The section the keys are in (`introspection` or `token_handler`), for error messages.
    pub section: &'static str,
    /// The client id.
    pub client_id: &'a str,
    /// The client secret (secret methods only).
    pub client_secret: &'a Secret,
    /// The method.
    pub method: AuthMethod,
    /// `private_key_jwt`: the signing key file.
    pub private_key_file: &'a str,
    /// `private_key_jwt`: the `kid` header, if any.
    pub private_key_kid: &'a str,
    /// `tls_client_auth`: the client certificate file.
    pub client_cert_file: &'a str,
    /// `tls_client_auth`: the client certificate's key file.
    pub client_key_file: &'a str,
}

impl IntrospectionConfig {
    /// The introspecting client's authentication settings.
    pub fn client_auth(&self) -> ClientAuthSettings<'_> {
        ClientAuthSettings {
            section: "introspection",
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            method: self.auth_method,
            private_key_file: &self.private_key_file,
            private_key_kid: &self.private_key_kid,
            client_cert_file: &self.client_cert_file,
            client_key_file: &self.client_key_file,
        }
    }
}

impl TokenHandlerConfig {
    /// The SPA client's authentication settings.
    pub fn client_auth(&self) -> ClientAuthSettings<'_> {
        ClientAuthSettings {
            section: "token_handler",
            client_id: &self.client_id,
            client_secret: &self.client_secret,
            method: self.auth_method,
            private_key_file: &self.private_key_file,
            private_key_kid: &self.private_key_kid,
            client_cert_file: &self.client_cert_file,
            client_key_file: &self.client_key_file,
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
    /// How the SPA's client authenticates at the token and revocation endpoints.
    pub auth_method: AuthMethod,
    /// `private_key_jwt`: PKCS#8 PEM private key signing the client assertions.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub private_key_file: String,
    /// `private_key_jwt`: the `kid` header of the client assertions (none when empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub private_key_kid: String,
    /// `tls_client_auth`: PEM client certificate (and chain) presented to the authorization server.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_cert_file: String,
    /// `tls_client_auth`: PEM private key of the client certificate.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_key_file: String,
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
    /// `bound` (each value encrypted with its cookie's name as associated data) or `curity_v1` (Curity's
    /// format, for sharing cookies with Curity's token handler). Switching logs every session out.
    pub cookie_format: CookieFormat,
    /// Names the cookies `__Host-<prefix>-…`, so a sibling subdomain cannot set them: needs
    /// `cookie_secure = true` and no `cookie_domain`, and puts every cookie on `Path=/`.
    pub cookie_host_prefix: bool,
    /// Calls to the OAuth Agent allowed per session (`"60/min"`, or `"off"`); over it → 429. The session is
    /// the ID token's `sid`, else the refresh or access token (each only as an HMAC). Back-channel logout
    /// is not counted.
    pub agent_rate: String,
    /// Calls to the OAuth Agent allowed per source IP (as `[rate_limit] per_ip` finds it, behind
    /// `trusted_proxies`), sessions or not (`"off"` by default); back-channel logout is not counted.
    pub agent_rate_per_ip: String,
}

/// The cookie value format (`token_handler.cookie_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CookieFormat {
    /// Version 2: the cookie name is the associated data (a value decrypts only under its own name).
    #[default]
    Bound,
    /// Curity's v1 format, without associated data (interoperable with Curity's token handler).
    CurityV1,
}

impl Default for TokenHandlerConfig {
    fn default() -> Self {
        TokenHandlerConfig {
            enabled: false,
            base_path: "/oauth-agent".into(),
            client_id: "webapp".into(),
            client_secret: Secret::default(),
            auth_method: AuthMethod::ClientSecretBasic,
            private_key_file: String::new(),
            private_key_kid: String::new(),
            client_cert_file: String::new(),
            client_key_file: String::new(),
            redirect_uri: "http://127.0.0.1:8080/callback".into(),
            post_logout_redirect_uri: "http://127.0.0.1:8080/".into(),
            scope: "openid profile read".into(),
            trusted_web_origins: vec!["http://127.0.0.1:8080".into()],
            cookie_name_prefix: "shroud".into(),
            cookie_encryption_keys: Vec::new(),
            cookie_domain: String::new(),
            cookie_secure: true,
            cookie_format: CookieFormat::Bound,
            cookie_host_prefix: false,
            agent_rate: "60/min".into(),
            agent_rate_per_ip: "off".into(),
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
    /// Largest request body, in bytes; larger → 413 (checked on `Content-Length` before the exchange, and
    /// while streaming a chunked body).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
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
    /// `[routes.rate_limit]`: `per_ip` and `per_client` overriding `[rate_limit]` for this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
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
    /// The request headers a decision may set. The client's copies are always removed first; a decision
    /// header not listed here is dropped (and logged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
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
            max_body_bytes: default_max_body(),
            methods: Vec::new(),
            require: Default::default(),
            forward_claims: Default::default(),
            forward_token: true,
            rate_limit: None,
            opa: None,
        }
    }
}

fn default_credentials() -> CredentialKind {
    CredentialKind::Bearer
}

fn default_max_body() -> u64 {
    10 * 1024 * 1024
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

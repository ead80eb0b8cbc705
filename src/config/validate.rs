//! Validation: every error names the offending key.

use super::{AuthMethod, CacheBackend, ClientAuthSettings, Config, CredentialKind, ResponseMode};
use std::collections::HashSet;
use std::net::SocketAddr;

/// A configuration error naming the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key, e.g. `cache.key_secret` or `routes[1].upstream`.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { key: key.into(), message: message.into() }
    }

    /// Wraps an error of the `config` crate (parse errors, unknown keys, wrong types).
    pub fn from_source(err: config::ConfigError) -> Self {
        let text = err.to_string();
        let key = text
            .split("for key `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
            .or_else(|| text.split("unknown field `").nth(1).and_then(|r| r.split('`').next()).map(str::to_string))
            .unwrap_or_else(|| "configuration".to_string());
        ConfigError { key, message: text }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid configuration key `{}`: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The longest an OPA decision may be cached.
const MAX_OPA_CACHE_SECONDS: u64 = 86_400;

/// Checks that a string is an absolute http(s) URL with a host.
fn http_url(key: &str, raw: &str) -> Result<url::Url, ConfigError> {
    let parsed = url::Url::parse(raw).map_err(|e| ConfigError::new(key, format!("not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(ConfigError::new(key, "must be an http:// or https:// URL with a host"));
    }
    Ok(parsed)
}

/// Decodes a 64-hex-character key into 32 bytes.
pub fn hex_key(key: &str, raw: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = hex::decode(raw.trim()).map_err(|_| ConfigError::new(key, "must be 64 hex characters"))?;
    bytes.try_into().map_err(|_| ConfigError::new(key, "must be 64 hex characters (32 bytes)"))
}

impl Config {
    /// Validates everything that can be checked without touching the network or the file system.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server
            .listen
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError::new("server.listen", "must be an address such as 127.0.0.1:8080"))?;
        if self.server.max_header_bytes < 1024 {
            return Err(ConfigError::new("server.max_header_bytes", "must be at least 1024"));
        }
        if self.server.client_request_timeout_ms == 0 {
            return Err(ConfigError::new("server.client_request_timeout_ms", "must be greater than 0"));
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError::new("server.max_connections", "must be greater than 0"));
        }
        http_url("issuer.url", &self.issuer.url)?;
        let overrides = [
            ("issuer.introspection_endpoint", &self.issuer.introspection_endpoint),
            ("issuer.token_endpoint", &self.issuer.token_endpoint),
            ("issuer.authorization_endpoint", &self.issuer.authorization_endpoint),
            ("issuer.userinfo_endpoint", &self.issuer.userinfo_endpoint),
            ("issuer.end_session_endpoint", &self.issuer.end_session_endpoint),
            ("issuer.revocation_endpoint", &self.issuer.revocation_endpoint),
            ("issuer.jwks_uri", &self.issuer.jwks_uri),
        ];
        for (key, value) in overrides {
            if let Some(value) = value {
                http_url(key, value)?;
            }
        }
        self.validate_server_tls()?;
        self.validate_introspection()?;
        self.validate_cache()?;
        self.validate_token_handler()?;
        self.validate_admin()?;
        validate_rate_limit("rate_limit", &self.rate_limit)?;
        self.validate_routes()
    }

    fn validate_token_handler(&self) -> Result<(), ConfigError> {
        let t = &self.token_handler;
        if !t.enabled {
            return Ok(());
        }
        let key = |name: &str| format!("token_handler.{name}");
        if !t.base_path.starts_with('/') || t.base_path.len() < 2 || t.base_path.ends_with('/') {
            return Err(ConfigError::new(key("base_path"), "must start with '/' and not end with '/'"));
        }
        if t.client_id.is_empty() {
            return Err(ConfigError::new(key("client_id"), "is required"));
        }
        self.validate_client_auth(&t.client_auth())?;
        http_url(&key("redirect_uri"), &t.redirect_uri)?;
        http_url(&key("post_logout_redirect_uri"), &t.post_logout_redirect_uri)?;
        if t.trusted_web_origins.is_empty() {
            return Err(ConfigError::new(key("trusted_web_origins"), "needs at least one origin"));
        }
        for origin in &t.trusted_web_origins {
            let parsed = http_url(&key("trusted_web_origins"), origin)?;
            if parsed.origin().ascii_serialization() != *origin {
                return Err(ConfigError::new(
                    key("trusted_web_origins"),
                    format!("{origin} is not an origin (scheme://host[:port], no path or trailing slash)"),
                ));
            }
        }
        let prefix_ok = !t.cookie_name_prefix.is_empty()
            && t.cookie_name_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !prefix_ok {
            return Err(ConfigError::new(key("cookie_name_prefix"), "letters, digits, '-' and '_' only"));
        }
        if t.cookie_encryption_keys.is_empty() {
            return Err(ConfigError::new(
                key("cookie_encryption_keys"),
                "needs at least one 64-hex key (`shroud keygen` makes one)",
            ));
        }
        for k in &t.cookie_encryption_keys {
            hex_key(&key("cookie_encryption_keys"), k.expose())?;
        }
        if t.cookie_domain.contains([';', ' ', ',']) {
            return Err(ConfigError::new(key("cookie_domain"), "not a domain"));
        }
        if t.cookie_host_prefix && (!t.cookie_secure || !t.cookie_domain.is_empty()) {
            return Err(ConfigError::new(
                key("cookie_host_prefix"),
                "__Host- cookies need cookie_secure = true and no cookie_domain",
            ));
        }
        crate::rate_limit::Rate::parse(&t.agent_rate).map_err(|e| ConfigError::new(key("agent_rate"), e))?;
        crate::rate_limit::Rate::parse(&t.agent_rate_per_ip)
            .map_err(|e| ConfigError::new(key("agent_rate_per_ip"), e))?;
        Ok(())
    }

    fn validate_introspection(&self) -> Result<(), ConfigError> {
        let i = &self.introspection;
        if i.client_id.is_empty() {
            return Err(ConfigError::new("introspection.client_id", "is required"));
        }
        self.validate_client_auth(&i.client_auth())?;
        if i.timeout_ms == 0 {
            return Err(ConfigError::new("introspection.timeout_ms", "must be greater than 0"));
        }
        let any = i.token_types.iter().any(|t| t == "*");
        if i.token_types.is_empty() || (any && i.token_types.len() > 1) || i.token_types.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                "introspection.token_types",
                "list the accepted token types (e.g. [\"Bearer\", \"DPoP\"]), or [\"*\"] alone to accept answers without one",
            ));
        }
        if i.response != ResponseMode::Jwt {
            if self.phantom.issuer.is_empty() {
                return Err(ConfigError::new("phantom.issuer", "is required"));
            }
            if self.phantom.signing_key_file.is_empty() {
                return Err(ConfigError::new(
                    "phantom.signing_key_file",
                    "is required unless introspection.response = \"jwt\"",
                ));
            }
            if self.phantom.max_ttl_seconds == 0 {
                return Err(ConfigError::new("phantom.max_ttl_seconds", "must be greater than 0"));
            }
        }
        Ok(())
    }

    fn validate_server_tls(&self) -> Result<(), ConfigError> {
        let tls = &self.server.tls;
        if tls.is_on() && tls.cert_file.is_empty() {
            return Err(ConfigError::new("server.tls.cert_file", "is required with server.tls.key_file"));
        }
        if tls.is_on() && tls.key_file.is_empty() {
            return Err(ConfigError::new("server.tls.key_file", "is required with server.tls.cert_file"));
        }
        Ok(())
    }

    /// The keys each method needs are there, and no key of another method is set. The files themselves
    /// are read when the gateway is built.
    fn validate_client_auth(&self, a: &ClientAuthSettings<'_>) -> Result<(), ConfigError> {
        let key = |name: &str| format!("{}.{name}", a.section);
        let method = |m: AuthMethod| match m {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::TlsClientAuth => "tls_client_auth",
        };
        if a.method.uses_secret() && a.client_secret.is_empty() {
            let variable = format!("SHROUD__{}__CLIENT_SECRET", a.section.to_ascii_uppercase());
            return Err(ConfigError::new(
                key("client_secret"),
                format!(
                    "is required with auth_method = \"{}\" (set it in the file or as {variable})",
                    method(a.method)
                ),
            ));
        }
        let files = [
            ("private_key_file", a.private_key_file, AuthMethod::PrivateKeyJwt),
            ("private_key_kid", a.private_key_kid, AuthMethod::PrivateKeyJwt),
            ("client_cert_file", a.client_cert_file, AuthMethod::TlsClientAuth),
            ("client_key_file", a.client_key_file, AuthMethod::TlsClientAuth),
        ];
        for (name, value, used_by) in files {
            let optional = name == "private_key_kid";
            if a.method == used_by && value.is_empty() && !optional {
                return Err(ConfigError::new(
                    key(name),
                    format!("is required with auth_method = \"{}\"", method(used_by)),
                ));
            }
            if a.method != used_by && !value.is_empty() {
                return Err(ConfigError::new(
                    key(name),
                    format!("is only used with auth_method = \"{}\"", method(used_by)),
                ));
            }
        }
        if a.method == AuthMethod::TlsClientAuth && !self.issuer.url.starts_with("https://") {
            return Err(ConfigError::new(
                key("auth_method"),
                "tls_client_auth presents a certificate on a TLS connection: issuer.url must be https://",
            ));
        }
        Ok(())
    }

    fn validate_cache(&self) -> Result<(), ConfigError> {
        let c = &self.cache;
        if !c.key_secret.is_empty() {
            hex_key("cache.key_secret", c.key_secret.expose())?;
        }
        if c.backend == CacheBackend::Redis {
            if c.key_secret.is_empty() {
                return Err(ConfigError::new(
                    "cache.key_secret",
                    "is required with backend = \"redis\" (every instance needs the same key; `shroud keygen` makes one)",
                ));
            }
            crate::cache::redis_topology::Topology::from_url(&c.redis_url, None)
                .map_err(|e| ConfigError::new("cache.redis_url", e))?;
            if !c.redis_ca_file.is_empty() && !c.redis_url.starts_with("rediss") {
                return Err(ConfigError::new("cache.redis_ca_file", "needs a rediss:// (TLS) redis_url"));
            }
        }
        if c.max_ttl_seconds == 0 {
            return Err(ConfigError::new("cache.max_ttl_seconds", "must be greater than 0"));
        }
        Ok(())
    }

    fn validate_admin(&self) -> Result<(), ConfigError> {
        let admin = &self.admin;
        if admin.listen.is_empty() {
            return Ok(());
        }
        if admin.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new("admin.listen", "must be an address such as 127.0.0.1:9901"));
        }
        if admin.listen == self.server.listen && !admin.listen.ends_with(":0") {
            return Err(ConfigError::new("admin.listen", "must differ from server.listen"));
        }
        if admin.token.expose().chars().count() < 32 {
            return Err(ConfigError::new(
                "admin.token",
                "is required with admin.listen and must hold at least 32 characters (`shroud keygen` makes one)",
            ));
        }
        Ok(())
    }

    fn validate_routes(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (index, route) in self.routes.iter().enumerate() {
            let key = |name: &str| format!("routes[{index}].{name}");
            let prefix = &route.path_prefix;
            if !prefix.starts_with('/') || prefix.contains(['?', '#', '%', ' ']) {
                return Err(ConfigError::new(key("path_prefix"), "must start with '/' and hold a plain path"));
            }
            if !seen.insert(prefix.trim_end_matches('/').to_string()) {
                return Err(ConfigError::new(key("path_prefix"), format!("{prefix} is configured twice")));
            }
            if route.max_body_bytes == 0 {
                return Err(ConfigError::new(key("max_body_bytes"), "must be greater than 0"));
            }
            if let Some(limits) = &route.rate_limit {
                validate_rate_limit(&key("rate_limit"), limits)?;
                if !limits.trusted_proxies.is_empty() {
                    return Err(ConfigError::new(
                        key("rate_limit.trusted_proxies"),
                        "is set once, in [rate_limit], for every route",
                    ));
                }
                if limits.ipv6_prefix_length.is_some() {
                    return Err(ConfigError::new(
                        key("rate_limit.ipv6_prefix_length"),
                        "is set once, in [rate_limit], for every route",
                    ));
                }
            }
            match (route.upstream.is_empty(), route.static_dir.is_empty()) {
                (false, false) => {
                    return Err(ConfigError::new(key("static_dir"), "a route has either upstream or static_dir"))
                }
                (true, true) => return Err(ConfigError::new(key("upstream"), "is required (or static_dir)")),
                (true, false) => {
                    if !std::path::Path::new(&route.static_dir).is_dir() {
                        return Err(ConfigError::new(
                            key("static_dir"),
                            format!("{} is not a directory", route.static_dir),
                        ));
                    }
                }
                (false, true) => {
                    let upstream = http_url(&key("upstream"), &route.upstream)?;
                    if upstream.query().is_some() || upstream.fragment().is_some() {
                        return Err(ConfigError::new(key("upstream"), "must not carry a query or fragment"));
                    }
                }
            }
            for scope in &route.required_scopes {
                if scope.is_empty() || scope.contains(char::is_whitespace) {
                    return Err(ConfigError::new(key("required_scopes"), "scopes are non-empty words without spaces"));
                }
            }
            if matches!(route.credentials, CredentialKind::Cookie | CredentialKind::Any) && !self.token_handler.enabled
            {
                return Err(ConfigError::new(
                    key("credentials"),
                    "cookie credentials need [token_handler] enabled = true",
                ));
            }
            if route.credentials == CredentialKind::None && !route.required_scopes.is_empty() {
                return Err(ConfigError::new(
                    key("required_scopes"),
                    "a route with credentials = \"none\" has no token to check",
                ));
            }
            if route.timeout_ms == 0 {
                return Err(ConfigError::new(key("timeout_ms"), "must be greater than 0"));
            }
            for method in &route.methods {
                if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(ConfigError::new(
                        key("methods"),
                        format!("{method:?} is not a method such as \"GET\""),
                    ));
                }
            }
            let needs_token = !route.require.is_empty() || !route.forward_claims.is_empty();
            if needs_token && (route.credentials == CredentialKind::None || !route.static_dir.is_empty()) {
                return Err(ConfigError::new(
                    key("require"),
                    "claim rules and forward_claims need a route that takes a token",
                ));
            }
            for (name, spec) in &route.require {
                crate::pipeline::rules::Rule::parse(name, spec)
                    .map_err(|e| ConfigError::new(format!("routes[{index}].require.{name}"), e))?;
            }
            for (claim, header) in &route.forward_claims {
                let key = format!("routes[{index}].forward_claims.{claim}");
                if claim.is_empty() || claim.split('.').any(str::is_empty) {
                    return Err(ConfigError::new(key, "not a claim name or dotted path"));
                }
                let name = actix_web::http::header::HeaderName::try_from(header.as_str())
                    .map_err(|_| ConfigError::new(key.clone(), format!("{header:?} is not a header name")))?;
                if matches!(
                    name.as_str(),
                    "authorization" | "cookie" | "host" | "content-length" | "transfer-encoding" | "connection"
                ) {
                    return Err(ConfigError::new(key, format!("{header} cannot carry a claim")));
                }
            }
            if let Some(opa) = &route.opa {
                let key = |name: &str| format!("routes[{index}].opa.{name}");
                let url = http_url(&key("url"), &opa.url)?;
                if url.fragment().is_some() {
                    return Err(ConfigError::new(key("url"), "must not carry a fragment"));
                }
                if opa.timeout_ms == 0 {
                    return Err(ConfigError::new(key("timeout_ms"), "must be greater than 0"));
                }
                if opa.cache_seconds > MAX_OPA_CACHE_SECONDS {
                    return Err(ConfigError::new(
                        key("cache_seconds"),
                        format!("must be at most {MAX_OPA_CACHE_SECONDS} (one day)"),
                    ));
                }
                validate_decision_headers(&key("headers"), &opa.headers)?;
            }
        }
        Ok(())
    }
}

/// Checks `[routes.opa] headers`: header names, each once, none that Shroud sets itself.
fn validate_decision_headers(key: &str, headers: &[String]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for header in headers {
        let name = actix_web::http::header::HeaderName::try_from(header.as_str())
            .map_err(|_| ConfigError::new(key, format!("{header:?} is not a header name")))?;
        if crate::pipeline::forward::is_managed(&name) {
            return Err(ConfigError::new(key, format!("Shroud sets {header} itself")));
        }
        if !seen.insert(crate::pipeline::forward::hyphenated(&name).into_owned()) {
            return Err(ConfigError::new(key, format!("{name} is listed twice")));
        }
    }
    Ok(())
}

/// Checks the rates and proxies of `[rate_limit]` or a route's `rate_limit` (`section` names it).
fn validate_rate_limit(section: &str, limits: &super::RateLimitConfig) -> Result<(), ConfigError> {
    if let Some(length) = limits.ipv6_prefix_length {
        if !(32..=128).contains(&length) {
            return Err(ConfigError::new(
                format!("{section}.ipv6_prefix_length"),
                "must be between 32 and 128 (64, the default, is one subscriber's network)",
            ));
        }
    }
    for (name, value) in [("per_ip", &limits.per_ip), ("per_client", &limits.per_client)] {
        crate::rate_limit::Rate::parse(value).map_err(|e| ConfigError::new(format!("{section}.{name}"), e))?;
    }
    for entry in &limits.trusted_proxies {
        crate::pipeline::throttle::parse_net(entry)
            .map_err(|e| ConfigError::new(format!("{section}.trusted_proxies"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RouteConfig;
    use crate::secret::Secret;

    fn valid() -> Config {
        let mut c = Config::default();
        c.introspection.client_secret = Secret::new("s");
        c.routes.push(RouteConfig {
            path_prefix: "/api".into(),
            upstream: "http://127.0.0.1:7001".into(),
            static_dir: String::new(),
            credentials: CredentialKind::Bearer,
            required_scopes: vec!["read".into()],
            strip_prefix: false,
            timeout_ms: 1000,
            ..Default::default()
        });
        c
    }

    #[test]
    fn defaults_with_a_secret_are_valid() {
        valid().validate().unwrap();
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = valid();
        c.cache.backend = CacheBackend::Redis;
        assert_eq!(c.validate().unwrap_err().key, "cache.key_secret");
        c.cache.key_secret = Secret::new("abc");
        assert_eq!(c.validate().unwrap_err().key, "cache.key_secret");
        c.cache.key_secret = Secret::new("00".repeat(32));
        c.validate().unwrap();
        c.routes[0].upstream = "ftp://x".into();
        assert_eq!(c.validate().unwrap_err().key, "routes[0].upstream");
        c.routes[0].upstream = "http://x".into();
        c.routes[0].static_dir = "src".into();
        assert_eq!(c.validate().unwrap_err().key, "routes[0].static_dir");
        c.routes[0].upstream = String::new();
        c.routes[0].static_dir = "no/such/dir".into();
        assert_eq!(c.validate().unwrap_err().key, "routes[0].static_dir");
        c.routes[0].static_dir = String::new();
        assert_eq!(c.validate().unwrap_err().key, "routes[0].upstream");
        c.routes[0].upstream = "http://x".into();
        c.routes[0].credentials = CredentialKind::None;
        assert_eq!(c.validate().unwrap_err().key, "routes[0].required_scopes");
        let mut c = valid();
        c.introspection.client_secret = Secret::default();
        assert_eq!(c.validate().unwrap_err().key, "introspection.client_secret");
        let mut c = valid();
        c.routes.push(c.routes[0].clone());
        assert_eq!(c.validate().unwrap_err().key, "routes[1].path_prefix");
    }

    #[test]
    fn opa_needs_an_http_url_and_a_timeout() {
        use crate::config::OpaConfig;
        let mut c = valid();
        let opa = OpaConfig {
            url: "http://127.0.0.1:8181/v1/data/shroud/allow".into(),
            timeout_ms: 500,
            cache_seconds: 0,
            headers: vec![],
        };
        c.routes[0].opa = Some(opa.clone());
        c.validate().unwrap();
        for url in ["127.0.0.1:8181/v1/data/x", "ftp://opa/v1/data/x", "http://", "http://opa/v1/data#x"] {
            c.routes[0].opa = Some(OpaConfig { url: url.into(), ..opa.clone() });
            assert_eq!(c.validate().unwrap_err().key, "routes[0].opa.url", "{url}");
        }
        c.routes[0].opa = Some(OpaConfig { cache_seconds: 86_401, ..opa.clone() });
        assert_eq!(c.validate().unwrap_err().key, "routes[0].opa.cache_seconds");
        c.routes[0].opa = Some(OpaConfig { timeout_ms: 0, ..opa });
        let err = c.validate().unwrap_err();
        assert_eq!((err.key.as_str(), err.message.as_str()), ("routes[0].opa.timeout_ms", "must be greater than 0"));
    }

    #[test]
    fn client_authentication_keys_follow_the_method() {
        let mut c = valid();
        c.introspection.auth_method = AuthMethod::PrivateKeyJwt;
        c.introspection.client_secret = Secret::default();
        assert_eq!(c.validate().unwrap_err().key, "introspection.private_key_file");
        c.introspection.private_key_file = "k.pem".into();
        c.introspection.private_key_kid = "k1".into();
        c.validate().unwrap();
        c.introspection.client_cert_file = "c.pem".into();
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "introspection.client_cert_file");
        assert!(err.message.contains("tls_client_auth"), "{}", err.message);

        let mut c = valid();
        c.introspection.auth_method = AuthMethod::TlsClientAuth;
        assert_eq!(c.validate().unwrap_err().key, "introspection.client_cert_file");
        c.introspection.client_cert_file = "c.pem".into();
        assert_eq!(c.validate().unwrap_err().key, "introspection.client_key_file");
        c.introspection.client_key_file = "k.pem".into();
        assert_eq!(c.validate().unwrap_err().key, "introspection.auth_method", "needs an https issuer");
        c.issuer.url = "https://as.example".into();
        c.validate().unwrap();
        c.introspection.private_key_kid = "k1".into();
        assert_eq!(c.validate().unwrap_err().key, "introspection.private_key_kid");

        let mut c = valid();
        c.token_handler.enabled = true;
        c.token_handler.cookie_encryption_keys = vec![Secret::new("00".repeat(32))];
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "token_handler.client_secret");
        assert!(err.message.contains("SHROUD__TOKEN_HANDLER__CLIENT_SECRET"), "{}", err.message);
        c.token_handler.auth_method = AuthMethod::PrivateKeyJwt;
        assert_eq!(c.validate().unwrap_err().key, "token_handler.private_key_file");
        c.token_handler.private_key_file = "k.pem".into();
        c.validate().unwrap();
        c.token_handler.agent_rate = "60/day".into();
        assert_eq!(c.validate().unwrap_err().key, "token_handler.agent_rate");
        c.token_handler.agent_rate = "off".into();
        c.validate().unwrap();
        c.token_handler.agent_rate_per_ip = "x/s".into();
        assert_eq!(c.validate().unwrap_err().key, "token_handler.agent_rate_per_ip");
    }

    #[test]
    fn server_tls_needs_both_files() {
        let mut c = valid();
        c.server.tls.cert_file = "cert.pem".into();
        assert_eq!(c.validate().unwrap_err().key, "server.tls.key_file");
        c.server.tls = Default::default();
        c.server.tls.key_file = "key.pem".into();
        assert_eq!(c.validate().unwrap_err().key, "server.tls.cert_file");
        c.server.tls.cert_file = "cert.pem".into();
        c.validate().unwrap();
    }

    #[test]
    fn token_types_and_host_prefixed_cookies() {
        let mut c = valid();
        for bad in [vec![], vec!["*".to_string(), "Bearer".to_string()], vec![String::new()]] {
            c.introspection.token_types = bad;
            assert_eq!(c.validate().unwrap_err().key, "introspection.token_types");
        }
        c.introspection.token_types = vec!["*".into()];
        c.validate().unwrap();

        let mut c = valid();
        c.token_handler.enabled = true;
        c.token_handler.client_secret = Secret::new("s");
        c.token_handler.cookie_encryption_keys = vec![Secret::new("00".repeat(32))];
        c.token_handler.cookie_host_prefix = true;
        c.validate().unwrap();
        c.token_handler.cookie_domain = "example.com".into();
        assert_eq!(c.validate().unwrap_err().key, "token_handler.cookie_host_prefix");
        c.token_handler.cookie_domain = String::new();
        c.token_handler.cookie_secure = false;
        assert_eq!(c.validate().unwrap_err().key, "token_handler.cookie_host_prefix");
    }
}

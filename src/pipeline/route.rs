//! Stage 1, **route**: normalise the path, then longest-prefix match (on whole segments) over the routes.

use crate::config::{CredentialKind, RouteConfig};
use crate::error::Rejection;
use crate::metrics::{Metrics, RouteMetrics};
use std::time::Duration;

/// A route as the request path uses it, built once from `[[routes]]`.
pub struct Route {
    /// The configured prefix, without a trailing slash (except the root route `/`).
    pub prefix: String,
    /// Scheme, authority and base path of the upstream, without a trailing slash.
    pub upstream: String,
    /// Which credential the route takes.
    pub credentials: CredentialKind,
    /// Scopes that must all be present.
    pub required_scopes: Vec<String>,
    /// `required_scopes` joined by spaces, for `WWW-Authenticate`.
    pub required_scope_list: String,
    /// Whether to remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// Time allowed for the upstream's answer.
    pub timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Files served instead of proxying, when the route has `static_dir`.
    pub static_dir: Option<std::path::PathBuf>,
    /// Its metric handles.
    pub metrics: RouteMetrics,
    /// Allowed methods (empty = all) and the `Allow` header listing them.
    pub methods: Vec<actix_web::http::Method>,
    allow: String,
    /// Claim rules that must all hold.
    pub rules: Vec<super::rules::Rule>,
    /// Claims (dotted paths) set as upstream headers.
    pub forward_claims: Vec<(Vec<String>, actix_web::http::header::HeaderName)>,
    /// Whether the JWT is forwarded in `Authorization`.
    pub forward_token: bool,
    /// The headers Shroud sets from the token or a decision (`forward_claims`, `[routes.opa] headers`),
    /// lower-case and hyphenated: the client's copies are removed in either spelling.
    identity_headers: Vec<String>,
    /// `X-Forwarded-Prefix` for the upstream: the prefix, on routes that strip it.
    pub forwarded_prefix: Option<actix_web::http::header::HeaderValue>,
    /// The Open Policy Agent stage, when the route has `[routes.opa]`.
    pub opa: Option<super::opa::Opa>,
    /// Its rate limits.
    pub limits: super::throttle::RouteLimits,
}

impl Route {
    /// Builds a route from its configuration.
    pub fn from_config(config: &RouteConfig, metrics: &Metrics) -> Route {
        let prefix = match config.path_prefix.trim_end_matches('/') {
            "" => "/".to_string(),
            trimmed => trimmed.to_string(),
        };
        let opa = config.opa.as_ref().map(|opa| super::opa::Opa::from_config(opa, &prefix, metrics));
        let forwarded_prefix = (config.strip_prefix && prefix != "/")
            .then(|| actix_web::http::header::HeaderValue::from_str(&prefix).ok())
            .flatten();
        Route {
            upstream: config.upstream.trim_end_matches('/').to_string(),
            credentials: config.credentials,
            required_scopes: config.required_scopes.clone(),
            required_scope_list: config.required_scopes.join(" "),
            strip_prefix: config.strip_prefix,
            timeout: Duration::from_millis(config.timeout_ms),
            max_body_bytes: config.max_body_bytes,
            static_dir: (!config.static_dir.is_empty()).then(|| std::path::PathBuf::from(&config.static_dir)),
            metrics: metrics.for_route(&prefix),
            prefix,
            methods: config.methods.iter().filter_map(|m| m.parse().ok()).collect(),
            allow: config.methods.join(", "),
            rules: config
                .require
                .iter()
                .filter_map(|(name, spec)| super::rules::Rule::parse(name, spec).ok())
                .collect(),
            forward_claims: config
                .forward_claims
                .iter()
                .filter_map(|(claim, header)| {
                    let name = actix_web::http::header::HeaderName::try_from(header.as_str()).ok()?;
                    Some((claim.split('.').map(str::to_string).collect(), name))
                })
                .collect(),
            forward_token: config.forward_token,
            identity_headers: config
                .forward_claims
                .values()
                .chain(config.opa.iter().flat_map(|opa| &opa.headers))
                .map(|header| header.to_ascii_lowercase().replace('_', "-"))
                .collect(),
            forwarded_prefix,
            opa,
            limits: Default::default(),
        }
    }

    /// Whether the route sets the request header `name` itself (from a claim or an OPA decision), in either
    /// spelling (`X_User_Id` for `X-User-Id`): the client's copy must not pass.
    pub fn sets_header(&self, name: &actix_web::http::header::HeaderName) -> bool {
        let name = super::forward::hyphenated(name);
        self.identity_headers.iter().any(|h| *h == name)
    }

    /// Whether the policy, OPA or forward stage needs the token's full claims.
    pub fn needs_claims(&self) -> bool {
        !self.rules.is_empty() || !self.forward_claims.is_empty() || self.opa.is_some()
    }

    /// 405 unless the route allows `method`.
    pub fn check_method(&self, method: &actix_web::http::Method) -> Result<(), Rejection> {
        if self.methods.is_empty() || self.methods.contains(method) {
            Ok(())
        } else {
            Err(Rejection::MethodNotAllowed(self.allow.clone().into()))
        }
    }

    /// Whether the route reads the token handler's cookies (`cookie` or `any`).
    pub fn takes_cookies(&self) -> bool {
        matches!(self.credentials, CredentialKind::Cookie | CredentialKind::Any)
    }

    fn matches(&self, path: &str) -> bool {
        self.prefix == "/"
            || (path.starts_with(&self.prefix) && matches!(path.as_bytes().get(self.prefix.len()), None | Some(b'/')))
    }

    /// The upstream URL for a normalised `path` and raw `query`.
    pub fn upstream_url(&self, path: &str, query: &str) -> String {
        let rest = if self.strip_prefix && self.prefix != "/" { &path[self.prefix.len()..] } else { path };
        let rest = if rest.is_empty() { "/" } else { rest };
        let mut url = String::with_capacity(self.upstream.len() + rest.len() + query.len() + 1);
        url.push_str(&self.upstream);
        url.push_str(rest);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }
}

/// The routes, longest prefix first.
pub struct RouteTable {
    routes: Vec<Route>,
    /// Metrics of requests no route matched.
    pub unrouted: RouteMetrics,
}

impl RouteTable {
    /// Builds the table from `[[routes]]`, with rate limits from `limits`.
    pub fn new(configs: &[RouteConfig], metrics: &Metrics, limits: &super::throttle::LimitSource<'_>) -> RouteTable {
        let mut routes: Vec<Route> = configs
            .iter()
            .enumerate()
            .map(|(index, c)| Route {
                limits: super::throttle::RouteLimits::build(index, c.rate_limit.as_ref(), limits),
                ..Route::from_config(c, metrics)
            })
            .collect();
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        RouteTable { routes, unrouted: metrics.for_route("-") }
    }

    /// Forgets rate-limit keys that are idle (bounded memory); called periodically.
    pub fn forget_idle_limits(&self) {
        self.routes.iter().for_each(|r| r.limits.forget_idle());
    }

    /// Normalises `raw_path` and finds its route: the route and the path to forward. A path whose segments
    /// carry parameters (`;x`, `%3Bx`) must select the same route without them: Tomcat- and Spring-style
    /// upstreams drop them, so `/api;x/secret` must not pass as a request for another route than `/api`
    /// (400 otherwise).
    pub fn select(&self, raw_path: &str) -> Result<(&Route, String), Rejection> {
        let path = normalize_path(raw_path)?;
        let route = self.find(&path).ok_or(Rejection::NotFound)?;
        if has_parameters(&path) {
            let same = self.find(&without_parameters(&path)).is_some_and(|bare| std::ptr::eq(bare, route));
            if !same {
                return Err(Rejection::bad_request("the request path is not acceptable"));
            }
        }
        Ok((route, path))
    }

    fn find(&self, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(path))
    }
}

/// A normalised path with each segment's parameters removed: what an upstream that drops them routes on.
pub fn without_parameters(path: &str) -> String {
    path.split('/').map(segment_name).collect::<Vec<_>>().join("/")
}

/// Whether a normalised path has segment parameters (`;x`, `%3Bx`).
pub fn has_parameters(path: &str) -> bool {
    path.contains(';') || path.contains("%3B")
}

/// A normalised segment without its parameters (from the first `;` or `%3B` on).
fn segment_name(segment: &str) -> &str {
    let name = segment.split(';').next().unwrap_or_default();
    name.split("%3B").next().unwrap_or_default()
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Normalises a request path (RFC 3986 §6.2.2): percent-encoded unreserved characters are decoded, other
/// escapes upper-cased; dot segments (`.`, `..`, also when encoded or followed by path parameters such as
/// `..;` or `.%3B`), backslashes, encoded separators
/// (`%2F`, `%5C`), control characters (also when encoded: an upstream that decodes `%00` may cut the path
/// short, and one that decodes `%0D%0A` may split a header or log line with it) and bytes outside ASCII
/// (which a URI cannot hold unencoded) are refused, so that a path cannot match one route here and mean
/// another upstream (`/public/../admin`, `/public/..;/admin`, `/%61dmin`, `/api%2Fx`).
pub fn normalize_path(raw: &str) -> Result<String, Rejection> {
    let refuse = || Rejection::bad_request("the request path is not acceptable");
    if !raw.starts_with('/') {
        return Err(refuse());
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or_else(refuse)?;
            let decoded = u8::from_str_radix(hex, 16).map_err(|_| refuse())?;
            // Control characters, and encoded separators: `/api%2Fx` would match another route here than
            // the `/api/x` an upstream that decodes it would see.
            if decoded.is_ascii_control() || decoded == b'/' || decoded == b'\\' {
                return Err(refuse());
            }
            if is_unreserved(decoded) {
                out.push(decoded as char);
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            // Outside ASCII, the byte would be pushed as a Latin-1 character: refuse it rather than mangle.
            if b == b'\\' || !(0x21..0x7f).contains(&b) {
                return Err(refuse());
            }
            out.push(b as char);
            i += 1;
        }
    }
    if out.split('/').any(is_dot_segment) {
        return Err(refuse());
    }
    Ok(out)
}

/// Whether a normalised segment is `.` or `..`, also with path parameters (`..;x`, `.;`, `..%3B`):
/// Tomcat- and Spring-style upstreams drop a segment's parameters and then resolve the dots.
fn is_dot_segment(segment: &str) -> bool {
    matches!(segment_name(segment), "." | "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str, upstream: &str, strip: bool) -> RouteConfig {
        RouteConfig {
            path_prefix: prefix.into(),
            upstream: upstream.into(),
            static_dir: String::new(),
            credentials: CredentialKind::Bearer,
            required_scopes: vec![],
            strip_prefix: strip,
            timeout_ms: 1000,
            ..Default::default()
        }
    }

    fn no_limits() -> crate::pipeline::throttle::LimitSource<'static> {
        static DEFAULTS: std::sync::OnceLock<crate::config::RateLimitConfig> = std::sync::OnceLock::new();
        crate::pipeline::throttle::LimitSource { defaults: DEFAULTS.get_or_init(Default::default), shared: None }
    }

    #[test]
    fn longest_prefix_on_segment_boundaries() {
        let m = Metrics::new();
        let table = RouteTable::new(
            &[
                route("/", "http://root", false),
                route("/api", "http://a", false),
                route("/api/admin/", "http://b", false),
            ],
            &m,
            &no_limits(),
        );
        assert_eq!(table.select("/api/x").unwrap().0.upstream, "http://a");
        assert_eq!(table.select("/api").unwrap().0.upstream, "http://a");
        assert_eq!(table.select("/apix").unwrap().0.upstream, "http://root");
        assert_eq!(table.select("/api/admin").unwrap().0.upstream, "http://b");
        assert_eq!(table.select("/api/admin/users").unwrap().0.upstream, "http://b");
        let no_root = RouteTable::new(&[route("/api", "http://a", false)], &m, &no_limits());
        assert!(matches!(no_root.select("/other"), Err(Rejection::NotFound)));
    }

    #[test]
    fn path_parameters_cannot_move_a_request_to_another_route() {
        let m = Metrics::new();
        let table = RouteTable::new(
            &[
                route("/", "http://root", false),
                route("/api", "http://a", false),
                route("/api/admin", "http://b", false),
            ],
            &m,
            &no_limits(),
        );
        for moved in ["/api;x/secret", "/api%3Bx/secret", "/api/admin;v=1/users", "/api/admin%3b/users"] {
            assert!(matches!(table.select(moved), Err(Rejection::InvalidRequest { bearer: false, .. })), "{moved}");
        }
        assert_eq!(table.select("/api/x;v=1/y").unwrap().0.upstream, "http://a", "the same route either way");
        assert_eq!(table.select("/api/admin/users;jsessionid=1").unwrap().0.upstream, "http://b");
        assert_eq!(table.select("/apix;v=1").unwrap().0.upstream, "http://root");
    }

    #[test]
    fn upstream_urls() {
        let m = Metrics::new();
        let keep = Route::from_config(&route("/api", "http://u:1/base/", false), &m);
        assert_eq!(keep.upstream_url("/api/x", "a=1"), "http://u:1/base/api/x?a=1");
        let strip = Route::from_config(&route("/api", "http://u:1", true), &m);
        assert_eq!(strip.upstream_url("/api/x", ""), "http://u:1/x");
        assert_eq!(strip.upstream_url("/api", ""), "http://u:1/");
    }

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(normalize_path("/%61pi/%7euser/%3a").unwrap(), "/api/~user/%3A");
        assert!(normalize_path("/api%2Fx").is_err(), "encoded slashes never route");
        assert!(normalize_path("/api%5cx").is_err(), "nor encoded backslashes");
        for bad in [
            "/public/..%2fadmin",
            "/public/..%5Cadmin",
            "/public/../admin",
            "/a/./b",
            "/a/%2e%2e/b",
            "/a/%2E/b",
            "/a\\b",
            "/%zz",
            "/%4",
            "x",
            "/a b",
            "/a%00.json",
            "/a%0D%0AX-Admin:%201",
            "/a%0a",
            "/a%09b",
            "/a%7F",
            "/public/..;/api",
            "/public/..;x=1/api",
            "/public/%2e%2e;/api",
            "/public/%2E.%3b/api",
            "/public/..%3B/api",
            "/a/.;/b",
            "/a/%2e%3B/b",
            "/a/..;",
        ] {
            assert!(normalize_path(bad).is_err(), "{bad}");
        }
        assert_eq!(normalize_path("/a/..b/c.d").unwrap(), "/a/..b/c.d");
        assert_eq!(normalize_path("/a;v=1/..b;x/.c;y").unwrap(), "/a;v=1/..b;x/.c;y", "other parameters pass");
        assert_eq!(normalize_path("/a/...;x/b%3b").unwrap(), "/a/...;x/b%3B");
    }

    /// Found by the `request_headers` fuzz target: non-ASCII characters were pushed byte by byte as Latin-1
    /// characters, so `/café` came out as `/cafÃ©` and normalising was not idempotent. actix refuses raw
    /// non-ASCII request targets before Shroud sees them, but the function must not depend on that.
    #[test]
    fn non_ascii_paths_are_refused_not_mangled() {
        for bad in ["/caf\u{e9}", "/\u{fffd}N./x", "/api/\u{7f}"] {
            assert!(normalize_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(normalize_path("/caf%C3%A9").unwrap(), "/caf%C3%A9", "encoded, it is fine");
        for path in ["/%61pi/%7euser/%3a", "/a/..b/c.d", "/caf%c3%a9"] {
            let once = normalize_path(path).unwrap();
            assert_eq!(normalize_path(&once).unwrap(), once, "idempotent for {path}");
        }
    }
}

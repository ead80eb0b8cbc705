//! Stage 6, **forward**: rewrite the headers (Authorization ← the JWT, hop-by-hop removed, X-Forwarded-*
//! and X-Real-IP from what Shroud knows, `Forwarded` and other client-written routing headers removed,
//! identity headers from the claims and from OPA's decision, the client's copies of all of them gone in
//! either spelling), stream the body to the upstream through the worker's pooled client, stream the answer
//! back. Unreachable upstream → 502, no answer in time → 504.

use super::route::Route;
use crate::error::Rejection;
use crate::grant::Grant;
use crate::token_handler::cookies::CookieJar;
use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use awc::error::SendRequestError;
use std::time::Duration;

/// Connection-level headers (RFC 9110 §7.6.1) never passed on in either direction.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Request headers Shroud sets itself, so the client's copies are dropped.
const REPLACED: &[&str] = &[
    "host",
    "authorization",
    "content-length",
    "expect",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-prefix",
    "x-real-ip",
];

/// Request headers that tell an upstream where a request came from or what it asked for, which Shroud
/// cannot vouch for and does not set: the client's copies are dropped. `Forwarded` (RFC 7239) would
/// repeat what the `X-Forwarded-*` headers say, from the client's pen; `X-Original-URL` and
/// `X-Rewrite-URL` make some frameworks route on another path than the one checked here, and the method
/// overrides make them run another method than the one the route's `methods` and OPA allowed.
const STRIPPED: &[&str] = &[
    "forwarded",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-original-url",
    "x-rewrite-url",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// `X-Forwarded-For`: the client's address, after any the request already carried.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`: the scheme the client used.
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the `Host` the client asked for, when it is a host name or address.
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Prefix`: the path prefix a `strip_prefix` route removed.
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
/// `X-Real-IP`: the source address, as the per-IP rate limit reads it.
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// What happens to cookies on the way upstream.
#[derive(Clone, Copy)]
pub enum CookiePolicy<'a> {
    /// No token handler: cookies pass unchanged.
    Keep,
    /// Other routes: the token handler's own cookies and CSRF header are removed, the rest pass.
    StripOwn(&'a CookieJar),
    /// Cookie routes: the whole `Cookie` header and the CSRF header are removed.
    StripAll(&'a CookieJar),
}

impl<'a> CookiePolicy<'a> {
    /// The policy for `route`, given the token handler's cookie jar if enabled.
    pub fn for_route(route: &Route, jar: Option<&'a CookieJar>) -> CookiePolicy<'a> {
        match jar {
            None => CookiePolicy::Keep,
            Some(jar) if route.takes_cookies() => CookiePolicy::StripAll(jar),
            Some(jar) => CookiePolicy::StripOwn(jar),
        }
    }

    /// Appends the request header `name: value` to `out` as the policy says.
    fn pass(&self, name: &HeaderName, value: &HeaderValue, out: &mut HeaderMap) {
        let jar = match self {
            CookiePolicy::Keep => {
                out.append(name.clone(), value.clone());
                return;
            }
            CookiePolicy::StripOwn(jar) | CookiePolicy::StripAll(jar) => jar,
        };
        if name == jar.csrf_header() {
            return;
        }
        if name != header::COOKIE {
            out.append(name.clone(), value.clone());
            return;
        }
        if let (CookiePolicy::StripOwn(_), Ok(text)) = (self, value.to_str()) {
            if let Some(kept) = jar.without_own(text).and_then(|k| HeaderValue::from_str(&k).ok()) {
                out.append(name.clone(), kept);
            }
        }
    }
}

/// Builds the per-worker upstream client: pooled keep-alive connections, no redirects, no decompression,
/// and `[tls_client]` verification on `https://` upstreams.
pub fn upstream_client(tls: &crate::transport::OutboundTls) -> awc::Client {
    let connector = awc::Connector::new()
        .timeout(Duration::from_secs(5))
        .limit(1024)
        .conn_keep_alive(Duration::from_secs(60))
        .openssl(tls.upstream_connector());
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .no_default_headers()
        .timeout(Duration::from_secs(300))
        .finish()
}

/// `name` with `_` read as `-`: CGI and some frameworks cannot tell `X_User_Id` from `X-User-Id`, so
/// Shroud treats the two spellings as one header wherever it removes or guards one. Names are lower case
/// already; a name without `_` is borrowed as it is.
pub fn hyphenated(name: &HeaderName) -> std::borrow::Cow<'_, str> {
    match name.as_str() {
        plain if !plain.contains('_') => std::borrow::Cow::Borrowed(plain),
        underscored => std::borrow::Cow::Owned(underscored.replace('_', "-")),
    }
}

/// Whether Shroud manages the request header `name` itself, in either spelling (hop-by-hop,
/// `Authorization`, `Host`, framing, `X-Forwarded-*`, `X-Real-IP`, `Forwarded`, `X-Original-URL`,
/// `Cookie`), so that no policy decision may set it.
pub fn is_managed(name: &HeaderName) -> bool {
    let name = hyphenated(name);
    HOP_BY_HOP.contains(&&*name) || REPLACED.contains(&&*name) || STRIPPED.contains(&&*name) || name == "cookie"
}

/// Whether the client's header `name` is dropped: Shroud sets it or cannot vouch for it, or the route
/// sets it from the token or a decision; in either spelling.
fn is_forged(route: &Route, name: &HeaderName) -> bool {
    let spelled = hyphenated(name);
    REPLACED.contains(&&*spelled) || STRIPPED.contains(&&*spelled) || route.sets_header(name)
}

/// Whether a `Host` value is a host name, IPv4 or bracketed IPv6 address, with an optional port: only
/// then is it passed on as `X-Forwarded-Host` (never a path, a list, user information or garbage).
fn is_host(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else { return false };
    let (host_ok, port) = match text.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) => (v6.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (host, port) = text.find(':').map_or((text, ""), |at| text.split_at(at));
            (!host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'), port)
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// Whether `name` is hop-by-hop, either always or because the `Connection` header lists it.
fn is_hop_by_hop(name: &HeaderName, listed: &[String]) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || listed.iter().any(|l| l == name.as_str())
}

/// The header names a `Connection` header lists, lower-cased. `keep-alive` (always hop-by-hop) and `close`
/// (no header's name) are left out, so that the usual `Connection: keep-alive` costs no allocation.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|token| {
            !token.is_empty() && !token.eq_ignore_ascii_case("keep-alive") && !token.eq_ignore_ascii_case("close")
        })
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Who the request is on behalf of: the grant and, when the route forwards claims, its claims; and the
/// headers the route's OPA decision adds.
#[derive(Clone, Copy)]
pub struct Identity<'a> {
    /// The grant (none on credential-free routes).
    pub grant: Option<&'a Grant>,
    /// Its claims, decoded when the route needs them.
    pub claims: Option<&'a serde_json::Map<String, serde_json::Value>>,
    /// Headers set by an allowing OPA decision (they replace the client's copies).
    pub decision_headers: &'a [(HeaderName, HeaderValue)],
    /// The request's id, sent as `X-Request-Id` so that upstream logs join Shroud's.
    pub request_id: &'a HeaderValue,
    /// The source address (the peer, or the client a trusted proxy names), sent as `X-Real-IP`.
    pub source_ip: Option<std::net::IpAddr>,
}

/// A claim as a header value: strings as they are, arrays of strings space-separated, other JSON as JSON.
fn claim_header(value: &serde_json::Value) -> Option<HeaderValue> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if items.iter().all(serde_json::Value::is_string) => {
            items.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join(" ")
        }
        serde_json::Value::Null => return None,
        other => other.to_string(),
    };
    HeaderValue::from_str(&text).ok()
}

fn request_headers(
    route: &Route,
    req: &HttpRequest,
    identity: Identity<'_>,
    cookies: CookiePolicy<'_>,
    out: &mut HeaderMap,
) {
    let incoming = req.headers();
    let listed = connection_listed(incoming);
    for (name, value) in incoming.iter() {
        if !is_hop_by_hop(name, &listed) && !is_forged(route, name) {
            cookies.pass(name, value, out);
        }
    }
    if let (Some(grant), true) = (identity.grant, route.forward_token) {
        out.insert(header::AUTHORIZATION, grant.authorization().clone());
    }
    if let Some(claims) = identity.claims {
        for (path, name) in &route.forward_claims {
            match super::rules::lookup(claims, path).and_then(claim_header) {
                Some(value) => {
                    out.insert(name.clone(), value);
                }
                None => log::debug!("claim for header {name} absent or not representable"),
            }
        }
    }
    for (name, value) in identity.decision_headers {
        out.insert(name.clone(), value.clone());
    }
    out.insert(super::audit::X_REQUEST_ID, identity.request_id.clone());
    let mut forwarded_for = String::with_capacity(48);
    for previous in incoming.get_all(X_FORWARDED_FOR).filter_map(|v| v.to_str().ok()) {
        forwarded_for.push_str(previous);
        forwarded_for.push_str(", ");
    }
    if let Some(peer) = req.peer_addr() {
        use std::fmt::Write;
        let _ = write!(forwarded_for, "{}", peer.ip());
    }
    if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
        out.insert(X_FORWARDED_FOR, value);
    }
    let proto = if req.app_config().secure() { "https" } else { "http" };
    out.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = incoming.get(header::HOST).filter(|host| is_host(host)) {
        out.insert(X_FORWARDED_HOST, host.clone());
    }
    if let Some(prefix) = &route.forwarded_prefix {
        out.insert(X_FORWARDED_PREFIX, prefix.clone());
    }
    if let Some(ip) = identity.source_ip {
        if let Ok(value) = HeaderValue::from_str(&ip.to_string()) {
            out.insert(X_REAL_IP, value);
        }
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// The request body, cut off with an error (and `overflowed` set) once it exceeds `max_bytes`.
fn limited(
    payload: web::Payload,
    max_bytes: u64,
    overflowed: std::rc::Rc<std::cell::Cell<bool>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, actix_web::error::PayloadError>> {
    use futures_util::StreamExt;
    let mut seen = 0u64;
    payload.map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > max_bytes {
            overflowed.set(true);
            return Err(actix_web::error::PayloadError::Overflow);
        }
        Ok(chunk)
    })
}

/// Sends the request upstream and streams the answer back.
pub async fn forward(
    route: &Route,
    path: &str,
    req: &HttpRequest,
    payload: web::Payload,
    identity: Identity<'_>,
    cookies: CookiePolicy<'_>,
    client: &awc::Client,
) -> Result<HttpResponse, Rejection> {
    let deadline = std::time::Instant::now() + route.timeout;
    let url = route.upstream_url(path, req.query_string());
    let mut upstream = client.request(req.method().clone(), url).no_decompress().timeout(route.timeout);
    request_headers(route, req, identity, cookies, upstream.headers_mut());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    let overflowed = std::rc::Rc::new(std::cell::Cell::new(false));
    let sent = match (content_length(req.headers()), chunked) {
        (_, true) => upstream.send_stream(limited(payload, route.max_body_bytes, overflowed.clone())).await,
        (Some(length), false) => upstream.send_body(SizedStream::new(length, payload)).await,
        (None, false) => upstream.send_body(actix_web::body::None::new()).await,
    };
    let response = sent.map_err(|e| match e {
        _ if overflowed.get() => {
            log::info!("refused a chunked body over {} bytes", route.max_body_bytes);
            Rejection::PayloadTooLarge
        }
        SendRequestError::Timeout => {
            log::warn!("upstream {} timed out", route.upstream);
            Rejection::UpstreamTimeout
        }
        other => {
            log::warn!("upstream {} unavailable: {other}", route.upstream);
            Rejection::UpstreamUnavailable
        }
    })?;
    let mut builder = HttpResponse::build(response.status());
    let listed = connection_listed(response.headers());
    for (name, value) in response.headers().iter() {
        if !is_hop_by_hop(name, &listed) && name != header::CONTENT_LENGTH {
            builder.append_header((name.clone(), value.clone()));
        }
    }
    Ok(match content_length(response.headers()) {
        Some(length) if length <= WHOLE_BODY_MAX && has_body(req.method(), response.status()) => {
            // The route's timeout covers the whole answer: what is left of it, for the body.
            let mut response = response.timeout(deadline.saturating_duration_since(std::time::Instant::now()));
            let body = read_whole(&mut response, length).await.map_err(|e| upstream_body_failed(route, e))?;
            builder.body(body)
        }
        Some(length) => builder.body(SizedStream::new(length, response)),
        None => builder.streaming(response),
    })
}

/// Upstream answers that declare a length up to this many bytes are read whole before the answer starts:
/// the client gets head and body in one write, the upstream connection goes back to the pool at once,
/// and an upstream that breaks off mid-body gets a clean 502 instead of a truncated answer.
const WHOLE_BODY_MAX: u64 = 64 * 1024;

/// Whether an answer with `status` to a `method` request carries the body its `Content-Length` declares
/// (not so for `HEAD`, 204 and 304: RFC 9110 §8.6).
fn has_body(method: &actix_web::http::Method, status: actix_web::http::StatusCode) -> bool {
    method != actix_web::http::Method::HEAD
        && status != actix_web::http::StatusCode::NO_CONTENT
        && status != actix_web::http::StatusCode::NOT_MODIFIED
}

/// Why an upstream body could not be read whole.
enum BodyFailure {
    /// The upstream sent more or fewer bytes than it declared.
    Length,
    /// The read failed or timed out.
    Read(actix_web::error::PayloadError),
}

/// Reads a body of the declared `length` (at most [`WHOLE_BODY_MAX`]); a body in one chunk is not copied.
async fn read_whole<S>(body: &mut S, length: u64) -> Result<bytes::Bytes, BodyFailure>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, actix_web::error::PayloadError>> + Unpin,
{
    use futures_util::StreamExt;
    let mut whole = bytes::Bytes::new();
    let mut joined: Option<bytes::BytesMut> = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(BodyFailure::Read)?;
        let seen = joined.as_ref().map_or(whole.len(), bytes::BytesMut::len) + chunk.len();
        if seen as u64 > length {
            return Err(BodyFailure::Length);
        }
        match (&mut joined, whole.is_empty()) {
            (Some(buffer), _) => buffer.extend_from_slice(&chunk),
            (None, true) => whole = chunk,
            (None, false) => {
                let mut buffer = bytes::BytesMut::with_capacity(length as usize);
                buffer.extend_from_slice(&whole);
                buffer.extend_from_slice(&chunk);
                joined = Some(buffer);
            }
        }
    }
    let whole = joined.map_or(whole, bytes::BytesMut::freeze);
    match whole.len() as u64 == length {
        true => Ok(whole),
        false => Err(BodyFailure::Length),
    }
}

/// The rejection, and a log line, for an upstream body that could not be read whole.
fn upstream_body_failed(route: &Route, failure: BodyFailure) -> Rejection {
    match failure {
        BodyFailure::Read(actix_web::error::PayloadError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
            log::warn!("upstream {} timed out sending its body", route.upstream);
            Rejection::UpstreamTimeout
        }
        BodyFailure::Read(e) => {
            log::warn!("upstream {} failed sending its body: {e}", route.upstream);
            Rejection::UpstreamUnavailable
        }
        BodyFailure::Length => {
            log::warn!("upstream {} sent a body of another length than it declared", route.upstream);
            Rejection::UpstreamUnavailable
        }
    }
}

//! A fake OAuth 2.0 / OpenID Connect authorization server.
//!
//! [`FakeAs`] serves, on 127.0.0.1 over plain HTTP or, with [`FakeAsOptions::tls`], over HTTPS
//! (optionally asking clients for a certificate):
//!
//! * discovery documents (`/.well-known/openid-configuration` and/or
//!   `/.well-known/oauth-authorization-server`, see [`Discovery`]),
//! * `GET /jwks` with the current public signing key,
//! * `POST /introspect` (RFC 7662 JSON, RFC 9701 `application/token-introspection+jwt`, or
//!   the phantom-token `application/jwt` contract, chosen by the `Accept` header),
//! * `GET /authorize`: the authorization-code flow with PKCE S256 for one registered web
//!   client, logging a configurable user in without any human interaction,
//! * `POST /token` (client credentials, authorization code and refresh token grants; refresh
//!   tokens rotate),
//! * `GET|POST /userinfo`,
//! * `POST /revoke` (access and refresh tokens, RFC 7009),
//! * `GET /logout` (a stub end-session endpoint).
//!
//! Opaque tokens are registered with [`FakeAs::issue`]; the answers can be slowed down,
//! replaced by an error status or corrupted in many ways through [`Behaviour`] and [`Tamper`].
//! OIDC Back-Channel Logout tokens for the sessions created by the login flow are minted with
//! [`FakeAs::logout_token`].
//!
//! Clients authenticate with `client_secret_basic` or `client_secret_post`, with `private_key_jwt`
//! once a public key is registered for them ([`FakeAs::register_client_jwk`]: the assertion's
//! signature, `iss` = `sub` = the client, `aud` = the issuer or the endpoint, `exp`, `iat` and a
//! never-seen `jti` are checked), or with `tls_client_auth` once a subject DN is registered for them
//! ([`FakeAs::register_client_cert`]: the TLS client certificate must be issued by
//! [`FakeAsTls::client_ca_pem`] and carry that subject).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use josekit::jwk::{Ed25519, KeyPair};
use josekit::jws::{EdDSA, JwsSigner, JwsVerifier, ES256, HS256, RS256};
use openssl::x509::X509;
use serde_json::{json, Map, Value};

mod code_flow;
mod hostile;

pub use hostile::Oversize;

use code_flow::Flow;

/// Which discovery document(s) the fake authorization server publishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Discovery {
    /// Only `/.well-known/openid-configuration` (OpenID Connect Discovery).
    #[default]
    Oidc,
    /// Only `/.well-known/oauth-authorization-server` (RFC 8414).
    Oauth,
    /// Both well-known paths.
    Both,
}

/// Start-up options for [`FakeAs`].
#[derive(Clone, Debug)]
pub struct FakeAsOptions {
    /// Address to listen on; `None` means `127.0.0.1:0` (a free port).
    pub addr: Option<SocketAddr>,
    /// Signing algorithm, and so the key type generated at start: `"ES256"` (default),
    /// `"RS256"` or `"EdDSA"` (Ed25519).
    pub alg: &'static str,
    /// The client id of the introspecting client (the gateway). Default `"gateway"`.
    pub client_id: String,
    /// The secret of the introspecting client. Default `"gateway-secret"`.
    pub client_secret: String,
    /// Which well-known discovery path(s) answer; the others answer 404.
    pub discovery: Discovery,
    /// The client id of the registered web client (the token handler) that may use the
    /// authorization-code flow. Default `"webapp"`.
    pub web_client_id: String,
    /// The secret of the web client (HTTP Basic or `client_secret_post`). Default
    /// `"webapp-secret"`.
    pub web_client_secret: String,
    /// The only `redirect_uri` the web client may use (exact string match). Default
    /// `"http://127.0.0.1:8080/callback"`.
    pub web_redirect_uri: String,
    /// Serve HTTPS with this certificate instead of plain HTTP (the URL becomes `https://…`).
    pub tls: Option<FakeAsTls>,
}

/// The fake authorization server's TLS settings.
#[derive(Clone, Debug)]
pub struct FakeAsTls {
    /// The server certificate (PEM), valid for 127.0.0.1.
    pub cert_pem: Vec<u8>,
    /// Its private key (PEM).
    pub key_pem: Vec<u8>,
    /// When set, clients are asked for a certificate (but not required to send one), and a
    /// certificate issued by this CA (PEM) can authenticate a client with `tls_client_auth`.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl Default for FakeAsOptions {
    fn default() -> Self {
        FakeAsOptions {
            addr: None,
            alg: "ES256",
            client_id: "gateway".to_string(),
            client_secret: "gateway-secret".to_string(),
            discovery: Discovery::Oidc,
            web_client_id: "webapp".to_string(),
            web_client_secret: "webapp-secret".to_string(),
            web_redirect_uri: "http://127.0.0.1:8080/callback".to_string(),
            tls: None,
        }
    }
}

/// What an opaque token registered with [`FakeAs::issue`] stands for.
#[derive(Clone, Debug, Default)]
pub struct TokenSpec {
    /// Whether the token is active (before expiry is considered).
    pub active: bool,
    /// Subject (`sub`), omitted from answers when `None`.
    pub sub: Option<String>,
    /// Space-separated scopes (`scope`), omitted when `None`.
    pub scope: Option<String>,
    /// The client the token was issued to (`client_id`), omitted when `None`.
    pub client_id: Option<String>,
    /// Audience (`aud`): a string or an array of strings, omitted when `None`.
    pub aud: Option<Value>,
    /// Expiry in unix seconds; `None` means the token has no `exp`. A token whose `exp`
    /// is in the past is answered as inactive.
    pub exp: Option<i64>,
    /// Extra claims copied into every active answer (after the standard ones, so they
    /// may override them).
    pub extra: Map<String, Value>,
    /// The RFC 7662 `token_type` of active answers; `None` omits it, as node-oidc-provider does for
    /// refresh tokens (and only for them). A token without one is no access token: the `application/jwt`
    /// contract answers 204 for it and userinfo refuses it.
    pub token_type: Option<String>,
}

impl TokenSpec {
    /// An active token for `sub` with `scope`, issued to client `"client-1"`, without
    /// audience, expiring `ttl_secs` seconds from now.
    pub fn active(sub: &str, scope: &str, ttl_secs: i64) -> TokenSpec {
        TokenSpec {
            active: true,
            sub: Some(sub.to_string()),
            scope: Some(scope.to_string()),
            client_id: Some("client-1".to_string()),
            aud: None,
            exp: Some(now() + ttl_secs),
            extra: Map::new(),
            token_type: Some("Bearer".to_string()),
        }
    }

    /// A refresh token of session `sid`, answered as node-oidc-provider answers for one: active, with
    /// `sub`, `client_id`, `scope`, `sid`, `exp` and `iat`, but no `token_type` and no `aud`.
    pub fn refresh_token(sub: &str, client_id: &str, scope: &str, sid: &str, ttl_secs: i64) -> TokenSpec {
        let mut extra = Map::new();
        extra.insert("sid".into(), json!(sid));
        TokenSpec {
            active: true,
            sub: Some(sub.to_string()),
            scope: Some(scope.to_string()),
            client_id: Some(client_id.to_string()),
            aud: None,
            exp: Some(now() + ttl_secs),
            extra,
            token_type: None,
        }
    }

    /// Whether the token is an access token (it has a `token_type`).
    fn is_access_token(&self) -> bool {
        self.token_type.is_some()
    }
}

/// Knobs that change how the introspection endpoint answers. Set with
/// [`FakeAs::set_behaviour`]; the default is a well-behaved server.
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Answer (authenticated) introspection requests with this status and a small JSON
    /// error body instead of the real answer.
    pub status: Option<u16>,
    /// Sleep this long (asynchronously) before answering an authenticated introspection.
    pub delay_ms: u64,
    /// `Cache-Control` header on introspection answers; `None` means `"no-store"`.
    pub cache_control: Option<String>,
    /// How to corrupt JWT answers (RFC 9701 and `application/jwt` modes).
    pub tamper: Tamper,
    /// In `application/jwt` mode, answer an inactive token with `200 {"active":false}`
    /// (JSON) instead of `204 No Content`.
    pub inactive_as_json_in_jwt_mode: bool,
}

/// Ways to corrupt the JWTs the fake authorization server returns.
///
/// "jwt mode" is the `Accept: application/jwt` phantom-token contract (the answer is an
/// access-token JWT); "rfc9701" is `Accept: application/token-introspection+jwt`. Variants
/// marked for one mode leave the other mode's answers untouched; unmarked ones apply to
/// both.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Tamper {
    /// No corruption.
    #[default]
    None,
    /// Header `{"alg":"none"}` (the RFC 9701 `typ` is kept, `kid` dropped) and an empty
    /// signature.
    AlgNone,
    /// Signed by a different key of the same type, under the real `kid`.
    WrongKey,
    /// Signed by a different key under a `kid` that is not in the JWKS.
    UnknownKid,
    /// Signed by the real key, without a `kid` header.
    NoKid,
    /// `alg` HS256 with the HMAC key being the PEM of the server's public key; `kid` is
    /// the real kid (the classic algorithm-confusion attack).
    Hs256WithPublicKey,
    /// Like [`Tamper::Hs256WithPublicKey`], but the HMAC key is the public JWK's JSON text
    /// as served in the JWKS.
    Hs256WithJwkJson,
    /// `iss` = `"https://evil.example"`.
    WrongIss,
    /// rfc9701: `aud` = `"someone-else"`.
    WrongAud,
    /// rfc9701: header `typ` `"JWT"` instead of `"token-introspection+jwt"`.
    TypJwt,
    /// `exp` = now - 600: the access token's in jwt mode, the answer's own in rfc9701 (a stale
    /// answer replayed).
    Expired,
    /// jwt mode: no `exp` claim.
    MissingExp,
    /// `nbf` = now + 600.
    NotYetValid,
    /// `iat` = now + 600.
    FutureIat,
    /// rfc9701: no `iat` claim.
    MissingIat,
    /// Adds header `"jku": "http://127.0.0.1:1/keys"`; the signature is still valid with
    /// the real key.
    JkuHeader,
    /// rfc9701: `token_introspection.active` = `"true"` (a string), for active and
    /// inactive tokens alike.
    ActiveString,
    /// Signed by the real key, then bytes of the signature are flipped.
    BadSignature,
    /// Signed by the real key under this `kid` (path traversal, SQL-ish and other hostile key
    /// ids): a key id may only name a key of the JWKS, never be resolved any other way.
    Kid(String),
    /// Signed by a key that is not in the JWKS, which the header names or carries instead.
    ForeignKey(ForeignKey),
    /// A header parameter set to this value (`typ`, `alg`, `crit`, …); still signed by the real
    /// key under the real `kid`.
    Header(String, Value),
}

/// Where the header of a [`Tamper::ForeignKey`] JWT finds the attacker's key (RFC 7515 §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForeignKey {
    /// `jku`: the URL of a JWK Set, with the attacker key's `kid`.
    Jku(String),
    /// `x5u`: the URL of an X.509 certificate, with the attacker key's `kid`.
    X5u(String),
    /// `jwk`: the attacker's public key itself, without `kid`.
    Jwk,
    /// `x5c`: a self-signed certificate of the attacker's key, without `kid`.
    X5c,
}

/// What the last call to the introspection endpoint looked like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntrospectionRecord {
    /// `"client_secret_basic"`, `"client_secret_post"`, `"private_key_jwt"`, `"tls_client_auth"`
    /// or `"none"`.
    pub auth_method: String,
    /// The `Accept` header (all values joined with `", "`), empty when absent.
    pub accept: String,
    /// The `token` form field, empty when absent.
    pub token: String,
    /// The client id the caller presented (whether or not it was correct).
    pub client_id: Option<String>,
    /// With `private_key_jwt`: the client assertion's claims (whether or not it verified).
    pub assertion_claims: Option<Value>,
    /// Why client authentication failed, when it did.
    pub auth_error: Option<String>,
}

/// What to put into an OIDC Back-Channel Logout token minted by [`FakeAs::logout_token`].
///
/// The default is a well-formed token without `sid` or `sub` (set at least one of them for a
/// token that is valid under the specification): `events` present, no `nonce`, the real key,
/// `iss` = the issuer, `aud` = the web client id and `iat` = now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogoutSpec {
    /// The `sid` claim (the session id, as in the ID token); omitted when `None`.
    pub sid: Option<String>,
    /// The `sub` claim; omitted when `None`.
    pub sub: Option<String>,
    /// The `aud` claim; `None` means the web client id.
    pub aud: Option<String>,
    /// The `iat` claim in unix seconds; `None` means now.
    pub iat: Option<i64>,
    /// Seconds from `iat` to `exp`; `None` means 120.
    pub lifetime: Option<i64>,
    /// Includes a fresh `jti` claim (default `true`).
    pub jti: bool,
    /// Adds a `nonce` claim (which a logout token must not have).
    pub nonce: bool,
    /// Includes the `events` claim with the back-channel logout event (default `true`);
    /// `false` omits the claim altogether.
    pub events: bool,
    /// Signs with a key that is not in the JWKS, under the real `kid`.
    pub wrong_key: bool,
    /// The `typ` header; `None` means `logout+jwt`.
    pub typ: Option<String>,
    /// The `iss` claim; `None` means the issuer ([`FakeAs::url`]).
    pub iss: Option<String>,
}

impl Default for LogoutSpec {
    fn default() -> Self {
        LogoutSpec {
            sid: None,
            sub: None,
            aud: None,
            iat: None,
            lifetime: None,
            jti: true,
            nonce: false,
            events: true,
            wrong_key: false,
            iss: None,
            typ: None,
        }
    }
}

/// A fake OAuth 2.0 / OIDC authorization server served over real HTTP on 127.0.0.1.
///
/// The server runs on its own thread with a one-worker actix-web server and stops when
/// the value is dropped. [`FakeAs::stop`] and [`FakeAs::restart`] take it down and bring it
/// back on the same address, with the same tokens and keys (fault-injection tests).
pub struct FakeAs {
    inner: Arc<Inner>,
    addr: SocketAddr,
    /// The running server, `None` while stopped.
    server: Mutex<Option<(ServerHandle, JoinHandle<()>)>>,
}

impl FakeAs {
    /// Starts a server with [`FakeAsOptions::default`].
    pub fn start() -> FakeAs {
        FakeAs::start_with(FakeAsOptions::default())
    }

    /// Starts a server with the given options. Returns once the socket is bound and the
    /// server is running. Panics if the address cannot be bound.
    pub fn start_with(opts: FakeAsOptions) -> FakeAs {
        let bind = opts.addr.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let listener = TcpListener::bind(bind).unwrap_or_else(|e| panic!("fake AS: cannot bind {bind}: {e}"));
        let addr = listener.local_addr().expect("fake AS: no local address");
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{addr}");
        let key = SigningKey::generate(opts.alg, "k1");
        let client_ca = opts
            .tls
            .as_ref()
            .and_then(|t| t.client_ca_pem.as_deref())
            .map(|pem| X509::from_pem(pem).expect("fake AS: client CA is not a PEM certificate"));
        let inner = Arc::new(Inner {
            url,
            opts,
            tokens: Mutex::new(HashMap::new()),
            behaviour: Mutex::new(Behaviour::default()),
            key: Mutex::new(Arc::new(key)),
            key_counter: AtomicUsize::new(1),
            other_key: OnceLock::new(),
            introspections: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
            discovery_fetches: AtomicUsize::new(0),
            last: Mutex::new(None),
            flow: Mutex::new(Flow::new()),
            refresh_grants: AtomicUsize::new(0),
            code_grants: AtomicUsize::new(0),
            userinfo_calls: AtomicUsize::new(0),
            client_jwks: Mutex::new(HashMap::new()),
            client_dns: Mutex::new(HashMap::new()),
            jtis: Mutex::new(HashSet::new()),
            client_ca,
            hostile: hostile::Hostile::default(),
        });

        let server = serve(inner.clone(), listener);
        FakeAs { inner, addr, server: Mutex::new(Some(server)) }
    }

    /// Stops answering, as an authorization server that went down, and returns once it is down: requests
    /// in flight are answered (within a second), then every connection is closed and so is the listening
    /// socket, so that callers get "connection refused". Tokens, keys and counters are kept for
    /// [`FakeAs::restart`]. Idempotent. Takes `&self`, so that a test can take the server down while its
    /// clients keep issuing tokens.
    pub fn stop(&self) {
        self.shut_down(true);
        // The accept thread closes the listening socket on its own time.
        for _ in 0..200 {
            if std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(100)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("fake AS: {} still accepts connections after stop", self.addr);
    }

    /// Stops the server: `graceful` waits until its workers are done (a forced stop leaves them serving
    /// open connections for a moment after it returns).
    fn shut_down(&self, graceful: bool) {
        let server = lock(&self.server).take();
        if let Some((handle, thread)) = server {
            // The stop command is sent eagerly; the returned future only waits for it. The server thread ends
            // once the server has stopped (for a graceful stop: once its workers have).
            drop(handle.stop(graceful));
            let _ = thread.join();
        }
    }

    /// Serves again on the same address, with the same tokens and keys, after [`FakeAs::stop`]. Panics if
    /// the address cannot be bound again. A no-op while running.
    pub fn restart(&self) {
        let mut server = lock(&self.server);
        if server.is_some() {
            return;
        }
        let listener =
            TcpListener::bind(self.addr).unwrap_or_else(|e| panic!("fake AS: cannot bind {} again: {e}", self.addr));
        *server = Some(serve(self.inner.clone(), listener));
    }

    /// The base URL, `http://127.0.0.1:PORT`; this is also the `issuer` (no trailing slash).
    pub fn url(&self) -> String {
        self.inner.url.clone()
    }

    /// Registers (or replaces) an opaque token.
    pub fn issue(&self, token: &str, spec: TokenSpec) {
        self.inner.issue(token, spec);
    }

    /// Makes a token inactive (a no-op for unknown tokens, which are inactive anyway).
    pub fn revoke(&self, token: &str) {
        self.inner.revoke(token);
    }

    /// Number of POSTs to the introspection endpoint so far, whatever their outcome.
    pub fn introspections(&self) -> usize {
        self.inner.introspections.load(Ordering::SeqCst)
    }

    /// Number of `GET /jwks` requests so far.
    pub fn jwks_fetches(&self) -> usize {
        self.inner.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Number of discovery documents served so far (requests to a well-known path that is
    /// not published, and so answered 404, are not counted).
    pub fn discovery_fetches(&self) -> usize {
        self.inner.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Replaces the current introspection knobs.
    pub fn set_behaviour(&self, b: Behaviour) {
        *lock(&self.inner.behaviour) = b;
    }

    /// Generates a new signing key (same algorithm) with a new `kid`; from now on the JWKS
    /// serves only the new key and all answers are signed with it.
    pub fn rotate_key(&self) {
        let n = self.inner.key_counter.fetch_add(1, Ordering::SeqCst) + 1;
        let key = SigningKey::generate(self.inner.opts.alg, &format!("k{n}"));
        *lock(&self.inner.key) = Arc::new(key);
    }

    /// Lets `client_id` authenticate with `private_key_jwt`, verifying its assertions with this
    /// public JWK (as registered at a real authorization server).
    pub fn register_client_jwk(&self, client_id: &str, jwk: Value) {
        lock(&self.inner.client_jwks).insert(client_id.to_string(), jwk);
    }

    /// Lets `client_id` authenticate with `tls_client_auth`: a TLS client certificate issued by
    /// the client CA with this subject DN (as [`crate::tls::Issued::subject_dn`] writes it).
    pub fn register_client_cert(&self, client_id: &str, subject_dn: &str) {
        lock(&self.inner.client_dns).insert(client_id.to_string(), subject_dn.to_string());
    }

    /// What the last introspection request looked like, if there was one.
    pub fn last_introspection(&self) -> Option<IntrospectionRecord> {
        lock(&self.inner.last).clone()
    }

    /// The JWKS currently served at `/jwks`.
    pub fn public_jwks(&self) -> Value {
        self.inner.jwks()
    }

    /// The `kid` of the current signing key.
    pub fn kid(&self) -> String {
        self.inner.current_key().kid.clone()
    }

    /// The query parameters (decoded, in order) of the last `GET /authorize` request,
    /// whatever its outcome; `None` before the first one.
    pub fn last_authorize(&self) -> Option<Vec<(String, String)>> {
        lock(&self.inner.flow).last_authorize.clone()
    }

    /// Sets the subject that later `GET /authorize` requests log in (default `"alice"`).
    pub fn set_login_user(&self, sub: &str) {
        lock(&self.inner.flow).login_user = sub.to_string();
    }

    /// When `Some(error)`, valid `GET /authorize` requests redirect back with
    /// `error=<error>&error_description=...&state=<state>` instead of a code; `None`
    /// (the default) restores normal logins.
    pub fn set_authorize_error(&self, error: Option<&str>) {
        lock(&self.inner.flow).authorize_error = error.map(str::to_string);
    }

    /// Number of `refresh_token` grant requests to `POST /token` so far, successful or not.
    pub fn refresh_grants(&self) -> usize {
        self.inner.refresh_grants.load(Ordering::SeqCst)
    }

    /// Number of `authorization_code` grant requests to `POST /token` so far, successful or
    /// not.
    pub fn code_grants(&self) -> usize {
        self.inner.code_grants.load(Ordering::SeqCst)
    }

    /// Makes the token endpoint sleep (asynchronously) this long before it handles a
    /// `refresh_token` grant; `0` (the default) means no delay.
    pub fn set_refresh_delay_ms(&self, ms: u64) {
        lock(&self.inner.flow).refresh_delay_ms = ms;
    }

    /// Sets the lifetime (`expires_in`, and so `exp`) of access tokens issued from now on by
    /// every grant of the token endpoint; default 300. Zero or negative values issue tokens
    /// that are already (about to be) expired. Refresh tokens never expire.
    pub fn set_access_ttl(&self, secs: i64) {
        lock(&self.inner.flow).access_ttl = secs;
    }

    /// Whether `refresh_token` grants also return a fresh `id_token` (same `sub`, `sid` and
    /// `auth_time`, no `nonce`); default `false`.
    pub fn set_id_token_on_refresh(&self, on: bool) {
        lock(&self.inner.flow).id_token_on_refresh = on;
    }

    /// Replaces (or adds) members of the discovery document, e.g. an `introspection_endpoint` on another
    /// origin; an empty map restores the real document.
    pub fn set_discovery_members(&self, members: Map<String, Value>) {
        self.inner.hostile.set_discovery_members(members);
    }

    /// Streams `answer` instead of every successful answer of `path` (`"/jwks"`, `"/introspect"`,
    /// `"/token"`, `"/userinfo"`, `"/.well-known/openid-configuration"`, …); `None` restores the real ones.
    pub fn set_oversize(&self, path: &str, answer: Option<Oversize>) {
        self.inner.hostile.set_oversize(path, answer);
    }

    /// The most bytes one oversize answer handed to its connection so far: a client that stops reading
    /// stops it growing (beyond what the sockets buffer, a few MiB on loopback).
    pub fn oversize_bytes_sent(&self) -> u64 {
        self.inner.hostile.oversize_bytes_sent()
    }

    /// Number of requests to the userinfo endpoint so far, whatever their outcome.
    pub fn userinfo_calls(&self) -> usize {
        self.inner.userinfo_calls.load(Ordering::SeqCst)
    }

    /// Every `token` value accepted by `POST /revoke` so far, in order (known or not).
    /// Tokens revoked with [`FakeAs::revoke`] are not listed.
    pub fn revoked(&self) -> Vec<String> {
        lock(&self.inner.flow).revoked.clone()
    }

    /// The login session an access token issued by the authorization-code or refresh grant
    /// belongs to, as `(sid, sub)`; `None` for other or unknown tokens. The answer does not
    /// depend on whether the token is still active.
    pub fn session_of(&self, access_token: &str) -> Option<(String, String)> {
        self.inner.session_of(access_token)
    }

    /// A signed OIDC Back-Channel Logout token (`typ` `logout+jwt`) as described by `spec`.
    pub fn logout_token(&self, spec: LogoutSpec) -> String {
        self.inner.logout_token(spec)
    }
}

impl Drop for FakeAs {
    fn drop(&mut self) {
        self.shut_down(false);
    }
}

/// Runs the server for `inner` on `listener` (over TLS when its options ask for it) on its own thread;
/// returns once it is running.
fn serve(inner: Arc<Inner>, listener: TcpListener) -> (ServerHandle, JoinHandle<()>) {
    let acceptor = inner.opts.tls.as_ref().map(|t| tls_acceptor(t, inner.client_ca.as_ref()));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let data = web::Data::from(inner);
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(format!("fake-as-{port}"))
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    let state = data.clone();
                    App::new()
                        .app_data(data.clone())
                        .wrap_fn(move |req, srv| {
                            use actix_web::dev::Service;
                            let plan = state.hostile.plan(req.path());
                            let state = state.clone();
                            let answer = srv.call(req);
                            async move {
                                let res = answer.await?;
                                Ok(match plan {
                                    Some(plan) => state.hostile.inflate(plan, res).await,
                                    None => res,
                                })
                            }
                        })
                        .configure(routes)
                })
                .on_connect(remember_peer_certificate)
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1);
                let server = match acceptor {
                    Some(acceptor) => server.listen_openssl(listener, acceptor),
                    None => server.listen(listener),
                };
                let server = match server {
                    Ok(s) => s.run(),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let _ = tx.send(Ok(server.handle()));
                let _ = server.await;
            });
        })
        .expect("fake AS: cannot spawn server thread");
    match rx.recv() {
        Ok(Ok(h)) => (h, thread),
        Ok(Err(e)) => panic!("fake AS: cannot start server: {e}"),
        Err(_) => panic!("fake AS: server thread died during start-up"),
    }
}

// ---------------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------------

struct Entry {
    spec: TokenSpec,
    issued_at: i64,
}

struct Inner {
    url: String,
    opts: FakeAsOptions,
    tokens: Mutex<HashMap<String, Entry>>,
    behaviour: Mutex<Behaviour>,
    key: Mutex<Arc<SigningKey>>,
    key_counter: AtomicUsize,
    other_key: OnceLock<SigningKey>,
    introspections: AtomicUsize,
    jwks_fetches: AtomicUsize,
    discovery_fetches: AtomicUsize,
    last: Mutex<Option<IntrospectionRecord>>,
    /// Authorization-code flow state: codes, sessions, refresh tokens and its knobs.
    flow: Mutex<Flow>,
    refresh_grants: AtomicUsize,
    code_grants: AtomicUsize,
    userinfo_calls: AtomicUsize,
    /// Public JWKs of `private_key_jwt` clients.
    client_jwks: Mutex<HashMap<String, Value>>,
    /// Subject DNs of `tls_client_auth` clients.
    client_dns: Mutex<HashMap<String, String>>,
    /// Client assertion ids seen so far (replays are refused).
    jtis: Mutex<HashSet<String>>,
    /// The CA whose certificates may authenticate clients.
    client_ca: Option<X509>,
    /// Tampered discovery members and oversize answers.
    hostile: hostile::Hostile,
}

/// The certificate a TLS client presented on its connection.
#[derive(Clone)]
struct PeerCertificate(X509);

fn remember_peer_certificate(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::openssl::TlsStream<actix_web::rt::net::TcpStream>;
    if let Some(cert) = conn.downcast_ref::<Tls>().and_then(|tls| tls.ssl().peer_certificate()) {
        ext.insert(PeerCertificate(cert));
    }
}

/// The server's TLS acceptor; with a client CA it asks for (but does not require) a client
/// certificate, accepting any, so that the application decides (as `tls_client_auth` servers do).
fn tls_acceptor(tls: &FakeAsTls, client_ca: Option<&X509>) -> openssl::ssl::SslAcceptorBuilder {
    use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("fake AS: TLS acceptor");
    let cert = X509::from_pem(&tls.cert_pem).expect("fake AS: certificate is not PEM");
    let key = openssl::pkey::PKey::private_key_from_pem(&tls.key_pem).expect("fake AS: key is not PEM");
    b.set_certificate(&cert).expect("fake AS: certificate");
    b.set_private_key(&key).expect("fake AS: key");
    if let Some(ca) = client_ca {
        b.add_client_ca(ca).expect("fake AS: client CA");
        b.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
    }
    b
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn random_b64(n: usize) -> String {
    let mut buf = vec![0u8; n];
    openssl::rand::rand_bytes(&mut buf).expect("openssl rand_bytes failed");
    URL_SAFE_NO_PAD.encode(buf)
}

impl Inner {
    fn issue(&self, token: &str, spec: TokenSpec) {
        lock(&self.tokens).insert(token.to_string(), Entry { spec, issued_at: now() });
    }

    fn revoke(&self, token: &str) {
        if let Some(e) = lock(&self.tokens).get_mut(token) {
            e.spec.active = false;
        }
    }

    fn current_key(&self) -> Arc<SigningKey> {
        lock(&self.key).clone()
    }

    fn other_key(&self) -> &SigningKey {
        self.other_key.get_or_init(|| SigningKey::generate(self.opts.alg, "other"))
    }

    fn jwks(&self) -> Value {
        json!({ "keys": [self.current_key().public_jwk.clone()] })
    }

    /// Whether `token` is a known access token (whether or not it is active).
    fn is_access_token(&self, token: &str) -> bool {
        lock(&self.tokens).get(token).is_some_and(|e| e.spec.is_access_token())
    }

    /// The `token_type` of `token`'s active answers.
    fn token_type(&self, token: &str) -> Option<String> {
        lock(&self.tokens).get(token).and_then(|e| e.spec.token_type.clone())
    }

    /// The claims of an active token as of `now`, or `None` if it is inactive.
    fn active_claims(&self, token: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
        let tokens = lock(&self.tokens);
        let e = tokens.get(token)?;
        if !e.spec.active || e.spec.exp.is_some_and(|exp| exp < now()) {
            return None;
        }
        let mut m = Map::new();
        if let Some(sub) = &e.spec.sub {
            m.insert("sub".into(), json!(sub));
        }
        if let Some(scope) = &e.spec.scope {
            m.insert("scope".into(), json!(scope));
        }
        if let Some(cid) = &e.spec.client_id {
            m.insert("client_id".into(), json!(cid));
        }
        if let Some(aud) = &e.spec.aud {
            m.insert("aud".into(), aud.clone());
        }
        if let Some(exp) = e.spec.exp {
            m.insert("exp".into(), json!(exp));
        }
        m.insert("iat".into(), json!(e.issued_at));
        Some((m, e.spec.extra.clone()))
    }

    /// RFC 7662 member set: `{"active":true, sub, scope, client_id, aud?, exp?, iat,
    /// token_type?, ...extra}` or `{"active":false}`.
    fn introspection_json(&self, token: &str) -> Value {
        match self.active_claims(token) {
            Some((claims, extra)) => {
                let mut m = Map::new();
                m.insert("active".into(), json!(true));
                m.extend(claims);
                if let Some(token_type) = self.token_type(token) {
                    m.insert("token_type".into(), json!(token_type));
                }
                m.extend(extra);
                Value::Object(m)
            }
            None => json!({ "active": false }),
        }
    }

    fn discovery_doc(&self) -> Value {
        let u = &self.url;
        json!({
            "issuer": u,
            "authorization_endpoint": format!("{u}/authorize"),
            "token_endpoint": format!("{u}/token"),
            "introspection_endpoint": format!("{u}/introspect"),
            "revocation_endpoint": format!("{u}/revoke"),
            "userinfo_endpoint": format!("{u}/userinfo"),
            "end_session_endpoint": format!("{u}/logout"),
            "jwks_uri": format!("{u}/jwks"),
            "grant_types_supported": ["client_credentials", "authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.opts.alg],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"],
            "introspection_signed_response_alg_values_supported": [self.opts.alg],
            "scopes_supported": ["openid", "profile", "email", "read", "write"],
            "code_challenge_methods_supported": ["S256"],
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "auth_time", "nonce", "sid", "name", "email"],
        })
    }
}

// ---------------------------------------------------------------------------------------
// Keys and JWS assembly
// ---------------------------------------------------------------------------------------

struct SigningKey {
    kid: String,
    alg: &'static str,
    signer: Box<dyn JwsSigner>,
    public_jwk: Value,
    public_pem: Vec<u8>,
    private_der: Vec<u8>,
}

impl SigningKey {
    fn generate(alg: &'static str, kid: &str) -> SigningKey {
        let (signer, mut jwk, public_pem, private_der): (Box<dyn JwsSigner>, _, _, _) = match alg {
            "ES256" => {
                let kp = ES256.generate_key_pair().expect("ES256 key generation");
                let signer = ES256.signer_from_der(kp.to_der_private_key()).expect("ES256 signer");
                (Box::new(signer), kp.to_jwk_public_key(), kp.to_pem_public_key(), kp.to_der_private_key())
            }
            "RS256" => {
                let kp = RS256.generate_key_pair(2048).expect("RS256 key generation");
                let signer = RS256.signer_from_der(kp.to_der_private_key()).expect("RS256 signer");
                (Box::new(signer), kp.to_jwk_public_key(), kp.to_pem_public_key(), kp.to_der_private_key())
            }
            "EdDSA" => {
                let kp = EdDSA.generate_key_pair(Ed25519).expect("Ed25519 key generation");
                let signer = EdDSA.signer_from_der(kp.to_der_private_key()).expect("EdDSA signer");
                (Box::new(signer), kp.to_jwk_public_key(), kp.to_pem_public_key(), kp.to_der_private_key())
            }
            other => panic!("fake AS: unsupported alg {other:?} (use ES256, RS256 or EdDSA)"),
        };
        jwk.set_key_id(kid);
        jwk.set_algorithm(alg);
        jwk.set_key_use("sig");
        let public_jwk = Value::Object(jwk.as_ref().clone());
        SigningKey { kid: kid.to_string(), alg, signer, public_jwk, public_pem, private_der }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.signer.sign(input).expect("JWS signing failed")
    }

    /// A DER X.509 certificate of this key, self-signed, valid for a day (for `x5c` headers).
    fn self_signed_certificate(&self) -> Vec<u8> {
        use openssl::asn1::Asn1Time;
        use openssl::bn::BigNum;
        use openssl::hash::MessageDigest;
        use openssl::pkey::PKey;
        use openssl::x509::{X509Builder, X509NameBuilder};
        let key = PKey::private_key_from_der(&self.private_der).expect("own private key");
        let mut name = X509NameBuilder::new().expect("X.509 name");
        name.append_entry_by_text("CN", "attacker.example").expect("CN");
        let name = name.build();
        let mut cert = X509Builder::new().expect("X.509 builder");
        cert.set_version(2).expect("version");
        cert.set_serial_number(&BigNum::from_u32(1).and_then(|n| n.to_asn1_integer()).expect("serial"))
            .expect("serial");
        cert.set_subject_name(&name).expect("subject");
        cert.set_issuer_name(&name).expect("issuer");
        cert.set_pubkey(&key).expect("public key");
        cert.set_not_before(&Asn1Time::days_from_now(0).expect("now")).expect("not before");
        cert.set_not_after(&Asn1Time::days_from_now(1).expect("tomorrow")).expect("not after");
        // Ed25519 signs the message itself, without a separate digest.
        let digest = if self.alg == "EdDSA" { MessageDigest::null() } else { MessageDigest::sha256() };
        cert.sign(&key, digest).expect("self-signature");
        cert.build().to_der().expect("DER certificate")
    }
}

fn b64_json(m: &Map<String, Value>) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(m).expect("serialise JSON"))
}

fn hmac_sha256(key: &[u8], input: &[u8]) -> Vec<u8> {
    HS256.signer_from_bytes(key).expect("HS256 signer").sign(input).expect("HS256 signing failed")
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JwtMode {
    /// RFC 9701 signed introspection response.
    Rfc9701,
    /// `application/jwt`: the answer is the access token itself.
    AccessToken,
}

impl Inner {
    /// Builds the compact JWS for an answer, applying `tamper`.
    fn sign_answer(&self, mode: JwtMode, typ: &str, mut claims: Map<String, Value>, tamper: &Tamper) -> String {
        let now = now();
        let key = self.current_key();
        let rfc = mode == JwtMode::Rfc9701;
        let mut header = Map::new();
        header.insert("typ".into(), json!(typ));
        header.insert("alg".into(), json!(key.alg));
        header.insert("kid".into(), json!(key.kid));

        match tamper {
            Tamper::WrongIss => {
                claims.insert("iss".into(), json!("https://evil.example"));
            }
            Tamper::WrongAud if rfc => {
                claims.insert("aud".into(), json!("someone-else"));
            }
            Tamper::TypJwt if rfc => {
                header.insert("typ".into(), json!("JWT"));
            }
            Tamper::Expired => {
                claims.insert("exp".into(), json!(now - 600));
            }
            Tamper::MissingExp if !rfc => {
                claims.remove("exp");
            }
            Tamper::NotYetValid => {
                claims.insert("nbf".into(), json!(now + 600));
            }
            Tamper::FutureIat => {
                claims.insert("iat".into(), json!(now + 600));
            }
            Tamper::MissingIat if rfc => {
                claims.remove("iat");
            }
            Tamper::JkuHeader => {
                header.insert("jku".into(), json!("http://127.0.0.1:1/keys"));
            }
            Tamper::ActiveString if rfc => {
                if let Some(Value::Object(ti)) = claims.get_mut("token_introspection") {
                    ti.insert("active".into(), json!("true"));
                }
            }
            Tamper::NoKid => {
                header.remove("kid");
            }
            Tamper::AlgNone => {
                header.remove("kid");
                header.insert("alg".into(), json!("none"));
            }
            Tamper::UnknownKid => {
                header.insert("kid".into(), json!(format!("unknown-{}", random_b64(6))));
            }
            Tamper::Hs256WithPublicKey | Tamper::Hs256WithJwkJson => {
                header.insert("alg".into(), json!("HS256"));
            }
            Tamper::Kid(kid) => {
                header.insert("kid".into(), json!(kid));
            }
            Tamper::ForeignKey(reference) => {
                let other = self.other_key();
                header.remove("kid");
                match reference {
                    ForeignKey::Jku(url) | ForeignKey::X5u(url) => {
                        let name = if matches!(reference, ForeignKey::Jku(_)) { "jku" } else { "x5u" };
                        header.insert(name.into(), json!(url));
                        header.insert("kid".into(), json!(other.kid));
                    }
                    ForeignKey::Jwk => {
                        header.insert("jwk".into(), other.public_jwk.clone());
                    }
                    ForeignKey::X5c => {
                        header.insert("x5c".into(), json!([STANDARD.encode(other.self_signed_certificate())]));
                    }
                }
            }
            Tamper::Header(name, value) => {
                header.insert(name.clone(), value.clone());
            }
            _ => {}
        }

        let input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let signature = match tamper {
            Tamper::AlgNone => Vec::new(),
            Tamper::WrongKey | Tamper::UnknownKid | Tamper::ForeignKey(_) => self.other_key().sign(input.as_bytes()),
            Tamper::Hs256WithPublicKey => hmac_sha256(&key.public_pem, input.as_bytes()),
            Tamper::Hs256WithJwkJson => {
                let jwk = serde_json::to_vec(&key.public_jwk).expect("serialise JWK");
                hmac_sha256(&jwk, input.as_bytes())
            }
            Tamper::BadSignature => {
                let mut sig = key.sign(input.as_bytes());
                let n = sig.len();
                for i in [0, n / 2, n - 1] {
                    sig[i] ^= 0x5a;
                }
                sig
            }
            _ => key.sign(input.as_bytes()),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

type State = web::Data<Inner>;

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/openid-configuration", web::get().to(discovery_oidc))
        .route("/.well-known/oauth-authorization-server", web::get().to(discovery_oauth))
        .route("/jwks", web::get().to(jwks))
        .route("/introspect", web::post().to(introspect))
        .route("/token", web::post().to(token))
        .route("/revoke", web::post().to(revoke))
        .route("/authorize", web::get().to(code_flow::authorize))
        .route("/userinfo", web::get().to(code_flow::userinfo))
        .route("/userinfo", web::post().to(code_flow::userinfo))
        .route("/logout", web::get().to(code_flow::end_session));
}

fn json_response(status: StatusCode, body: &Value, cache_control: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, cache_control.to_string()))
        .content_type("application/json")
        .body(body.to_string())
}

fn discovery_answer(st: &Inner, published: bool) -> HttpResponse {
    if !published {
        return json_response(StatusCode::NOT_FOUND, &json!({"error": "not_found"}), "no-store");
    }
    st.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    json_response(StatusCode::OK, &st.hostile.tamper_discovery(st.discovery_doc()), "max-age=300")
}

async fn discovery_oidc(st: State) -> HttpResponse {
    let published = matches!(st.opts.discovery, Discovery::Oidc | Discovery::Both);
    discovery_answer(&st, published)
}

async fn discovery_oauth(st: State) -> HttpResponse {
    let published = matches!(st.opts.discovery, Discovery::Oauth | Discovery::Both);
    discovery_answer(&st, published)
}

async fn jwks(st: State) -> HttpResponse {
    st.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .content_type("application/jwk-set+json")
        .body(st.jwks().to_string())
}

/// Decodes one `application/x-www-form-urlencoded` component.
fn form_decode(s: &str) -> String {
    fn hex_val(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

fn form_get<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Client authentication from HTTP Basic (RFC 6749 §2.3.1), the request body, a client
/// assertion (RFC 7523) or the TLS client certificate (RFC 8705).
struct ClientAuth {
    method: &'static str,
    id: Option<String>,
    secret: Option<String>,
    /// `private_key_jwt` / `tls_client_auth`: whether the proof held, or why not.
    proof: Result<(), String>,
    assertion_claims: Option<Value>,
}

impl ClientAuth {
    fn new(method: &'static str, id: Option<String>, secret: Option<String>) -> ClientAuth {
        ClientAuth { method, id, secret, proof: Err("no proof".into()), assertion_claims: None }
    }

    fn error(&self) -> Option<String> {
        match (self.method, &self.proof) {
            ("private_key_jwt" | "tls_client_auth", Err(e)) => Some(e.clone()),
            _ => None,
        }
    }
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn client_auth(req: &HttpRequest, form: &[(String, String)], st: &Inner) -> ClientAuth {
    if let Some(value) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if value.len() > 6 && value[..6].eq_ignore_ascii_case("basic ") {
            let decoded = STANDARD.decode(value[6..].trim()).ok().map(|b| String::from_utf8_lossy(&b).into_owned());
            let (id, secret) = match decoded.as_deref().and_then(|d| d.split_once(':')) {
                Some((id, secret)) => (Some(form_decode(id)), Some(form_decode(secret))),
                None => (None, None),
            };
            return ClientAuth::new("client_secret_basic", id, secret);
        }
    }
    if form_get(form, "client_assertion_type").is_some() || form_get(form, "client_assertion").is_some() {
        return st.assertion_auth(req, form);
    }
    if let Some(id) = form_get(form, "client_id") {
        let secret = form_get(form, "client_secret").map(str::to_string);
        if secret.is_none() && lock(&st.client_dns).contains_key(id) {
            let mut auth = ClientAuth::new("tls_client_auth", Some(id.to_string()), None);
            auth.proof = st.certificate_proof(req, id);
            return auth;
        }
        return ClientAuth::new("client_secret_post", Some(id.to_string()), secret);
    }
    ClientAuth::new("none", None, None)
}

fn verifier_for(jwk: &josekit::jwk::Jwk, alg: &str) -> Result<Box<dyn JwsVerifier>, String> {
    let verifier: Box<dyn JwsVerifier> = match alg {
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk).map_err(|e| e.to_string())?),
        other => return Err(format!("alg {other} not accepted")),
    };
    Ok(verifier)
}

impl Inner {
    /// `private_key_jwt` (RFC 7523 §3): the assertion's signature with the client's registered
    /// key, `iss` = `sub` = the client, `aud` = the issuer or this endpoint's URL, `exp` in the
    /// future (at most 10 minutes), `iat` not in the future, and a `jti` never seen before.
    fn assertion_auth(&self, req: &HttpRequest, form: &[(String, String)]) -> ClientAuth {
        let assertion = form_get(form, "client_assertion").unwrap_or("");
        let claims: Option<Value> = assertion
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok());
        let issuer = claims.as_ref().and_then(|c| c["iss"].as_str()).map(str::to_string);
        let id = form_get(form, "client_id").map(str::to_string).or(issuer);
        let mut auth = ClientAuth::new("private_key_jwt", id.clone(), None);
        auth.assertion_claims = claims.clone();
        auth.proof = (|| {
            if form_get(form, "client_assertion_type") != Some(ASSERTION_TYPE) {
                return Err("wrong client_assertion_type".to_string());
            }
            let id = id.ok_or("no client id")?;
            let jwk = lock(&self.client_jwks).get(&id).cloned().ok_or("no key registered for the client")?;
            let jwk =
                josekit::jwk::Jwk::from_map(jwk.as_object().cloned().unwrap_or_default()).map_err(|e| e.to_string())?;
            let header = josekit::jwt::decode_header(assertion).map_err(|e| e.to_string())?;
            let alg = header.claim("alg").and_then(Value::as_str).unwrap_or("").to_string();
            let verifier = verifier_for(&jwk, &alg)?;
            let (payload, _) = josekit::jwt::decode_with_verifier(assertion, verifier.as_ref())
                .map_err(|e| format!("bad signature: {e}"))?;
            let c = payload.claims_set();
            let now = now();
            if c.get("iss").and_then(Value::as_str) != Some(id.as_str()) {
                return Err("iss is not the client".into());
            }
            if c.get("sub").and_then(Value::as_str) != Some(id.as_str()) {
                return Err("sub is not the client".into());
            }
            let endpoint = format!("{}{}", self.url, req.path());
            let aud_ok = |a: &Value| a.as_str().is_some_and(|a| a == self.url || a == endpoint);
            let aud = c.get("aud").ok_or("no aud")?;
            let aud_ok = match aud {
                Value::Array(items) => items.iter().any(aud_ok),
                one => aud_ok(one),
            };
            if !aud_ok {
                return Err(format!("aud {aud} is neither the issuer nor the endpoint"));
            }
            let exp = c.get("exp").and_then(Value::as_i64).ok_or("no exp")?;
            if exp <= now || exp > now + 600 {
                return Err("exp is past or too far ahead".into());
            }
            if c.get("iat").and_then(Value::as_i64).is_some_and(|iat| iat > now + 5) {
                return Err("iat is in the future".into());
            }
            let jti = c.get("jti").and_then(Value::as_str).ok_or("no jti")?;
            if !lock(&self.jtis).insert(jti.to_string()) {
                return Err("jti replayed".into());
            }
            Ok(())
        })();
        auth
    }

    /// `tls_client_auth` (RFC 8705 §2.1.1): the connection's certificate was issued by the
    /// client CA and its subject DN is the one registered for the client.
    fn certificate_proof(&self, req: &HttpRequest, client_id: &str) -> Result<(), String> {
        let cert = req.conn_data::<PeerCertificate>().ok_or("no client certificate on the connection")?;
        let ca = self.client_ca.as_ref().ok_or("no client CA configured")?;
        let ca_key = ca.public_key().map_err(|e| e.to_string())?;
        if !cert.0.verify(&ca_key).unwrap_or(false) {
            return Err("the client certificate is not issued by the client CA".into());
        }
        let expected = lock(&self.client_dns).get(client_id).cloned().unwrap_or_default();
        let dn = crate::tls::subject_dn(&cert.0);
        if dn != expected {
            return Err(format!("subject {dn} is not the registered {expected}"));
        }
        Ok(())
    }
}

fn accept_of(headers: &HeaderMap) -> String {
    headers.get_all(header::ACCEPT).filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(", ")
}

async fn introspect(req: HttpRequest, body: web::Bytes, st: State) -> HttpResponse {
    st.introspections.fetch_add(1, Ordering::SeqCst);
    let form = parse_form(&body);
    let auth = client_auth(&req, &form, &st);
    let accept = accept_of(req.headers());
    let token = form_get(&form, "token").unwrap_or("").to_string();
    *lock(&st.last) = Some(IntrospectionRecord {
        auth_method: auth.method.to_string(),
        accept: accept.clone(),
        token: token.clone(),
        client_id: auth.id.clone(),
        assertion_claims: auth.assertion_claims.clone(),
        auth_error: auth.error(),
    });
    let behaviour = lock(&st.behaviour).clone();
    let cache_control = behaviour.cache_control.clone().unwrap_or_else(|| "no-store".to_string());

    let proven = auth.proof.is_ok() && matches!(auth.method, "private_key_jwt" | "tls_client_auth");
    let authenticated = auth.id.as_deref() == Some(st.opts.client_id.as_str())
        && (proven || auth.secret.as_deref() == Some(st.opts.client_secret.as_str()));
    if !authenticated {
        let mut resp = json_response(StatusCode::UNAUTHORIZED, &json!({"error": "invalid_client"}), &cache_control);
        if auth.method == "client_secret_basic" {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"fake-as\""));
        }
        return resp;
    }

    if behaviour.delay_ms > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(behaviour.delay_ms)).await;
    }
    if let Some(code) = behaviour.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return json_response(
            status,
            &json!({
                "error": "server_error",
                "error_description": format!("status {code} forced by the test"),
            }),
            &cache_control,
        );
    }

    let accept_lc = accept.to_ascii_lowercase();
    if accept_lc.contains("application/token-introspection+jwt") {
        let now = now();
        let ti = st.introspection_json(&token);
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(st.url));
        claims.insert("aud".into(), json!(st.opts.client_id));
        claims.insert("iat".into(), json!(now));
        claims.insert("token_introspection".into(), ti);
        let jws = st.sign_answer(JwtMode::Rfc9701, "token-introspection+jwt", claims, &behaviour.tamper);
        return HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, cache_control))
            .content_type("application/token-introspection+jwt")
            .body(jws);
    }

    if accept_lc.contains("application/jwt") {
        // Curity's contract returns a JWT for access tokens only.
        let access = if st.is_access_token(&token) { st.active_claims(&token) } else { None };
        return match access {
            Some((mut claims, extra)) => {
                let now = now();
                let mut m = Map::new();
                m.insert("iss".into(), json!(st.url));
                m.append(&mut claims);
                m.insert("iat".into(), json!(now));
                m.insert("jti".into(), json!(random_b64(16)));
                m.extend(extra);
                let jws = st.sign_answer(JwtMode::AccessToken, "at+jwt", m, &behaviour.tamper);
                HttpResponse::Ok()
                    .insert_header((header::CACHE_CONTROL, cache_control))
                    .content_type("application/jwt")
                    .body(jws)
            }
            None if behaviour.inactive_as_json_in_jwt_mode => {
                json_response(StatusCode::OK, &json!({"active": false}), &cache_control)
            }
            None => HttpResponse::NoContent().insert_header((header::CACHE_CONTROL, cache_control)).finish(),
        };
    }

    json_response(StatusCode::OK, &st.introspection_json(&token), &cache_control)
}

impl Inner {
    /// The client id when `auth` carries a known id with its secret: the web client's
    /// configured secret, or `<id>-secret` for any other client id.
    fn authenticated_client(&self, auth: &ClientAuth) -> Option<String> {
        if matches!(auth.method, "private_key_jwt" | "tls_client_auth") {
            return auth.proof.is_ok().then(|| auth.id.clone()).flatten();
        }
        let (id, secret) = (auth.id.as_deref()?, auth.secret.as_deref()?);
        let ok = if id == self.opts.web_client_id {
            secret == self.opts.web_client_secret
        } else {
            !id.is_empty() && secret == format!("{id}-secret")
        };
        ok.then(|| id.to_string())
    }

    /// The client credentials grant: an access token whose subject is the client itself.
    fn client_credentials(&self, form: &[(String, String)], client_id: String) -> Value {
        let scope = form_get(form, "scope").filter(|s| !s.is_empty()).unwrap_or("read").to_string();
        let ttl = lock(&self.flow).access_ttl;
        let access_token = random_b64(32);
        self.issue(
            &access_token,
            TokenSpec {
                active: true,
                sub: Some(client_id.clone()),
                scope: Some(scope.clone()),
                client_id: Some(client_id),
                aud: None,
                exp: Some(now() + ttl),
                extra: Map::new(),
                token_type: Some("Bearer".to_string()),
            },
        );
        json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scope,
        })
    }
}

/// `401 {"error":"invalid_client"}`, with a `WWW-Authenticate: Basic` challenge when the
/// client tried HTTP Basic (RFC 6749 §5.2).
fn invalid_client(auth: &ClientAuth) -> HttpResponse {
    let mut resp = json_response(StatusCode::UNAUTHORIZED, &json!({"error": "invalid_client"}), "no-store");
    if auth.method == "client_secret_basic" {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"fake-as\""));
    }
    resp
}

async fn token(req: HttpRequest, body: web::Bytes, st: State) -> HttpResponse {
    let form = parse_form(&body);
    let grant_type = form_get(&form, "grant_type").unwrap_or("").to_string();
    if grant_type == "authorization_code" {
        st.code_grants.fetch_add(1, Ordering::SeqCst);
    }
    if grant_type == "refresh_token" {
        st.refresh_grants.fetch_add(1, Ordering::SeqCst);
        let delay = lock(&st.flow).refresh_delay_ms;
        if delay > 0 {
            actix_web::rt::time::sleep(Duration::from_millis(delay)).await;
        }
    }
    let auth = client_auth(&req, &form, &st);
    let Some(client_id) = st.authenticated_client(&auth) else {
        if let Some(error) = auth.error() {
            log::info!("fake AS: token endpoint client authentication failed: {error}");
        }
        return invalid_client(&auth);
    };
    let answer = match grant_type.as_str() {
        "client_credentials" => Ok(st.client_credentials(&form, client_id)),
        "authorization_code" => st.exchange_code(&form, &client_id),
        "refresh_token" => st.refresh(&form, &client_id),
        _ => Err(code_flow::OAuthError::new("unsupported_grant_type", "unsupported grant_type")),
    };
    match answer {
        Ok(body) => json_response(StatusCode::OK, &body, "no-store"),
        Err(e) => json_response(StatusCode::BAD_REQUEST, &e.to_json(), "no-store"),
    }
}

/// RFC 7009 revocation of access and refresh tokens. Client authentication is optional,
/// but credentials that are presented must be right.
async fn revoke(req: HttpRequest, body: web::Bytes, st: State) -> HttpResponse {
    let form = parse_form(&body);
    let auth = client_auth(&req, &form, &st);
    if auth.method != "none" && st.authenticated_client(&auth).is_none() {
        return invalid_client(&auth);
    }
    let Some(token) = form_get(&form, "token") else {
        let e = code_flow::OAuthError::new("invalid_request", "missing token");
        return json_response(StatusCode::BAD_REQUEST, &e.to_json(), "no-store");
    };
    st.revoke(token);
    st.revoke_refresh_token(token);
    lock(&st.flow).revoked.push(token.to_string());
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decode_handles_escapes() {
        assert_eq!(form_decode("a%3Ab+c%25"), "a:b c%");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz"), "%zz");
    }

    #[test]
    fn all_algs_generate_keys() {
        for alg in ["ES256", "RS256", "EdDSA"] {
            let k = SigningKey::generate(alg, "k1");
            assert_eq!(k.public_jwk["kid"], "k1");
            assert_eq!(k.public_jwk["alg"], alg);
            assert!(k.public_jwk.get("d").is_none(), "public JWK has private part");
            assert!(!k.sign(b"x").is_empty());
            let cert = openssl::x509::X509::from_der(&k.self_signed_certificate()).unwrap();
            assert!(cert.verify(&cert.public_key().unwrap()).unwrap(), "{alg}: self-signed");
        }
    }
}

//! The OAuth Proxy and the cookie-reading agent endpoints, with a genuine session's cookies changed one
//! way or another: tampered, truncated, of another version or key, moved to another cookie's name,
//! shadowed by a forgery or by another session's genuine cookie (cookie tossing from a sibling
//! subdomain); the CSRF header missing, wrong or without its cookie; untrusted, `null` and look-alike
//! Origins. Every refusal carries CORS headers exactly when the Origin is trusted; no case issues a cookie
//! or reaches the upstream, and only the cases marked so reach the authorization server.
//!
//! Each value is bound to its cookie's name (the default format), so a moved cookie does not decrypt. In
//! the Curity v1 format a moved cookie decrypts, and the authorization server's answer is what refuses
//! the token inside it: a refresh token, answered as node-oidc-provider answers (active, no
//! `token_type`), is no access token. The same holds for a refresh token sent as a bearer token.

use crate::answer::{Answer, Expect, BARE, INVALID_TOKEN};
use crate::spa::{cipher, token_handler_config, Browser, KEY1, ORIGIN};
use crate::support::{client, Env};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use shroud::config::{CookieFormat, ResponseMode};

const AT: &str = "shroud-at";
const CSRF: &str = "shroud-csrf";
const AUTH: &str = "shroud-auth";
const ID: &str = "shroud-id";
const LOGIN: &str = "shroud-login";

/// What the CSRF header carries.
#[derive(Debug, Clone, Copy)]
pub enum CsrfHeader {
    /// No header.
    Absent,
    /// This value.
    Value(&'static str),
    /// The CSRF cookie's encrypted value, as it is on the wire.
    CookieCiphertext,
}

/// One change to the genuine session's request.
#[derive(Debug, Clone, Copy)]
pub enum Change {
    /// One bit of the cookie's ciphertext flipped.
    FlipBit(&'static str),
    /// The cookie's value cut short.
    Truncate(&'static str),
    /// The cookie's format version byte changed (bound ↔ Curity v1).
    Version(&'static str),
    /// The cookie's plaintext encrypted under a key Shroud does not have.
    OtherKey(&'static str),
    /// A value that is not base64url.
    NotBase64(&'static str),
    /// An empty value.
    Empty(&'static str),
    /// The cookie left out.
    Remove(&'static str),
    /// The first cookie's value sent under the second's name, instead of the second's own.
    Move(&'static str, &'static str),
    /// The cookie sent under another name only.
    Rename(&'static str, &'static str),
    /// A forged copy of the cookie sent before the genuine one.
    Shadow(&'static str),
    /// Another session's genuine cookie (the attacker's own, tossed from a sibling subdomain with a more
    /// specific path) sent before the genuine one.
    Toss(&'static str),
    /// The CSRF header.
    Csrf(CsrfHeader),
    /// The Origin header (`None`: absent).
    Origin(Option<&'static str>),
    /// Two Origin headers: the trusted one, then another.
    TwoOrigins,
}

/// One hostile request with a (changed) session.
pub struct Case {
    /// What the attack is.
    pub name: &'static str,
    /// The method.
    pub method: Method,
    /// The path.
    pub path: &'static str,
    /// What is changed.
    pub changes: Vec<Change>,
    /// What Shroud must answer.
    pub expect: Expect,
    /// Whether the refusal is the authorization server's answer (introspection, token or userinfo call).
    pub asks_the_server: bool,
}

/// 401 `unauthorized_request`: the OAuth Proxy's and the agent's refusal of a cookie request.
const REFUSED: Expect = Expect::json(401, "unauthorized_request");
/// The token inside a moved cookie is not an access token the server knows.
const TOKEN_REFUSED: Expect = Expect::bearer(401, "invalid_token", INVALID_TOKEN);

fn case(name: &'static str, method: Method, path: &'static str, changes: &[Change], expect: Expect) -> Case {
    Case { name, method, path, changes: changes.to_vec(), expect, asks_the_server: false }
}

fn asking(name: &'static str, method: Method, path: &'static str, changes: &[Change], expect: Expect) -> Case {
    Case { asks_the_server: true, ..case(name, method, path, changes, expect) }
}

/// A method that changes data and is none of the four usual ones.
fn webdav() -> Method {
    Method::from_bytes(b"PROPPATCH").unwrap()
}

/// The cases.
pub fn cases() -> Vec<Case> {
    use Change::*;
    use Method as M;
    let api = "/spa/x";
    vec![
        case("at: one bit flipped", M::GET, api, &[FlipBit(AT)], REFUSED),
        case("at: truncated", M::GET, api, &[Truncate(AT)], REFUSED),
        case("at: format version changed", M::GET, api, &[Version(AT)], REFUSED),
        case("at: encrypted under another key", M::GET, api, &[OtherKey(AT)], REFUSED),
        case("at: not base64url", M::GET, api, &[NotBase64(AT)], REFUSED),
        case("at: empty", M::GET, api, &[Empty(AT)], REFUSED),
        case("at: missing", M::GET, api, &[Remove(AT)], REFUSED),
        case("at: under another prefix", M::GET, api, &[Rename(AT, "other-at")], REFUSED),
        case("at: a forgery shadowing the genuine cookie", M::GET, api, &[Shadow(AT)], REFUSED),
        case("the CSRF cookie moved to at", M::GET, api, &[Move(CSRF, AT)], REFUSED),
        case("the refresh-token cookie moved to at", M::GET, api, &[Move(AUTH, AT)], REFUSED),
        case("the ID-token cookie moved to at", M::GET, api, &[Move(ID, AT)], REFUSED),
        case("the login cookie moved to at", M::GET, api, &[Move(LOGIN, AT)], REFUSED),
        case(
            "the refresh-token cookie moved to at, on userInfo",
            M::GET,
            "/oauth-agent/userInfo",
            &[Move(AUTH, AT)],
            REFUSED,
        ),
        case(
            "the at cookie moved to the refresh-token cookie",
            M::POST,
            "/oauth-agent/refresh",
            &[Move(AT, AUTH)],
            REFUSED,
        ),
        case("tossed: another session's at cookie first", M::GET, api, &[Toss(AT)], REFUSED),
        case("tossed: another session's at cookie first, on POST", M::POST, api, &[Toss(AT)], REFUSED),
        case("tossed: another session's CSRF cookie first", M::POST, api, &[Toss(CSRF)], REFUSED),
        case("tossed: another session's at cookie, on userInfo", M::GET, "/oauth-agent/userInfo", &[Toss(AT)], REFUSED),
        case(
            "tossed: another session's ID-token cookie, on claims",
            M::GET,
            "/oauth-agent/claims",
            &[Toss(ID)],
            REFUSED,
        ),
        case("tossed: another session's refresh-token cookie", M::POST, "/oauth-agent/refresh", &[Toss(AUTH)], REFUSED),
        case(
            "tossed: another session's cookies, on logout",
            M::POST,
            "/oauth-agent/logout",
            &[Toss(AT), Toss(CSRF)],
            REFUSED,
        ),
        case(
            "tossed: another login's cookie, on login/end",
            M::POST,
            "/oauth-agent/login/end",
            &[Toss(LOGIN)],
            REFUSED,
        ),
        case("the at cookie moved to the ID-token cookie", M::GET, "/oauth-agent/claims", &[Move(AT, ID)], REFUSED),
        case("the at cookie moved to the CSRF cookie", M::POST, api, &[Move(AT, CSRF)], REFUSED),
        case("refresh: refresh-token cookie tampered", M::POST, "/oauth-agent/refresh", &[FlipBit(AUTH)], REFUSED),
        case("claims: ID-token cookie tampered", M::GET, "/oauth-agent/claims", &[FlipBit(ID)], REFUSED),
        case("session cookies on a bearer route", M::GET, "/api/x", &[], Expect::bearer(401, "unauthorized", BARE)),
        case("csrf: no header on POST", M::POST, api, &[Csrf(CsrfHeader::Absent)], REFUSED),
        case("csrf: no header on PUT", M::PUT, api, &[Csrf(CsrfHeader::Absent)], REFUSED),
        case("csrf: no header on PATCH", M::PATCH, api, &[Csrf(CsrfHeader::Absent)], REFUSED),
        case("csrf: no header on DELETE", M::DELETE, api, &[Csrf(CsrfHeader::Absent)], REFUSED),
        case("csrf: no header on a WebDAV method", webdav(), api, &[Csrf(CsrfHeader::Absent)], REFUSED),
        case("csrf: wrong header", M::POST, api, &[Csrf(CsrfHeader::Value("guessed"))], REFUSED),
        case("csrf: header without its cookie", M::POST, api, &[Remove(CSRF)], REFUSED),
        case("csrf: header is the cookie's ciphertext", M::POST, api, &[Csrf(CsrfHeader::CookieCiphertext)], REFUSED),
        case("csrf: cookie tampered", M::POST, api, &[FlipBit(CSRF)], REFUSED),
        case("csrf: cookie under another key", M::POST, api, &[OtherKey(CSRF)], REFUSED),
        case("origin: untrusted", M::GET, api, &[Origin(Some("http://evil.example"))], REFUSED),
        case("origin: null", M::GET, api, &[Origin(Some("null"))], REFUSED),
        case(
            "origin: trusted origin as a prefix",
            M::GET,
            api,
            &[Origin(Some("http://127.0.0.1:8080.evil.example"))],
            REFUSED,
        ),
        case(
            "origin: trusted origin as userinfo",
            M::GET,
            api,
            &[Origin(Some("http://127.0.0.1:8080@evil.example"))],
            REFUSED,
        ),
        case("origin: trailing slash", M::GET, api, &[Origin(Some("http://127.0.0.1:8080/"))], REFUSED),
        case("origin: https instead of http", M::GET, api, &[Origin(Some("https://127.0.0.1:8080"))], REFUSED),
        case("origin: another port", M::GET, api, &[Origin(Some("http://127.0.0.1:8081"))], REFUSED),
        case("origin: the trusted one and another", M::GET, api, &[TwoOrigins], REFUSED),
        case("origin: none on POST", M::POST, api, &[Origin(None)], REFUSED),
        case("origin: none on a WebDAV method", webdav(), api, &[Origin(None)], REFUSED),
        case("origin: untrusted preflight", M::OPTIONS, api, &[Origin(Some("http://evil.example"))], REFUSED),
    ]
}

/// A cookie as sent: name, value, the path it was set on.
type Sent = (String, String, String);

fn tamper(value: &str, change: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut raw = URL_SAFE_NO_PAD.decode(value).unwrap();
    change(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The request a case sends: cookies in order, CSRF header, Origins, and the cookies of the attacker's
/// own session (for tossing).
struct Request {
    jar: Vec<Sent>,
    csrf: Option<String>,
    origins: Vec<&'static str>,
    attackers: Vec<Sent>,
    format: CookieFormat,
}

fn sent(browser: &Browser) -> Vec<Sent> {
    browser.cookies.iter().map(|(n, c)| (n.clone(), c.value.clone(), c.path.clone())).collect()
}

impl Request {
    fn genuine(browser: &Browser, attacker: &Browser) -> Request {
        Request {
            jar: sent(browser),
            csrf: browser.csrf.clone(),
            origins: vec![ORIGIN],
            attackers: sent(attacker),
            format: browser.format,
        }
    }

    fn value(&self, name: &str) -> String {
        self.jar.iter().find(|(n, _, _)| n == name).map(|(_, v, _)| v.clone()).unwrap()
    }

    fn set(&mut self, name: &str, value: String) {
        self.jar.iter_mut().filter(|(n, _, _)| n == name).for_each(|(_, v, _)| *v = value.clone());
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::FlipBit(name) => self.set(name, tamper(&self.value(name), |raw| raw[20] ^= 0x01)),
            Change::Truncate(name) => {
                let value = self.value(name);
                self.set(name, value[..value.len() - 8].to_string());
            }
            Change::Version(name) => self.set(name, tamper(&self.value(name), |raw| raw[0] ^= 3)),
            Change::OtherKey(name) => {
                let plain = cipher(&[KEY1], self.format).decrypt(name, &self.value(name)).unwrap();
                self.set(name, cipher(&[&"07".repeat(32)], self.format).encrypt(name, &plain));
            }
            Change::NotBase64(name) => self.set(name, "not*base64!".into()),
            Change::Empty(name) => self.set(name, String::new()),
            Change::Remove(name) => self.jar.retain(|(n, _, _)| n != name),
            Change::Move(from, to) => self.set(to, self.value(from)),
            Change::Rename(from, to) => self.jar.iter_mut().filter(|(n, _, _)| n == from).for_each(|(n, _, _)| {
                *n = to.to_string();
            }),
            Change::Shadow(name) => {
                let forged = tamper(&self.value(name), |raw| raw[20] ^= 0x01);
                let at = self.jar.iter().position(|(n, _, _)| n == name).unwrap();
                let path = self.jar[at].2.clone();
                self.jar.insert(at, (name.to_string(), forged, path));
            }
            Change::Toss(name) => {
                let (_, theirs, _) = self.attackers.iter().find(|(n, _, _)| n == name).unwrap().clone();
                let at = self.jar.iter().position(|(n, _, _)| n == name).unwrap();
                self.jar.insert(at, (name.to_string(), theirs, "/".to_string()));
            }
            Change::Csrf(CsrfHeader::Absent) => self.csrf = None,
            Change::Csrf(CsrfHeader::Value(value)) => self.csrf = Some(value.into()),
            Change::Csrf(CsrfHeader::CookieCiphertext) => self.csrf = Some(self.value(CSRF)),
            Change::Origin(origin) => self.origins = origin.into_iter().collect(),
            Change::TwoOrigins => self.origins = vec![ORIGIN, "http://evil.example"],
        }
    }

    async fn send(&self, base: &str, method: Method, path: &str) -> Answer {
        let mut req = client().request(method.clone(), format!("{base}{path}"));
        let cookies: Vec<String> = self
            .jar
            .iter()
            .filter(|(_, _, p)| path.starts_with(p.as_str()))
            .map(|(n, v, _)| format!("{n}={v}"))
            .collect();
        if !cookies.is_empty() {
            req = req.header("cookie", cookies.join("; "));
        }
        if let Some(csrf) = &self.csrf {
            req = req.header("x-shroud-csrf", csrf);
        }
        for origin in &self.origins {
            req = req.header("origin", *origin);
        }
        if method == Method::OPTIONS {
            req = req.header("access-control-request-method", "POST");
        }
        Answer::read(req.send().await.unwrap()).await
    }
}

/// A genuine session (logged in, with a second login in progress for its login cookie) and the
/// attacker's own session, for tossing.
async fn sessions(base: &str, env: &Env, format: CookieFormat) -> (Browser, Browser) {
    let mut attacker = Browser::new(base);
    attacker.format = format;
    env.idp.set_login_user("mallory");
    attacker.login().await;
    attacker.start_login().await;
    env.idp.set_login_user("alice");
    let mut genuine = Browser::new(base);
    genuine.format = format;
    genuine.login().await;
    genuine.start_login().await;
    (genuine, attacker)
}

/// Sends each case with `genuine`'s session and checks what the issue asks of a refusal.
async fn run_cases(env: &Env, genuine: &Browser, attacker: &Browser, cases: Vec<Case>) {
    let base = env.shroud.url();
    let server_calls = || env.idp.introspections() + env.idp.refresh_grants() + env.idp.userinfo_calls();
    for case in cases {
        let mut request = Request::genuine(genuine, attacker);
        for change in &case.changes {
            request.apply(*change);
        }
        let calls = server_calls();
        let answer = request.send(&base, case.method.clone(), case.path).await;
        answer.assert(case.name, &case.expect);
        assert_eq!(env.api.hits(), 0, "{}: nothing reached the upstream", case.name);
        assert_eq!(answer.cookies_issued(), Vec::<&str>::new(), "{}: no cookie issued", case.name);
        let asked = server_calls() > calls;
        assert_eq!(asked, case.asks_the_server, "{}: whether the authorization server was asked", case.name);
        if !case.path.starts_with("/api") {
            let trusted = request.origins == [ORIGIN];
            let cors = answer.header("access-control-allow-origin");
            assert_eq!(cors, trusted.then_some(ORIGIN), "{}: CORS exactly for a trusted Origin", case.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_cookies_csrf_and_origins_are_refused() {
    let env = Env::with(ResponseMode::Rfc9701, token_handler_config);
    let base = env.shroud.url();
    let (mut genuine, attacker) = sessions(&base, &env, CookieFormat::Bound).await;
    run_cases(&env, &genuine, &attacker, cases()).await;
    // The genuine session still works, for reading and writing.
    assert_eq!(genuine.send(Method::GET, "/spa/x", None).await.status(), 200, "control");
    assert_eq!(genuine.send(Method::POST, "/spa/x", None).await.status(), 200, "control");
    assert_eq!(env.api.hits(), 2);
}

/// The moved-cookie cases in the Curity v1 format, where a moved value decrypts: the authorization
/// server's answer (a refresh token: active, without `token_type`) is what refuses it.
pub fn curity_v1_cases() -> Vec<Case> {
    use Change::*;
    use Method as M;
    let api = "/spa/x";
    vec![
        asking("curity v1: the CSRF cookie moved to at", M::GET, api, &[Move(CSRF, AT)], TOKEN_REFUSED),
        asking("curity v1: the refresh-token cookie moved to at", M::GET, api, &[Move(AUTH, AT)], TOKEN_REFUSED),
        asking("curity v1: the ID-token cookie moved to at", M::GET, api, &[Move(ID, AT)], TOKEN_REFUSED),
        asking("curity v1: the login cookie moved to at", M::GET, api, &[Move(LOGIN, AT)], TOKEN_REFUSED),
        asking(
            "curity v1: the refresh-token cookie moved to at, on userInfo",
            M::GET,
            "/oauth-agent/userInfo",
            &[Move(AUTH, AT)],
            Expect::json(401, "token_expired"),
        ),
        asking(
            "curity v1: the at cookie moved to the refresh-token cookie",
            M::POST,
            "/oauth-agent/refresh",
            &[Move(AT, AUTH)],
            Expect::json(401, "session_expired"),
        ),
        case("curity v1: tossed at cookie", M::GET, api, &[Toss(AT)], REFUSED),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_curity_v1_format_moved_refresh_tokens_are_refused_by_the_answer() {
    for mode in [ResponseMode::Json, ResponseMode::Rfc9701] {
        let env = Env::with(mode, |c| {
            let mut c = token_handler_config(c);
            c.token_handler.cookie_format = CookieFormat::CurityV1;
            c
        });
        let (genuine, attacker) = sessions(&env.shroud.url(), &env, CookieFormat::CurityV1).await;
        run_cases(&env, &genuine, &attacker, curity_v1_cases()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_sent_as_a_bearer_token_is_refused() {
    for mode in [ResponseMode::Json, ResponseMode::Rfc9701, ResponseMode::Jwt] {
        let env = Env::with(mode, token_handler_config);
        let mut spa = Browser::new(&env.shroud.url());
        spa.login().await;
        let refresh_token = spa.decrypt(AUTH, &[KEY1]).unwrap();
        let introspections = env.idp.introspections();
        for path in ["/api/x", "/any/x"] {
            let resp =
                client().get(format!("{}{path}", env.shroud.url())).bearer_auth(&refresh_token).send().await.unwrap();
            let answer = Answer::read(resp).await;
            answer.assert(&format!("{mode:?}: refresh token as bearer on {path}"), &TOKEN_REFUSED);
        }
        assert_eq!(env.api.hits(), 0, "{mode:?}: nothing reached the upstream");
        assert!(env.idp.introspections() > introspections, "{mode:?}: the server was asked");
        // The access token itself still passes.
        let access_token = spa.decrypt(AT, &[KEY1]).unwrap();
        let ok = client().get(format!("{}/api/x", env.shroud.url())).bearer_auth(&access_token).send().await.unwrap();
        assert_eq!(ok.status(), 200, "{mode:?}: control");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_prefixed_cookies_work_and_cannot_be_shadowed() {
    let env = Env::with(ResponseMode::Rfc9701, |c| {
        let mut c = token_handler_config(c);
        c.token_handler.cookie_host_prefix = true;
        c
    });
    let base = env.shroud.url();
    let mut spa = Browser::new(&base);
    spa.login().await;
    let names: Vec<&str> = spa.cookies.keys().map(String::as_str).collect();
    assert_eq!(names, ["__Host-shroud-at", "__Host-shroud-auth", "__Host-shroud-csrf", "__Host-shroud-id"]);
    for (name, cookie) in &spa.cookies {
        let attributes: Vec<&str> = cookie.line.split("; ").collect();
        for required in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(attributes.contains(&required), "{name}: {required} in {}", cookie.line);
        }
        assert!(!cookie.line.contains("Domain="), "{name}: no Domain");
    }
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200, "a session on __Host- cookies");
    assert_eq!(spa.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204, "refresh reads them");
    assert_eq!(spa.send(Method::GET, "/spa/x", None).await.status(), 200);
    // The unprefixed names a sibling subdomain could set are not Shroud's cookies: the request has none.
    let at = spa.cookies["__Host-shroud-at"].value.clone();
    let resp = client()
        .get(format!("{base}/spa/x"))
        .header("origin", ORIGIN)
        .header("cookie", format!("shroud-at={at}"))
        .send()
        .await
        .unwrap();
    Answer::read(resp).await.assert("host prefix: an unprefixed at cookie", &REFUSED);
    // Two copies of a __Host- cookie (one set by an attacker with a more specific path) are refused.
    let twice = format!("__Host-shroud-at={at}; {}", spa.cookie_header("/spa/x"));
    let resp =
        client().get(format!("{base}/spa/x")).header("origin", ORIGIN).header("cookie", twice).send().await.unwrap();
    Answer::read(resp).await.assert("host prefix: the at cookie twice", &REFUSED);
    assert_eq!(env.api.hits(), 2);
}

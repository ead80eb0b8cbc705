//! The OAuth Agent under attack: untrusted Origins, protocol parameters smuggled into `login/start`,
//! forged, replayed and injected callbacks in `login/end` (state, code, `pageUrl`), and session
//! endpoints without their CSRF header or after logout. Each case sets up a browser, then sends one
//! hostile request; the table says how many calls to the authorization server that request may cause
//! (a code the server itself must refuse is one). A refusal issues no cookie and echoes nothing of the
//! attacker's input; nothing reaches the upstream.

use crate::answer::{Answer, Expect, INVALID_TOKEN};
use crate::spa::{token_handler_config, Browser, KEY1, ORIGIN};
use crate::support::Env;
use reqwest::Method;
use serde_json::{json, Value};
use shroud::config::ResponseMode;

/// How a genuine callback URL (`redirect_uri?code=…&state=…`) is changed.
#[derive(Debug, Clone, Copy)]
pub enum Callback {
    /// `state` replaced by a forged one.
    ForgedState,
    /// No `state`.
    NoState,
    /// A forged `state` before the genuine one.
    DuplicateState,
    /// A forged `code` before the genuine one.
    DuplicateCode,
    /// Another origin's page with a forged code and state.
    ForeignPage,
    /// A `javascript:` URL carrying the genuine code and a forged state.
    JavascriptUrl,
    /// Not a URL at all.
    NotAUrl,
    /// An `error` with markup in it.
    ErrorWithMarkup,
    /// `redirect_uri`, `code_verifier` and `client_id` of the attacker's appended.
    InjectedParams,
}

/// What a case does before its hostile request, and which request that is.
#[derive(Debug, Clone, Copy)]
pub enum Scenario {
    /// `login/start` with this Origin (`None`: none).
    StartFrom(Option<&'static str>),
    /// `login/start` with one `extraParams` entry.
    StartWith(&'static str, &'static str),
    /// `login/start`, then `login/end` with the callback changed.
    End(Callback),
    /// `login/start`, then `login/end` with the genuine callback from this Origin (`None`: none).
    EndFrom(Option<&'static str>),
    /// A completed login, then its callback again (no login in progress).
    StateReplay,
    /// A completed login, then its callback again with the old login cookie: the code is used twice.
    CodeReuse,
    /// The victim's login in progress, completed with the attacker's own code (PKCE must refuse it).
    CodeInjection,
    /// `login/start`, then `login/end` with a login cookie encrypted under another key.
    ForgedLoginCookie,
    /// `login/start`, then `login/end` with the login cookie's nonce replaced (a replayed ID token).
    NonceMismatch,
    /// `login/end` with a body over 64 KiB.
    OversizedBody,
    /// A session, then `refresh` without the CSRF header.
    RefreshWithoutCsrf,
    /// A session, then `refresh` from an untrusted Origin.
    RefreshFromUntrusted,
    /// A session, then `logout` without the CSRF header.
    LogoutWithoutCsrf,
    /// A session, then `userInfo` from an untrusted Origin.
    UserInfoFromUntrusted,
    /// A session and a copy of its cookies, a logout, then an API call with the copy.
    ApiAfterLogout,
    /// A session and a copy of its cookies, a logout, then `refresh` with the copy.
    RefreshAfterLogout,
}

/// What a case must lead to besides its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Nothing more (a refusal: no cookie issued).
    Refused,
    /// `login/start` succeeded, and its authorization URL carries exactly one `redirect_uri`, the
    /// configured one.
    OneRedirectUri,
    /// The login completed with the configured `redirect_uri` and the login cookie's verifier.
    LoggedIn,
}

/// One hostile request to the agent.
pub struct Case {
    /// What the attack is.
    pub name: &'static str,
    /// Its setup and request.
    pub scenario: Scenario,
    /// What Shroud must answer.
    pub expect: Expect,
    /// Calls to the authorization server's token, userinfo and revocation endpoints the request causes.
    pub server_calls: usize,
    /// What else must hold.
    pub then: Then,
}

const UNAUTHORIZED: Expect = Expect::json(401, "unauthorized_request");
const INVALID: Expect = Expect::json(400, "invalid_request");
const EVIL: &str = "http://evil.example";

fn refused(name: &'static str, scenario: Scenario, expect: Expect, server_calls: usize) -> Case {
    Case { name, scenario, expect, server_calls, then: Then::Refused }
}

/// The cases.
pub fn cases() -> Vec<Case> {
    use Scenario::*;
    vec![
        refused("login/start: no Origin", StartFrom(None), UNAUTHORIZED, 0),
        refused("login/start: untrusted Origin", StartFrom(Some(EVIL)), UNAUTHORIZED, 0),
        refused("login/start: null Origin", StartFrom(Some("null")), UNAUTHORIZED, 0),
        refused(
            "login/start: extraParams sets redirect_uri",
            StartWith("redirect_uri", "https://evil.example/cb"),
            INVALID,
            0,
        ),
        refused(
            "login/start: extraParams sets request_uri",
            StartWith("request_uri", "https://evil.example/req"),
            INVALID,
            0,
        ),
        refused("login/start: extraParams sets response_type", StartWith("response_type", "token"), INVALID, 0),
        refused("login/start: extraParams downgrades PKCE", StartWith("code_challenge_method", "plain"), INVALID, 0),
        refused("login/start: extraParams widens the scope", StartWith("scope", "openid admin"), INVALID, 0),
        refused("login/start: extraParams sets client_id", StartWith("client_id", "admin-client"), INVALID, 0),
        refused("login/start: extraParams sets the nonce", StartWith("nonce", "chosen"), INVALID, 0),
        Case {
            name: "login/start: redirect_uri smuggled into a parameter name",
            scenario: StartWith("prompt&redirect_uri=https://evil.example/cb", "login"),
            expect: Expect::plain(200),
            server_calls: 0,
            then: Then::OneRedirectUri,
        },
        Case {
            name: "login/start: redirect_uri smuggled into a parameter value",
            scenario: StartWith("prompt", "login&redirect_uri=https://evil.example/cb"),
            expect: Expect::plain(200),
            server_calls: 0,
            then: Then::OneRedirectUri,
        },
        refused("login/end: forged state", End(Callback::ForgedState), INVALID, 0),
        refused("login/end: no state", End(Callback::NoState), INVALID, 0),
        refused("login/end: a forged state before the genuine one", End(Callback::DuplicateState), INVALID, 0),
        refused("login/end: a forged code before the genuine one", End(Callback::DuplicateCode), INVALID, 1),
        refused("login/end: pageUrl of another origin", End(Callback::ForeignPage), INVALID, 0),
        refused("login/end: javascript: pageUrl", End(Callback::JavascriptUrl), INVALID, 0),
        refused("login/end: pageUrl not a URL", End(Callback::NotAUrl), INVALID, 0),
        refused(
            "login/end: callback error with markup",
            End(Callback::ErrorWithMarkup),
            Expect::json(400, "authorization_error"),
            0,
        ),
        Case {
            name: "login/end: redirect_uri and code_verifier injected into pageUrl",
            scenario: End(Callback::InjectedParams),
            expect: Expect::plain(200),
            server_calls: 1,
            then: Then::LoggedIn,
        },
        refused("login/end: untrusted Origin", EndFrom(Some(EVIL)), UNAUTHORIZED, 0),
        refused("login/end: no Origin", EndFrom(None), UNAUTHORIZED, 0),
        refused("login/end: state replayed after the login", StateReplay, UNAUTHORIZED, 0),
        refused("login/end: a code reused with its old login cookie", CodeReuse, INVALID, 1),
        refused("login/end: the attacker's code in the victim's login", CodeInjection, INVALID, 1),
        refused("login/end: login cookie under another key", ForgedLoginCookie, UNAUTHORIZED, 0),
        refused("login/end: ID token with another login's nonce", NonceMismatch, INVALID, 1),
        refused("login/end: body over 64 KiB", OversizedBody, Expect::json(413, "request_too_large"), 0),
        refused("refresh: no CSRF header", RefreshWithoutCsrf, UNAUTHORIZED, 0),
        refused("refresh: untrusted Origin", RefreshFromUntrusted, UNAUTHORIZED, 0),
        refused("logout: no CSRF header", LogoutWithoutCsrf, UNAUTHORIZED, 0),
        refused("userInfo: untrusted Origin", UserInfoFromUntrusted, UNAUTHORIZED, 0),
        refused(
            "API call with cookies copied before logout",
            ApiAfterLogout,
            Expect::bearer(401, "invalid_token", INVALID_TOKEN),
            0,
        ),
        refused(
            "refresh with cookies copied before logout",
            RefreshAfterLogout,
            Expect::json(401, "session_expired"),
            0,
        ),
    ]
}

/// A hostile request, sent by `browser`.
struct Hostile {
    browser: Browser,
    method: Method,
    path: &'static str,
    body: Option<Value>,
}

const START: &str = "/oauth-agent/login/start";
const END: &str = "/oauth-agent/login/end";

fn end(browser: Browser, page_url: &str) -> Hostile {
    Hostile { browser, method: Method::POST, path: END, body: Some(json!({ "pageUrl": page_url })) }
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).unwrap().1.into_owned()
}

fn change_callback(callback: &str, change: Callback) -> String {
    let (code, state) = (param(callback, "code"), param(callback, "state"));
    let page = format!("{ORIGIN}/callback");
    match change {
        Callback::ForgedState => format!("{page}?code={code}&state=forged"),
        Callback::NoState => format!("{page}?code={code}"),
        Callback::DuplicateState => format!("{page}?code={code}&state=forged&state={state}"),
        Callback::DuplicateCode => format!("{page}?code=forged&code={code}&state={state}"),
        Callback::ForeignPage => "https://evil.example/callback?code=forged&state=forged".into(),
        Callback::JavascriptUrl => format!("javascript:alert(document.cookie)//?code={code}&state=forged"),
        Callback::NotAUrl => "<script>alert(1)</script>".into(),
        Callback::ErrorWithMarkup => format!("{page}?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E&state={state}"),
        Callback::InjectedParams => format!(
            "{callback}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&code_verifier={}&client_id=admin-client",
            "a".repeat(43)
        ),
    }
}

fn key1() -> [u8; 32] {
    hex::decode(KEY1).unwrap().try_into().unwrap()
}

/// A browser with a session, and a copy of its cookies taken before it logged out.
async fn logged_out_copy(base: &str) -> Browser {
    let mut spa = Browser::new(base);
    spa.login().await;
    let mut copy = Browser::new(base);
    copy.cookies = spa.cookies.clone();
    copy.csrf = spa.csrf.clone();
    assert_eq!(spa.send(Method::POST, "/oauth-agent/logout", None).await.status(), 200);
    copy
}

async fn prepare(base: &str, scenario: Scenario) -> Hostile {
    let mut spa = Browser::new(base);
    let post = |browser, path, body| Hostile { browser, method: Method::POST, path, body };
    match scenario {
        Scenario::StartFrom(origin) => {
            spa.origin = origin.map(str::to_string);
            post(spa, START, None)
        }
        Scenario::StartWith(key, value) => {
            post(spa, START, Some(json!({ "extraParams": [{ "key": key, "value": value }] })))
        }
        Scenario::End(change) => {
            let callback = spa.start_login().await;
            end(spa, &change_callback(&callback, change))
        }
        Scenario::EndFrom(origin) => {
            let callback = spa.start_login().await;
            spa.origin = origin.map(str::to_string);
            end(spa, &callback)
        }
        Scenario::StateReplay => {
            let callback = spa.start_login().await;
            assert_eq!(spa.end_login(&callback).await.status(), 200);
            end(spa, &callback)
        }
        Scenario::CodeReuse => {
            let callback = spa.start_login().await;
            let login = spa.cookies["shroud-login"].clone();
            assert_eq!(spa.end_login(&callback).await.status(), 200);
            spa.cookies.insert("shroud-login".into(), login);
            end(spa, &callback)
        }
        Scenario::CodeInjection => {
            let mut attacker = Browser::new(base);
            let attackers = attacker.start_login().await;
            let victims = spa.start_login().await;
            let injected =
                format!("{ORIGIN}/callback?code={}&state={}", param(&attackers, "code"), param(&victims, "state"));
            end(spa, &injected)
        }
        Scenario::ForgedLoginCookie => {
            let callback = spa.start_login().await;
            let plain = spa.decrypt("shroud-login", &[KEY1]).unwrap();
            spa.cookies.get_mut("shroud-login").unwrap().value = spa.encrypt("shroud-login", &[7; 32], &plain);
            end(spa, &callback)
        }
        Scenario::NonceMismatch => {
            let callback = spa.start_login().await;
            let mut login: Value = serde_json::from_str(&spa.decrypt("shroud-login", &[KEY1]).unwrap()).unwrap();
            login["nonce"] = "the nonce of another login".into();
            let forged = spa.encrypt("shroud-login", &key1(), &login.to_string());
            spa.cookies.get_mut("shroud-login").unwrap().value = forged;
            end(spa, &callback)
        }
        Scenario::OversizedBody => {
            let page = format!("{ORIGIN}/?{}", "a".repeat(65 * 1024));
            end(spa, &page)
        }
        Scenario::RefreshWithoutCsrf | Scenario::RefreshFromUntrusted | Scenario::LogoutWithoutCsrf => {
            spa.login().await;
            match scenario {
                Scenario::RefreshFromUntrusted => spa.origin = Some(EVIL.into()),
                _ => spa.csrf = None,
            }
            let path = if matches!(scenario, Scenario::LogoutWithoutCsrf) {
                "/oauth-agent/logout"
            } else {
                "/oauth-agent/refresh"
            };
            post(spa, path, None)
        }
        Scenario::UserInfoFromUntrusted => {
            spa.login().await;
            spa.origin = Some(EVIL.into());
            Hostile { browser: spa, method: Method::GET, path: "/oauth-agent/userInfo", body: None }
        }
        Scenario::ApiAfterLogout => {
            let copy = logged_out_copy(base).await;
            Hostile { browser: copy, method: Method::GET, path: "/spa/x", body: None }
        }
        Scenario::RefreshAfterLogout => post(logged_out_copy(base).await, "/oauth-agent/refresh", None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_refuses_forged_replayed_and_injected_logins() {
    let env = Env::with(ResponseMode::Rfc9701, token_handler_config);
    let base = env.shroud.url();
    let server_calls =
        || env.idp.code_grants() + env.idp.refresh_grants() + env.idp.userinfo_calls() + env.idp.revoked().len();
    for case in cases() {
        let Hostile { mut browser, method, path, body } = prepare(&base, case.scenario).await;
        let (calls, introspections) = (server_calls(), env.idp.introspections());
        let answer = Answer::read(browser.send(method, path, body).await).await;
        answer.assert(case.name, &case.expect);
        assert_eq!(server_calls() - calls, case.server_calls, "{}: calls to the authorization server", case.name);
        assert_eq!(env.idp.introspections(), introspections, "{}: nothing introspected", case.name);
        assert_eq!(env.api.hits(), 0, "{}: nothing reached the upstream", case.name);
        let body = String::from_utf8_lossy(&answer.body);
        match case.then {
            Then::Refused => {
                assert_eq!(answer.cookies_issued(), Vec::<&str>::new(), "{}: no cookie issued", case.name);
                for echoed in ["<script", "evil.example", "admin"] {
                    assert!(!body.contains(echoed), "{}: {echoed:?} echoed in {body}", case.name);
                }
            }
            Then::OneRedirectUri => {
                let url = answer.json()["authorizationRequestUrl"].as_str().unwrap().to_string();
                let uris: Vec<String> = url::Url::parse(&url)
                    .unwrap()
                    .query_pairs()
                    .filter(|(k, _)| k == "redirect_uri")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                assert_eq!(uris, ["http://127.0.0.1:8080/callback"], "{}: {url}", case.name);
            }
            Then::LoggedIn => {
                let json = answer.json();
                assert_eq!((json["handled"].as_bool(), json["isLoggedIn"].as_bool()), (Some(true), Some(true)));
                assert!(browser.cookies.contains_key("shroud-at"), "{}: a session", case.name);
            }
        }
    }
}

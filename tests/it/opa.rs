//! Open Policy Agent per route, against `FakeOpa`: OPA's Data API over real HTTP evaluating a real Rego
//! policy with regorus. Allow and deny answers, headers from the decision, fail-closed errors, the input
//! document, the decision cache, and the configuration.

use crate::support::*;
use serde_json::{json, Value};
use shroud::config::{Config, OpaConfig, ResponseMode};
use shroud_testkit::{FakeOpa, OpaBehaviour, TokenSpec};
use std::time::Duration;

const POLICY: &str = r#"
package shroud

default allow := false

allow if {
    "hr" in input.claims.roles
    input.method == "GET"
}

decision := {"allow": allow, "headers": {"X-Employee": input.claims.sub, "X-Dept": input.claims.dept}}

only_admins if input.claims.admin == true

outside_admin if {
    allow
    not startswith(input.path, "/paths/admin")
}

not_the_user_list if {
    allow
    input.path != "/paths/admin/users"
}

tenant := {"allow": allow, "headers": {"X-Tenant": "acme", "X-Employee": input.claims.sub}} if input.claims.sub == "hannah"

tenant := {"allow": allow, "headers": {"X-Employee": input.claims.sub}} if input.claims.sub != "hannah"
"#;

fn opa_route(c: &Config, prefix: &str, url: String, cache_seconds: u64) -> shroud::config::RouteConfig {
    let mut r = route(prefix, &c.routes[0].upstream, &[]);
    r.opa = Some(OpaConfig { url, timeout_ms: 1000, cache_seconds, headers: vec![] });
    r
}

/// `opa_route` whose decision may set `headers`.
fn opa_route_setting(c: &Config, prefix: &str, url: String, headers: &[&str]) -> shroud::config::RouteConfig {
    let mut r = opa_route(c, prefix, url, 0);
    r.opa.as_mut().unwrap().headers = headers.iter().map(|h| h.to_string()).collect();
    r
}

/// Shroud with `/hr` (allow), `/decision` (allow with headers), `/admin` (an undefined document) and
/// `/cached` (allow, decisions cached for 60 s), all on `opa`.
fn opa_env(opa: &FakeOpa) -> Env {
    Env::with(ResponseMode::Json, |mut c| {
        let routes = [
            opa_route(&c, "/hr", opa.data_url("shroud/allow"), 0),
            opa_route_setting(&c, "/decision", opa.data_url("shroud/decision"), &["X-Employee", "X-Dept"]),
            opa_route(&c, "/admin", opa.data_url("shroud/only_admins"), 0),
            opa_route(&c, "/cached", opa.data_url("shroud/allow"), 60),
        ];
        c.routes.extend(routes);
        with_admin(c)
    })
}

fn employee(env: &Env, name: &str, roles: &[&str]) {
    let mut spec = TokenSpec::active(name, "read", 300);
    spec.extra.insert("roles".into(), json!(roles));
    spec.extra.insert("dept".into(), json!("people"));
    env.idp.issue(name, spec);
}

async fn denied_by_opa(resp: reqwest::Response) {
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("www-authenticate").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "access_denied", "{body}");
    assert_eq!(body["message"], "the request does not satisfy the rule `opa`");
}

async fn fails_closed(resp: reqwest::Response, opa: &FakeOpa) {
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "policy_service_unavailable", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("policy service is unavailable"), "{message}");
    let port = opa.url().rsplit(':').next().unwrap().to_string();
    assert!(!message.contains(&port) && !message.contains("v1/data"), "the OPA URL never shows: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn true_allows_and_false_denies_before_the_upstream() {
    let opa = FakeOpa::start(POLICY);
    let env = opa_env(&opa);
    employee(&env, "hannah", &["hr"]);
    employee(&env, "fiona", &["finance"]);
    assert_eq!(env.get("/hr/payroll", Some("hannah")).await.status(), 200);
    assert_eq!(env.api.last().unwrap().path, "/hr/payroll");
    let hits = env.api.hits();
    denied_by_opa(env.get("/hr/payroll", Some("fiona")).await).await;
    let post = env.http.post(format!("{}/hr/payroll", env.shroud.url())).bearer_auth("hannah").send().await.unwrap();
    denied_by_opa(post).await;
    assert_eq!(env.api.hits(), hits, "no denied request reached the upstream");
    assert_eq!(opa.requests(), 3);
    let no_token = env.get("/hr/payroll", None).await;
    assert_eq!(no_token.status(), 401, "no token: refused before OPA is asked");
    assert_eq!(opa.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowing_decision_adds_its_headers_upstream() {
    let opa = FakeOpa::start(POLICY);
    let env = opa_env(&opa);
    employee(&env, "hannah", &["hr"]);
    employee(&env, "fiona", &["finance"]);
    let resp = env
        .http
        .get(format!("{}/decision/me", env.shroud.url()))
        .bearer_auth("hannah")
        .header("x-dept", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo = env.api.last().unwrap();
    assert_eq!(echo.header("x-employee"), Some("hannah"));
    assert_eq!(echo.header_all("x-dept"), vec!["people"], "the decision's header replaces the client's");
    assert!(echo.header("authorization").unwrap().starts_with("Bearer ey"), "the JWT is still forwarded");
    let hits = env.api.hits();
    denied_by_opa(env.get("/decision/me", Some("fiona")).await).await;
    assert_eq!(env.api.hits(), hits);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_headers_are_stripped_from_the_request_and_only_listed_ones_are_set() {
    let opa = FakeOpa::start(POLICY);
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes.push(opa_route_setting(&c, "/tenant", opa.data_url("shroud/tenant"), &["X-Tenant"]));
        c
    });
    employee(&env, "hannah", &["hr"]);
    employee(&env, "harry", &["hr"]);
    let send = |token: &'static str| {
        env.http
            .get(format!("{}/tenant/x", env.shroud.url()))
            .bearer_auth(token)
            .header("x-tenant", "forged")
            .header("x_tenant", "forged")
            .header("x-employee", "forged")
            .send()
    };
    assert_eq!(send("harry").await.unwrap().status(), 200);
    let echo = env.api.last().unwrap();
    assert_eq!(echo.header_all("x-tenant"), Vec::<&str>::new(), "the decision set none: the client's is gone");
    assert_eq!(echo.header("x_tenant"), None, "in either spelling");
    assert_eq!(echo.header_all("x-employee"), vec!["forged"], "a header the route does not list is the client's");
    let input = opa.inputs().last().unwrap().clone();
    assert!(input["headers"].get("x-tenant").is_none(), "OPA does not see the client's copy: {input}");

    assert_eq!(send("hannah").await.unwrap().status(), 200);
    let echo = env.api.last().unwrap();
    assert_eq!(echo.header_all("x-tenant"), vec!["acme"], "the decision's value, once");
    assert_eq!(echo.header("x_tenant"), None);
    assert_eq!(echo.header_all("x-employee"), vec!["forged"], "the decision's unlisted header was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opa_is_asked_about_no_path_with_dot_segment_parameters() {
    let opa = FakeOpa::start(POLICY);
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes.push(opa_route(&c, "/paths", opa.data_url("shroud/outside_admin"), 0));
        c
    });
    employee(&env, "hannah", &["hr"]);
    assert_eq!(env.get("/paths/users", Some("hannah")).await.status(), 200);
    denied_by_opa(env.get("/paths/admin/users", Some("hannah")).await).await;
    let (asked, hits, introspections) = (opa.requests(), env.api.hits(), env.idp.introspections());
    for path in ["/paths/x/..;/admin/users", "/paths/x/%2e%2e;/admin/users", "/paths/x/%2E.%3b/admin/users"] {
        let resp = env.get(path, Some("hannah")).await;
        assert_refusal(resp, 400, "invalid_request", None).await;
    }
    assert_eq!(opa.requests(), asked, "OPA was not asked");
    assert_eq!(env.api.hits(), hits, "nothing was forwarded");
    assert_eq!(env.idp.introspections(), introspections, "nothing was introspected");
}

/// Segment parameters inside one route (`/paths/admin;x/users`) do not change the route, so they pass the
/// route stage; a Tomcat- or Spring-style upstream drops them and serves `/paths/admin/users`. OPA must be
/// asked about that path, not the one with the parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opa_is_asked_about_the_path_without_segment_parameters() {
    let opa = FakeOpa::start(POLICY);
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.routes.push(opa_route(&c, "/paths", opa.data_url("shroud/not_the_user_list"), 0));
        c
    });
    employee(&env, "hannah", &["hr"]);
    let hits = env.api.hits();
    for path in ["/paths/admin;/users", "/paths/admin;jsessionid=1/users", "/paths/admin%3Bx/users"] {
        denied_by_opa(env.get(path, Some("hannah")).await).await;
    }
    assert_eq!(env.api.hits(), hits, "nothing was forwarded");
    denied_by_opa(env.get("/paths/admin/users", Some("hannah")).await).await;
    assert_eq!(env.get("/paths/admin/users;jsessionid=1", Some("hannah")).await.status(), 403);
    assert_eq!(env.get("/paths/admin/roles;jsessionid=1", Some("hannah")).await.status(), 200, "parameters still pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undefined_decision_is_denied() {
    let opa = FakeOpa::start(POLICY);
    let env = opa_env(&opa);
    employee(&env, "hannah", &["hr"]);
    denied_by_opa(env.get("/admin/x", Some("hannah")).await).await;
    assert_eq!(env.api.hits(), 0);
    assert_eq!(opa.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_failing_slow_or_absent_opa_fails_closed() {
    let mut opa = FakeOpa::start(POLICY);
    let env = Env::with(ResponseMode::Json, |mut c| {
        let mut hr = opa_route(&c, "/hr", opa.data_url("shroud/allow"), 0);
        hr.opa.as_mut().unwrap().timeout_ms = 300;
        c.routes.push(hr);
        c
    });
    employee(&env, "hannah", &["hr"]);
    assert_eq!(env.get("/hr/x", Some("hannah")).await.status(), 200);
    let hits = env.api.hits();
    for raw in [
        "{\"result\": tru",
        "{\"result\": \"true\"}",
        "{\"result\": {\"allow\": true, \"headers\": {\"Host\": \"x\"}}}",
    ] {
        opa.set_behaviour(OpaBehaviour { raw_body: Some(raw.into()), ..Default::default() });
        fails_closed(env.get("/hr/x", Some("hannah")).await, &opa).await;
    }
    opa.set_behaviour(OpaBehaviour { status: Some(500), ..Default::default() });
    fails_closed(env.get("/hr/x", Some("hannah")).await, &opa).await;
    opa.set_behaviour(OpaBehaviour { delay_ms: 1000, ..Default::default() });
    let started = std::time::Instant::now();
    fails_closed(env.get("/hr/x", Some("hannah")).await, &opa).await;
    assert!(started.elapsed() < Duration::from_millis(900), "timeout_ms = 300 bounds the wait");
    opa.set_behaviour(OpaBehaviour::default());
    assert_eq!(env.get("/hr/x", Some("hannah")).await.status(), 200, "OPA is back");
    opa.stop();
    fails_closed(env.get("/hr/x", Some("hannah")).await, &opa).await;
    assert_eq!(env.api.hits(), hits + 1, "nothing was forwarded while OPA failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_input_holds_the_request_and_claims_but_no_credential() {
    let opa = FakeOpa::start(POLICY);
    let env = Env::with(ResponseMode::Json, |c| {
        let mut c = crate::spa::token_handler_config(c);
        let mut hr = opa_route(&c, "/hr", opa.data_url("shroud/allow"), 0);
        hr.credentials = shroud::config::CredentialKind::Any;
        hr.forward_claims.insert("sub".into(), "X-User-Id".into());
        c.routes.push(hr);
        c
    });
    employee(&env, "hannah", &["hr"]);
    let resp = env
        .http
        .get(format!("{}/hr/%70ayroll?month=5", env.shroud.url()))
        .bearer_auth("hannah")
        .header("cookie", "shroud-at=secret-cookie; theme=dark")
        .header("x-shroud-csrf", "csrf-value")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("x-user-id", "mallory")
        .header("x-request-id", "r-1")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let inputs = opa.inputs();
    let input = inputs.last().unwrap();
    assert_eq!(input["method"], "GET");
    assert_eq!(input["path"], "/hr/payroll", "the normalised path, without the query");
    assert_eq!(input["route"], "/hr");
    assert_eq!(input["claims"]["sub"], "hannah");
    assert_eq!(input["claims"]["roles"], json!(["hr"]));
    assert_eq!(input["claims"]["scope"], "read");
    let headers = input["headers"].as_object().unwrap();
    assert_eq!(headers["x-request-id"], "r-1");
    assert_eq!(headers["accept"], "application/json");
    for credential in ["authorization", "cookie", "x-shroud-csrf", "proxy-authorization", "x-user-id"] {
        assert!(!headers.contains_key(credential), "{credential} must not reach OPA: {headers:?}");
    }
    let text = input.to_string();
    for secret in ["secret-cookie", "csrf-value", "c2VjcmV0", "mallory"] {
        assert!(!text.contains(secret), "{secret} must not reach OPA: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_cached_per_claims_method_and_path_but_never_failures() {
    let opa = FakeOpa::start(POLICY);
    let env = opa_env(&opa);
    employee(&env, "hannah", &["hr"]);
    employee(&env, "harry", &["hr"]);
    employee(&env, "fiona", &["finance"]);
    assert_eq!(env.get("/hr/x", Some("hannah")).await.status(), 200);
    assert_eq!(env.get("/hr/x", Some("hannah")).await.status(), 200);
    assert_eq!(opa.requests(), 2, "cache_seconds = 0: every request asks OPA");

    assert_eq!(env.get("/cached/x", Some("hannah")).await.status(), 200);
    assert_eq!(env.get("/cached/x", Some("hannah")).await.status(), 200);
    assert_eq!(opa.requests(), 3, "the second identical request reused the decision");
    assert_eq!(env.get("/cached/y", Some("hannah")).await.status(), 200);
    assert_eq!(env.get("/cached/x", Some("harry")).await.status(), 200);
    assert_eq!(opa.requests(), 5, "another path or other claims ask again");
    denied_by_opa(env.get("/cached/x", Some("fiona")).await).await;
    denied_by_opa(env.get("/cached/x", Some("fiona")).await).await;
    assert_eq!(opa.requests(), 6, "denials are decisions too");

    opa.set_behaviour(OpaBehaviour { status: Some(500), ..Default::default() });
    employee(&env, "hugo", &["hr"]);
    fails_closed(env.get("/cached/x", Some("hugo")).await, &opa).await;
    opa.set_behaviour(OpaBehaviour::default());
    assert_eq!(env.get("/cached/x", Some("hugo")).await.status(), 200, "a failure is never cached");
    assert_eq!(opa.requests(), 8);

    let metrics = metrics(&env.shroud).await;
    for line in [
        r#"shroud_opa_decisions_total{outcome="allow",route="/cached"} 4"#,
        r#"shroud_opa_decisions_total{outcome="deny",route="/cached"} 1"#,
        r#"shroud_opa_decisions_total{outcome="cached",route="/cached"} 2"#,
        r#"shroud_opa_decisions_total{outcome="error",route="/cached"} 1"#,
        r#"shroud_opa_decisions_total{outcome="allow",route="/hr"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

fn opa_config_text(opa: &str) -> String {
    format!("{}[routes.opa]\n{opa}\n", crate::cli::base_config(""))
}

#[test]
fn configuration_is_checked_at_start_and_rendered() {
    use crate::cli::{shroud, write_config};
    let good = "url = \"http://127.0.0.1:8181/v1/data/shroud/allow\"\ncache_seconds = 30";
    let path = write_config(&opa_config_text(good));
    let out = shroud(&["check-config", "--config", path.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("[routes.opa]"), "{stdout}");
    assert!(stdout.contains("url = \"http://127.0.0.1:8181/v1/data/shroud/allow\""), "{stdout}");
    assert!(stdout.contains("timeout_ms = 500"), "the default timeout: {stdout}");
    assert!(stdout.contains("cache_seconds = 30"), "{stdout}");
    let path = write_config(&opa_config_text("url = \"http://127.0.0.1:8181/v1/data/x\"\nheaders = [\"X-Tenant\"]"));
    let out = shroud(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("headers = [\"X-Tenant\"]"));
    for (opa, says) in [
        ("url = \"opa:8181/v1/data/x\"", "invalid configuration key `routes[0].opa.url`"),
        ("url = \"ftp://opa/v1/data/x\"", "invalid configuration key `routes[0].opa.url`: must be an http"),
        (
            "url = \"http://opa/v1/data/x\"\ntimeout_ms = 0",
            "invalid configuration key `routes[0].opa.timeout_ms`: must be greater than 0",
        ),
        ("url = \"http://opa/v1/data/x\"\ncache_secs = 5", "cache_secs"),
        ("timeout_ms = 100", "url"),
        (
            "url = \"http://opa/v1/data/x\"\nheaders = [\"X Tenant\"]",
            "invalid configuration key `routes[0].opa.headers`: \"X Tenant\" is not a header name",
        ),
        (
            "url = \"http://opa/v1/data/x\"\nheaders = [\"Authorization\"]",
            "invalid configuration key `routes[0].opa.headers`: Shroud sets Authorization itself",
        ),
        (
            "url = \"http://opa/v1/data/x\"\nheaders = [\"X-A\", \"x-a\"]",
            "invalid configuration key `routes[0].opa.headers`: x-a is listed twice",
        ),
    ] {
        let path = write_config(&opa_config_text(opa));
        let out = shroud(&["check-config", "--config", path.to_str().unwrap()], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{opa} should fail");
        assert!(stderr.contains(says), "{opa}: error should say {says}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_are_audited_and_failures_logged_without_claims() {
    let mut opa = FakeOpa::start(POLICY);
    let idp = shroud_testkit::FakeAs::start();
    let api = shroud_testkit::EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let text = opa_config_text(&format!("url = \"{}\"", opa.data_url("shroud/allow")));
    let served =
        crate::cli::Served::start(&crate::cli::served_config(&text, port, &idp.url(), &api.url()), port, "info").await;
    let base = served.base.clone();
    let http = client();
    let token = "opaque-token-of-fiona";
    let mut spec = TokenSpec::active("fiona", "read", 300);
    spec.extra.insert("roles".into(), json!(["finance-secret-role"]));
    idp.issue(token, spec);
    denied_by_opa(http.get(format!("{base}/api/x")).bearer_auth(token).send().await.unwrap()).await;
    opa.stop();
    let resp = http.get(format!("{base}/api/x")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let logs = served.logs();
    let audit = logs.lines().find(|l| l.contains("shroud::audit")).unwrap_or_else(|| panic!("an audit line:\n{logs}"));
    for field in [r#""decision":"deny""#, r#""rule":"opa""#, r#""route":"/api""#, r#""sub":"fiona""#] {
        assert!(audit.contains(field), "{field} in {audit}");
    }
    assert!(logs.contains("policy service for route /api failed ("), "{logs}");
    for secret in [token, "finance-secret-role", "gateway-secret"] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_decision_header_is_dropped_with_a_log_line_naming_it() {
    let opa = FakeOpa::start(POLICY);
    let idp = shroud_testkit::FakeAs::start();
    let api = shroud_testkit::EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let text = opa_config_text(&format!("url = \"{}\"\nheaders = [\"X-Tenant\"]", opa.data_url("shroud/tenant")));
    let served =
        crate::cli::Served::start(&crate::cli::served_config(&text, port, &idp.url(), &api.url()), port, "warn").await;
    let mut spec = TokenSpec::active("hannah", "read", 300);
    spec.extra.insert("roles".into(), json!(["hr"]));
    idp.issue("opaque-token-of-hannah", spec);
    let resp =
        client().get(format!("{}/api/x", served.base)).bearer_auth("opaque-token-of-hannah").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let echo = api.last().unwrap();
    assert_eq!(echo.header_all("x-tenant"), vec!["acme"]);
    assert_eq!(echo.header("x-employee"), None, "not listed: dropped");
    let logs = served.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("sets header x-employee, which [routes.opa] headers does not list: dropped"))
        .unwrap_or_else(|| panic!("a warning naming the header:\n{logs}"));
    assert!(line.contains("route /api"), "{line}");
    assert!(!line.contains("hannah"), "never the header's value: {line}");
}

//! The policy stage beyond scopes: methods, claim rules (RBAC/ABAC, nested claims, time of day), and
//! identity headers forwarded from the verified claims.

use crate::support::*;
use serde_json::json;
use shroud::config::ResponseMode;
use shroud_testkit::TokenSpec;

fn hhmm(minute: i64) -> String {
    let m = minute.rem_euclid(1440);
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn now_minute() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    (secs % 86_400) / 60
}

fn hr_env() -> Env {
    Env::with(ResponseMode::Json, |mut c| {
        let upstream = c.routes[0].upstream.clone();
        let mut hr = route("/hr", &upstream, &[]);
        hr.methods = vec!["GET".into(), "POST".into()];
        hr.require.insert("roles".into(), json!({"claim": "roles", "any_of": ["hr", "admin"]}));
        hr.require.insert("department".into(), json!({"claim": "dept", "equals": "hr"}));
        hr.require.insert("realm".into(), json!({"claim": "realm_access.roles", "any_of": ["staff"]}));
        let now = now_minute();
        hr.require.insert("hours".into(), json!({"utc_between": [hhmm(now - 60), hhmm(now + 60)]}));
        let mut closed = route("/closed", &upstream, &[]);
        closed.require.insert("hours".into(), json!({"utc_between": [hhmm(now + 120), hhmm(now + 180)]}));
        let mut ids = route("/ids", &upstream, &[]);
        ids.forward_claims.insert("sub".into(), "X-User-Id".into());
        ids.forward_claims.insert("scope".into(), "X-Scopes".into());
        ids.forward_claims.insert("roles".into(), "X-Roles".into());
        ids.forward_claims.insert("realm_access.roles".into(), "X-Realm-Roles".into());
        ids.forward_token = false;
        c.routes.extend([hr, closed, ids]);
        c
    })
}

fn employee(env: &Env, name: &str, roles: serde_json::Value, dept: &str, realm: &[&str]) {
    let mut spec = TokenSpec::active(name, "read", 300);
    spec.extra.insert("roles".into(), roles);
    spec.extra.insert("dept".into(), dept.into());
    spec.extra.insert("realm_access".into(), json!({ "roles": realm }));
    env.idp.issue(name, spec);
}

async fn denied(resp: reqwest::Response, rule: &str) {
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("www-authenticate").is_none());
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "access_denied");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&format!("`{rule}`")), "{message}");
    for value in ["finance", "\"it\"", "intern"] {
        assert!(!message.contains(value), "the claim's value never shows: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_rules_allow_and_deny() {
    let env = hr_env();
    employee(&env, "hannah", json!(["hr"]), "hr", &["staff"]);
    employee(&env, "adam", json!("admin"), "hr", &["staff"]);
    employee(&env, "fiona", json!(["finance"]), "hr", &["staff"]);
    employee(&env, "ivan", json!(["hr"]), "it", &["staff"]);
    employee(&env, "ian", json!(["hr"]), "hr", &["intern"]);
    assert_eq!(env.get("/hr/payroll", Some("hannah")).await.status(), 200, "array claim holds hr");
    assert_eq!(env.get("/hr/payroll", Some("adam")).await.status(), 200, "string claim holds admin");
    let hits = env.api.hits();
    denied(env.get("/hr/payroll", Some("fiona")).await, "roles").await;
    denied(env.get("/hr/payroll", Some("ivan")).await, "department").await;
    denied(env.get("/hr/payroll", Some("ian")).await, "realm").await;
    denied(env.get("/closed/x", Some("hannah")).await, "hours").await;
    assert_eq!(env.api.hits(), hits, "no denied request reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_outside_the_list_are_405_before_any_exchange() {
    let env = hr_env();
    employee(&env, "hannah", json!(["hr"]), "hr", &["staff"]);
    let resp = env.http.delete(format!("{}/hr/x", env.shroud.url())).bearer_auth("hannah").send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
    assert_eq!(env.idp.introspections(), 0, "a request that can never succeed is not introspected");
    let resp = env.http.post(format!("{}/hr/x", env.shroud.url())).bearer_auth("hannah").send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_come_from_verified_claims_only() {
    let env = hr_env();
    employee(&env, "hannah", json!(["hr", "staff"]), "hr", &["staff", "lead"]);
    let resp = env
        .http
        .get(format!("{}/ids/me", env.shroud.url()))
        .bearer_auth("hannah")
        .header("x-user-id", "mallory")
        .header("X-Scopes", "admin")
        .header("x-roles", "root")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let echo = env.api.last().unwrap();
    assert_eq!(echo.header_all("x-user-id"), vec!["hannah"], "forged identity headers are stripped");
    assert_eq!(echo.header_all("x-scopes"), vec!["read"]);
    assert_eq!(echo.header("x-roles"), Some("hr staff"));
    assert_eq!(echo.header("x-realm-roles"), Some("staff lead"));
    assert_eq!(echo.header("authorization"), None, "forward_token = false");

    // Neither `sub` nor `client_id` (which would stand in for `sub`, RFC 9068 §2.2): the claim is absent.
    let mut spec = TokenSpec::active("nobody", "read", 300);
    spec.sub = None;
    spec.client_id = None;
    env.idp.issue("anonymous", spec);
    let resp = env
        .http
        .get(format!("{}/ids/me", env.shroud.url()))
        .bearer_auth("anonymous")
        .header("x-user-id", "mallory")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(env.api.last().unwrap().header("x-user-id"), None, "stripped even when the claim is absent");
}

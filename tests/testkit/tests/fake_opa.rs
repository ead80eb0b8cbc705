//! The fake OPA over real HTTP: Data API answers from a real Rego policy, and its knobs.

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{json, Value};
use shroud_testkit::{FakeOpa, OpaBehaviour};

const POLICY: &str = r#"
package shroud

default allow := false

allow if {
    "hr" in input.claims.roles
    input.method == "GET"
}

decision := {"allow": allow, "headers": {"X-Dept": input.claims.dept}}

only_for_admins if input.claims.admin
"#;

fn post(url: &str, body: Value) -> (u16, Value) {
    let client = Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let resp = client.post(url).json(&body).send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap())
}

#[test]
fn data_api_evaluates_the_policy() {
    let opa = FakeOpa::start(POLICY);
    let hr = json!({"input": {"method": "GET", "claims": {"roles": ["hr"], "dept": "people"}}});
    assert_eq!(post(&opa.data_url("shroud/allow"), hr.clone()), (200, json!({"result": true})));
    let (_, answer) = post(&opa.data_url("shroud/decision"), hr.clone());
    assert_eq!(answer, json!({"result": {"allow": true, "headers": {"X-Dept": "people"}}}));
    let post_hr = json!({"input": {"method": "POST", "claims": {"roles": ["hr"]}}});
    assert_eq!(post(&opa.data_url("shroud/allow"), post_hr), (200, json!({"result": false})));
    assert_eq!(post(&opa.data_url("shroud/only_for_admins"), hr.clone()), (200, json!({})), "undefined");
    assert_eq!(post(&opa.data_url("shroud/no_such_rule"), hr.clone()), (200, json!({})), "undefined");
    assert_eq!(opa.requests(), 5);
    assert_eq!(opa.inputs()[0], hr["input"]);
}

#[test]
fn knobs_fail_delay_and_stop() {
    let mut opa = FakeOpa::start(POLICY);
    let url = opa.data_url("shroud/allow");
    opa.set_behaviour(OpaBehaviour { status: Some(500), ..Default::default() });
    assert_eq!(post(&url, json!({"input": {}})).0, 500);
    opa.set_behaviour(OpaBehaviour { raw_body: Some("{\"result\": 1}".into()), ..Default::default() });
    assert_eq!(post(&url, json!({"input": {}})), (200, json!({"result": 1})));
    opa.set_behaviour(OpaBehaviour { delay_ms: 300, ..Default::default() });
    let started = Instant::now();
    assert_eq!(post(&url, json!({"input": {}})), (200, json!({"result": false})));
    assert!(started.elapsed() >= Duration::from_millis(300));
    opa.stop();
    assert!(Client::new().post(&url).json(&json!({})).send().is_err(), "a stopped OPA refuses connections");
}

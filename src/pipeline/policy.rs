//! Stage 4, **policy**: the route's requirements against the grant: every `required_scopes` entry
//! (403 `insufficient_scope`), then every claim rule of `[routes.require]` (403 `access_denied` naming the
//! rule, never the claim's value). Each denial writes one JSON line to the `shroud::audit` log target.

use super::route::Route;
use super::rules::utc_minute_now;
use crate::error::Rejection;
use crate::grant::Grant;
use serde_json::{Map, Value};

/// Checks scopes, then claim rules (`claims` are the grant's, decoded when the route has rules).
pub fn authorize(route: &Route, grant: Option<&Grant>, claims: Option<&Map<String, Value>>) -> Result<(), Rejection> {
    let Some(grant) = grant else { return Ok(()) };
    if !route.required_scopes.iter().all(|scope| grant.has_scope(scope)) {
        audit(route, claims, "insufficient_scope");
        return Err(Rejection::InsufficientScope(route.required_scope_list.clone()));
    }
    if let Some(claims) = claims {
        let now = utc_minute_now();
        if let Some(failed) = route.rules.iter().find(|rule| !rule.holds(claims, now)) {
            audit(route, Some(claims), &failed.name);
            return Err(Rejection::PolicyDenied(failed.name.clone()));
        }
    }
    Ok(())
}

/// Writes the audit line of a denial by the rule `failed` (a scope, a claim rule or `opa`).
pub(super) fn audit(route: &Route, claims: Option<&Map<String, Value>>, failed: &str) {
    let claim = |name: &str| claims.and_then(|c| c.get(name)).and_then(Value::as_str).unwrap_or("");
    log::info!(
        target: "shroud::audit",
        "{}",
        serde_json::json!({
            "decision": "deny",
            "route": route.prefix,
            "rule": failed,
            "sub": claim("sub"),
            "client_id": claim("client_id"),
        })
    );
}

//! Stage 4, **policy**: the route's requirements against the grant: every `required_scopes` entry
//! (403 `insufficient_scope`), then every claim rule of `[routes.require]` (403 `access_denied` naming the
//! rule, never the claim's value). The denial's audit line is written by [`super::audit`], like every decision's.

use super::route::Route;
use super::rules::utc_minute_now;
use crate::error::Rejection;
use crate::grant::Grant;
use serde_json::{Map, Value};

/// Checks scopes, then claim rules (`claims` are the grant's, decoded when the route has rules).
pub fn authorize(route: &Route, grant: Option<&Grant>, claims: Option<&Map<String, Value>>) -> Result<(), Rejection> {
    let Some(grant) = grant else { return Ok(()) };
    if !route.required_scopes.iter().all(|scope| grant.has_scope(scope)) {
        return Err(Rejection::InsufficientScope(route.required_scope_list.clone()));
    }
    if let Some(claims) = claims {
        let now = utc_minute_now();
        if let Some(failed) = route.rules.iter().find(|rule| !rule.holds(claims, now)) {
            return Err(Rejection::PolicyDenied(failed.name.clone()));
        }
    }
    Ok(())
}

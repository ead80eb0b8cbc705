//! Stage 4, **policy**: the route's requirements against the grant's claims.

use super::route::Route;
use crate::error::Rejection;
use crate::grant::Grant;

/// Every `required_scopes` entry must be in the token's scope; otherwise 403 `insufficient_scope`.
pub fn authorize(route: &Route, grant: Option<&Grant>) -> Result<(), Rejection> {
    let Some(grant) = grant else { return Ok(()) };
    if route.required_scopes.iter().all(|scope| grant.has_scope(scope)) {
        Ok(())
    } else {
        Err(Rejection::InsufficientScope(route.required_scope_list.clone()))
    }
}

//! Stage 3, **exchange**: opaque token → grant, through the cache (which coalesces concurrent misses)
//! and, on a miss, the [`Exchanger`](crate::exchange::Exchanger). The only stage that talks to the AS.

use super::credential::Credential;
use crate::cache::{ExchangeFailed, Exchanged, Outcome, Tier};
use crate::error::Rejection;
use crate::gateway::Gateway;
use crate::grant::Grant;
use std::sync::Arc;

/// The exchange's result: the grant to forward (none for routes without credentials) and where it came from.
#[derive(Debug, Default)]
pub struct Exchange {
    /// The grant, when the route takes a token.
    pub grant: Option<Arc<Grant>>,
    /// Which cache tier answered, when a token was exchanged.
    pub tier: Option<Tier>,
}

/// Exchanges the credential. Inactive tokens, and tokens of sessions ended by a logout, → 401
/// `invalid_token`.
pub async fn exchange(gateway: &Gateway, credential: &Credential<'_>) -> Result<Exchange, Rejection> {
    let Some(token) = credential.token() else {
        return Ok(Exchange::default());
    };
    let key = gateway.cache.key(token);
    let sessions = gateway.token_handler.as_ref().map(|th| &th.sessions);
    if sessions.is_some_and(|s| s.is_denied(&key)) {
        return Err(Rejection::InvalidToken("the session has ended".into()));
    }
    let load = || async move {
        if let Some(sessions) = sessions {
            if sessions.is_denied_shared(&key).await {
                return Ok(Exchanged { outcome: Outcome::Inactive, max_age: None });
            }
        }
        gateway.exchanger.exchange(token).await
    };
    // The cache passes the exchange's own error on (shared by the callers it coalesced): a `Rejection`.
    let (outcome, tier) = gateway.cache.get_or_exchange(token, key, load).await.map_err(ExchangeFailed::into_inner)?;
    match outcome {
        Outcome::Active(grant) => Ok(Exchange { grant: Some(grant), tier: Some(tier) }),
        Outcome::Inactive => Err(Rejection::InvalidToken("the access token is not active".into())),
    }
}

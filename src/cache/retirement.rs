//! Key retirement: when the issuer withdraws signing keys, every grant cached so far may rest on them, so
//! the whole cache is purged, once for the fleet.

use super::{GrantCache, PurgeTarget};
use sha2::Digest;
use std::time::Duration;

impl GrantCache {
    /// The issuer withdrew the signing keys `kids`: every grant cached so far may rest on them, so all are
    /// purged, once for the whole fleet (the first instance to claim the retirement in Redis purges; the
    /// others learn of it from its announcement).
    pub async fn retire_keys(&self, kids: &[String]) {
        if let Some(redis) = &self.redis {
            let claim = format!("shroud:v1:retired:{}", hex::encode(sha2::Sha256::digest(kids.join(" ").as_bytes())));
            match redis.try_lock(&claim, "1", Duration::from_secs(24 * 3600)).await {
                Ok(false) => return,
                Ok(true) => {}
                Err(e) => log::warn!("cannot coordinate the key retirement through redis ({e}); purging here"),
            }
        }
        if let Err(e) = self.purge(&PurgeTarget::All).await {
            log::warn!("key retirement purge reached this instance only ({})", e.reason);
        }
    }
}

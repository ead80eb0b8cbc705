//! The shared Redis tier: raw GET/SET of sealed values with a bounded wait. Redis trouble is never
//! fatal: callers treat an error as a miss and carry on with the in-process tier and introspection.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Longest wait for one Redis operation.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// A lazily connected, auto-reconnecting, multiplexed Redis connection.
pub struct RedisTier {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
}

impl RedisTier {
    /// Prepares the tier; the connection is made on first use and re-made after failures.
    pub fn new(url: &str) -> Result<RedisTier, String> {
        let client = redis::Client::open(url).map_err(|e| format!("invalid redis_url: {e}"))?;
        Ok(RedisTier { client, connection: OnceCell::new() })
    }

    async fn connection(&self) -> Result<ConnectionManager, String> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(OPERATION_TIMEOUT)
            .set_response_timeout(OPERATION_TIMEOUT)
            .set_number_of_retries(1);
        self.connection
            .get_or_try_init(|| async {
                tokio::time::timeout(OPERATION_TIMEOUT, ConnectionManager::new_with_config(self.client.clone(), config))
                    .await
                    .map_err(|_| "connect timed out".to_string())?
                    .map_err(|e| format!("connect failed: {:?}", e.kind()))
            })
            .await
            .cloned()
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut connection = self.connection().await?;
        tokio::time::timeout(OPERATION_TIMEOUT, cmd.query_async::<T>(&mut connection))
            .await
            .map_err(|_| "operation timed out".to_string())?
            .map_err(|e| format!("{:?}", e.kind()))
    }

    /// GET `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.run(redis::cmd("GET").arg(key)).await
    }

    /// SET `key` with a millisecond expiry.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), String> {
        let millis = ttl.as_millis().max(1) as u64;
        self.run(redis::cmd("SET").arg(key).arg(value).arg("PX").arg(millis)).await
    }

    /// SADD `members` to the set `key` and (re)set its expiry.
    pub async fn add_to_set(&self, key: &str, members: &[String], ttl: Duration) -> Result<(), String> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SADD")
            .arg(key)
            .arg(members)
            .ignore()
            .cmd("EXPIRE")
            .arg(key)
            .arg(ttl.as_secs().max(1))
            .ignore();
        let mut connection = self.connection().await?;
        tokio::time::timeout(OPERATION_TIMEOUT, pipe.query_async::<()>(&mut connection))
            .await
            .map_err(|_| "operation timed out".to_string())?
            .map_err(|e| format!("{:?}", e.kind()))
    }

    /// SMEMBERS `key`.
    pub async fn set_members(&self, key: &str) -> Result<Vec<String>, String> {
        self.run(redis::cmd("SMEMBERS").arg(key)).await
    }

    /// SET `key` to "1" with an expiry in seconds.
    pub async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), String> {
        self.run(redis::cmd("SET").arg(key).arg("1").arg("EX").arg(ttl.as_secs().max(1))).await
    }

    /// EXISTS `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, String> {
        self.run(redis::cmd("EXISTS").arg(key)).await
    }

    /// DEL `keys`.
    pub async fn delete(&self, keys: &[String]) -> Result<(), String> {
        if keys.is_empty() {
            return Ok(());
        }
        self.run::<i64>(redis::cmd("DEL").arg(keys)).await.map(|_| ())
    }

    /// PUBLISH `message` on `channel`.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), String> {
        self.run::<i64>(redis::cmd("PUBLISH").arg(channel).arg(message)).await.map(|_| ())
    }

    /// A dedicated connection subscribed to `channel`.
    pub async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSub, String> {
        let mut pubsub = tokio::time::timeout(OPERATION_TIMEOUT, self.client.get_async_pubsub())
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| format!("{:?}", e.kind()))?;
        pubsub.subscribe(channel).await.map_err(|e| format!("{:?}", e.kind()))?;
        Ok(pubsub)
    }

    /// SET `key` = `fence` only if absent, expiring after `ttl`: a lock whose holder is known by its fence.
    pub async fn try_lock(&self, key: &str, fence: &str, ttl: Duration) -> Result<bool, String> {
        let millis = ttl.as_millis().max(1) as u64;
        let set: Option<String> =
            self.run(redis::cmd("SET").arg(key).arg(fence).arg("NX").arg("PX").arg(millis)).await?;
        Ok(set.is_some())
    }

    /// Releases a lock only if it still holds `fence` (a lock that expired and was taken by another
    /// instance is left alone).
    pub async fn unlock(&self, key: &str, fence: &str) -> Result<(), String> {
        let script = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
        );
        let mut connection = self.connection().await?;
        tokio::time::timeout(OPERATION_TIMEOUT, script.key(key).arg(fence).invoke_async::<i64>(&mut connection))
            .await
            .map_err(|_| "operation timed out".to_string())?
            .map(|_| ())
            .map_err(|e| format!("{:?}", e.kind()))
    }

    /// Whether Redis answers PING.
    pub async fn ping(&self) -> bool {
        self.run::<String>(&redis::cmd("PING")).await.is_ok()
    }
}

//! The shared Redis tier: raw commands with a bounded wait over one multiplexed, auto-reconnecting
//! connection to whichever deployment `cache.redis_url` names ([`Topology`]). Redis trouble is never
//! fatal: callers treat an error as a miss and carry on with the in-process tier and introspection.

use super::redis_topology::Topology;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest wait for one Redis operation.
pub const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

/// After an operation fails for want of Redis (a timeout, a lost or refused connection), commands are not
/// even tried for this long: requests carry on without the shared tier at once instead of each waiting up
/// to [`OPERATION_TIMEOUT`] per command for a Redis that is down (measured by the fault-injection tests:
/// cache misses took up to 1.5 s while Redis was down). PING ([`RedisTier::ping`], `/readyz`) still
/// probes, and its success ends the pause early.
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// How the errors of an outage begin: commands that failed for want of Redis, and commands not tried
/// because commands are paused ([`PAUSE_AFTER_FAILURE`]). The outage itself is logged once, when it
/// starts, so callers log these at debug level only ([`RedisTier::log_level`]).
const OUTAGE: &str = "redis unreachable: ";

/// A connection to a single node (also a Sentinel's current master) or to a cluster.
#[derive(Clone)]
enum Connection {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Node(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Node(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Node(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A lazily connected, auto-reconnecting, multiplexed Redis connection.
pub struct RedisTier {
    topology: Topology,
    /// The live connection, cloned per command (clones share one multiplexed connection).
    connection: std::sync::Mutex<Option<Connection>>,
    /// Serialises (re)connecting.
    connecting: tokio::sync::Mutex<()>,
    /// Until when commands are skipped after a failure for want of Redis.
    paused_until: std::sync::Mutex<Option<Instant>>,
    /// Whether Redis is known to be unreachable: set by the failure that starts an outage (one warning),
    /// cleared by the first success after it (one info line), so that an outage under load logs two
    /// lines, not one per request.
    down: AtomicBool,
}

/// Whether an operation failed because Redis could not be reached in time (rather than refusing it).
fn unreachable<T>(result: &Result<redis::RedisResult<T>, tokio::time::error::Elapsed>) -> bool {
    match result {
        Err(_) => true,
        Ok(Err(e)) => e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal(),
        Ok(Ok(_)) => false,
    }
}

fn with_timeout<T>(
    result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    what: &str,
) -> Result<T, String> {
    result.map_err(|_| format!("{what} timed out"))?.map_err(|e| format!("{what} failed: {:?}", e.kind()))
}

impl RedisTier {
    /// Prepares the tier for `url` (see [`Topology`]); `ca_pem` replaces the system trust store for TLS.
    /// The connection is made on first use and re-made after failures.
    pub fn new(url: &str, ca_pem: Option<Vec<u8>>) -> Result<RedisTier, String> {
        let topology = Topology::from_url(url, ca_pem).map_err(|e| format!("redis_url {e}"))?;
        Ok(RedisTier {
            topology,
            connection: std::sync::Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
            paused_until: std::sync::Mutex::new(None),
            down: AtomicBool::new(false),
        })
    }

    fn current(&self) -> Option<Connection> {
        self.connection.lock().ok().and_then(|c| c.clone())
    }

    /// Forgets the connection so that the next command connects afresh (a Sentinel failover moves the
    /// master; single nodes and clusters reconnect by themselves).
    fn reset(&self) {
        if matches!(self.topology, Topology::Sentinel(_)) {
            if let Ok(mut connection) = self.connection.lock() {
                *connection = None;
            }
        }
    }

    async fn connection(&self) -> Result<Connection, String> {
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let _connecting = self.connecting.lock().await;
        if let Some(connection) = self.current() {
            return Ok(connection);
        }
        let connection =
            tokio::time::timeout(OPERATION_TIMEOUT, self.connect()).await.map_err(|_| "connect timed out")??;
        if let Ok(mut slot) = self.connection.lock() {
            *slot = Some(connection.clone());
        }
        Ok(connection)
    }

    async fn connect(&self) -> Result<Connection, String> {
        let config = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(OPERATION_TIMEOUT)
                .set_response_timeout(OPERATION_TIMEOUT)
                .set_number_of_retries(1)
        };
        let failed = |e: redis::RedisError| format!("connect failed: {:?}", e.kind());
        match &self.topology {
            Topology::Single(client) => {
                ConnectionManager::new_with_config(client.clone(), config()).await.map(Connection::Node).map_err(failed)
            }
            Topology::Cluster { cluster, .. } => {
                cluster.get_async_connection().await.map(Connection::Cluster).map_err(failed)
            }
            Topology::Sentinel(_) => {
                let master = self.sentinel_master().await?;
                ConnectionManager::new_with_config(master, config()).await.map(Connection::Node).map_err(failed)
            }
        }
    }

    /// The Sentinels' current master for the service.
    async fn sentinel_master(&self) -> Result<redis::Client, String> {
        let Topology::Sentinel(sentinel) = &self.topology else { return Err("not a sentinel deployment".into()) };
        sentinel
            .lock()
            .await
            .async_get_client()
            .await
            .map_err(|e| format!("no master from the sentinels: {:?}", e.kind()))
    }

    /// Whether commands are paused after a recent failure.
    fn paused(&self) -> bool {
        self.paused_until.lock().ok().and_then(|until| *until).is_some_and(|until| Instant::now() < until)
    }

    /// Pauses commands (`Some`) or resumes them (`None`).
    fn set_pause(&self, until: Option<Instant>) {
        if let Ok(mut paused) = self.paused_until.lock() {
            *paused = until;
        }
    }

    /// Redis could not be reached (`why`): commands pause, and the first such failure of an outage is
    /// logged.
    fn fail_unreachable(&self, why: &str) {
        self.set_pause(Some(Instant::now() + PAUSE_AFTER_FAILURE));
        if !self.down.swap(true, Ordering::Relaxed) {
            log::warn!(
                "redis unreachable ({why}); carrying on without the shared tier, retrying every {} s",
                PAUSE_AFTER_FAILURE.as_secs()
            );
        }
    }

    /// Redis answered: ends a logged outage. (A plain load first: no write to the shared flag per
    /// command while Redis is up.)
    fn answered(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
            log::info!("redis answers again; the shared tier is back in use");
        }
    }

    /// The level at which a caller logs `error` (from any command): debug when it comes from an outage,
    /// which the tier has logged already, else warn.
    pub fn log_level(error: &str) -> log::Level {
        match error.starts_with(OUTAGE) {
            true => log::Level::Debug,
            false => log::Level::Warn,
        }
    }

    /// A connection, unless commands are paused; a failure to connect pauses them.
    async fn usable_connection(&self) -> Result<Connection, String> {
        if self.paused() {
            return Err(format!("{OUTAGE}skipped while paused"));
        }
        self.connection().await.map_err(|e| {
            self.fail_unreachable(&e);
            format!("{OUTAGE}{e}")
        })
    }

    /// Reads an operation's outcome: a failure for want of Redis pauses commands; any failure resets a
    /// Sentinel connection.
    fn settle<T>(&self, result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>) -> Result<T, String> {
        let lost = unreachable(&result);
        let result = with_timeout(result, "operation");
        match &result {
            Ok(_) => self.answered(),
            Err(_) => self.reset(),
        }
        result.map_err(|e| match lost {
            true => {
                self.fail_unreachable(&e);
                format!("{OUTAGE}{e}")
            }
            false => e,
        })
    }

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, String> {
        let mut connection = self.usable_connection().await?;
        self.settle(tokio::time::timeout(OPERATION_TIMEOUT, cmd.query_async::<T>(&mut connection)).await)
    }

    async fn run_pipeline(&self, pipe: &redis::Pipeline) -> Result<(), String> {
        let mut connection = self.usable_connection().await?;
        self.settle(tokio::time::timeout(OPERATION_TIMEOUT, pipe.query_async::<()>(&mut connection)).await)
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

    /// Adds `member` to the sorted set `key` with its expiry (`until`, unix seconds) as score, drops the
    /// members that expired, and keeps the set `ttl` past this addition: an index that lists only live
    /// entries, however many come and go.
    pub async fn add_to_index(&self, key: &str, member: &str, until: u64, ttl: Duration) -> Result<(), String> {
        let now = crate::grant::now_secs();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("ZADD")
            .arg(key)
            .arg(until)
            .arg(member)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(key)
            .arg("-inf")
            .arg(format!("({now}"))
            .ignore()
            .cmd("EXPIRE")
            .arg(key)
            .arg(ttl.as_secs().max(1))
            .ignore();
        self.run_pipeline(&pipe).await
    }

    /// The members of the sorted set `key` that have not expired (score ≥ now).
    pub async fn index_members(&self, key: &str) -> Result<Vec<String>, String> {
        self.run(redis::cmd("ZRANGEBYSCORE").arg(key).arg(crate::grant::now_secs()).arg("+inf")).await
    }

    /// SET `key` to "1" with an expiry in seconds.
    pub async fn set_flag(&self, key: &str, ttl: Duration) -> Result<(), String> {
        self.run(redis::cmd("SET").arg(key).arg("1").arg("EX").arg(ttl.as_secs().max(1))).await
    }

    /// EXISTS `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, String> {
        self.run(redis::cmd("EXISTS").arg(key)).await
    }

    /// DEL each of `keys`, one command per key (keys of a cluster live on different nodes); tells for
    /// each whether it existed.
    pub async fn delete(&self, keys: &[String]) -> Result<Vec<bool>, String> {
        let commands: Vec<redis::Cmd> = keys.iter().map(|key| redis::cmd("DEL").arg(key).clone()).collect();
        let deletions = commands.iter().map(|cmd| self.run::<i64>(cmd));
        futures_util::future::join_all(deletions).await.into_iter().map(|r| r.map(|n| n > 0)).collect()
    }

    /// INCR `key`: the new value.
    pub async fn increment(&self, key: &str) -> Result<u64, String> {
        self.run(redis::cmd("INCR").arg(key)).await
    }

    /// GET `key` as a number (absent = 0).
    pub async fn get_number(&self, key: &str) -> Result<u64, String> {
        self.run::<Option<u64>>(redis::cmd("GET").arg(key)).await.map(Option::unwrap_or_default)
    }

    /// PUBLISH `message` on `channel`.
    pub async fn publish(&self, channel: &str, message: &str) -> Result<(), String> {
        self.run::<i64>(redis::cmd("PUBLISH").arg(channel).arg(message)).await.map(|_| ())
    }

    /// A dedicated connection subscribed to `channel` (in a cluster, on the first seed node that answers).
    pub async fn subscribe(&self, channel: &str) -> Result<redis::aio::PubSub, String> {
        let clients = match &self.topology {
            Topology::Single(client) => vec![client.clone()],
            Topology::Cluster { seeds, .. } => seeds.clone(),
            Topology::Sentinel(_) => vec![self.sentinel_master().await?],
        };
        let mut last = String::from("no node to subscribe to");
        for client in clients {
            match tokio::time::timeout(OPERATION_TIMEOUT, client.get_async_pubsub()).await {
                Ok(Ok(mut pubsub)) => {
                    pubsub.subscribe(channel).await.map_err(|e| format!("subscribe failed: {:?}", e.kind()))?;
                    return Ok(pubsub);
                }
                Ok(Err(e)) => last = format!("connect failed: {:?}", e.kind()),
                Err(_) => last = "connect timed out".into(),
            }
        }
        Err(last)
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
        // Sent by its SHA-1 (EVALSHA): the script text crosses the wire once per Redis, not per release.
        static RELEASE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
            )
        });
        self.invoke::<_, i64>(&RELEASE, key, fence).await.map(|_| ())
    }

    /// Runs `script` (by its SHA-1, loading it when Redis does not know it yet) on one `key` with `args`.
    pub async fn invoke<A: redis::ToRedisArgs, T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        key: &str,
        args: A,
    ) -> Result<T, String> {
        let mut connection = self.usable_connection().await?;
        let mut invocation = script.key(key);
        invocation.arg(args);
        self.settle(tokio::time::timeout(OPERATION_TIMEOUT, invocation.invoke_async::<T>(&mut connection)).await)
    }

    /// Whether Redis answers PING. It probes even while commands are paused, and an answer resumes them.
    pub async fn ping(&self) -> bool {
        let Ok(mut connection) = self.connection().await else { return false };
        let answered = self
            .settle(
                tokio::time::timeout(OPERATION_TIMEOUT, redis::cmd("PING").query_async::<String>(&mut connection))
                    .await,
            )
            .is_ok();
        if answered {
            self.set_pause(None);
        }
        answered
    }
}

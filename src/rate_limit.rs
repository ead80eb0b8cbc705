//! Rate limits: how many requests a key (a source IP, or a client after the exchange) may make per
//! period, as a generic cell rate algorithm (GCRA): a burst of up to `N` requests, then one per
//! `period / N`. In process the limiter is governor's keyed GCRA; with the Redis cache backend the
//! same algorithm runs in Redis, so every instance shares the budget. If Redis cannot answer, the
//! in-process limiter decides (limits stay on; they are per instance for that while).

use crate::cache::redis::RedisTier;
use crate::cache::seal::Sealer;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// A rate: `limit` requests per `period`, written `"100/s"`, `"6000/min"` or `"50000/h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per period (and the largest burst).
    pub limit: NonZeroU32,
    /// The period.
    pub period: Duration,
}

impl Rate {
    /// Reads `"N/s"`, `"N/min"` or `"N/h"` (also `second`, `minute`, `hour`); `None` for `"off"` or `""`.
    pub fn parse(text: &str) -> Result<Option<Rate>, String> {
        let text = text.trim();
        if text.is_empty() || text == "off" {
            return Ok(None);
        }
        let (count, unit) = text.split_once('/').ok_or("must look like \"100/s\", \"6000/min\" or \"off\"")?;
        let limit = count
            .trim()
            .parse::<u32>()
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or("must start with a number of requests greater than 0")?;
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            other => return Err(format!("unknown period `{other}` (use s, min or h)")),
        };
        Ok(Some(Rate { limit, period }))
    }

    /// The time between two requests at the sustained rate.
    fn interval(&self) -> Duration {
        self.period / self.limit.get()
    }

    fn quota(&self) -> Quota {
        let interval = self.interval().max(Duration::from_nanos(1));
        Quota::with_period(interval).expect("a non-zero interval").allow_burst(self.limit)
    }
}

/// A request over its limit: when to come back, and the limit that applied (for the `RateLimit-*`
/// headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exceeded {
    /// The rate that applied.
    pub rate: Rate,
    /// How long until one more request is allowed.
    pub retry_after: Duration,
}

impl Exceeded {
    /// Whole seconds to wait (at least 1), for `Retry-After` and `RateLimit-Reset`.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)
    }
}

/// GCRA in Redis, with Redis's own clock (instances' clocks may differ). KEYS[1] holds the theoretical
/// arrival time (ms); ARGV: interval ms, burst window ms (interval × limit). Returns 0 when allowed, else
/// the milliseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local wait = next_tat - window - now
if wait > 0 then return wait end
redis.call('SET', KEYS[1], next_tat, 'PX', math.max(next_tat - now, 1))
return 0
";

/// One limit (one rate for one kind of key on one route), in process and, when configured, in Redis.
pub struct Limiter {
    rate: Rate,
    local: DefaultKeyedRateLimiter<Box<[u8]>>,
    shared: Option<Shared>,
}

/// The Redis side of a limiter.
struct Shared {
    redis: Arc<RedisTier>,
    script: redis::Script,
    sealer: Sealer,
    /// Key prefix naming the route and the kind of key.
    prefix: String,
}

impl Limiter {
    /// A limiter at `rate`; shared through `redis` (keys HMAC'd with `sealer`, named after `name`) when
    /// given.
    pub fn new(rate: Rate, name: &str, redis: Option<(Arc<RedisTier>, Sealer)>) -> Limiter {
        Limiter {
            rate,
            local: DefaultKeyedRateLimiter::keyed(rate.quota()),
            shared: redis.map(|(redis, sealer)| Shared {
                redis,
                script: redis::Script::new(GCRA),
                sealer,
                prefix: format!("shroud:v1:rl:{name}:"),
            }),
        }
    }

    /// The rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Counts one request for `key`: allowed, or over the limit.
    pub async fn check(&self, key: &[u8]) -> Result<(), Exceeded> {
        if let Some(shared) = &self.shared {
            let name = format!("{}{}", shared.prefix, hex::encode(shared.sealer.key_bytes(key)));
            let interval = self.rate.interval().as_millis().max(1) as u64;
            let window = interval * u64::from(self.rate.limit.get());
            // Boxed: the Redis call's state would otherwise sit in every request's future (see `cache`).
            match Box::pin(shared.redis.invoke::<_, u64>(&shared.script, &name, &[interval, window])).await {
                Ok(0) => return Ok(()),
                Ok(wait_ms) => {
                    return Err(Exceeded { rate: self.rate, retry_after: Duration::from_millis(wait_ms) });
                }
                Err(e) => log::debug!("shared rate limit unavailable ({e}); this instance decides"),
            }
        }
        self.local.check_key(&Box::from(key)).map_err(|not_until| Exceeded {
            rate: self.rate,
            retry_after: not_until.wait_time_from(DefaultClock::default().now()),
        })
    }

    /// Forgets keys whose budget is full again (bounded memory); called periodically.
    pub fn forget_idle(&self) {
        self.local.retain_recent();
        self.local.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rates() {
        let rate = |t: &str| Rate::parse(t).unwrap().unwrap();
        assert_eq!(rate("100/s"), Rate { limit: NonZeroU32::new(100).unwrap(), period: Duration::from_secs(1) });
        assert_eq!(rate(" 6000 / min ").period, Duration::from_secs(60));
        assert_eq!(rate("5/hour").period, Duration::from_secs(3600));
        assert_eq!(Rate::parse("off").unwrap(), None);
        assert_eq!(Rate::parse("").unwrap(), None);
        for bad in ["100", "0/s", "-1/s", "x/s", "10/day", "10/"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn allows_a_burst_then_asks_to_wait() {
        let limiter = Limiter::new(Rate::parse("3/min").unwrap().unwrap(), "t", None);
        for _ in 0..3 {
            assert!(limiter.check(b"203.0.113.9").await.is_ok());
        }
        let exceeded = limiter.check(b"203.0.113.9").await.unwrap_err();
        assert!(exceeded.retry_after > Duration::from_secs(15) && exceeded.retry_after <= Duration::from_secs(20));
        assert!(limiter.check(b"198.51.100.1").await.is_ok(), "other keys have their own budget");
    }
}

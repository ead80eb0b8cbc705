//! Fault injection with real processes and real sockets: concurrent load runs while Redis is killed and
//! restarted, the authorization server fails, slows down or goes away, and the upstream goes down and comes
//! back; and a burst of invalid tokens. Every request is tallied against what the phase it ran in allows:
//! none may be lost and none wrongly authorised (see [`load`]).
//!
//! The scenarios take turns ([`serial`]): each one loads both cores on its own, and a scenario judged on
//! timing must not share them with another.

#[path = "../it/support.rs"]
#[allow(dead_code)]
mod support;

mod load;

mod authorization_server;
mod invalid_burst;
mod redis_outage;
mod upstream;

/// Held by each scenario for its whole run, so that the scenarios of this binary run one at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

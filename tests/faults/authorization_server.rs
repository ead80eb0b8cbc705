//! The authorization server goes down, answers 500, and slows down past the introspection timeout, while
//! 32 clients keep sending cached, fresh, unknown and known-invalid tokens, and tokens that expire during
//! the outage. Cached tokens keep working until they expire; everything that needs the authorization
//! server gets 503 with `Retry-After`; nothing is forwarded without a valid grant; all recovers.

use crate::load::{Answer, Checker, Kind, Load, Record, Request, TRANSITION};
use crate::support::*;
use shroud::config::ResponseMode;
use shroud_testkit::{Behaviour, TokenSpec};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

const CACHED: usize = 200;
const KNOWN_INVALID: usize = 50;
const EXPIRING: usize = 20;
const CONCURRENCY: usize = 32;
/// Introspection timeout; the slow phase delays answers past it.
const TIMEOUT_MS: u64 = 2000;

fn unix_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// What each kind may get while the authorization server works (`up`) or not.
fn allowed(up: bool, record: &Record) -> Vec<Answer> {
    let unavailable = if up { Answer::Refused } else { Answer::AsUnavailable };
    match record.kind {
        Kind::Cached => vec![Answer::Authorised],
        Kind::KnownInvalid => vec![Answer::Refused],
        Kind::Fresh if up => vec![Answer::Authorised],
        Kind::Fresh => vec![Answer::AsUnavailable],
        Kind::Unknown => vec![unavailable],
        Kind::Expiring(exp) => {
            let exp = exp as f64;
            if record.ended < exp - 0.25 {
                // Cached, and not expired yet: served whatever the authorization server does.
                vec![Answer::Authorised]
            } else if record.started >= exp + 1.5 {
                // Expired (the fake authorization server still calls it active during its `exp` second):
                // refused, or 503 when it has to be asked and cannot be; never authorised.
                vec![Answer::Refused, Answer::AsUnavailable]
            } else {
                vec![Answer::Authorised, Answer::Refused, Answer::AsUnavailable]
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_server_down_failing_and_slow_under_load() {
    let _turn = crate::serial().await;
    let env = Env::with(ResponseMode::Rfc9701, |mut c| {
        c.server.workers = 2;
        c.introspection.timeout_ms = TIMEOUT_MS;
        // Known-invalid tokens stay negatively cached for the whole run.
        c.cache.negative_ttl_seconds = 300;
        c
    });
    let idp = Arc::new(env.idp);
    let base = format!("{}/api/x", env.shroud.url());
    let checker = Arc::new(Checker::new(&env.shroud.url(), &env.shroud.gateway.config.phantom.issuer).await);

    // Before the load: cached tokens, known-invalid tokens (negatively cached), and tokens that expire a few
    // seconds into the run, while the authorization server is down.
    let expiry = unix_secs() + 4;
    let http = crate::load::load_client();
    for i in 0..CACHED {
        let token = format!("cached-{i}");
        idp.issue(&token, TokenSpec::active(&token, "read", 300));
        assert_eq!(http.get(&base).bearer_auth(&token).send().await.unwrap().status(), 200);
    }
    for i in 0..EXPIRING {
        let token = format!("expiring-{i}");
        idp.issue(&token, TokenSpec { exp: Some(expiry as i64), ..TokenSpec::active(&token, "read", 0) });
        assert_eq!(http.get(&base).bearer_auth(&token).send().await.unwrap().status(), 200);
    }
    for i in 0..KNOWN_INVALID {
        let resp = http.get(&base).bearer_auth(format!("known-invalid-{i}")).send().await.unwrap();
        assert_eq!(resp.status(), 401);
    }
    let warm_hits = env.api.hits();

    let issuer = idp.clone();
    let load = Load::start(CONCURRENCY, "normal", checker, move |n| {
        let (kind, token) = match n % 10 {
            0..=5 => (Kind::Cached, format!("cached-{}", n % CACHED as u64)),
            6 | 7 => {
                let token = format!("fresh-{n}");
                issuer.issue(&token, TokenSpec::active(&token, "read", 300));
                (Kind::Fresh, token)
            }
            8 => (Kind::Unknown, format!("unknown-{n}")),
            _ if n % 20 == 9 => (Kind::KnownInvalid, format!("known-invalid-{}", n % KNOWN_INVALID as u64)),
            _ => (Kind::Expiring(expiry), format!("expiring-{}", n % EXPIRING as u64)),
        };
        Request { kind, token, url: base.clone() }
    });
    load.hold(1000).await;

    // Down: connections refused. The expiring tokens expire meanwhile.
    load.enter(TRANSITION);
    idp.stop();
    load.enter("as-down");
    while unix_secs() < expiry + 2 {
        load.hold(250).await;
    }
    load.enter(TRANSITION);
    idp.restart();
    load.hold(300).await;
    load.enter("normal");
    load.hold(1000).await;

    // Answering 500.
    load.enter(TRANSITION);
    idp.set_behaviour(Behaviour { status: Some(500), ..Default::default() });
    load.enter("as-500");
    load.hold(1500).await;
    load.enter(TRANSITION);
    idp.set_behaviour(Behaviour::default());
    load.enter("normal");
    load.hold(1000).await;

    // Slower than the introspection timeout.
    load.enter(TRANSITION);
    idp.set_behaviour(Behaviour { delay_ms: TIMEOUT_MS + 1000, ..Default::default() });
    load.enter("as-slow");
    load.hold(TIMEOUT_MS + 1500).await;
    load.enter(TRANSITION);
    idp.set_behaviour(Behaviour::default());
    // Introspections already waiting on the slow answers time out.
    load.hold(TIMEOUT_MS).await;
    load.enter("recovered");
    load.hold(1000).await;

    let report = load.finish(|phase, record| allowed(matches!(phase, "normal" | "recovered"), record)).await;
    report.assert_clean("authorization server down, 500, slow");
    for phase in ["as-down", "as-500", "as-slow"] {
        assert!(report.count_in(phase, "cached", "200") > 0, "cached tokens were served during {phase}");
        assert!(report.count_in(phase, "fresh", "503") > 0, "fresh tokens got 503 during {phase}");
    }
    assert!(report.count_in("as-down", "expiring", "503") > 0, "expired tokens got 503 while it was down");
    assert!(report.count_in("recovered", "fresh", "200") > 0, "fresh tokens work again");
    assert_eq!(env.api.hits() - warm_hits, report.successes() as usize, "nothing else was forwarded");
}

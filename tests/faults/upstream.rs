//! The upstream API goes down mid-load and comes back on the same address: every request that would be
//! forwarded gets 502 `upstream_unavailable` meanwhile (tokens are still checked first, so invalid ones stay
//! 401), and forwarding resumes by itself, without a restart of Shroud.

use crate::load::{Answer, Checker, Kind, Load, Request, TRANSITION};
use crate::support::*;
use shroud::config::ResponseMode;
use shroud_testkit::TokenSpec;
use std::sync::Arc;

const CACHED: usize = 100;
const CONCURRENCY: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_and_recovering_under_load() {
    let _turn = crate::serial().await;
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.server.workers = 2;
        c
    });
    let (idp, mut api) = (Arc::new(env.idp), env.api);
    let base = format!("{}/api/x", env.shroud.url());
    let checker = Arc::new(Checker::new(&env.shroud.url(), &env.shroud.gateway.config.phantom.issuer).await);
    let http = crate::load::load_client();
    for i in 0..CACHED {
        let token = format!("cached-{i}");
        idp.issue(&token, TokenSpec::active(&token, "read", 300));
        assert_eq!(http.get(&base).bearer_auth(&token).send().await.unwrap().status(), 200);
    }
    let warm_hits = api.hits();

    let issuer = idp.clone();
    let load = Load::start(CONCURRENCY, "up", checker, move |n| {
        let (kind, token) = match n % 10 {
            0..=6 => (Kind::Cached, format!("cached-{}", n % CACHED as u64)),
            7 | 8 => {
                let token = format!("fresh-{n}");
                issuer.issue(&token, TokenSpec::active(&token, "read", 300));
                (Kind::Fresh, token)
            }
            _ => (Kind::Unknown, format!("unknown-{n}")),
        };
        Request { kind, token, url: base.clone() }
    });
    load.hold(1000).await;
    load.enter(TRANSITION);
    api.stop();
    load.enter("upstream-down");
    load.hold(1500).await;
    load.enter(TRANSITION);
    api.restart();
    load.hold(200).await;
    load.enter("recovered");
    load.hold(1500).await;

    let report = load
        .finish(|phase, record| match (phase, &record.kind) {
            (_, Kind::Unknown) => vec![Answer::Refused],
            ("upstream-down", _) => vec![Answer::UpstreamUnavailable],
            _ => vec![Answer::Authorised],
        })
        .await;
    report.assert_clean("upstream down and back");
    assert!(report.count_in("upstream-down", "cached", "502") > 0);
    assert!(report.count_in("upstream-down", "fresh", "502") > 0);
    assert!(report.count_in("recovered", "cached", "200") > 0);
    assert!(report.count_in("recovered", "fresh", "200") > 0);
    // A request the upstream took in just as it went down may have been counted there and then cut off.
    let forwarded = api.hits() - warm_hits;
    let (ok, cut) = (report.successes() as usize, report.count("cached", "502") + report.count("fresh", "502"));
    assert!(forwarded >= ok && forwarded <= ok + cut as usize, "forwarded {forwarded}, answered 200 {ok}");
}

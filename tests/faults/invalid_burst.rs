//! A burst of 10,000 distinct invalid tokens, each also repeated, from 50 concurrent clients: every one is
//! refused, nothing is forwarded, and the authorization server is asked at most once per distinct token
//! (the negative cache answers the repeats, and concurrent repeats share one introspection).
//!
//! The burst runs without a rate limit, to show the negative cache's bound alone (a 429 would still count
//! as a correct refusal); `tests/it/limits.rs` shows the per-IP limit capping such a flood at its budget.

use crate::load::load_client;
use futures_util::StreamExt;
use shroud::config::ResponseMode;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::support::*;

const DISTINCT: usize = 10_000;
/// The first `REPEATED` distinct tokens are sent `REPEATS` more times each, interleaved with the rest.
const REPEATED: usize = 1_000;
const REPEATS: usize = 4;
const CONCURRENCY: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_invalid_tokens_cost_at_most_one_introspection_each() {
    let _turn = crate::serial().await;
    let env = Env::with(ResponseMode::Json, |mut c| {
        c.server.workers = 2;
        // Repeats within the negative TTL are free; later ones cost one introspection per TTL (5 s by
        // default), which a slow machine could reach within the burst.
        c.cache.negative_ttl_seconds = 120;
        with_admin(c)
    });
    // Distinct tokens in order, with every 3rd slot a repeat of an earlier (or concurrent) one.
    let mut tokens: Vec<String> = Vec::with_capacity(DISTINCT + REPEATED * REPEATS);
    let mut repeats = (0..REPEATED * REPEATS).map(|i| i % REPEATED);
    for i in 0..DISTINCT {
        tokens.push(format!("invalid-{i:05}-{}", i * 7919 % 10_007));
        if i % 2 == 1 {
            if let Some(r) = repeats.next() {
                tokens.push(format!("invalid-{r:05}-{}", r * 7919 % 10_007));
            }
        }
    }
    tokens.extend(repeats.map(|r| format!("invalid-{r:05}-{}", r * 7919 % 10_007)));
    let sent = tokens.len();

    let http = load_client();
    let url = format!("{}/api/x", env.shroud.url());
    let started = Instant::now();
    let statuses: Vec<Result<u16, String>> = futures_util::stream::iter(tokens)
        .map(|token| {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(url)
                    .bearer_auth(token)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| crate::load::error_chain(&e))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let took = started.elapsed();

    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    for status in &statuses {
        let key = match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("lost: {e}"),
        };
        *tally.entry(key).or_default() += 1;
    }
    let introspections = env.idp.introspections();
    println!(
        "invalid burst: sent {sent}, answered {}, in {took:?}; {tally:?}; introspections {introspections} for {DISTINCT} distinct tokens",
        statuses.iter().filter(|s| s.is_ok()).count()
    );
    assert_eq!(statuses.len(), sent);
    let refused = tally.get("401").copied().unwrap_or(0) + tally.get("429").copied().unwrap_or(0);
    assert_eq!(refused, sent, "every invalid token is refused (401, or 429 once rate limited), none lost: {tally:?}");
    assert_eq!(env.api.hits(), 0, "nothing was forwarded");
    assert!(introspections <= DISTINCT, "{introspections} introspections for {DISTINCT} distinct tokens");
    let metrics = metrics(&env.shroud).await;
    assert!(metrics.contains(r#"shroud_introspections_total{result="inactive"}"#), "{metrics}");
}

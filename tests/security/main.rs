//! The attack suite (issue 7): hostile requests against a running Shroud, in front of the fake
//! authorization server and an echo upstream, one table per theme. Every case asserts the exact status,
//! the JSON error `code` where Shroud answers with one, the RFC 6750 challenge (or its absence), and that
//! nothing reached the upstream; the tables say what else each theme checks (no introspection, no token
//! grant, no cookie issued).
//!
//! | module | attacks |
//! |---|---|
//! | [`jwt`] | forged JWTs from the authorization server, in `jwt` and `rfc9701` modes |
//! | [`headers`] | raw HTTP: credentials, duplicates, CRLF and NUL, oversize, request line |
//! | [`cookies`] | the OAuth Proxy: tampered and moved cookies, CSRF, Origin |
//! | [`agent`] | the OAuth Agent: login/start, login/end, state, codes, refresh, logout |
//! | [`backchannel`] | back-channel logout tokens |
//! | [`authorization_server`] | a hostile authorization server: tampered discovery, oversize answers |
//! | [`introspection`] | answers for refresh, expired and not-yet-valid tokens; client-credentials `sub` |
//!
//! Run it alone with `cargo test --test security`.

#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../it/spa.rs"]
mod spa;

mod agent;
mod answer;
mod authorization_server;
mod backchannel;
mod cookies;
mod headers;
mod introspection;
mod jwt;

use std::collections::BTreeSet;

/// The issue asks for at least this many distinct hostile cases.
const AT_LEAST: usize = 60;

#[test]
fn the_suite_holds_at_least_60_distinct_cases() {
    let themes: [(&str, Vec<&str>); 6] = [
        ("jwt", jwt::cases("http://attacker.invalid").iter().map(|c| c.name).collect()),
        ("headers", headers::cases().iter().map(|c| c.name).collect()),
        ("cookies", cookies::cases().iter().chain(&cookies::curity_v1_cases()).map(|c| c.name).collect()),
        ("agent", agent::cases().iter().map(|c| c.name).collect()),
        ("backchannel", backchannel::cases().iter().map(|c| c.name).collect()),
        ("introspection", introspection::cases().iter().map(|c| c.name).collect()),
    ];
    let mut names = BTreeSet::new();
    for (theme, cases) in &themes {
        println!("{theme}: {} cases", cases.len());
        for name in cases {
            assert!(names.insert(*name), "case names are distinct: {name:?} appears twice");
        }
    }
    println!("attack suite: {} cases", names.len());
    assert!(names.len() >= AT_LEAST, "{} cases, at least {AT_LEAST} wanted", names.len());
}

//! The load driver and its tallies.
//!
//! [`Load`] runs `concurrency` client tasks, each sending one request after another (keep-alive) until it is
//! stopped. The scenario moves the load through named **phases** ([`Load::enter`]) as it injects and removes
//! a fault; a phase named [`TRANSITION`] covers the moment of change. Every request is recorded with the
//! phases it started and ended in, and its answer is classified ([`Answer`]): a 200 counts as
//! [`Answer::Authorised`] only when the upstream's echo shows a phantom JWT that verifies against Shroud's
//! key and names this token's subject (every active token's subject is the token's own name), and the opaque
//! token itself appears nowhere in what the upstream received.
//!
//! [`Load::finish`] judges each record against what the scenario allows for its kind in the phases it
//! spanned (a transition allows what either neighbour allows) and returns a [`Report`]: sent and answered
//! requests, lost ones (no HTTP answer), wrongly authorised ones (a 200 where none is allowed, or a 200 that
//! forwarded anything but the right JWT) and other unexpected answers, with a table of every tally.

use shroud_testkit::Echo;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The name of a phase during which a fault is being injected or removed.
pub const TRANSITION: &str = "transition";

/// No client task sends more than this many requests, whatever happens.
const MAX_REQUESTS_PER_TASK: u64 = 200_000;
/// No load runs longer than this, whatever happens.
const MAX_RUN: Duration = Duration::from_secs(120);

/// What a request presents, and so what it may get.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// An active token used before the load started: cached.
    Cached,
    /// An active token never used before.
    Fresh,
    /// A token the authorization server never issued, never used before.
    Unknown,
    /// A token the authorization server never issued, used before: its inactive answer is cached.
    KnownInvalid,
    /// An active token, cached before the load started, that expires at this unix second during the run.
    Expiring(u64),
}

impl Kind {
    fn label(&self) -> &'static str {
        match self {
            Kind::Cached => "cached",
            Kind::Fresh => "fresh",
            Kind::Unknown => "unknown",
            Kind::KnownInvalid => "known-invalid",
            Kind::Expiring(_) => "expiring",
        }
    }
}

/// One request to send.
pub struct Request {
    /// What it presents.
    pub kind: Kind,
    /// The opaque bearer token.
    pub token: String,
    /// The full URL.
    pub url: String,
}

/// What came back, classified.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    /// 200, and the upstream received a valid phantom JWT for this token (and never the token).
    Authorised,
    /// 200, but the upstream received something else than a valid JWT for this token (the reason).
    Misforwarded(String),
    /// 401 `invalid_token`.
    Refused,
    /// 503 `authorization_server_unavailable` with `Retry-After: 5`.
    AsUnavailable,
    /// 502 `upstream_unavailable`.
    UpstreamUnavailable,
    /// 429: refused by a rate limit.
    RateLimited,
    /// Any other answer: status and JSON `code`.
    Other(u16, String),
    /// No HTTP answer at all: a transport error or a timeout.
    Lost(String),
}

impl Answer {
    fn label(&self) -> String {
        match self {
            Answer::Authorised => "200 authorised".into(),
            Answer::Misforwarded(why) => format!("200 MISFORWARDED ({why})"),
            Answer::Refused => "401 invalid_token".into(),
            Answer::AsUnavailable => "503 authorization_server_unavailable".into(),
            Answer::UpstreamUnavailable => "502 upstream_unavailable".into(),
            Answer::RateLimited => "429".into(),
            Answer::Other(status, code) => format!("{status} {code} (UNEXPECTED KIND)"),
            Answer::Lost(why) => format!("LOST ({why})"),
        }
    }

    /// The same kind of answer, ignoring details.
    fn same_kind(&self, other: &Answer) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// One request and what came of it.
#[derive(Clone, Debug)]
pub struct Record {
    /// What it presented.
    pub kind: Kind,
    /// The phases (indices) it started and ended in.
    pub phases: (usize, usize),
    /// When it was sent and answered, in unix seconds.
    pub started: f64,
    /// When it was answered.
    pub ended: f64,
    /// What came back.
    pub answer: Answer,
}

/// Checks what the upstream received on a 200: a JWT signed by Shroud's phantom key, for this token.
pub struct Checker {
    verifier: Box<dyn josekit::jws::JwsVerifier>,
    issuer: String,
}

impl Checker {
    /// Reads the phantom key from `shroud`'s JWKS; `issuer` is `phantom.issuer`.
    pub async fn new(shroud_url: &str, issuer: &str) -> Checker {
        let jwks = reqwest::get(format!("{shroud_url}/.well-known/jwks.json")).await.unwrap().bytes().await.unwrap();
        let set = josekit::jwk::JwkSet::from_bytes(&jwks).unwrap();
        let jwk = set.keys().into_iter().next().expect("a phantom key in the JWKS");
        let verifier = Box::new(josekit::jws::ES256.verifier_from_jwk(jwk).unwrap());
        Checker { verifier, issuer: issuer.to_string() }
    }

    /// `Ok` when `body`, the upstream's echo, shows a valid phantom JWT for `token`, sent at `started`.
    fn check(&self, token: &str, body: &[u8], started: f64) -> Result<(), String> {
        let echo: Echo = serde_json::from_slice(body).map_err(|_| "not the upstream's echo".to_string())?;
        if echo.headers.iter().any(|(_, v)| v.contains(token)) {
            return Err("the opaque token reached the upstream".into());
        }
        let auth = echo.header("authorization").ok_or("no Authorization forwarded")?;
        let jwt = auth.strip_prefix("Bearer ").ok_or("not a bearer JWT")?;
        let (claims, _) =
            josekit::jwt::decode_with_verifier(jwt, self.verifier.as_ref()).map_err(|_| "the JWT does not verify")?;
        if claims.subject() != Some(token) {
            return Err(format!("JWT for another subject {:?}", claims.subject()));
        }
        if claims.issuer() != Some(self.issuer.as_str()) {
            return Err("JWT from another issuer".into());
        }
        let exp = claims.expires_at().ok_or("JWT without exp")?;
        let exp = exp.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        // Integer seconds: a JWT minted in its token's last second may carry that second as `exp`.
        if exp + 1.0 < started {
            return Err("expired JWT".into());
        }
        Ok(())
    }
}

/// Classifies one answer.
async fn classify(
    response: reqwest::Result<reqwest::Response>,
    token: &str,
    started: f64,
    checker: &Checker,
) -> Answer {
    let response = match response {
        Ok(r) => r,
        Err(e) => return Answer::Lost(if e.is_timeout() { "timeout".into() } else { error_chain(&e) }),
    };
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return Answer::Lost(format!("body: {}", error_chain(&e))),
    };
    if status == 200 {
        return match checker.check(token, &body, started) {
            Ok(()) => Answer::Authorised,
            Err(why) => Answer::Misforwarded(why),
        };
    }
    let code = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    match (status, code.as_str()) {
        (401, "invalid_token") => Answer::Refused,
        (503, "authorization_server_unavailable") if retry_after.as_deref() == Some("5") => Answer::AsUnavailable,
        (503, "authorization_server_unavailable") => {
            Answer::Other(503, "authorization_server_unavailable without Retry-After: 5".into())
        }
        (502, "upstream_unavailable") => Answer::UpstreamUnavailable,
        (429, _) => Answer::RateLimited,
        _ => Answer::Other(status, code),
    }
}

/// An error with its causes, e.g. "error sending request: client error (SendRequest): connection closed".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A keep-alive client for load.
pub fn load_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(256)
        // Below Shroud's keep-alive timeout (5 s), so that no request races the server closing an idle connection.
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// Concurrent load through phases.
pub struct Load {
    phases: Arc<Mutex<Vec<&'static str>>>,
    phase: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    records: Arc<Mutex<Vec<Record>>>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    /// Starts `concurrency` client tasks in phase `first`. Request number `n` (counted over all tasks) is
    /// `next(n)`.
    pub fn start(
        concurrency: usize,
        first: &'static str,
        checker: Arc<Checker>,
        next: impl Fn(u64) -> Request + Send + Sync + 'static,
    ) -> Load {
        let load = Load {
            phases: Arc::new(Mutex::new(vec![first])),
            phase: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            sent: Arc::new(AtomicU64::new(0)),
            records: Arc::new(Mutex::new(Vec::new())),
            tasks: tokio::task::JoinSet::new(),
        };
        let next = Arc::new(next);
        let http = load_client();
        let deadline = Instant::now() + MAX_RUN;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            let (next, http, checker) = (next.clone(), http.clone(), checker.clone());
            let (phase, stop, sent, records) =
                (load.phase.clone(), load.stop.clone(), load.sent.clone(), load.records.clone());
            tasks.spawn(async move {
                let mut mine = Vec::new();
                for _ in 0..MAX_REQUESTS_PER_TASK {
                    if stop.load(Ordering::SeqCst) || Instant::now() > deadline {
                        break;
                    }
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    let request = next(n);
                    let first = phase.load(Ordering::SeqCst);
                    let started = unix_now();
                    let response = http.get(&request.url).bearer_auth(&request.token).send().await;
                    let answer = classify(response, &request.token, started, &checker).await;
                    let last = phase.load(Ordering::SeqCst);
                    mine.push(Record { kind: request.kind, phases: (first, last), started, ended: unix_now(), answer });
                }
                records.lock().unwrap().extend(mine);
            });
        }
        Load { tasks, ..load }
    }

    /// Moves the load into the next phase.
    pub fn enter(&self, name: &'static str) {
        let mut phases = self.phases.lock().unwrap();
        phases.push(name);
        self.phase.store(phases.len() - 1, Ordering::SeqCst);
    }

    /// Stays in the current phase for `ms` milliseconds.
    pub async fn hold(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    /// Stops the clients, waits for every request in flight, and judges each record: `allowed(phase,
    /// record)` lists what a request of that kind may get in a phase.
    pub async fn finish(mut self, allowed: impl Fn(&str, &Record) -> Vec<Answer>) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        let mut panicked = 0;
        while let Some(joined) = self.tasks.join_next().await {
            if joined.is_err() {
                panicked += 1;
            }
        }
        assert_eq!(panicked, 0, "a client task panicked");
        let phases = self.phases.lock().unwrap().clone();
        let records = std::mem::take(&mut *self.records.lock().unwrap());
        let mut report = Report { sent: self.sent.load(Ordering::SeqCst), answered: 0, ..Report::default() };
        for record in &records {
            let (first, last) = record.phases;
            let mut names: Vec<&str> = Vec::new();
            for p in first..=last {
                if phases[p] == TRANSITION {
                    names.extend(p.checked_sub(1).map(|q| phases[q]));
                    names.extend(phases.get(p + 1).copied());
                } else {
                    names.push(phases[p]);
                }
            }
            let allowed: Vec<Answer> = names.iter().flat_map(|name| allowed(name, record)).collect();
            let fits = allowed.iter().any(|a| a.same_kind(&record.answer));
            let authorised = matches!(record.answer, Answer::Authorised | Answer::Misforwarded(_));
            if !matches!(record.answer, Answer::Lost(_)) {
                report.answered += 1;
            } else {
                report.lost += 1;
            }
            if matches!(record.answer, Answer::Misforwarded(_)) || (authorised && !fits) {
                report.wrongly_authorised += 1;
            } else if !fits && !matches!(record.answer, Answer::Lost(_)) {
                report.unexpected += 1;
            }
            if !fits && report.examples.len() < 20 {
                report.examples.push(format!(
                    "{} in phases {:?} (t={:.3}..{:.3}): {} (allowed: {})",
                    record.kind.label(),
                    &phases[first..=last],
                    record.started,
                    record.ended,
                    record.answer.label(),
                    allowed.iter().map(Answer::label).collect::<Vec<_>>().join(", ")
                ));
            }
            let phase = if first == last { phases[first].to_string() } else { TRANSITION.to_string() };
            report.latencies.entry(phase.clone()).or_default().push(record.ended - record.started);
            let label = if fits { record.answer.label() } else { format!("{} !!", record.answer.label()) };
            *report
                .tallies
                .entry((phase_order(&phases, first, last), phase, record.kind.label(), label))
                .or_default() += 1;
        }
        report
    }
}

/// Sorts tallies by the first phase a row belongs to.
fn phase_order(phases: &[&str], first: usize, last: usize) -> usize {
    if first == last {
        phases.iter().position(|p| *p == phases[first]).unwrap_or(first)
    } else {
        usize::MAX
    }
}

/// The tallies of one load.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests sent.
    pub sent: u64,
    /// Requests that got an HTTP answer.
    pub answered: u64,
    /// Requests without an HTTP answer (transport error, timeout).
    pub lost: u64,
    /// 200s where no 200 is allowed, and 200s that forwarded anything but the right JWT.
    pub wrongly_authorised: u64,
    /// Other answers the phase does not allow.
    pub unexpected: u64,
    /// Up to 20 examples of requests that did not get what they should have.
    pub examples: Vec<String>,
    /// Count per (order, phase, kind, answer).
    tallies: BTreeMap<(usize, String, &'static str, String), u64>,
    /// Seconds each request took, per phase.
    latencies: BTreeMap<String, Vec<f64>>,
}

impl Report {
    /// Requests that got `answer` (any details), in any phase.
    pub fn count(&self, kind: &str, answer: &str) -> u64 {
        self.tallies.iter().filter(|((_, _, k, a), _)| *k == kind && a.starts_with(answer)).map(|(_, n)| n).sum()
    }

    /// Requests of `kind` that got an answer starting with `answer` while entirely in `phase`.
    pub fn count_in(&self, phase: &str, kind: &str, answer: &str) -> u64 {
        self.tallies
            .iter()
            .filter(|((_, p, k, a), _)| p == phase && *k == kind && a.starts_with(answer))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests that got a 200 (authorised, or misforwarded).
    pub fn successes(&self) -> u64 {
        self.tallies.iter().filter(|((_, _, _, a), _)| a.starts_with("200")).map(|(_, n)| n).sum()
    }

    /// Asserts the contract: every request sent got an answer, none was wrongly authorised, and every
    /// answer is one its phase allows.
    pub fn assert_clean(&self, scenario: &str) {
        println!("{self}");
        let verdict = format!("{scenario}: {self}");
        assert_eq!(self.sent, self.answered + self.lost, "every request is recorded\n{verdict}");
        assert_eq!(self.lost, 0, "requests lost\n{verdict}");
        assert_eq!(self.wrongly_authorised, 0, "requests wrongly authorised\n{verdict}");
        assert_eq!(self.unexpected, 0, "unexpected answers\n{verdict}");
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sent {} answered {} lost {} wrongly authorised {} unexpected {}",
            self.sent, self.answered, self.lost, self.wrongly_authorised, self.unexpected
        )?;
        writeln!(f, "  {:<14} {:<14} {:<48} {:>7}", "phase", "kind", "answer", "count")?;
        for ((_, phase, kind, answer), n) in &self.tallies {
            writeln!(f, "  {phase:<14} {kind:<14} {answer:<48} {n:>7}")?;
        }
        for (phase, seconds) in &self.latencies {
            let mut ms: Vec<f64> = seconds.iter().map(|s| s * 1000.0).collect();
            ms.sort_by(f64::total_cmp);
            let at = |q: f64| ms[((ms.len() - 1) as f64 * q) as usize];
            writeln!(
                f,
                "  latency in {phase:<14} p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
                at(0.5),
                at(0.99),
                at(1.0)
            )?;
        }
        for example in &self.examples {
            writeln!(f, "  e.g. {example}")?;
        }
        Ok(())
    }
}

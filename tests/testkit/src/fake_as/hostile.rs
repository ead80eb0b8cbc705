//! A hostile authorization server's answers: a tampered discovery document (members replaced or added,
//! see [`super::FakeAs::set_discovery_members`]) and oversize or endless bodies in place of an endpoint's
//! real answer (see [`super::FakeAs::set_oversize`]), streamed with a count of the bytes each body handed
//! to its connection so that a test can tell whether its client stopped reading.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::body::{self, BoxBody, SizedStream};
use actix_web::dev::ServiceResponse;
use actix_web::web::Bytes;
use actix_web::HttpResponse;
use serde_json::{Map, Value};

/// Bytes per streamed chunk of padding.
const CHUNK: usize = 64 * 1024;

/// An oversize answer: `padding` bytes of JSON whitespace, then the endpoint's real answer (so that a
/// client without a size limit reads a valid document), or whitespace without end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Oversize {
    /// Whitespace before the real answer; `None` = endless whitespace, never the answer.
    pub padding: Option<u64>,
    /// Whether `Content-Length` states the whole size (else the body is chunked, with no length).
    /// An endless body is always chunked.
    pub declared: bool,
}

impl Oversize {
    /// `bytes` of whitespace before the real answer, with its true `Content-Length`.
    pub const fn declared(bytes: u64) -> Oversize {
        Oversize { padding: Some(bytes), declared: true }
    }

    /// `bytes` of whitespace before the real answer, chunked (no `Content-Length`).
    pub const fn chunked(bytes: u64) -> Oversize {
        Oversize { padding: Some(bytes), declared: false }
    }

    /// Whitespace without end, chunked.
    pub const fn endless() -> Oversize {
        Oversize { padding: None, declared: false }
    }
}

/// What the hostile modes hold: discovery members to replace and oversize answers by path.
#[derive(Default)]
pub(super) struct Hostile {
    discovery: Mutex<Map<String, Value>>,
    oversize: Mutex<HashMap<String, Oversize>>,
    sent: Arc<AtomicU64>,
}

impl Hostile {
    /// Members that replace (or add to) those of the discovery document.
    pub(super) fn set_discovery_members(&self, members: Map<String, Value>) {
        *super::lock(&self.discovery) = members;
    }

    /// The discovery document with the replaced members.
    pub(super) fn tamper_discovery(&self, doc: Value) -> Value {
        let mut doc = doc;
        if let Value::Object(m) = &mut doc {
            m.extend(super::lock(&self.discovery).clone());
        }
        doc
    }

    /// Serves `answer` instead of the real successful answers of `path` (`None` restores them).
    pub(super) fn set_oversize(&self, path: &str, answer: Option<Oversize>) {
        let mut map = super::lock(&self.oversize);
        match answer {
            Some(a) => map.insert(path.to_string(), a),
            None => map.remove(path),
        };
    }

    /// The most bytes one oversize body handed to its connection.
    pub(super) fn oversize_bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// The oversize answer planned for `path`, if any.
    pub(super) fn plan(&self, path: &str) -> Option<Oversize> {
        super::lock(&self.oversize).get(path).copied()
    }

    /// Replaces a successful response by its oversize form.
    pub(super) async fn inflate(&self, plan: Oversize, res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
        if !res.status().is_success() {
            return res;
        }
        let (req, response) = res.into_parts();
        let (head, real) = response.into_parts();
        let real = body::to_bytes(real).await.unwrap_or_default();
        let mut builder = HttpResponse::build(head.status());
        for (name, value) in head.headers() {
            if name != actix_web::http::header::CONTENT_LENGTH {
                builder.insert_header((name.clone(), value.clone()));
            }
        }
        let stream = padded(plan.padding, real.clone(), self.sent.clone());
        let response = match plan.padding {
            Some(padding) if plan.declared => builder.body(SizedStream::new(padding + real.len() as u64, stream)),
            _ => builder.streaming(stream),
        };
        ServiceResponse::new(req, response)
    }
}

/// Whitespace in chunks (`padding` bytes, or without end), then `real` once; `most` keeps the largest
/// number of bytes one such body handed over.
fn padded(
    padding: Option<u64>,
    real: Bytes,
    most: Arc<AtomicU64>,
) -> impl futures_util::Stream<Item = Result<Bytes, actix_web::Error>> {
    let spaces = Bytes::from(vec![b' '; CHUNK]);
    let sent = Arc::new(AtomicU64::new(0));
    futures_util::stream::unfold((padding, Some(real)), move |(left, real)| {
        let spaces = spaces.clone();
        let sent = sent.clone();
        let most = most.clone();
        async move {
            let (chunk, next) = match left {
                None => (spaces, (None, real)),
                Some(0) => (real?, (Some(0), None)),
                Some(n) => {
                    let take = n.min(CHUNK as u64);
                    (spaces.slice(..take as usize), (Some(n - take), real))
                }
            };
            let total = sent.fetch_add(chunk.len() as u64, Ordering::SeqCst) + chunk.len() as u64;
            most.fetch_max(total, Ordering::SeqCst);
            Some((Ok(chunk), next))
        }
    })
}

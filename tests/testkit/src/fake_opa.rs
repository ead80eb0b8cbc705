//! A fake Open Policy Agent that evaluates real Rego.
//!
//! No OPA server binary is packaged in the registries our machines reach, so [`FakeOpa`] serves
//! OPA's documented Data API (`POST /v1/data/<path>` with a `{"input": …}` body) over real HTTP
//! on 127.0.0.1 and evaluates the document at `<path>` with [regorus](https://crates.io/crates/regorus),
//! Microsoft's Rego interpreter. The answer is `{"result": <value>}`, or `{}` when the document is
//! undefined, as OPA answers.
//!
//! Knobs ([`OpaBehaviour`]) make it slow, fail with a status, or answer a fixed raw body; it
//! counts requests, records each input, and [`FakeOpa::stop`] takes it down.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{json, Value};

/// How the fake answers; the default evaluates the policy.
#[derive(Clone, Debug, Default)]
pub struct OpaBehaviour {
    /// Sleep this long (asynchronously) before answering.
    pub delay_ms: u64,
    /// Answer with this status and OPA's error shape instead of evaluating.
    pub status: Option<u16>,
    /// Answer 200 with exactly this body instead of evaluating.
    pub raw_body: Option<String>,
}

struct Inner {
    engine: Mutex<regorus::Engine>,
    requests: AtomicUsize,
    inputs: Mutex<Vec<Value>>,
    behaviour: Mutex<OpaBehaviour>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An OPA Data API on 127.0.0.1, evaluating one Rego module; stops when dropped or [`FakeOpa::stop`]ped.
pub struct FakeOpa {
    addr: SocketAddr,
    scheme: &'static str,
    inner: Arc<Inner>,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
}

impl FakeOpa {
    /// Starts a server on a free port with the Rego module `policy` (Rego v1 syntax). Panics if the
    /// policy does not compile.
    pub fn start(policy: &str) -> FakeOpa {
        FakeOpa::start_with(policy, None)
    }

    /// Starts a server over HTTPS with this certificate and key (PEM); its URLs are `https://…`.
    pub fn start_tls(policy: &str, cert_pem: &[u8], key_pem: &[u8]) -> FakeOpa {
        use openssl::ssl::{SslAcceptor, SslMethod};
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("fake OPA: TLS");
        let cert = openssl::x509::X509::from_pem(cert_pem).expect("fake OPA: certificate is not PEM");
        let key = openssl::pkey::PKey::private_key_from_pem(key_pem).expect("fake OPA: key is not PEM");
        b.set_certificate(&cert).expect("fake OPA: certificate");
        b.set_private_key(&key).expect("fake OPA: key");
        FakeOpa::start_with(policy, Some(b))
    }

    fn start_with(policy: &str, tls: Option<openssl::ssl::SslAcceptorBuilder>) -> FakeOpa {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut engine = regorus::Engine::new();
        engine.add_policy("policy.rego".to_string(), policy.to_string()).expect("fake OPA: the policy compiles");
        let inner = Arc::new(Inner {
            engine: Mutex::new(engine),
            requests: AtomicUsize::new(0),
            inputs: Mutex::new(Vec::new()),
            behaviour: Mutex::new(OpaBehaviour::default()),
        });
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("fake OPA: bind");
        let addr = listener.local_addr().expect("fake OPA: no local address");
        let data = web::Data::from(inner.clone());
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("fake-opa-{}", addr.port()))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new().app_data(data.clone()).route("/v1/data{path:.*}", web::post().to(data_api))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1);
                    let server = match tls {
                        Some(acceptor) => server.listen_openssl(listener, acceptor),
                        None => server.listen(listener),
                    };
                    let server = match server {
                        Ok(s) => s.run(),
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(server.handle()));
                    let _ = server.await;
                });
            })
            .expect("fake OPA: cannot spawn server thread");
        let handle = match rx.recv() {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => panic!("fake OPA: cannot start server: {e}"),
            Err(_) => panic!("fake OPA: server thread died during start-up"),
        };
        FakeOpa { addr, scheme, inner, handle: Some(handle), thread: Some(thread) }
    }

    /// The base URL, `http://127.0.0.1:PORT` (`https://` when started with [`FakeOpa::start_tls`]).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// The Data API URL of the document at `path`, e.g. `data_url("shroud/allow")`.
    pub fn data_url(&self, path: &str) -> String {
        format!("{}://{}/v1/data/{path}", self.scheme, self.addr)
    }

    /// Number of Data API requests so far, whatever their outcome.
    pub fn requests(&self) -> usize {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// The `input` of every request so far, in order (`null` when a body had none).
    pub fn inputs(&self) -> Vec<Value> {
        lock(&self.inner.inputs).clone()
    }

    /// Replaces the knobs.
    pub fn set_behaviour(&self, behaviour: OpaBehaviour) {
        *lock(&self.inner.behaviour) = behaviour;
    }

    /// Stops the server and closes its port: later requests are refused at the TCP level.
    pub fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // The stop command is sent eagerly; the returned future only waits for it.
            drop(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for FakeOpa {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Rego reference for a Data API path: `shroud/allow` → `data.shroud.allow`, with bracket
/// notation for segments that are not identifiers.
fn reference(path: &str) -> String {
    let mut query = String::from("data");
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let identifier = segment.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && segment.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if identifier {
            query.push('.');
            query.push_str(segment);
        } else {
            query.push_str(&format!("[{}]", Value::from(segment)));
        }
    }
    query
}

fn opa_error(status: StatusCode, code: &str, message: String) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "code": code, "message": message }))
}

impl Inner {
    /// Evaluates the document at `path` for `input`: `Ok(None)` when it is undefined.
    fn evaluate(&self, path: &str, input: Option<&Value>) -> Result<Option<Value>, String> {
        let mut engine = lock(&self.engine);
        engine.set_input(input.map_or(regorus::Value::Undefined, |i| regorus::Value::from(i.clone())));
        let results = engine.eval_query(reference(path), false).map_err(|e| e.to_string())?;
        let Some(value) = results.result.first().and_then(|r| r.expressions.first()).map(|e| &e.value) else {
            return Ok(None);
        };
        if *value == regorus::Value::Undefined {
            return Ok(None);
        }
        serde_json::to_value(value).map(Some).map_err(|e| e.to_string())
    }
}

async fn data_api(inner: web::Data<Inner>, path: web::Path<String>, body: web::Bytes) -> HttpResponse {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    let behaviour = lock(&inner.behaviour).clone();
    if behaviour.delay_ms > 0 {
        actix_web::rt::time::sleep(Duration::from_millis(behaviour.delay_ms)).await;
    }
    let document: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) if body.is_empty() => json!({}),
        Err(e) => return opa_error(StatusCode::BAD_REQUEST, "invalid_parameter", format!("body: {e}")),
    };
    let input = document.get("input");
    lock(&inner.inputs).push(input.cloned().unwrap_or(Value::Null));
    if let Some(code) = behaviour.status {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return opa_error(status, "internal_error", "fake OPA told to fail".into());
    }
    if let Some(raw) = behaviour.raw_body {
        return HttpResponse::Ok().content_type("application/json").body(raw);
    }
    match inner.evaluate(&path, input) {
        Ok(Some(result)) => HttpResponse::Ok().json(json!({ "result": result })),
        Ok(None) => HttpResponse::Ok().json(json!({})),
        Err(e) => opa_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_use_brackets_for_non_identifiers() {
        assert_eq!(reference("/shroud/allow"), "data.shroud.allow");
        assert_eq!(reference(""), "data");
        assert_eq!(reference("/a-b/c"), "data[\"a-b\"].c");
    }
}

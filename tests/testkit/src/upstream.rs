//! A fake internal API that echoes what it receives.
//!
//! [`EchoUpstream`] is a small HTTP/1.1 server written directly on `std::net` (one thread
//! per connection, keep-alive, `Content-Length` and chunked request bodies,
//! `Expect: 100-continue`). It is deliberately not built on a framework so that it reports
//! request headers exactly in the order they arrived on the wire, and so that tests can
//! make it send any response header, including `Connection`, which frameworks manage
//! themselves.
//!
//! Every request is answered with `200` and a JSON [`Echo`] of the request, except:
//!
//! * `/slow/{ms}...`: sleeps `ms` milliseconds, then echoes;
//! * `/status/{code}...`: answers with that status and the echo body;
//! * `/bytes/{n}...`: streams `n` bytes of `x` in 16 KiB chunks with
//!   `Transfer-Encoding: chunked` and no `Content-Length`.
//!
//! A request header `x-echo-set-header: name: value` (repeatable) adds `name: value` to
//! the response.
//!
//! [`EchoUpstream::start_tls`] serves the same over HTTPS (OpenSSL), for tests of how Shroud
//! verifies upstream certificates.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Size of the chunks `/bytes/{n}` streams.
const CHUNK: usize = 16 * 1024;
/// Largest request head accepted.
const MAX_HEAD: usize = 1024 * 1024;

/// What the echo upstream saw of one request; also the JSON body of its answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// Request method, e.g. `"GET"`.
    pub method: String,
    /// The request target as received: path plus `"?query"` if there was one.
    pub path: String,
    /// Request headers with lowercase names, in wire order, duplicates kept.
    pub headers: Vec<(String, String)>,
    /// The whole request body, decoded as UTF-8 lossily.
    pub body: String,
}

impl Echo {
    /// The first value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All values of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// A fake internal API on 127.0.0.1 that answers with what it received.
///
/// The server stops when the value is dropped: the listening socket is closed and open
/// connections are shut down.
pub struct EchoUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    hits: AtomicUsize,
    last: Mutex<Option<Echo>>,
    stopping: AtomicBool,
    next_conn: AtomicUsize,
    conns: Mutex<HashMap<usize, TcpStream>>,
    tls: Option<openssl::ssl::SslAcceptor>,
}

/// A connection the echo server speaks HTTP/1.1 on: plain TCP or TLS over TCP.
trait Conn: Read + Write {
    fn shutdown_write(&mut self);
}

impl Conn for TcpStream {
    fn shutdown_write(&mut self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

impl Conn for openssl::ssl::SslStream<TcpStream> {
    fn shutdown_write(&mut self) {
        let _ = self.shutdown();
        let _ = self.get_ref().shutdown(Shutdown::Write);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EchoUpstream {
    /// Starts an echo upstream on a free port of 127.0.0.1.
    pub fn start() -> EchoUpstream {
        EchoUpstream::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Starts an echo upstream on `addr`. Returns once the socket is bound; panics if it
    /// cannot be.
    pub fn start_on(addr: SocketAddr) -> EchoUpstream {
        EchoUpstream::start_with(addr, None)
    }

    /// Starts an echo upstream over HTTPS on a free port of 127.0.0.1, with this certificate
    /// and key (PEM); its URL is `https://127.0.0.1:PORT`.
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> EchoUpstream {
        use openssl::ssl::{SslAcceptor, SslMethod};
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).expect("echo upstream: TLS");
        let cert = openssl::x509::X509::from_pem(cert_pem).expect("echo upstream: certificate is not PEM");
        let key = openssl::pkey::PKey::private_key_from_pem(key_pem).expect("echo upstream: key is not PEM");
        b.set_certificate(&cert).expect("echo upstream: certificate");
        b.set_private_key(&key).expect("echo upstream: key");
        b.set_alpn_select_callback(|_, _| Ok(b"http/1.1"));
        EchoUpstream::start_with(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), Some(b.build()))
    }

    fn start_with(addr: SocketAddr, tls: Option<openssl::ssl::SslAcceptor>) -> EchoUpstream {
        let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("echo upstream: cannot bind {addr}: {e}"));
        let addr = listener.local_addr().expect("echo upstream: no local address");
        let shared = Arc::new(Shared {
            hits: AtomicUsize::new(0),
            last: Mutex::new(None),
            stopping: AtomicBool::new(false),
            next_conn: AtomicUsize::new(0),
            conns: Mutex::new(HashMap::new()),
            tls,
        });
        let thread = spawn_accept(listener, addr, shared.clone());
        EchoUpstream { addr, shared, thread: Some(thread) }
    }

    /// Goes down, as a crashed API: the listening socket is closed and open connections are shut
    /// down, so callers get "connection refused" or a reset. Counters are kept for
    /// [`EchoUpstream::restart`]. Idempotent.
    pub fn stop(&mut self) {
        let Some(thread) = self.thread.take() else { return };
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and closes the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = thread.join();
        for (_, conn) in lock(&self.shared.conns).drain() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }

    /// Listens again on the same address after [`EchoUpstream::stop`]. Panics if the address cannot
    /// be bound again. A no-op while running.
    pub fn restart(&mut self) {
        if self.thread.is_some() {
            return;
        }
        let listener = TcpListener::bind(self.addr)
            .unwrap_or_else(|e| panic!("echo upstream: cannot bind {} again: {e}", self.addr));
        self.shared.stopping.store(false, Ordering::SeqCst);
        self.thread = Some(spawn_accept(listener, self.addr, self.shared.clone()));
    }

    /// The base URL, `http://127.0.0.1:PORT` (`https://` when started with
    /// [`EchoUpstream::start_tls`]).
    pub fn url(&self) -> String {
        let scheme = if self.shared.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The socket address the upstream listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of requests received so far, any path.
    pub fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    /// The last request received, if any.
    pub fn last(&self) -> Option<Echo> {
        lock(&self.shared.last).clone()
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_accept(listener: TcpListener, addr: SocketAddr, shared: Arc<Shared>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("echo-accept-{}", addr.port()))
        .spawn(move || accept_loop(listener, shared))
        .expect("echo upstream: cannot spawn accept thread")
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let id = shared.next_conn.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.conns).insert(id, clone);
        }
        let sh = shared.clone();
        let spawned = std::thread::Builder::new().name(format!("echo-conn-{id}")).spawn(move || {
            let _ = stream.set_nodelay(true);
            let served = match &sh.tls {
                Some(acceptor) => match acceptor.accept(stream) {
                    Ok(tls) => serve_connection(tls, &sh),
                    Err(e) => Err(io::Error::other(format!("TLS handshake failed: {e}"))),
                },
                None => serve_connection(stream, &sh),
            };
            if let Err(e) = served {
                log::debug!("echo upstream: connection {id}: {e}");
            }
            lock(&sh.conns).remove(&id);
        });
        if spawned.is_err() {
            lock(&shared.conns).remove(&id);
        }
    }
}

/// One parsed request head.
struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

fn bad_data(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one line, without its line ending. `Ok(None)` at a clean end of stream.
fn read_line(r: &mut impl BufRead, budget: &mut usize) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r.take(*budget as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(bad_data("request head too large"));
    }
    *budget -= n;
    if buf.last() != Some(&b'\n') {
        return Err(bad_data("connection closed mid-line"));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut budget = MAX_HEAD;
    // Skip empty lines before the request line (RFC 9112 §2.2).
    let request_line = loop {
        match read_line(r, &mut budget)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad_data(format!("bad request line {request_line:?}")));
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget)?.ok_or_else(|| bad_data("eof in headers"))?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').ok_or_else(|| bad_data(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Some(Head { method: method.to_string(), target: target.to_string(), version: version.to_string(), headers }))
}

fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_HEAD;
        let line = read_line(r, &mut budget)?.ok_or_else(|| bad_data("eof in chunk size"))?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| bad_data(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailer section, ended by an empty line.
            loop {
                let t = read_line(r, &mut budget)?.ok_or_else(|| bad_data("eof in trailers"))?;
                if t.is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let end = read_line(r, &mut budget)?.ok_or_else(|| bad_data("eof after chunk"))?;
        if !end.is_empty() {
            return Err(bad_data("missing CRLF after chunk data"));
        }
    }
}

fn read_body(r: &mut impl BufRead, head: &Head) -> io::Result<Vec<u8>> {
    if head.has_token("transfer-encoding", "chunked") {
        return read_chunked(r);
    }
    if let Some(len) = head.values("content-length").next() {
        let len: usize = len.parse().map_err(|_| bad_data(format!("bad content-length {len:?}")))?;
        let mut body = vec![0; len];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    Ok(Vec::new())
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// The number in the second segment of `path` when its first segment is `prefix`,
/// e.g. `segment_number("/slow/250/x", "slow") == Some(250)`.
fn segment_number(path: &str, prefix: &str) -> Option<u64> {
    let mut segs = path.split('/').skip(1);
    if segs.next()? != prefix {
        return None;
    }
    segs.next()?.parse().ok()
}

fn serve_connection<S: Conn>(stream: S, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Ok(());
        };
        let http10 = head.version.eq_ignore_ascii_case("HTTP/1.0");
        if head.has_token("expect", "100-continue") && !http10 {
            reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
            reader.get_mut().flush()?;
        }
        let body = read_body(&mut reader, &head)?;
        let mut close =
            head.has_token("connection", "close") || (http10 && !head.has_token("connection", "keep-alive"));

        let echo = Echo {
            method: head.method.clone(),
            path: head.target.clone(),
            headers: head.headers.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        shared.hits.fetch_add(1, Ordering::SeqCst);
        *lock(&shared.last) = Some(echo.clone());

        let mut extra_headers = Vec::new();
        for v in head.values("x-echo-set-header") {
            if let Some((name, value)) = v.split_once(':') {
                let (name, value) = (name.trim(), value.trim());
                let lname = name.to_ascii_lowercase();
                if lname == "content-length" || lname == "transfer-encoding" {
                    continue; // would break our own framing
                }
                if lname == "connection" && value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                    close = true;
                }
                extra_headers.push(format!("{name}: {value}\r\n"));
            }
        }

        let path_only = head.target.split('?').next().unwrap_or("");
        let mut status = 200u16;
        if let Some(ms) = segment_number(path_only, "slow") {
            std::thread::sleep(Duration::from_millis(ms));
        } else if let Some(code) = segment_number(path_only, "status") {
            if (200..=599).contains(&code) {
                status = code as u16;
            }
        } else if let Some(n) = segment_number(path_only, "bytes") {
            write_bytes(reader.get_mut(), &head, n, &extra_headers, http10)?;
            if http10 {
                return Ok(());
            }
            if close {
                reader.get_mut().shutdown_write();
                return Ok(());
            }
            continue;
        }

        let mut out = Vec::with_capacity(512);
        let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        out.extend_from_slice(format!("{version} {status} {}\r\n", reason(status)).as_bytes());
        let no_body = status == 204 || status == 304;
        let json = serde_json::to_vec(&echo).expect("serialise echo");
        if !no_body {
            out.extend_from_slice(b"content-type: application/json\r\n");
            out.extend_from_slice(format!("content-length: {}\r\n", json.len()).as_bytes());
        }
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        } else if http10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
        for h in &extra_headers {
            out.extend_from_slice(h.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if !no_body && head.method != "HEAD" {
            out.extend_from_slice(&json);
        }
        reader.get_mut().write_all(&out)?;
        reader.get_mut().flush()?;
        if close {
            reader.get_mut().shutdown_write();
            return Ok(());
        }
    }
}

fn write_bytes(w: &mut impl Write, head: &Head, n: u64, extra_headers: &[String], http10: bool) -> io::Result<()> {
    let mut out = Vec::new();
    if http10 {
        out.extend_from_slice(b"HTTP/1.0 200 OK\r\nconnection: close\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"content-type: application/octet-stream\r\n");
    for h in extra_headers {
        out.extend_from_slice(h.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)?;
    w.flush()?;
    if head.method == "HEAD" {
        return Ok(());
    }
    let chunk = vec![b'x'; CHUNK];
    let mut left = n;
    while left > 0 {
        let len = left.min(CHUNK as u64) as usize;
        if http10 {
            w.write_all(&chunk[..len])?;
        } else {
            w.write_all(format!("{len:x}\r\n").as_bytes())?;
            w.write_all(&chunk[..len])?;
            w.write_all(b"\r\n")?;
        }
        w.flush()?;
        left -= len as u64;
    }
    if !http10 {
        w.write_all(b"0\r\n\r\n")?;
        w.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_numbers() {
        assert_eq!(segment_number("/slow/250", "slow"), Some(250));
        assert_eq!(segment_number("/slow/250/more", "slow"), Some(250));
        assert_eq!(segment_number("/slowly/250", "slow"), None);
        assert_eq!(segment_number("/status/x", "status"), None);
        assert_eq!(segment_number("/api/status/500", "status"), None);
    }

    #[test]
    fn chunked_bodies_parse() {
        let raw = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        let mut r = BufReader::new(&raw[..]);
        assert_eq!(read_chunked(&mut r).unwrap(), b"hello world");
    }
}

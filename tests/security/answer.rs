//! What a hostile request got, read the same way whether it went through reqwest or as raw bytes on a
//! socket, and the one assertion every case makes about it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `WWW-Authenticate` of a 401 without credential: no error code (RFC 6750 §3.1).
pub const BARE: &str = "Bearer realm=\"shroud\"";
/// `WWW-Authenticate` of a malformed credential (the `error_description` follows).
pub const INVALID_REQUEST: &str = "Bearer realm=\"shroud\", error=\"invalid_request\"";
/// `WWW-Authenticate` of a refused token (the `error_description` follows).
pub const INVALID_TOKEN: &str = "Bearer realm=\"shroud\", error=\"invalid_token\"";

/// What a hostile request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The exact status.
    pub status: u16,
    /// The JSON `code`; `None` for an answer of the HTTP layer itself, before Shroud sees the request.
    pub code: Option<&'static str>,
    /// The `WWW-Authenticate` challenge, up to its `error_description`; `None` = no such header.
    pub challenge: Option<&'static str>,
}

impl Expect {
    /// A JSON refusal without challenge.
    pub const fn json(status: u16, code: &'static str) -> Expect {
        Expect { status, code: Some(code), challenge: None }
    }

    /// A JSON refusal with an RFC 6750 challenge.
    pub const fn bearer(status: u16, code: &'static str, challenge: &'static str) -> Expect {
        Expect { status, code: Some(code), challenge: Some(challenge) }
    }

    /// An answer without error code or challenge: from the HTTP layer, before Shroud sees the request
    /// (malformed HTTP), or an attack that is neutralised rather than refused.
    pub const fn plain(status: u16) -> Expect {
        Expect { status, code: None, challenge: None }
    }
}

/// A response: status, headers (lower-case names, in order) and body.
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Answer {
    /// Reads a reqwest response whole.
    pub async fn read(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let body = resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        Answer { status, headers, body }
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `Set-Cookie` lines that store a value (rather than clear a cookie).
    pub fn cookies_issued(&self) -> Vec<&str> {
        self.header_all("set-cookie")
            .into_iter()
            .filter(|line| {
                line.split_once(';').map_or(*line, |(pair, _)| pair).split_once('=').is_some_and(|(_, v)| !v.is_empty())
            })
            .collect()
    }

    /// Asserts `expect` for case `name`.
    pub fn assert(&self, name: &str, expect: &Expect) {
        let body = String::from_utf8_lossy(&self.body);
        assert_eq!(self.status, expect.status, "{name}: status (body {body})");
        match expect.code {
            Some(code) => {
                let json = self.json();
                assert_eq!(json["code"], code, "{name}: code in {body}");
                assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{name}: message in {body}");
                assert_eq!(self.header("cache-control"), Some("no-store"), "{name}: refusals are not cached");
            }
            None => assert!(self.json().get("code").is_none(), "{name}: no error code expected, got {body}"),
        }
        let challenge = self.header("www-authenticate");
        match expect.challenge {
            Some(expected) => {
                let got = challenge.unwrap_or_else(|| panic!("{name}: WWW-Authenticate expected"));
                let described = format!("{expected}, error_description=");
                assert!(got == expected || got.starts_with(&described), "{name}: WWW-Authenticate {got:?}");
            }
            None => assert_eq!(challenge, None, "{name}: no WWW-Authenticate expected"),
        }
    }
}

/// Writes `request` as it is on a fresh connection and reads until the server closes it (requests say
/// `Connection: close`). `None` when the server closed the connection without answering.
pub fn raw(addr: SocketAddr, request: &[u8]) -> Option<Answer> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before it has read everything (431): a failed write is no failure.
    let _ = stream.write_all(request);
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    parse(&received)
}

/// Parses an HTTP/1.1 response with a `Content-Length` (or none, read to the end).
fn parse(bytes: &[u8]) -> Option<Answer> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = bytes[end + 4..].to_vec();
    if let Some(len) = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()) {
        body.truncate(len);
    }
    Some(Answer { status, headers, body })
}

/// A raw HTTP/1.1 request: `method target`, `Host`, the given header lines as they are (CR, LF and NUL
/// included), `Connection: close`, then `body`.
pub fn request(method: &str, target: &str, lines: &[&[u8]], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes();
    for line in lines {
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

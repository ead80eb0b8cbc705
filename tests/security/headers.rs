//! The request itself, written as raw bytes on a socket (reqwest refuses to send CR, LF or NUL in a
//! header): credentials in the wrong place or shape, duplicate and smuggled `Authorization` headers, CR,
//! LF and NUL, oversized tokens and heads, and request targets that would mean one route here and another
//! one upstream. Each case carries a genuine, active token where it has one at all, so that the refusal is
//! the header's doing. Nothing is introspected and nothing reaches the upstream; a worker that panicked
//! would fail the control request at the end.

use crate::answer::{raw, request, Expect, BARE, INVALID_REQUEST};
use crate::support::Env;
use shroud::config::ResponseMode;

/// The genuine token the cases carry (active, with the route's scope).
const GOOD: &str = "good-token";

/// One malformed or hostile request.
pub struct Case {
    /// What the attack is.
    pub name: &'static str,
    /// The bytes sent.
    pub request: Vec<u8>,
    /// What Shroud (or its HTTP layer) must answer.
    pub expect: Expect,
}

const NO_CREDENTIAL: Expect = Expect::bearer(401, "unauthorized", BARE);
const BAD_CREDENTIAL: Expect = Expect::bearer(400, "invalid_request", INVALID_REQUEST);
const BAD_PATH: Expect = Expect::json(400, "invalid_request");
/// actix refuses malformed HTTP before any handler runs.
const MALFORMED_HTTP: Expect = Expect::plain(400);
/// actix refuses request heads over 128 KiB or with more than 96 headers.
const HEAD_TOO_LARGE: Expect = Expect::plain(431);
/// Shroud refuses header blocks over `server.max_header_bytes` (16 KiB by default).
const HEADERS_OVER_LIMIT: Expect = Expect::json(431, "request_header_fields_too_large");

fn get(lines: &[&[u8]]) -> Vec<u8> {
    request("GET", "/api/x", lines, b"")
}

fn bearer_of_len(len: usize) -> Vec<u8> {
    format!("Authorization: Bearer {}", "a".repeat(len)).into_bytes()
}

fn case(name: &'static str, request: Vec<u8>, expect: Expect) -> Case {
    Case { name, request, expect }
}

/// The cases.
pub fn cases() -> Vec<Case> {
    let good = b"Authorization: Bearer good-token".as_slice();
    let many_headers: Vec<Vec<u8>> = (0..100).map(|i| format!("X-Filler-{i}: {i}").into_bytes()).collect();
    let mut many: Vec<&[u8]> = many_headers.iter().map(Vec::as_slice).collect();
    many.push(good);
    vec![
        case("no Authorization header", get(&[]), NO_CREDENTIAL),
        case("Basic instead of Bearer", get(&[b"Authorization: Basic Z29vZC10b2tlbjo="]), NO_CREDENTIAL),
        case("tab instead of the space after Bearer", get(&[b"Authorization: Bearer\tgood-token"]), NO_CREDENTIAL),
        case("the token in Proxy-Authorization", get(&[b"Proxy-Authorization: Bearer good-token"]), NO_CREDENTIAL),
        case(
            "the token in the query (access_token)",
            request("GET", "/api/x?access_token=good-token", &[], b""),
            NO_CREDENTIAL,
        ),
        case(
            "the token in a form body (access_token)",
            request(
                "POST",
                "/api/x",
                &[b"Content-Type: application/x-www-form-urlencoded", b"Content-Length: 23"],
                b"access_token=good-token",
            ),
            NO_CREDENTIAL,
        ),
        case("Bearer without a token", get(&[b"Authorization: Bearer"]), BAD_CREDENTIAL),
        case("Bearer with only spaces", get(&[b"Authorization: Bearer    "]), BAD_CREDENTIAL),
        case("two Authorization headers, both genuine", get(&[good, good]), BAD_CREDENTIAL),
        case(
            "two credentials in one header",
            get(&[b"Authorization: Bearer good-token, Bearer good-token"]),
            BAD_CREDENTIAL,
        ),
        case("a second word after the token", get(&[b"Authorization: Bearer good-token admin"]), BAD_CREDENTIAL),
        case("a character outside b64token", get(&[b"Authorization: Bearer good-token;admin"]), BAD_CREDENTIAL),
        case("padding before the token", get(&[b"Authorization: Bearer =good-token"]), BAD_CREDENTIAL),
        case("non-ASCII bytes in the token", get(&[b"Authorization: Bearer good-t\xc3\xb6ken"]), BAD_CREDENTIAL),
        case("a token of 4 KiB + 1", get(&[&bearer_of_len(4097)]), BAD_CREDENTIAL),
        case("a token of 10 KiB", get(&[&bearer_of_len(10 * 1024)]), BAD_CREDENTIAL),
        case("a token of 100 KiB", get(&[&bearer_of_len(100 * 1024)]), HEADERS_OVER_LIMIT),
        case("a token of 200 KiB", get(&[&bearer_of_len(200 * 1024)]), HEAD_TOO_LARGE),
        case("100 headers", get(&many), HEAD_TOO_LARGE),
        case(
            "LF smuggles a second Authorization header",
            get(&[b"Authorization: Bearer good-token\nAuthorization: Bearer good-token"]),
            BAD_CREDENTIAL,
        ),
        case(
            "CRLF folds a second line into Authorization",
            get(&[b"Authorization: Bearer good-token\r\n admin"]),
            MALFORMED_HTTP,
        ),
        case("bare CR inside Authorization", get(&[b"Authorization: Bearer good-token\rX-Admin: 1"]), MALFORMED_HTTP),
        case("NUL inside Authorization", get(&[b"Authorization: Bearer good\0token"]), MALFORMED_HTTP),
        case("NUL inside another header", get(&[good, b"X-Note: a\0b"]), MALFORMED_HTTP),
        case("NUL inside a header name", get(&[good, b"X-No\0te: a"]), MALFORMED_HTTP),
        case("a space before the colon", get(&[b"Authorization : Bearer good-token"]), MALFORMED_HTTP),
        case("encoded CRLF in the path", request("GET", "/api/x%0D%0AX-Admin:%201", &[good], b""), BAD_PATH),
        case("encoded NUL in the path", request("GET", "/api/x%00.json", &[good], b""), BAD_PATH),
        case("raw NUL in the request target", request("GET", "/api/x\0", &[good], b""), MALFORMED_HTTP),
        case("dot segments from a public route into /api", request("GET", "/public/../api/x", &[], b""), BAD_PATH),
        case("encoded dot segments from a public route", request("GET", "/public/%2e%2e/api/x", &[], b""), BAD_PATH),
        case("encoded slash and dots from a public route", request("GET", "/public/..%2Fapi/x", &[], b""), BAD_PATH),
        case("an encoded slash right after a route prefix", request("GET", "/api%2Fx", &[], b""), BAD_PATH),
        case("an encoded backslash in a path", request("GET", "/public%5Capi/x", &[], b""), BAD_PATH),
        case("backslash from a public route", request("GET", "/public/..\\api/x", &[], b""), BAD_PATH),
        case("a dot-dot segment with a parameter", request("GET", "/public/..;/api/x", &[], b""), BAD_PATH),
        case(
            "an encoded dot-dot segment with a parameter",
            request("GET", "/public/%2e%2e;/api/x", &[], b""),
            BAD_PATH,
        ),
        case(
            "dot-dot, parameter value and mixed-case escapes",
            request("GET", "/public/%2E.;jsessionid=1/api/x", &[], b""),
            BAD_PATH,
        ),
        case("dot-dot with an encoded semicolon", request("GET", "/public/..%3b/api/x", &[], b""), BAD_PATH),
        case("encoded dot-dot and semicolon", request("GET", "/public/%2e%2E%3B/api/x", &[], b""), BAD_PATH),
        case("a dot segment with a parameter", request("GET", "/public/.;/api/x", &[], b""), BAD_PATH),
        case("an encoded dot with an encoded semicolon", request("GET", "/public/%2e%3B/api/x", &[], b""), BAD_PATH),
        case(
            "Content-Length and Transfer-Encoding together",
            request(
                "POST",
                "/api/x",
                &[good, b"Content-Length: 5", b"Transfer-Encoding: chunked"],
                b"0\r\n\r\nGET /api/admin HTTP/1.1\r\nHost: x\r\n\r\n",
            ),
            MALFORMED_HTTP,
        ),
        case(
            "two different Content-Lengths",
            request("POST", "/api/x", &[good, b"Content-Length: 5", b"Content-Length: 40"], b"hello"),
            MALFORMED_HTTP,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_before_anything_is_introspected_or_forwarded() {
    let env = Env::new(ResponseMode::Rfc9701);
    env.token(GOOD, "read");
    for case in cases() {
        let answer = raw(env.shroud.addr, &case.request)
            .unwrap_or_else(|| panic!("{}: the connection closed without an answer", case.name));
        answer.assert(case.name, &case.expect);
        assert_eq!(env.api.hits(), 0, "{}: nothing reached the upstream", case.name);
        assert_eq!(env.idp.introspections(), 0, "{}: nothing was introspected", case.name);
    }
    // The worker still answers (it did not panic), and the genuine token is good.
    assert_eq!(env.get("/api/x", Some(GOOD)).await.status(), 200, "control");
}

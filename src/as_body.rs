//! Reading an answer of the authorization server with a size limit per kind of answer, so that a
//! hostile or broken server cannot make Shroud buffer an oversize or endless body.
//!
//! The body is read chunk by chunk with a running count and dropped as soon as the count passes the
//! limit (a `Content-Length` above the limit is refused before any byte is read). A `Content-Length`
//! below the body's real size cannot make Shroud read more: HTTP framing stops at the stated length.

use bytes::{Bytes, BytesMut};

/// The answers Shroud reads from the authorization server, each with its size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsAnswer {
    /// The discovery document (OIDC Discovery or RFC 8414).
    Discovery,
    /// The JWKS at `jwks_uri`.
    Jwks,
    /// An introspection answer (JSON, RFC 9701 JWT or access-token JWT).
    Introspection,
    /// A token endpoint answer (code and refresh grants).
    Token,
    /// A userinfo answer.
    Userinfo,
}

impl AsAnswer {
    /// The largest body accepted: 1 MiB for the discovery document and the JWKS (documents that list
    /// many keys or much metadata), 256 KiB for introspection, token and userinfo answers (a few tokens
    /// and claims).
    pub const fn limit(self) -> usize {
        match self {
            AsAnswer::Discovery | AsAnswer::Jwks => 1024 * 1024,
            AsAnswer::Introspection | AsAnswer::Token | AsAnswer::Userinfo => 256 * 1024,
        }
    }

    /// The endpoint's name, as the discovery document calls it (for log lines).
    pub const fn endpoint(self) -> &'static str {
        match self {
            AsAnswer::Discovery => "discovery document",
            AsAnswer::Jwks => "jwks_uri",
            AsAnswer::Introspection => "introspection_endpoint",
            AsAnswer::Token => "token_endpoint",
            AsAnswer::Userinfo => "userinfo_endpoint",
        }
    }
}

/// Why an answer's body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than the limit of its kind (already logged, with the endpoint and the limit).
    TooLarge(AsAnswer),
    /// The transport failed while reading.
    Transport(reqwest::Error),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(kind) => write!(f, "answer larger than {} bytes", kind.limit()),
            BodyError::Transport(e) => f.write_str(&without_url(e)),
        }
    }
}

/// Reads the body of `response`, an answer of kind `kind`, up to its limit.
pub async fn read(mut response: reqwest::Response, kind: AsAnswer) -> Result<Bytes, BodyError> {
    let limit = kind.limit();
    let too_large = || {
        log::warn!(
            "the authorization server's {} answer is larger than {limit} bytes: refused, not read further",
            kind.endpoint()
        );
        BodyError::TooLarge(kind)
    };
    let declared = response.content_length();
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::with_capacity(declared.map_or(0, |length| length as usize));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A transport error's description without its URL (which is ours anyway, and never holds a token).
pub fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_decode() || err.is_body() {
        "bad response body"
    } else {
        "request failed"
    };
    kind.to_string()
}

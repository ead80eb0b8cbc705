//! Client authentication to the authorization server (RFC 6749 §2.3.1).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use url::form_urlencoded;

fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `Basic …` for `client_secret_basic`: both parts are form-encoded before base64.
pub fn basic_authorization(client_id: &str, client_secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(client_id), form_encode(client_secret));
    format!("Basic {}", STANDARD.encode(pair))
}

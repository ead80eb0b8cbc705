//! Stage 0, **admit**: size limits, before anything else is looked at. A header block over
//! `server.max_header_bytes` → 431; a declared body over the route's `max_body_bytes` → 413 (a chunked
//! body is counted while it streams, in [`super::forward`]).

use crate::error::Rejection;
use actix_web::http::header;
use actix_web::HttpRequest;

/// 431 when the request's header names and values add up to more than `max_bytes`.
pub fn headers(req: &HttpRequest, max_bytes: usize) -> Result<(), Rejection> {
    let mut total = 0usize;
    for (name, value) in req.headers().iter() {
        total += name.as_str().len() + value.len();
        if total > max_bytes {
            log::info!("refused a request whose headers exceed {max_bytes} bytes");
            return Err(Rejection::HeadersTooLarge);
        }
    }
    Ok(())
}

/// 413 when the request declares a body longer than `max_bytes`.
pub fn declared_body(req: &HttpRequest, max_bytes: u64) -> Result<(), Rejection> {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(length) if length > max_bytes => {
            log::info!("refused a {length}-byte body (limit {max_bytes})");
            Err(Rejection::PayloadTooLarge)
        }
        _ => Ok(()),
    }
}

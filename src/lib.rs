//! Shroud: a phantom-token proxy and token handler.
//!
//! Clients send opaque tokens; Shroud exchanges them (RFC 7662 / RFC 9701 introspection) for verified
//! JWTs, caches them, checks each route's policy and forwards the request upstream with the JWT. See
//! `docs/ARCHITECTURE.md` for the shape of the code and [`pipeline`] for the request's journey.

pub mod admin;
pub mod as_body;
pub mod cache;
pub mod client_auth;
pub mod config;
pub mod error;
pub mod exchange;
pub mod gateway;
pub mod grant;
pub mod health_probe;
pub mod introspection;
pub mod issuer;
pub mod jose;
pub mod metrics;
pub mod ops;
pub mod pipeline;
pub mod rate_limit;
pub mod secret;
pub mod server;
pub mod token_handler;
pub mod transport;

//! RFC 7662 token introspection: the HTTP call ([`client`]) and the reading of its answer in each of the
//! three modes ([`answer`]).

pub mod answer;
pub mod client;

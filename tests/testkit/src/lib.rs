//! Test and demo peers for Shroud, the phantom-token proxy.
//!
//! * [`FakeAs`]: an OAuth 2.0 / OpenID Connect authorization server fake served over real
//!   HTTP on 127.0.0.1. It answers discovery, JWKS, token introspection (RFC 7662 JSON,
//!   RFC 9701 signed JWT answers and the `application/jwt` phantom-token contract),
//!   a client-credentials token endpoint and revocation, with knobs ([`Behaviour`],
//!   [`Tamper`]) to make it slow, failing or malicious. For token-handler tests it also runs
//!   the authorization-code flow with PKCE (automatic login), rotating refresh tokens,
//!   userinfo, and mints OIDC Back-Channel Logout tokens ([`LogoutSpec`]).
//! * [`EchoUpstream`]: a fake internal API that answers every request with a JSON
//!   description ([`Echo`]) of what it received.
//! * [`FakeOpa`]: Open Policy Agent's Data API over real HTTP, evaluating a real Rego policy
//!   with regorus, with knobs ([`OpaBehaviour`]) to make it slow, failing or malformed.
//! * [`RedisServer`]: a private `redis-server` process for one test; [`RedisCluster`] and
//!   [`RedisSentinel`]: a Redis Cluster and a Sentinel-watched master made of such processes.
//! * [`tls::TestPki`]: a private CA issuing server and client certificates for TLS tests.
//! * [`net::free_port`]: find a free TCP port on 127.0.0.1.

#![warn(missing_docs)]

pub mod fake_as;
pub mod fake_opa;
pub mod net;
pub mod redis_server;
pub mod redis_topologies;
pub mod tls;
pub mod upstream;

pub use fake_as::{
    Behaviour, Discovery, FakeAs, FakeAsOptions, FakeAsTls, ForeignKey, IntrospectionRecord, LogoutSpec, Oversize,
    Tamper, TokenSpec,
};
pub use fake_opa::{FakeOpa, OpaBehaviour};
pub use redis_server::RedisServer;
pub use redis_topologies::{RedisCluster, RedisSentinel, RedisTls};
pub use tls::{Issued, TestPki};
pub use upstream::{Echo, EchoUpstream};

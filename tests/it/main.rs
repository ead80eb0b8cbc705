//! Integration tests over real HTTP: Shroud in front of a fake authorization server and an echo
//! upstream (from `shroud-testkit`), with a private `redis-server` where Redis is involved.

mod support;

mod audit;
mod authorization_server;
mod cache;
mod cli;
mod credentials;
mod failures;
mod forwarding;
mod limits;
mod modes;
mod opa;
mod ops;
mod policy;
mod redis_tier;
mod scale_out;
mod spa;
mod token_handler;
mod transport;
mod verification;

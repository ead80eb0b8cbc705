//! JOSE: the issuer's keys, JWT verification, and the phantom JWT signer.

pub mod keys;
pub mod mint;
pub mod verify;

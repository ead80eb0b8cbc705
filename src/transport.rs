//! Transport security:
//! - the HTTPS listener of `[server.tls]`: TLS 1.2 minimum, TLS 1.3 enabled, ECDHE with AES-GCM or
//!   ChaCha20-Poly1305 only on TLS 1.2, no compression, no renegotiation;
//! - the TLS settings of every outbound client (`[tls_client]`): the authorization server and OPA
//!   (reqwest) and the upstreams (awc over OpenSSL). Certificates are verified against the system's store
//!   plus `ca_file`; only `insecure_skip_verify` turns verification off, with a warning at every start.
//!
//! Every file is read and checked when the gateway is built, and each error names its key.

use crate::config::{ConfigError, ServerTlsConfig, TlsClientConfig};
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslConnector, SslMethod, SslOptions, SslVerifyMode, SslVersion};
use openssl::x509::X509;

/// The TLS 1.2 cipher list of the listener: forward secrecy (ECDHE) and AEAD ciphers only. TLS 1.3 uses
/// OpenSSL's TLS 1.3 suites, which are all of that kind.
pub const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// The TLS 1.3 cipher suites of the listener.
pub const TLS13_SUITES: &str = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

/// `Strict-Transport-Security` sent on the token handler's answers while the listener serves HTTPS.
pub const HSTS: &str = "max-age=31536000";

/// The warning logged at every start while `tls_client.insecure_skip_verify` is set.
pub const INSECURE_WARNING: &str = "tls_client.insecure_skip_verify = true: certificates of the authorization \
server, the upstreams and OPA are NOT verified, so anyone on the network path can impersonate them and \
read tokens and client credentials. Never run like this in production.";

/// Reads a file named by configuration `key`.
fn read(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| ConfigError::new(key, format!("cannot read {path}: {e}")))
}

/// PEM certificates from a file named by `key` (at least one).
fn certificates(key: &str, path: &str) -> Result<Vec<X509>, ConfigError> {
    let certs = X509::stack_from_pem(&read(key, path)?)
        .map_err(|_| ConfigError::new(key, format!("{path} holds no readable PEM certificate")))?;
    if certs.is_empty() {
        return Err(ConfigError::new(key, format!("{path} holds no PEM certificate")));
    }
    Ok(certs)
}

/// A certificate (leaf first, then its chain) with the private key that matches it.
#[derive(Clone)]
pub struct CertKeyPair {
    chain: Vec<X509>,
    key: PKey<Private>,
}

impl CertKeyPair {
    /// Reads `(key name, path)` of the certificate file and of the key file, and checks that the key is
    /// the certificate's.
    pub fn load(cert: (&str, &str), key: (&str, &str)) -> Result<CertKeyPair, ConfigError> {
        let chain = certificates(cert.0, cert.1)?;
        let pem = read(key.0, key.1)?;
        let private = PKey::private_key_from_pem(&pem)
            .map_err(|_| ConfigError::new(key.0, format!("{} holds no readable PEM private key", key.1)))?;
        let matches = chain[0].public_key().map(|public| public.public_eq(&private)).unwrap_or(false);
        if !matches {
            return Err(ConfigError::new(
                key.0,
                format!("{} is not the private key of the certificate in {} ({})", key.1, cert.0, cert.1),
            ));
        }
        let expired = openssl::asn1::Asn1Time::days_from_now(0).is_ok_and(|now| chain[0].not_after() < now);
        if expired {
            log::warn!("the certificate in {} ({}) has expired", cert.0, cert.1);
        }
        Ok(CertKeyPair { chain, key: private })
    }

    /// The pair for reqwest's (native-tls) client: the chain in PEM and the key in PKCS#8 PEM.
    pub fn reqwest_identity(&self) -> Result<reqwest::Identity, String> {
        let mut chain = Vec::new();
        for cert in &self.chain {
            chain.extend(cert.to_pem().map_err(|e| e.to_string())?);
        }
        let key = self.key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?;
        reqwest::Identity::from_pkcs8_pem(&chain, &key).map_err(|e| e.to_string())
    }
}

/// The listener's certificate and key (`[server.tls]`).
#[derive(Clone)]
pub struct ServerTls {
    pair: CertKeyPair,
}

impl ServerTls {
    /// Loads `[server.tls]`; `None` when the listener serves plain HTTP.
    pub fn load(config: &ServerTlsConfig) -> Result<Option<ServerTls>, ConfigError> {
        if !config.is_on() {
            return Ok(None);
        }
        let pair =
            CertKeyPair::load(("server.tls.cert_file", &config.cert_file), ("server.tls.key_file", &config.key_file))?;
        let tls = ServerTls { pair };
        tls.acceptor().map_err(|e| ConfigError::new("server.tls.cert_file", format!("unusable for TLS: {e}")))?;
        Ok(Some(tls))
    }

    /// A fresh acceptor: TLS 1.2 minimum, TLS 1.3 enabled, modern ciphers, no compression or
    /// renegotiation. actix-web adds ALPN (HTTP/1.1).
    pub fn acceptor(&self) -> Result<SslAcceptorBuilder, openssl::error::ErrorStack> {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        builder.set_max_proto_version(None)?;
        builder.set_cipher_list(TLS12_CIPHERS)?;
        builder.set_ciphersuites(TLS13_SUITES)?;
        builder.set_options(SslOptions::NO_COMPRESSION | SslOptions::NO_RENEGOTIATION);
        builder.set_certificate(&self.pair.chain[0])?;
        for intermediate in &self.pair.chain[1..] {
            builder.add_extra_chain_cert(intermediate.clone())?;
        }
        builder.set_private_key(&self.pair.key)?;
        builder.check_private_key()?;
        Ok(builder)
    }
}

/// How every outbound connection verifies its peer (`[tls_client]`).
#[derive(Clone)]
pub struct OutboundTls {
    extra_roots: Vec<X509>,
    reqwest_roots: Vec<reqwest::Certificate>,
    insecure: bool,
    upstream: SslConnector,
}

impl OutboundTls {
    /// Loads `[tls_client]`: the CA bundle, if any, and the verification switch.
    pub fn load(config: &TlsClientConfig) -> Result<OutboundTls, ConfigError> {
        let extra_roots = match config.ca_file.is_empty() {
            true => Vec::new(),
            false => certificates("tls_client.ca_file", &config.ca_file)?,
        };
        let mut reqwest_roots = Vec::new();
        for cert in &extra_roots {
            let pem = cert.to_pem().map_err(|e| ConfigError::new("tls_client.ca_file", e.to_string()))?;
            reqwest_roots.push(
                reqwest::Certificate::from_pem(&pem)
                    .map_err(|e| ConfigError::new("tls_client.ca_file", e.to_string()))?,
            );
        }
        let upstream = upstream_connector(&extra_roots, config.insecure_skip_verify)
            .map_err(|e| ConfigError::new("tls_client.ca_file", format!("cannot set up TLS: {e}")))?;
        Ok(OutboundTls { extra_roots, reqwest_roots, insecure: config.insecure_skip_verify, upstream })
    }

    /// Whether verification is off.
    pub fn insecure(&self) -> bool {
        self.insecure
    }

    /// The number of CA certificates added to the system's store.
    pub fn extra_roots(&self) -> usize {
        self.extra_roots.len()
    }

    /// Applies the settings to a reqwest client (authorization server, OPA): TLS 1.2 minimum, the extra
    /// roots, and no verification at all when insecure.
    pub fn reqwest(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        builder = builder.min_tls_version(reqwest::tls::Version::TLS_1_2);
        for root in &self.reqwest_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        if self.insecure {
            builder = builder.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
        }
        builder
    }

    /// The OpenSSL connector of the upstream clients (one per worker; clones share one context).
    pub fn upstream_connector(&self) -> SslConnector {
        self.upstream.clone()
    }
}

/// The upstreams' connector: the system's store plus `extra_roots`, TLS 1.2 minimum, ALPN as awc's
/// default connector (h2, http/1.1).
fn upstream_connector(extra_roots: &[X509], insecure: bool) -> Result<SslConnector, openssl::error::ErrorStack> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    builder.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    for root in extra_roots {
        builder.cert_store_mut().add_cert(root.clone())?;
    }
    if insecure {
        builder.set_verify(SslVerifyMode::NONE);
    }
    builder.set_alpn_protos(b"\x02h2\x08http/1.1")?;
    Ok(builder.build())
}

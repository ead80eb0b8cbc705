//! A private certificate authority for TLS tests: a CA, server certificates for 127.0.0.1 and
//! `localhost`, and client certificates, as PEM in memory and in files of a fresh temporary directory.
//!
//! Keys are EC P-256 in PKCS#8 PEM. The directory is removed when the [`TestPki`] is dropped.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

/// A certificate and its key, as PEM and as files.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: Vec<u8>,
    /// The private key (PKCS#8 PEM).
    pub key_pem: Vec<u8>,
    /// The certificate file.
    pub cert_file: PathBuf,
    /// The key file.
    pub key_file: PathBuf,
    /// The subject DN as `CN=…,O=…` (RFC 4514 order: most specific first), for `tls_client_auth`.
    pub subject_dn: String,
}

/// A private CA that issues certificates for one test.
pub struct TestPki {
    dir: PathBuf,
    ca: X509,
    ca_key: PKey<Private>,
    ca_file: PathBuf,
    issued: std::sync::atomic::AtomicUsize,
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("PKey")
}

fn serial() -> Asn1Integer {
    let mut n = BigNum::new().expect("bignum");
    n.rand(120, MsbOption::MAYBE_ZERO, false).expect("random serial");
    n.to_asn1_integer().expect("serial")
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut b = X509NameBuilder::new().expect("name");
    b.append_entry_by_nid(Nid::ORGANIZATIONNAME, "Shroud Tests").expect("O");
    b.append_entry_by_nid(Nid::COMMONNAME, cn).expect("CN");
    b.build()
}

impl TestPki {
    /// A fresh CA (`CN=Shroud Test CA`) in a fresh temporary directory.
    pub fn new() -> TestPki {
        let mut suffix = [0u8; 8];
        openssl::rand::rand_bytes(&mut suffix).expect("random");
        let dir = std::env::temp_dir().join(format!("shroud-pki-{}", hex::encode(suffix)));
        std::fs::create_dir_all(&dir).expect("PKI directory");
        let ca_key = ec_key();
        let mut b = X509Builder::new().expect("x509");
        b.set_version(2).expect("v3");
        b.set_serial_number(&serial()).expect("serial");
        let subject = name("Shroud Test CA");
        b.set_subject_name(&subject).expect("subject");
        b.set_issuer_name(&subject).expect("issuer");
        b.set_pubkey(&ca_key).expect("pubkey");
        b.set_not_before(&Asn1Time::days_from_now(0).expect("now")).expect("not before");
        b.set_not_after(&Asn1Time::days_from_now(2).expect("later")).expect("not after");
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc")).expect("bc");
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().expect("ku")).expect("ku");
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None)).expect("ski");
        b.append_extension(ski).expect("ski");
        b.sign(&ca_key, MessageDigest::sha256()).expect("sign CA");
        let ca = b.build();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.to_pem().expect("CA PEM")).expect("write CA");
        TestPki { dir, ca, ca_key, ca_file, issued: Default::default() }
    }

    /// The CA certificate file (PEM).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> Vec<u8> {
        self.ca.to_pem().expect("CA PEM")
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server(&self) -> Issued {
        self.issue("127.0.0.1", true)
    }

    /// A client certificate with the common name `cn`.
    pub fn client(&self, cn: &str) -> Issued {
        self.issue(cn, false)
    }

    fn issue(&self, cn: &str, server: bool) -> Issued {
        let key = ec_key();
        let mut b = X509Builder::new().expect("x509");
        b.set_version(2).expect("v3");
        b.set_serial_number(&serial()).expect("serial");
        b.set_subject_name(&name(cn)).expect("subject");
        b.set_issuer_name(self.ca.subject_name()).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        b.set_not_before(&Asn1Time::days_from_now(0).expect("now")).expect("not before");
        b.set_not_after(&Asn1Time::days_from_now(1).expect("later")).expect("not after");
        b.append_extension(BasicConstraints::new().build().expect("bc")).expect("bc");
        b.append_extension(KeyUsage::new().critical().digital_signature().build().expect("ku")).expect("ku");
        let eku = if server {
            ExtendedKeyUsage::new().server_auth().build()
        } else {
            ExtendedKeyUsage::new().client_auth().build()
        };
        b.append_extension(eku.expect("eku")).expect("eku");
        let aki =
            AuthorityKeyIdentifier::new().keyid(true).build(&b.x509v3_context(Some(&self.ca), None)).expect("aki");
        b.append_extension(aki).expect("aki");
        if server {
            let san = SubjectAlternativeName::new()
                .ip(&IpAddr::V4(Ipv4Addr::LOCALHOST).to_string())
                .dns("localhost")
                .build(&b.x509v3_context(Some(&self.ca), None))
                .expect("san");
            b.append_extension(san).expect("san");
        }
        b.sign(&self.ca_key, MessageDigest::sha256()).expect("sign");
        let cert = b.build();
        let n = self.issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let stem = if server { format!("server-{n}") } else { format!("client-{n}") };
        let cert_pem = cert.to_pem().expect("cert PEM");
        let key_pem = key.private_key_to_pem_pkcs8().expect("key PEM");
        let cert_file = self.dir.join(format!("{stem}.pem"));
        let key_file = self.dir.join(format!("{stem}-key.pem"));
        std::fs::write(&cert_file, &cert_pem).expect("write cert");
        std::fs::write(&key_file, &key_pem).expect("write key");
        Issued { cert_pem, key_pem, cert_file, key_file, subject_dn: subject_dn(&cert) }
    }
}

impl Default for TestPki {
    fn default() -> Self {
        TestPki::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A certificate's subject DN in RFC 4514 order (`CN=…,O=…`), the way `tls_client_auth_subject_dn`
/// is usually written.
pub fn subject_dn(cert: &X509) -> String {
    let mut parts: Vec<String> = cert
        .subject_name()
        .entries()
        .map(|e| {
            let short = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{short}={value}")
        })
        .collect();
    parts.reverse();
    parts.join(",")
}

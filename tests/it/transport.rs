//! Transport security over real TLS: the HTTPS listener (protocol versions, ciphers, HSTS), verification
//! of the authorization server's and upstreams' certificates (`ca_file`, `insecure_skip_verify`), and
//! client authentication with `private_key_jwt` and `tls_client_auth`, all under a CA made for the test.

use crate::spa::*;
use crate::support::*;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
use reqwest::Method;
use shroud::config::{AuthMethod, Config, ResponseMode};
use shroud::secret::Secret;
use shroud_testkit::{EchoUpstream, FakeAs, FakeAsOptions, FakeAsTls, TestPki, TokenSpec};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A client that trusts the test CA.
fn tls_client(pki: &TestPki) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&pki.ca_pem()).unwrap();
    reqwest::Client::builder().add_root_certificate(ca).pool_max_idle_per_host(0).build().unwrap()
}

/// A fake authorization server over HTTPS; with `client_ca`, it asks for client certificates.
fn https_idp(pki: &TestPki, client_ca: bool) -> FakeAs {
    let server = pki.server();
    FakeAs::start_with(FakeAsOptions {
        tls: Some(FakeAsTls {
            cert_pem: server.cert_pem,
            key_pem: server.key_pem,
            client_ca_pem: client_ca.then(|| pki.ca_pem()),
        }),
        ..Default::default()
    })
}

fn with_listener_tls(mut c: Config, pki: &TestPki) -> Config {
    let server = pki.server();
    c.server.tls.cert_file = server.cert_file.to_string_lossy().into_owned();
    c.server.tls.key_file = server.key_file.to_string_lossy().into_owned();
    c
}

fn ca_file(pki: &TestPki) -> String {
    pki.ca_file().to_string_lossy().into_owned()
}

/// A TLS handshake with the listener under client-side limits; the negotiated version and cipher.
fn handshake(
    addr: SocketAddr,
    pki: &TestPki,
    max: SslVersion,
    ciphers: Option<&str>,
) -> Result<(String, String), String> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    // Let the client offer what it is told to, however old, so that only the server decides.
    b.set_security_level(0);
    b.set_min_proto_version(Some(SslVersion::TLS1)).unwrap();
    b.set_max_proto_version(Some(max)).unwrap();
    b.set_cipher_list(ciphers.unwrap_or("ALL:@SECLEVEL=0")).unwrap();
    b.set_verify(SslVerifyMode::PEER);
    b.cert_store_mut().add_cert(openssl::x509::X509::from_pem(&pki.ca_pem()).unwrap()).unwrap();
    let connector = b.build();
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let stream = connector.connect("127.0.0.1", tcp).map_err(|e| e.to_string())?;
    let ssl = stream.ssl();
    Ok((ssl.version_str().to_string(), ssl.current_cipher().map(|c| c.name().to_string()).unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_tls_1_2_and_1_3_only_with_modern_ciphers() {
    let pki = TestPki::new();
    let env = Env::with(ResponseMode::Rfc9701, |c| with_listener_tls(c, &pki));
    assert!(env.shroud.url().starts_with("https://"));
    let addr = env.shroud.addr;
    let task = tokio::task::spawn_blocking(move || {
        let (version, _) = handshake(addr, &pki, SslVersion::TLS1_3, None).expect("TLS 1.3");
        assert_eq!(version, "TLSv1.3", "TLS 1.3 is preferred");
        let (version, cipher) = handshake(addr, &pki, SslVersion::TLS1_2, None).expect("TLS 1.2");
        assert_eq!(version, "TLSv1.2");
        assert!(cipher.starts_with("ECDHE-") && (cipher.contains("GCM") || cipher.contains("CHACHA20")), "{cipher}");
        for old in [SslVersion::TLS1_1, SslVersion::TLS1] {
            let refused = handshake(addr, &pki, old, None);
            assert!(refused.is_err(), "{old:?} must be refused, got {refused:?}");
        }
        for weak in ["ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384", "AES128-GCM-SHA256:AES256-SHA"] {
            let refused = handshake(addr, &pki, SslVersion::TLS1_2, Some(weak));
            assert!(refused.is_err(), "{weak} must be refused, got {refused:?}");
        }
        pki
    });
    let pki = task.await.unwrap();

    let token = env.token("tls-token", "read");
    let https = tls_client(&pki);
    let resp = https.get(format!("{}/api/x", env.shroud.url())).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(env.api.last().unwrap().header("x-forwarded-proto"), Some("https"));
    assert!(resp.headers().get("strict-transport-security").is_none(), "HSTS is the token handler's");
    let plain = env.http.get(format!("http://{addr}/healthz")).send().await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true), "no plain HTTP on the TLS listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_by_the_token_handler_over_tls_only() {
    let pki = TestPki::new();
    let tls = Env::with(ResponseMode::Rfc9701, |c| with_listener_tls(token_handler_config(c), &pki));
    let https = tls_client(&pki);
    let hsts = |resp: &reqwest::Response| {
        resp.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_string())
    };
    let base = tls.shroud.url();
    let agent = https.post(format!("{base}/oauth-agent/login/start")).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(agent.status(), 200);
    assert_eq!(hsts(&agent).as_deref(), Some("max-age=31536000"));
    let refused = https.post(format!("{base}/oauth-agent/refresh")).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(hsts(&refused).as_deref(), Some("max-age=31536000"), "errors too");
    let cookie_route = https.get(format!("{base}/spa/x")).header("origin", ORIGIN).send().await.unwrap();
    assert_eq!(cookie_route.status(), 401);
    assert_eq!(hsts(&cookie_route).as_deref(), Some("max-age=31536000"));

    // A whole session over TLS.
    let mut spa = Browser::trusting(&base, Some(&pki.ca_pem()));
    spa.login().await;
    let resp = spa.send(Method::GET, "/spa/orders", None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(hsts(&resp).as_deref(), Some("max-age=31536000"));

    let plain = Env::with(ResponseMode::Rfc9701, token_handler_config);
    let agent =
        plain.http.post(format!("{}/oauth-agent/login/start", plain.shroud.url())).header("origin", ORIGIN).send();
    let agent = agent.await.unwrap();
    assert_eq!(agent.status(), 200);
    assert_eq!(hsts(&agent), None, "no HSTS over plain HTTP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_server_certificate_is_verified() {
    let pki = TestPki::new();
    let idp = https_idp(&pki, false);
    let api = EchoUpstream::start();
    idp.issue("t1", TokenSpec::active("alice", "read", 300));
    let http = client();
    let get = |shroud: &shroud::server::Running| http.get(format!("{}/api/x", shroud.url())).bearer_auth("t1").send();

    let mut c = config(&idp, &api, ResponseMode::Rfc9701);
    c.tls_client.ca_file = ca_file(&pki);
    let trusted = start(c);
    assert_eq!(get(&trusted).await.unwrap().status(), 200, "reached with the private CA");

    let untrusted = start(config(&idp, &api, ResponseMode::Rfc9701));
    assert_refusal(get(&untrusted).await.unwrap(), 503, "authorization_server_unavailable", None).await;

    let mut c = config(&idp, &api, ResponseMode::Rfc9701);
    c.tls_client.insecure_skip_verify = true;
    let insecure = start(c);
    assert_eq!(get(&insecure).await.unwrap().status(), 200, "reached without verification");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_certificates_are_verified() {
    let pki = TestPki::new();
    let idp = FakeAs::start();
    let server = pki.server();
    let api = EchoUpstream::start_tls(&server.cert_pem, &server.key_pem);
    assert!(api.url().starts_with("https://"));
    idp.issue("t1", TokenSpec::active("alice", "read", 300));
    let http = client();
    let get = |shroud: &shroud::server::Running, path: &str| {
        http.get(format!("{}{path}", shroud.url())).bearer_auth("t1").send()
    };

    let mut c = config(&idp, &api, ResponseMode::Rfc9701);
    c.tls_client.ca_file = ca_file(&pki);
    let trusted = start(c);
    assert_eq!(get(&trusted, "/api/a").await.unwrap().status(), 200);
    assert_eq!(get(&trusted, "/public/b").await.unwrap().status(), 200);
    let echo = api.last().unwrap();
    assert_eq!(echo.path, "/public/b");
    assert!(forwarded_jwt_of(&echo).is_none(), "none routes forward no token");
    assert_eq!(api.hits(), 2);

    let untrusted = start(config(&idp, &api, ResponseMode::Rfc9701));
    assert_refusal(get(&untrusted, "/public/c").await.unwrap(), 502, "upstream_unavailable", None).await;
    assert_refusal(get(&untrusted, "/api/c").await.unwrap(), 502, "upstream_unavailable", None).await;
    assert_eq!(api.hits(), 2, "nothing reached the upstream");

    let mut c = config(&idp, &api, ResponseMode::Rfc9701);
    c.tls_client.insecure_skip_verify = true;
    let insecure = start(c);
    assert_eq!(get(&insecure, "/api/d").await.unwrap().status(), 200);
    assert_eq!(api.hits(), 3);
}

fn forwarded_jwt_of(echo: &shroud_testkit::Echo) -> Option<&str> {
    echo.header("authorization")
}

/// Writes a fresh signing key of `kind` and returns its file and public JWK.
fn client_key(kind: &str) -> (String, serde_json::Value) {
    let pem = shroud::jose::mint::generate_pem(kind).unwrap();
    let mut suffix = [0u8; 8];
    openssl::rand::rand_bytes(&mut suffix).unwrap();
    let path = std::env::temp_dir().join(format!("shroud-client-key-{}.pem", hex::encode(suffix)));
    std::fs::write(&path, &pem).unwrap();
    let key = shroud::jose::mint::SigningKey::from_pem(pem.as_bytes()).unwrap();
    (path.to_string_lossy().into_owned(), serde_json::Value::Object(key.public.as_ref().clone()))
}

fn private_key_jwt(mut c: Config, key_file: &str) -> Config {
    c.introspection.auth_method = AuthMethod::PrivateKeyJwt;
    c.introspection.client_secret = Secret::default();
    c.introspection.private_key_file = key_file.into();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_authenticates_with_private_key_jwt() {
    for kind in ["es256", "rs256", "eddsa"] {
        let (key_file, jwk) = client_key(kind);
        let env = Env::with(ResponseMode::Rfc9701, |c| private_key_jwt(c, &key_file));
        env.idp.register_client_jwk("gateway", jwk);
        for name in ["a", "b"] {
            let token = env.token(&format!("{kind}-{name}"), "read");
            assert_eq!(env.get("/api/x", Some(&token)).await.status(), 200, "{kind}");
        }
        let record = env.idp.last_introspection().unwrap();
        assert_eq!(record.auth_method, "private_key_jwt");
        assert_eq!(record.auth_error, None);
        let claims = record.assertion_claims.unwrap();
        assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("gateway"), Some("gateway")));
        assert_eq!(claims["aud"].as_str(), Some(env.idp.url().as_str()), "aud is the issuer identifier");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
        assert_eq!(env.idp.introspections(), 2, "two assertions, each with its own jti (replays are refused)");
    }

    let (key_file, _) = client_key("es256");
    let (_, other) = client_key("es256");
    let env = Env::with(ResponseMode::Rfc9701, |c| private_key_jwt(c, &key_file));
    env.idp.register_client_jwk("gateway", other);
    let token = env.token("wrong-key", "read");
    assert_refusal(env.get("/api/x", Some(&token)).await, 502, "authorization_server_error", None).await;
    let error = env.idp.last_introspection().unwrap().auth_error.unwrap();
    assert!(error.contains("signature"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_handler_authenticates_with_private_key_jwt() {
    let (key_file, jwk) = client_key("es256");
    let env = Env::with(ResponseMode::Rfc9701, |c| {
        let mut c = token_handler_config(c);
        c.token_handler.auth_method = AuthMethod::PrivateKeyJwt;
        c.token_handler.client_secret = Secret::default();
        c.token_handler.private_key_file = key_file.clone();
        c.token_handler.private_key_kid = "webapp-key-1".into();
        c
    });
    env.idp.register_client_jwk("webapp", jwk);
    login_refresh_logout(&env, None).await;
}

/// A whole token-handler session: login (code grant), an API call, a refresh, and logout with revocation.
async fn login_refresh_logout(env: &Env, ca_pem: Option<&[u8]>) {
    let mut spa = Browser::trusting(&env.shroud.url(), ca_pem);
    spa.login().await;
    assert_eq!(spa.send(Method::GET, "/spa/orders", None).await.status(), 200);
    assert_eq!(spa.send(Method::POST, "/oauth-agent/refresh", None).await.status(), 204, "refresh grant");
    assert_eq!(env.idp.refresh_grants(), 1);
    let refresh_token = spa.decrypt("shroud-auth", &[KEY1]).unwrap();
    assert_eq!(spa.send(Method::POST, "/oauth-agent/logout", None).await.status(), 200);
    assert!(env.idp.revoked().contains(&refresh_token), "revocation authenticated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_auth_presents_each_clients_certificate() {
    let pki = TestPki::new();
    let idp = https_idp(&pki, true);
    let api = EchoUpstream::start();
    let gateway = pki.client("shroud-gateway");
    let webapp = pki.client("shroud-webapp");
    idp.register_client_cert("gateway", &gateway.subject_dn);
    idp.register_client_cert("webapp", &webapp.subject_dn);
    let mut c = token_handler_config(config(&idp, &api, ResponseMode::Rfc9701));
    c.tls_client.ca_file = ca_file(&pki);
    c.introspection.auth_method = AuthMethod::TlsClientAuth;
    c.introspection.client_secret = Secret::default();
    c.introspection.client_cert_file = gateway.cert_file.to_string_lossy().into_owned();
    c.introspection.client_key_file = gateway.key_file.to_string_lossy().into_owned();
    c.token_handler.auth_method = AuthMethod::TlsClientAuth;
    c.token_handler.client_secret = Secret::default();
    c.token_handler.client_cert_file = webapp.cert_file.to_string_lossy().into_owned();
    c.token_handler.client_key_file = webapp.key_file.to_string_lossy().into_owned();
    let shroud = start(c.clone());
    let env = Env { idp, api, shroud, http: client() };

    let token = env.token("mtls-token", "read");
    assert_eq!(env.get("/api/x", Some(&token)).await.status(), 200);
    let record = env.idp.last_introspection().unwrap();
    assert_eq!((record.auth_method.as_str(), record.auth_error), ("tls_client_auth", None));
    assert_eq!(record.client_id.as_deref(), Some("gateway"));
    login_refresh_logout(&env, Some(&pki.ca_pem())).await;

    // The web app's certificate does not authenticate the gateway.
    c.introspection.client_cert_file = c.token_handler.client_cert_file.clone();
    c.introspection.client_key_file = c.token_handler.client_key_file.clone();
    let wrong = start(c);
    env.idp.issue("mtls-token-2", TokenSpec::active("alice", "read", 300));
    let resp = env.http.get(format!("{}/api/x", wrong.url())).bearer_auth("mtls-token-2").send().await.unwrap();
    assert_refusal(resp, 502, "authorization_server_error", None).await;
    let error = env.idp.last_introspection().unwrap().auth_error.unwrap();
    assert!(error.contains("is not the registered"), "{error}");
}

#[test]
fn transport_files_are_checked_at_start_naming_the_key() {
    let pki = TestPki::new();
    let idp = FakeAs::start();
    let api = EchoUpstream::start();
    let build_error = |c: Config| {
        c.validate().expect("valid without touching files");
        match shroud::gateway::Gateway::build(c) {
            Ok(_) => panic!("built"),
            Err(e) => e,
        }
    };
    let one = pki.server();
    let two = pki.server();
    let base = || config(&idp, &api, ResponseMode::Rfc9701);

    let mut c = base();
    c.server.tls.cert_file = one.cert_file.to_string_lossy().into_owned();
    c.server.tls.key_file = two.key_file.to_string_lossy().into_owned();
    let err = build_error(c.clone());
    assert_eq!(err.key, "server.tls.key_file");
    assert!(err.message.contains("is not the private key"), "{}", err.message);
    c.server.tls.key_file = "/no/such/key.pem".into();
    assert_eq!(build_error(c.clone()).key, "server.tls.key_file");
    c.server.tls.cert_file = c.phantom.signing_key_file.clone();
    assert_eq!(build_error(c).key, "server.tls.cert_file");

    let mut c = base();
    c.tls_client.ca_file = "/no/such/ca.pem".into();
    assert_eq!(build_error(c.clone()).key, "tls_client.ca_file");
    c.tls_client.ca_file = one.key_file.to_string_lossy().into_owned();
    assert_eq!(build_error(c).key, "tls_client.ca_file");

    let p384 = {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let path = std::env::temp_dir().join(format!("shroud-p384-{}.pem", std::process::id()));
        std::fs::write(&path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        path.to_string_lossy().into_owned()
    };
    let c = private_key_jwt(base(), &p384);
    let err = build_error(c);
    assert_eq!(err.key, "introspection.private_key_file");
    assert!(err.message.contains("P-256"), "{}", err.message);

    let mut c = base();
    c.issuer.url = "https://127.0.0.1:9".into();
    c.introspection.auth_method = AuthMethod::TlsClientAuth;
    c.introspection.client_cert_file = one.cert_file.to_string_lossy().into_owned();
    c.introspection.client_key_file = two.key_file.to_string_lossy().into_owned();
    assert_eq!(build_error(c).key, "introspection.client_key_file");

    let mut c = token_handler_config(base());
    c.token_handler.auth_method = AuthMethod::PrivateKeyJwt;
    c.token_handler.private_key_file = "/no/such/key.pem".into();
    assert_eq!(build_error(c).key, "token_handler.private_key_file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_warns_about_insecure_skip_verify_and_never_logs_assertions_or_keys() {
    let pki = TestPki::new();
    let idp = https_idp(&pki, false);
    let api = EchoUpstream::start();
    let (key_file, jwk) = client_key("es256");
    idp.register_client_jwk("gateway", jwk);
    let port = shroud_testkit::net::free_port();
    let text = crate::cli::base_config("\n[tls_client]\ninsecure_skip_verify = true\n")
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace("http://127.0.0.1:9", &idp.url())
        .replace("http://127.0.0.1:7001", &api.url())
        .replace(
            "client_secret = \"very-secret-client-value\"",
            &format!("auth_method = \"private_key_jwt\"\nprivate_key_file = \"{key_file}\""),
        )
        .replace("backend = \"redis\"", "backend = \"memory\"");
    let path = crate::cli::write_config(&text);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_shroud"))
        .args(["serve", "--config", path.to_str().unwrap()])
        .env_remove("SHROUD_CONFIG")
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(Option<std::process::Child>);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(child) = self.0.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let mut child = Kill(Some(child));
    let base = format!("http://127.0.0.1:{port}");
    let http = client();
    let mut up = false;
    for _ in 0..100 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "shroud serve came up and reached the authorization server without verifying it");
    idp.issue("pkjwt-token", TokenSpec::active("alice", "read", 300));
    assert_eq!(http.get(format!("{base}/api/x")).bearer_auth("pkjwt-token").send().await.unwrap().status(), 200);
    let claims = idp.last_introspection().unwrap().assertion_claims.unwrap();
    let jti = claims["jti"].as_str().unwrap().to_string();
    let mut process = child.0.take().unwrap();
    process.kill().unwrap();
    let out = process.wait_with_output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let warning = logs.lines().find(|l| l.contains("insecure_skip_verify")).unwrap_or_else(|| panic!("{logs}"));
    assert!(warning.contains("WARN") && warning.contains("NOT verified"), "{warning}");
    let key = std::fs::read_to_string(&key_file).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    for secret in [jti.as_str(), key_body, "client_assertion=", "pkjwt-token"] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opa_certificates_are_verified() {
    let pki = TestPki::new();
    let server = pki.server();
    let opa = shroud_testkit::FakeOpa::start_tls(
        "package shroud\n\ndefault allow := false\n\nallow if input.method == \"GET\"\n",
        &server.cert_pem,
        &server.key_pem,
    );
    assert!(opa.url().starts_with("https://"));
    let with_opa = |mut c: Config| {
        let mut r = route("/hr", &c.routes[0].upstream, &[]);
        r.opa = Some(shroud::config::OpaConfig {
            url: opa.data_url("shroud/allow"),
            timeout_ms: 1000,
            cache_seconds: 0,
            headers: vec![],
        });
        c.routes.push(r);
        c
    };
    let trusted = Env::with(ResponseMode::Json, |c| {
        let mut c = with_opa(c);
        c.tls_client.ca_file = ca_file(&pki);
        c
    });
    let token = trusted.token("opa-token", "read");
    assert_eq!(trusted.get("/hr/x", Some(&token)).await.status(), 200, "OPA reached with the private CA");
    assert_eq!(opa.requests(), 1);

    let untrusted = Env::with(ResponseMode::Json, with_opa);
    let token = untrusted.token("opa-token", "read");
    let resp = untrusted.get("/hr/x", Some(&token)).await;
    assert_refusal(resp, 503, "policy_service_unavailable", None).await;
    assert_eq!(opa.requests(), 1, "no decision asked over an unverified connection");
}

#[test]
fn check_config_reads_the_transport_files() {
    let pki = TestPki::new();
    let (one, two) = (pki.server(), pki.server());
    let tls = |cert: &std::path::Path, key: &std::path::Path| {
        format!(
            "\n[server.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\n[tls_client]\nca_file = \"{}\"\n",
            cert.display(),
            key.display(),
            pki.ca_file().display()
        )
    };
    let good = crate::cli::write_config(&crate::cli::base_config(&tls(&one.cert_file, &one.key_file)));
    let out = crate::cli::shroud(&["check-config", "--config", good.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[server.tls]") && stdout.contains("[tls_client]"), "{stdout}");
    let bad = crate::cli::write_config(&crate::cli::base_config(&tls(&one.cert_file, &two.key_file)));
    let out = crate::cli::shroud(&["check-config", "--config", bad.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid configuration key `server.tls.key_file`"), "{stderr}");
}

//! The command line: keygen, check-config (validation naming keys, redaction, environment overrides).

use std::process::{Command, Output};

/// Runs the `shroud` binary with `args` and extra environment variables.
pub(crate) fn shroud(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shroud"));
    cmd.args(args).env_remove("SHROUD_CONFIG").env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Writes a configuration to a unique temporary file.
pub(crate) fn write_config(text: &str) -> std::path::PathBuf {
    let mut suffix = [0u8; 8];
    openssl::rand::rand_bytes(&mut suffix).unwrap();
    let path = std::env::temp_dir().join(format!("shroud-cli-{}.toml", hex::encode(suffix)));
    std::fs::write(&path, text).unwrap();
    path
}

/// A valid configuration (Redis backend, one `/api` route) with `extra` inserted before `[[routes]]`.
pub(crate) fn base_config(extra: &str) -> String {
    let key = crate::support::signing_key_file();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"

[issuer]
url = "http://127.0.0.1:9"

[introspection]
client_id = "gateway"
client_secret = "very-secret-client-value"

[phantom]
signing_key_file = "{}"

[cache]
backend = "redis"
redis_url = "redis://:redis-password-123@127.0.0.1:6379/0"
key_secret = "{}"
{extra}
[[routes]]
path_prefix = "/api"
upstream = "http://127.0.0.1:7001"
required_scopes = ["read"]
"#,
        key.display(),
        crate::support::KEY_SECRET
    )
}

/// `text` (a [`base_config`]) pointed at a real authorization server and upstream, listening on `port`,
/// with the in-process cache backend.
pub(crate) fn served_config(text: &str, port: u16, issuer: &str, upstream: &str) -> String {
    text.replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""))
        .replace("http://127.0.0.1:9", issuer)
        .replace("http://127.0.0.1:7001", upstream)
        .replace("very-secret-client-value", "gateway-secret")
        .replace("backend = \"redis\"", "backend = \"memory\"")
}

/// A running `shroud serve` process, its output captured; killed when dropped.
pub(crate) struct Served {
    child: Option<std::process::Child>,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Served {
    /// Starts `shroud serve` on `text` (which listens on `port`) with `RUST_LOG=rust_log` and waits until
    /// `/healthz` answers.
    pub(crate) async fn start(text: &str, port: u16, rust_log: &str) -> Served {
        let path = write_config(text);
        let child = Command::new(env!("CARGO_BIN_EXE_shroud"))
            .args(["serve", "--config", path.to_str().unwrap()])
            .env_remove("SHROUD_CONFIG")
            .env("RUST_LOG", rust_log)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let served = Served { child: Some(child), base: format!("http://127.0.0.1:{port}") };
        let http = crate::support::client();
        for _ in 0..100 {
            if http.get(format!("{}/healthz", served.base)).send().await.is_ok_and(|r| r.status() == 200) {
                return served;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("shroud serve did not come up:\n{}", served.logs());
    }

    /// The process id (to read its memory use from `/proc`).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Stops the process and returns everything it wrote.
    pub(crate) fn logs(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn keygen_prints_fresh_32_byte_hex_keys() {
    let a = String::from_utf8(shroud(&["keygen"], &[]).stdout).unwrap();
    let b = String::from_utf8(shroud(&["keygen"], &[]).stdout).unwrap();
    assert_eq!(a.trim().len(), 64);
    assert!(a.trim().bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    let pem = shroud(&["keygen", "--phantom-key", "es256"], &[]);
    assert!(pem.status.success());
    assert!(shroud::jose::mint::PhantomSigner::from_pem(&pem.stdout).is_ok());
}

const TOKEN_HANDLER: &str = r#"
[token_handler]
enabled = true
client_secret = "webapp-secret-value"
cookie_encryption_keys = ["11a1b2c3d4e5f60718293a4b5c6d7e8f9000112233445566778899aabbccddee"]
"#;

#[test]
fn check_config_redacts_every_secret() {
    let path = write_config(&base_config(TOKEN_HANDLER));
    let out = shroud(&["check-config", "--config", path.to_str().unwrap()], &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for secret in [
        "very-secret-client-value",
        "redis-password-123",
        crate::support::KEY_SECRET,
        "webapp-secret-value",
        "11a1b2c3d4e5f60718293a4b5c6d7e8f9000112233445566778899aabbccddee",
    ] {
        assert!(!stdout.contains(secret), "{secret} leaked:\n{stdout}");
    }
    assert!(stdout.contains("client_secret = \"***redacted***\""), "{stdout}");
    assert!(stdout.contains("redis://:***redacted***@127.0.0.1:6379/0"), "{stdout}");
    assert!(stdout.contains("path_prefix = \"/api\""), "{stdout}");
}

#[test]
fn environment_overrides_scalar_keys() {
    let text = base_config("").replace("client_secret = \"very-secret-client-value\"\n", "");
    let path = write_config(&text);
    let missing = shroud(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("introspection.client_secret"));
    let out = shroud(
        &["check-config", "--config", path.to_str().unwrap()],
        &[("SHROUD__INTROSPECTION__CLIENT_SECRET", "from-env"), ("SHROUD__SERVER__WORKERS", "3")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("workers = 3"), "{stdout}");
    let via_env = shroud(
        &["check-config"],
        &[("SHROUD_CONFIG", path.to_str().unwrap()), ("SHROUD__INTROSPECTION__CLIENT_SECRET", "x")],
    );
    assert!(via_env.status.success(), "{}", String::from_utf8_lossy(&via_env.stderr));
}

#[test]
fn bad_configurations_fail_naming_the_key() {
    let cases = [
        (base_config("colour = \"blue\"\n"), "colour"),
        (base_config("").replace("[cache]", "[cache]\nmax_entriez = 5"), "max_entriez"),
        (base_config("").replace(crate::support::KEY_SECRET, "abc"), "cache.key_secret"),
        (base_config("").replace("listen = \"127.0.0.1:0\"", "listen = \"nowhere\""), "server.listen"),
        (base_config("").replace("http://127.0.0.1:7001", "ftp://x"), "routes[0].upstream"),
        (
            base_config("").replace("signing_key_file = \"", "signing_key_file = \"/nonexistent"),
            "phantom.signing_key_file",
        ),
        (base_config("").replace("[server]", "[server]\nworkers = \"many\""), "workers"),
        (base_config(&TOKEN_HANDLER.replace("11a1", "zz")), "token_handler.cookie_encryption_keys"),
        (
            base_config(&format!("{TOKEN_HANDLER}trusted_web_origins = [\"http://x/path\"]\n")),
            "token_handler.trusted_web_origins",
        ),
        (base_config("").replace("required_scopes = [\"read\"]", "credentials = \"cookie\""), "routes[0].credentials"),
        (
            format!("{}[routes.require]\nroles = {{ claim = \"roles\", none_of = [\"x\"] }}\n", base_config("")),
            "routes[0].require.roles",
        ),
        (
            format!("{}[routes.require]\nroles = {{ claim = \"roles\", any_of = [] }}\n", base_config("")),
            "routes[0].require.roles",
        ),
        (format!("{}methods = [\"get\"]\n", base_config("")), "routes[0].methods"),
    ];
    for (text, key) in cases {
        let path = write_config(&text);
        let out = shroud(&["check-config", "--config", path.to_str().unwrap()], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key} should fail");
        assert!(stderr.contains(key), "error should name {key}: {stderr}");
    }
    let out = shroud(&["check-config", "--config", "/nonexistent.toml"], &[]);
    assert!(!out.status.success());
    let path = write_config(&base_config(""));
    let out = shroud(&["check-config", "--config", path.to_str().unwrap()], &[("SHROUD__CACHE__BOGUS", "1")]);
    assert!(!out.status.success(), "unknown keys from the environment are errors too");
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_each_request_and_never_a_secret() {
    let idp = shroud_testkit::FakeAs::start();
    let api = shroud_testkit::EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let served = Served::start(&served_config(&base_config(""), port, &idp.url(), &api.url()), port, "debug").await;
    let base = served.base.clone();
    let http = crate::support::client();
    let token = "opaque-token-that-must-never-be-logged";
    idp.issue(token, shroud_testkit::TokenSpec::active("alice", "read", 300));
    assert_eq!(http.get(format!("{base}/api/x")).bearer_auth(token).send().await.unwrap().status(), 200);
    let jwt = crate::support::forwarded_jwt(&api);
    let bad = "unknown-token-also-never-logged";
    assert_eq!(http.get(format!("{base}/api/x")).bearer_auth(bad).send().await.unwrap().status(), 401);
    let malformed = http.get(format!("{base}/api/x")).header("authorization", "Bearer bad@value").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    let logs = served.logs();
    assert!(logs.contains("GET /api/x route=/api status=200 cache=miss"), "{logs}");
    assert!(logs.contains("GET /api/x route=/api status=401"), "{logs}");
    assert!(logs.contains("GET /api/x route=/api status=400"), "{logs}");
    for secret in [token, bad, "bad@value", jwt.as_str(), &jwt[..20], "gateway-secret", crate::support::KEY_SECRET] {
        assert!(!logs.contains(secret), "{secret:?} appears in the logs:\n{logs}");
    }
}

/// `shroud healthcheck` (the image's HEALTHCHECK, which needs no curl): exit 0 while the listener of the
/// configuration answers `/healthz` (a wildcard listener is probed on loopback), 1 with a message naming
/// the URL when nothing answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_probes_the_configured_listener() {
    let idp = shroud_testkit::FakeAs::start();
    let api = shroud_testkit::EchoUpstream::start();
    let port = shroud_testkit::net::free_port();
    let text = served_config(&base_config(""), port, &idp.url(), &api.url());
    let served = Served::start(&text, port, "warn").await;
    let path = write_config(&text);
    let config = path.to_str().unwrap();
    let probe = |env: &[(&str, &str)]| {
        let out = shroud(&["healthcheck", "--config", config], env);
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(probe(&[]).0, Some(0), "{}", probe(&[]).1);
    let wildcard = format!("0.0.0.0:{port}");
    assert_eq!(probe(&[("SHROUD__SERVER__LISTEN", &wildcard)]).0, Some(0), "0.0.0.0 is probed on 127.0.0.1");
    drop(served);
    let (code, stderr) = probe(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&format!("http://127.0.0.1:{port}/healthz")), "{stderr}");
}

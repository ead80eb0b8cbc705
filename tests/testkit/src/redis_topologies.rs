//! Redis deployments beyond one node, made of private [`RedisServer`] processes:
//! a Redis Cluster ([`RedisCluster`], assembled with `redis-cli --cluster create`), a TLS node under a
//! private CA ([`RedisTls`]) and a Sentinel
//! watching one master ([`RedisSentinel`]).

use crate::redis_server::RedisServer;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a cluster may take to agree on its slots.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(20);

/// A Redis Cluster of masters without replicas, on 127.0.0.1.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

fn redis_cli(args: &[String]) -> Result<String, String> {
    let output = Command::new("redis-cli").args(args).output().map_err(|e| format!("cannot run redis-cli: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

impl RedisCluster {
    /// Starts `masters` cluster-enabled servers, joins them into one cluster and waits (at most 20 s)
    /// until every node reports `cluster_state:ok`. Panics with the tools' output otherwise.
    pub fn start(masters: usize) -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                RedisServer::start_configured(
                    "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 2000",
                    &[],
                )
            })
            .collect();
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())));
        args.extend(["--cluster-replicas".into(), "0".into(), "--cluster-yes".into()]);
        if let Err(output) = redis_cli(&args) {
            panic!("redis-cli --cluster create failed:\n{output}");
        }
        let cluster = RedisCluster { nodes };
        cluster.wait_ok();
        cluster
    }

    fn wait_ok(&self) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let ok = self.nodes.iter().all(|n| {
                redis_cli(&["-p".into(), n.port().to_string(), "cluster".into(), "info".into()])
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not reach cluster_state:ok in {CLUSTER_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`: every node as a seed.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The nodes (e.g. to read what each one holds).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

/// One master and one Sentinel watching it under the service name [`RedisSentinel::SERVICE`].
pub struct RedisSentinel {
    master: RedisServer,
    sentinel: RedisServer,
}

impl RedisSentinel {
    /// The service name the Sentinel knows the master by.
    pub const SERVICE: &'static str = "shroudmaster";

    /// Starts a master and a Sentinel monitoring it, and waits until the Sentinel names the master.
    pub fn start() -> RedisSentinel {
        let master = RedisServer::start();
        let config = format!(
            "sentinel monitor {} 127.0.0.1 {} 1\nsentinel down-after-milliseconds {} 2000",
            Self::SERVICE,
            master.port(),
            Self::SERVICE
        );
        let sentinel = RedisServer::start_configured(&config, &["--sentinel"]);
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        let ask = ["-p".into(), sentinel.port().to_string(), "sentinel".into(), "get-master-addr-by-name".into()];
        loop {
            let mut args: Vec<String> = ask.to_vec();
            args.push(Self::SERVICE.into());
            if redis_cli(&args).is_ok_and(|out| out.contains(&master.port().to_string())) {
                break;
            }
            assert!(Instant::now() < deadline, "the sentinel did not learn its master in {CLUSTER_TIMEOUT:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisSentinel { master, sentinel }
    }

    /// `redis+sentinel://127.0.0.1:<sentinel port>/<service>`.
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/{}", self.sentinel.port(), Self::SERVICE)
    }

    /// The master (e.g. to read what it holds).
    pub fn master(&self) -> &RedisServer {
        &self.master
    }
}

/// A Redis node that also listens with TLS, under a private certificate authority made for it.
pub struct RedisTls {
    server: RedisServer,
    tls_port: u16,
    ca_file: std::path::PathBuf,
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (apt-get install openssl): {e}"));
    assert!(output.status.success(), "openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

impl RedisTls {
    /// Makes a CA and a certificate for 127.0.0.1 with the `openssl` command, and starts Redis with a
    /// TLS port (clients are not asked for certificates).
    pub fn start() -> RedisTls {
        let dir =
            std::env::temp_dir().join(format!("shroud-redis-tls-{}-{}", std::process::id(), crate::net::free_port()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        openssl(
            &dir,
            &[
                &["req", "-x509"][..],
                &ec,
                &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=shroud test CA"],
            ]
            .concat(),
        );
        openssl(
            &dir,
            &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat(),
        );
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("extension file");
        openssl(
            &dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.pem",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        );
        let tls_port = crate::net::free_port();
        let config = format!(
            "tls-port {tls_port}\ntls-cert-file {0}/server.pem\ntls-key-file {0}/server.key\ntls-ca-cert-file {0}/ca.pem\ntls-auth-clients no",
            dir.display()
        );
        let server = RedisServer::start_configured(&config, &[]);
        RedisTls { server, tls_port, ca_file: dir.join("ca.pem") }
    }

    /// `rediss://127.0.0.1:<tls port>`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port)
    }

    /// The CA certificate (PEM) that signed the server's certificate.
    pub fn ca_file(&self) -> &std::path::Path {
        &self.ca_file
    }

    /// The node's plain-text side (e.g. to read what it holds).
    pub fn plain(&self) -> &RedisServer {
        &self.server
    }
}

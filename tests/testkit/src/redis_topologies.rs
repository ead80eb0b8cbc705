//! Redis deployments beyond one node, made of private [`RedisServer`] processes:
//! a Redis Cluster ([`RedisCluster`], assembled with `redis-cli --cluster create`) and a Sentinel
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

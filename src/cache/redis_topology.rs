//! Which Redis deployment `cache.redis_url` names, and how to reach it. The topology work itself (slot
//! maps, redirections, master discovery, reconnection) is the redis crate's; this module only reads the
//! URL forms Shroud accepts and builds the crate's clients from them:
//!
//! | form | deployment |
//! |---|---|
//! | `redis://[user:pass@]host[:port][/db]` | one node |
//! | `rediss://…` | one node over TLS |
//! | `redis+cluster://[user:pass@]host:port,host:port,…` | Redis Cluster, from seed nodes |
//! | `redis+sentinel://[user:pass@]host:port,…/service[/db]` | Redis Sentinel: the service's master |
//!
//! `rediss+cluster://` and `rediss+sentinel://` are the TLS forms. The user and password are the data
//! nodes' (Sentinels are reached without credentials). A CA file (`cache.redis_ca_file`) replaces the
//! system's trust store for TLS.

use redis::cluster::ClusterClientBuilder;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{ConnectionAddr, TlsCertificates, TlsMode};

/// A Redis deployment, ready to connect.
pub enum Topology {
    /// One node (`redis://`, `rediss://`).
    Single(redis::Client),
    /// Redis Cluster: the cluster client, plus one plain client per seed node for pub/sub (Redis Cluster
    /// forwards every PUBLISH to all nodes, so subscribing to any one of them suffices).
    Cluster {
        /// The cluster client.
        cluster: redis::cluster::ClusterClient,
        /// One client per seed node.
        seeds: Vec<redis::Client>,
    },
    /// Redis Sentinel: the client that asks the Sentinels for the service's current master.
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

/// The parts of a multi-host URL.
struct Parsed<'a> {
    tls: bool,
    kind: &'a str,
    userinfo: Option<&'a str>,
    hosts: Vec<&'a str>,
    path: &'a str,
}

fn split(url: &str) -> Result<Parsed<'_>, String> {
    let (scheme, rest) = url.split_once("://").ok_or("not a URL such as redis://127.0.0.1:6379")?;
    let (base, kind) = scheme.split_once('+').unwrap_or((scheme, ""));
    let tls = match base {
        "redis" => false,
        "rediss" => true,
        _ => return Err("scheme must be redis, rediss, redis+cluster, redis+sentinel or their rediss forms".into()),
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (userinfo, hostlist) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let hosts: Vec<&str> = hostlist.split(',').map(str::trim).filter(|h| !h.is_empty()).collect();
    if hosts.is_empty() {
        return Err("names no host".into());
    }
    Ok(Parsed { tls, kind, userinfo, hosts, path })
}

fn host_port(host: &str, default_port: u16) -> Result<(String, u16), String> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && !port.ends_with(']') => {
            (name, port.parse::<u16>().map_err(|_| format!("`{host}` has no valid port"))?)
        }
        _ => (host, default_port),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() {
        return Err(format!("`{host}` names no host"));
    }
    Ok((name.to_string(), port))
}

fn certificates(ca_pem: &Option<Vec<u8>>) -> TlsCertificates {
    TlsCertificates { client_tls: None, root_cert: ca_pem.clone() }
}

fn node_url(parsed: &Parsed<'_>, host: &str) -> String {
    let scheme = if parsed.tls { "rediss" } else { "redis" };
    match parsed.userinfo {
        Some(userinfo) => format!("{scheme}://{userinfo}@{host}"),
        None => format!("{scheme}://{host}"),
    }
}

fn single_client(url: &str, ca_pem: &Option<Vec<u8>>) -> Result<redis::Client, String> {
    let client = match ca_pem {
        Some(_) => redis::Client::build_with_tls(url, certificates(ca_pem)),
        None => redis::Client::open(url),
    };
    client.map_err(|e| format!("invalid: {e}"))
}

fn percent_decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

impl Topology {
    /// Reads `url`; `ca_pem` (PEM) replaces the system's trust store for TLS connections.
    pub fn from_url(url: &str, ca_pem: Option<Vec<u8>>) -> Result<Topology, String> {
        install_tls_provider();
        let parsed = split(url)?;
        if ca_pem.is_some() && !parsed.tls {
            return Err("a CA file needs a rediss:// URL".into());
        }
        match parsed.kind {
            "" => {
                if parsed.hosts.len() != 1 {
                    return Err("lists several hosts; use redis+cluster:// or redis+sentinel://".into());
                }
                Ok(Topology::Single(single_client(url, &ca_pem)?))
            }
            "cluster" => {
                if !parsed.path.is_empty() {
                    return Err("a cluster URL has no database path (Redis Cluster has only database 0)".into());
                }
                let nodes: Vec<String> = parsed.hosts.iter().map(|h| node_url(&parsed, h)).collect();
                let seeds = nodes.iter().map(|n| single_client(n, &ca_pem)).collect::<Result<Vec<_>, _>>()?;
                let mut builder = ClusterClientBuilder::new(nodes)
                    .connection_timeout(super::redis::OPERATION_TIMEOUT)
                    .response_timeout(super::redis::OPERATION_TIMEOUT)
                    .retries(2);
                if ca_pem.is_some() {
                    builder = builder.certs(certificates(&ca_pem));
                }
                let cluster = builder.build().map_err(|e| format!("invalid: {e}"))?;
                Ok(Topology::Cluster { cluster, seeds })
            }
            "sentinel" => Ok(Topology::Sentinel(tokio::sync::Mutex::new(sentinel_client(&parsed, &ca_pem)?))),
            other => Err(format!("unknown deployment `{other}` (use cluster or sentinel)")),
        }
    }
}

fn sentinel_client(parsed: &Parsed<'_>, ca_pem: &Option<Vec<u8>>) -> Result<SentinelClient, String> {
    let mut path = parsed.path.split('/').filter(|s| !s.is_empty());
    let service = path.next().ok_or("a sentinel URL names its service: redis+sentinel://host:26379/mymaster")?;
    let db = match path.next() {
        Some(db) => Some(db.parse::<i64>().map_err(|_| format!("`{db}` is not a database number"))?),
        None => None,
    };
    let sentinels = parsed
        .hosts
        .iter()
        .map(|h| {
            let (host, port) = host_port(h, 26379)?;
            Ok(match parsed.tls {
                true => ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None },
                false => ConnectionAddr::Tcp(host, port),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let mut builder = SentinelClientBuilder::new(sentinels, service.to_string(), SentinelServerType::Master)
        .map_err(|e| format!("invalid: {e}"))?;
    if let Some(db) = db {
        builder = builder.set_client_to_redis_db(db);
    }
    if let Some(userinfo) = parsed.userinfo {
        let (user, password) = userinfo.split_once(':').unwrap_or(("", userinfo));
        if !user.is_empty() {
            builder = builder.set_client_to_redis_username(percent_decoded(user));
        }
        builder = builder.set_client_to_redis_password(percent_decoded(password));
    }
    if parsed.tls {
        builder =
            builder.set_client_to_redis_tls_mode(TlsMode::Secure).set_client_to_sentinel_tls_mode(TlsMode::Secure);
        if ca_pem.is_some() {
            builder = builder
                .set_client_to_redis_certificates(certificates(ca_pem))
                .set_client_to_sentinel_certificates(certificates(ca_pem));
        }
    }
    builder.build().map_err(|e| format!("invalid: {e}"))
}

/// rustls (the redis crate's TLS) needs a process-wide crypto provider; ring is the one compiled in.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form() {
        assert!(matches!(Topology::from_url("redis://127.0.0.1:6379/2", None), Ok(Topology::Single(_))));
        assert!(matches!(Topology::from_url("rediss://cache.internal:6380", None), Ok(Topology::Single(_))));
        match Topology::from_url("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001, 10.0.0.3:7002", None) {
            Ok(Topology::Cluster { seeds, .. }) => assert_eq!(seeds.len(), 3),
            _ => panic!("a cluster URL gives a cluster"),
        }
        assert!(matches!(
            Topology::from_url("redis+sentinel://s1:26379,s2/mymaster/3", None),
            Ok(Topology::Sentinel(_))
        ));
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let error = |url: &str, ca: Option<Vec<u8>>| Topology::from_url(url, ca).err().expect(url);
        assert!(error("http://x", None).contains("scheme"));
        assert!(error("redis://a:1,b:2", None).contains("redis+cluster"));
        assert!(error("redis+cluster://a:1/0", None).contains("database"));
        assert!(error("redis+sentinel://a:26379", None).contains("service"));
        assert!(error("redis+sentinel://a:26379/m/x", None).contains("database number"));
        assert!(error("redis+mesh://a:1", None).contains("unknown deployment"));
        assert!(error("redis://", None).contains("no host"));
        assert!(error("redis://a:1", Some(b"pem".to_vec())).contains("rediss"));
    }

    #[test]
    fn splits_hosts_and_ports() {
        assert_eq!(host_port("10.0.0.1:7000", 6379).unwrap(), ("10.0.0.1".into(), 7000));
        assert_eq!(host_port("cache", 26379).unwrap(), ("cache".into(), 26379));
        assert_eq!(host_port("[::1]:7000", 6379).unwrap(), ("::1".into(), 7000));
        assert!(host_port("a:port", 1).is_err());
    }
}

//! A private `redis-server` process for one test.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::net::free_port;

/// How long to wait for a freshly started server to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` child process listening on 127.0.0.1, with persistence disabled and
/// its working directory in a private temporary directory.
///
/// Dropping the value kills the process and removes the directory.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// Lines of the `redis.conf` the server starts from (`port`, `dir`, … are added).
    config: String,
    /// Arguments after the configuration file (e.g. `--sentinel`).
    args: Vec<String>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port and waits (at most 10 s) until it answers
    /// `PING`. Panics with a clear message if `redis-server` is not installed or does not
    /// come up.
    pub fn start() -> RedisServer {
        RedisServer::start_configured("", &[])
    }

    /// Starts `redis-server` with extra `redis.conf` lines (`config`, e.g. `cluster-enabled yes`) and
    /// extra arguments (`args`, e.g. `--sentinel`), on a free port, and waits until it answers `PING`.
    pub fn start_configured(config: &str, args: &[&str]) -> RedisServer {
        let mut last_err = String::new();
        // A port found free can be taken before redis binds it: try a few.
        for _ in 0..3 {
            let mut server = RedisServer {
                port: free_port(),
                dir: private_dir(),
                child: None,
                config: config.to_string(),
                args: args.iter().map(|a| a.to_string()).collect(),
            };
            match server.spawn_and_wait() {
                Ok(()) => return server,
                // Dropping `server` kills the process and removes its directory.
                Err(e) => last_err = e,
            }
        }
        panic!("redis-server did not start: {last_err}");
    }

    /// The URL to connect to, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The private directory the server runs in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and starts it again on the same port (all data is lost), then
    /// waits until it answers `PING`. Panics if it does not come back.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(e) = self.spawn_and_wait() {
            panic!("redis-server did not restart on port {}: {e}", self.port);
        }
    }

    /// Kills the server (SIGKILL) and waits for the process to end. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log =
            File::create(self.log_path()).map_err(|e| format!("cannot create {}: {e}", self.log_path().display()))?;
        let log2 = log.try_clone().map_err(|e| format!("cannot clone log file handle: {e}"))?;
        let conf = self.dir.join("redis.conf");
        // Written once: a sentinel rewrites its file, and a restart must keep what it learned.
        if !conf.exists() {
            let text = format!(
                "port {}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n{}\n",
                self.port,
                self.dir.display(),
                self.config
            );
            std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        }
        let child = Command::new("redis-server")
            .arg(&conf)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                panic!("`redis-server` is not on PATH; install redis-server: apt-get install redis-server")
            }
            Err(e) => return Err(format!("cannot run redis-server: {e}")),
        };
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("redis-server exited with {status}; log:\n{}", read_tail(&self.log_path())));
                }
            }
            if ping(addr) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no PONG from 127.0.0.1:{} within {READY_TIMEOUT:?}; log:\n{}",
                    self.port,
                    read_tail(&self.log_path())
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends a RESP `PING` and reports whether `+PONG` came back.
fn ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(250)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 7 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.contains(&b'\n') {
            break;
        }
    }
    got.starts_with(b"+PONG\r\n")
}

fn read_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn private_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "shroud-redis-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

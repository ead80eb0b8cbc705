//! The HTTP server: workers, shared state, the operational endpoints and the proxy pipeline.

use crate::config::Config;
use crate::gateway::{BuildError, Gateway};
use crate::token_handler::agent;
use crate::{admin, ops, pipeline};
use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Binds the listener and builds the server (not yet running).
fn build(gateway: Arc<Gateway>) -> std::io::Result<(Server, SocketAddr)> {
    let listen = gateway.config.server.listen.clone();
    let workers = match gateway.config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let agent_path = gateway.token_handler.as_ref().map(|th| th.config.base_path.clone());
    let serve_openapi = gateway.config.server.openapi;
    let serve_metrics = gateway.config.server.public_metrics;
    let limits = gateway.config.server.clone();
    let hsts = gateway.server_tls.is_some();
    let tls = gateway.server_tls.clone();
    let data = web::Data::from(gateway);
    let server = HttpServer::new(move || {
        let upstream = pipeline::forward::upstream_client(&data.outbound_tls);
        let mut app = App::new()
            .app_data(data.clone())
            .app_data(web::Data::new(upstream))
            .configure(ops::configure(serve_metrics, serve_openapi));
        if let Some(base_path) = &agent_path {
            app = app.configure(agent::configure(base_path, hsts));
        }
        app.default_service(web::to(pipeline::handle))
    })
    .workers(workers)
    .client_request_timeout(Duration::from_millis(limits.client_request_timeout_ms))
    .keep_alive(Duration::from_secs(limits.keep_alive_seconds))
    .max_connections(limits.max_connections)
    .disable_signals()
    .shutdown_timeout(5);
    let server = match tls {
        Some(tls) => server.bind_openssl(&listen, tls.acceptor().map_err(std::io::Error::other)?)?,
        None => server.bind(&listen)?,
    };
    let addr = server.addrs().first().copied().ok_or_else(|| std::io::Error::other("no listening address"))?;
    Ok((server.run(), addr))
}

/// Binds the admin listener when `[admin] listen` is set: one worker, its own port, never the proxy's.
fn build_admin(gateway: Arc<Gateway>) -> std::io::Result<Option<(Server, SocketAddr)>> {
    let listen = gateway.config.admin.listen.clone();
    if listen.is_empty() {
        return Ok(None);
    }
    let data = web::Data::from(gateway);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(admin::configure))
        .workers(1)
        .disable_signals()
        .shutdown_timeout(5)
        .bind(&listen)?;
    let addr = server.addrs().first().copied().ok_or_else(|| std::io::Error::other("no admin address"))?;
    Ok(Some((server.run(), addr)))
}

/// The proxy and, if configured, the admin API, bound and ready to run.
struct Servers {
    proxy: (Server, SocketAddr),
    admin: Option<(Server, SocketAddr)>,
}

impl Servers {
    fn bind(gateway: &Arc<Gateway>) -> std::io::Result<Servers> {
        Ok(Servers { proxy: build(gateway.clone())?, admin: build_admin(gateway.clone())? })
    }

    fn handles(&self) -> Vec<ServerHandle> {
        std::iter::once(&self.proxy).chain(self.admin.as_ref()).map(|(s, _)| s.handle()).collect()
    }

    /// Runs both until both stop.
    async fn run(self) -> std::io::Result<()> {
        let admin = async move {
            match self.admin {
                Some((server, _)) => server.await,
                None => Ok(()),
            }
        };
        futures_util::future::try_join(self.proxy.0, admin).await.map(|_| ())
    }
}

/// How often the issuer's JWKS is read again without a reason, so that withdrawn keys are noticed.
const JWKS_REFRESH_PERIOD: Duration = Duration::from_secs(300);

/// Keeps the issuer's keys fresh and purges the cache when a key is withdrawn.
fn watch_issuer_keys(gateway: Arc<Gateway>) {
    if !gateway.issuer.needs_keys() {
        return;
    }
    let mut retired = gateway.issuer.retired_keys();
    let purger = gateway.clone();
    actix_web::rt::spawn(async move {
        while retired.changed().await.is_ok() {
            let kids = retired.borrow_and_update().clone();
            purger.cache.retire_keys(&kids).await;
        }
    });
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(JWKS_REFRESH_PERIOD).await;
            if let Err(e) = gateway.issuer.refresh_keys().await {
                log::warn!("periodic JWKS refresh failed: {e}");
            }
        }
    });
}

/// Background work: discovery until it succeeds (so `/readyz` turns ready without traffic), the
/// issuer's keys, idle rate-limit keys, and the invalidation subscription when the cache is shared
/// through Redis.
fn discover_in_background(gateway: Arc<Gateway>) {
    if let Some(redis) = gateway.cache.redis() {
        actix_web::rt::spawn(crate::cache::invalidation::listen(redis.clone(), gateway.clone()));
    }
    watch_issuer_keys(gateway.clone());
    let limits = gateway.clone();
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(Duration::from_secs(60)).await;
            limits.routes.forget_idle_limits();
            if let Some(th) = &limits.token_handler {
                th.agent_limit.iter().chain(th.agent_limit_per_ip.iter()).for_each(|l| l.forget_idle());
            }
        }
    });
    actix_web::rt::spawn(async move {
        let mut wait = Duration::from_millis(250);
        loop {
            match gateway.issuer.metadata().await {
                Ok(_) => return,
                Err(e) => log::warn!("waiting for the authorization server: {e}"),
            }
            actix_web::rt::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(10));
        }
    });
}

/// Runs Shroud until the process is stopped (Ctrl-C or SIGTERM).
pub fn serve(config: Config) -> Result<(), BuildError> {
    let gateway = Arc::new(Gateway::build(config)?);
    actix_web::rt::System::new()
        .block_on(async move {
            let servers = Servers::bind(&gateway)?;
            let scheme = if gateway.server_tls.is_some() { "https" } else { "http" };
            log::info!("shroud listening on {scheme}://{}", servers.proxy.1);
            if let Some((_, addr)) = &servers.admin {
                log::info!("admin API and /metrics listening on http://{addr}");
            }
            if gateway.config.server.public_metrics {
                log::warn!("/metrics is served on the main listener, to anyone (server.public_metrics = true)");
            } else if servers.admin.is_none() {
                log::warn!("/metrics is not served: set admin.listen (it serves /metrics) or server.public_metrics");
            }
            discover_in_background(gateway);
            let handles = servers.handles();
            actix_web::rt::spawn(async move {
                wait_for_shutdown_signal().await;
                log::info!("shutting down");
                for handle in handles {
                    handle.stop(true).await;
                }
            });
            servers.run().await
        })
        .map_err(|e| BuildError::new("server.listen", e.to_string()))
}

async fn wait_for_shutdown_signal() {
    let mut term = actix_web::rt::signal::unix::signal(actix_web::rt::signal::unix::SignalKind::terminate()).ok();
    let terminate = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = actix_web::rt::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// A server running in a background thread (tests and embedding).
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The admin listener's address, when configured.
    pub admin_addr: Option<SocketAddr>,
    /// The shared state (for inspection).
    pub gateway: Arc<Gateway>,
    /// Whether the listener serves HTTPS.
    pub tls: bool,
    handles: Vec<ServerHandle>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// `http://addr`, or `https://addr` when the listener serves HTTPS.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Drop may run inside an async runtime, which must not be blocked: wait from a plain thread.
        let handles = self.handles.clone();
        let stopper = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                for handle in handles {
                    runtime.block_on(handle.stop(false));
                }
            }
        });
        let _ = stopper.join();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts Shroud in a background thread and returns once it is listening.
pub fn spawn(config: Config) -> Result<Running, BuildError> {
    let gateway = Arc::new(Gateway::build(config)?);
    let (sender, receiver) = std::sync::mpsc::channel();
    let shared = gateway.clone();
    let thread = std::thread::spawn(move || {
        let system = actix_web::rt::System::new();
        system.block_on(async move {
            match Servers::bind(&shared) {
                Ok(servers) => {
                    discover_in_background(shared);
                    let addrs = (servers.proxy.1, servers.admin.as_ref().map(|(_, a)| *a));
                    let _ = sender.send(Ok((servers.handles(), addrs)));
                    let _ = servers.run().await;
                }
                Err(e) => {
                    let _ = sender.send(Err(e));
                }
            }
        });
    });
    let (handles, (addr, admin_addr)) = receiver
        .recv()
        .map_err(|_| BuildError::new("server", "server thread ended early"))?
        .map_err(|e| BuildError::new("server.listen", e.to_string()))?;
    let tls = gateway.server_tls.is_some();
    Ok(Running { addr, admin_addr, gateway, tls, handles, thread: Some(thread) })
}

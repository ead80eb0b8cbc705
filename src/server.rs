//! The HTTP server: workers, shared state, the operational endpoints and the proxy pipeline.

use crate::config::Config;
use crate::gateway::{BuildError, Gateway};
use crate::token_handler::agent;
use crate::{ops, pipeline};
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
    let data = web::Data::from(gateway);
    let server = HttpServer::new(move || {
        let mut app = App::new()
            .app_data(data.clone())
            .app_data(web::Data::new(pipeline::forward::upstream_client()))
            .configure(ops::configure(serve_openapi));
        if let Some(base_path) = &agent_path {
            app = app.configure(agent::configure(base_path));
        }
        app.default_service(web::to(pipeline::handle))
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(5)
    .bind(&listen)?;
    let addr = server.addrs().first().copied().ok_or_else(|| std::io::Error::other("no listening address"))?;
    Ok((server.run(), addr))
}

/// Background work: discovery until it succeeds (so `/readyz` turns ready without traffic), and the
/// purge subscription when sessions are shared through Redis.
fn discover_in_background(gateway: Arc<Gateway>) {
    if let Some(th) = &gateway.token_handler {
        actix_web::rt::spawn(th.sessions.clone().listen_for_purges(gateway.cache.clone()));
    }
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
            let (server, addr) = build(gateway.clone())?;
            log::info!("shroud listening on http://{addr}");
            discover_in_background(gateway);
            let handle = server.handle();
            actix_web::rt::spawn(async move {
                wait_for_shutdown_signal().await;
                log::info!("shutting down");
                handle.stop(true).await;
            });
            server.await
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
    /// The shared state (for inspection).
    pub gateway: Arc<Gateway>,
    handle: ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Drop may run inside an async runtime, which must not be blocked: wait from a plain thread.
        let handle = self.handle.clone();
        let stopper = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                runtime.block_on(handle.stop(false));
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
            match build(shared.clone()) {
                Ok((server, addr)) => {
                    discover_in_background(shared);
                    let _ = sender.send(Ok((server.handle(), addr)));
                    let _ = server.await;
                }
                Err(e) => {
                    let _ = sender.send(Err(e));
                }
            }
        });
    });
    let (handle, addr) = receiver
        .recv()
        .map_err(|_| BuildError::new("server", "server thread ended early"))?
        .map_err(|e| BuildError::new("server.listen", e.to_string()))?;
    Ok(Running { addr, gateway, handle, thread: Some(thread) })
}

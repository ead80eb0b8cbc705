//! The gateway's shared state, built once from the configuration before the server starts and shared
//! by every worker (caches, in-flight maps and keys must not be per-worker).

use crate::cache::invalidation::{Invalidation, Subscriber};
use crate::cache::redis::RedisTier;
use crate::cache::seal::Sealer;
use crate::cache::GrantCache;
use crate::client_auth::ClientAuth;
use crate::config::{validate::hex_key, CacheBackend, Config, ResponseMode};
use crate::exchange::Exchanger;
use crate::introspection::client::IntrospectionClient;
use crate::issuer::Issuer;
use crate::jose::mint::PhantomSigner;
use crate::metrics::Metrics;
use crate::pipeline::route::RouteTable;
use crate::pipeline::throttle::{LimitSource, TrustedProxies};
use crate::token_handler::TokenHandler;
use crate::transport::{OutboundTls, ServerTls};
use std::sync::Arc;
use std::time::Duration;

/// Everything the request path needs, shared by all workers.
pub struct Gateway {
    /// The configuration it was built from.
    pub config: Config,
    /// The routes.
    pub routes: RouteTable,
    /// The authorization server's metadata and keys.
    pub issuer: Arc<Issuer>,
    /// Opaque token → grant.
    pub exchanger: Exchanger,
    /// The exchange cache.
    pub cache: Arc<GrantCache>,
    /// The token handler (OAuth Agent and Proxy), when enabled.
    pub token_handler: Option<TokenHandler>,
    /// Shroud's own signing key (absent in `jwt` mode).
    pub signer: Option<Arc<PhantomSigner>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The client for every Open Policy Agent call, shared by all routes and workers.
    pub opa_http: reqwest::Client,
    /// Peers trusted to name the client in `X-Forwarded-For` (for per-IP rate limits).
    pub trusted_proxies: TrustedProxies,
    /// The listener's certificate when it serves HTTPS (`[server.tls]`).
    pub server_tls: Option<ServerTls>,
    /// How outbound connections verify their peers (`[tls_client]`).
    pub outbound_tls: OutboundTls,
}

/// An error building the gateway, naming the configuration key at fault.
pub type BuildError = crate::config::ConfigError;

/// Builds an HTTP client for calls to the authorization server, presenting `identity` on its TLS
/// connections when the client authenticates with a certificate.
fn as_client(
    timeout: Duration,
    tls: &OutboundTls,
    identity: Option<&reqwest::Identity>,
    key: &str,
) -> Result<reqwest::Client, BuildError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("shroud/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60));
    builder = tls.reqwest(builder);
    if let Some(identity) = identity {
        builder = builder.identity(identity.clone());
    }
    builder.build().map_err(|e| BuildError::new(key, format!("cannot build HTTP client: {e}")))
}

/// Everything the configuration names on disk, read and checked (for `shroud check-config` and start):
/// the phantom signing key, the listener's certificate, the outbound CA bundle and the clients' keys and
/// certificates.
pub struct Material {
    /// The phantom signer (absent in `jwt` mode).
    pub signer: Option<Arc<PhantomSigner>>,
    /// The listener's certificate and key.
    pub server_tls: Option<ServerTls>,
    /// Outbound verification.
    pub outbound_tls: OutboundTls,
    /// The introspecting client's credentials.
    pub introspection_auth: ClientAuth,
    /// The SPA client's credentials (token handler enabled).
    pub token_handler_auth: Option<ClientAuth>,
}

impl Material {
    /// Reads every file the configuration names; errors name the key.
    pub fn load(config: &Config) -> Result<Material, BuildError> {
        Ok(Material {
            signer: load_signer(config)?,
            server_tls: ServerTls::load(&config.server.tls)?,
            outbound_tls: OutboundTls::load(&config.tls_client)?,
            introspection_auth: ClientAuth::load(&config.introspection.client_auth())?,
            token_handler_auth: match config.token_handler.enabled {
                true => Some(ClientAuth::load(&config.token_handler.client_auth())?),
                false => None,
            },
        })
    }
}

/// Loads the phantom signing key when the mode mints JWTs.
pub fn load_signer(config: &Config) -> Result<Option<Arc<PhantomSigner>>, BuildError> {
    if config.introspection.response == ResponseMode::Jwt {
        return Ok(None);
    }
    PhantomSigner::from_file(&config.phantom.signing_key_file)
        .map(|s| Some(Arc::new(s)))
        .map_err(|e| BuildError::new("phantom.signing_key_file", e))
}

/// The Redis tier `[cache]` names, with its CA file read.
fn redis_tier(config: &Config) -> Result<RedisTier, BuildError> {
    let ca_file = &config.cache.redis_ca_file;
    let ca_pem = match ca_file.is_empty() {
        true => None,
        false => Some(
            std::fs::read(ca_file).map_err(|e| BuildError::new("cache.redis_ca_file", format!("{ca_file}: {e}")))?,
        ),
    };
    RedisTier::new(&config.cache.redis_url, ca_pem).map_err(|e| BuildError::new("cache.redis_url", e))
}

impl Gateway {
    /// Builds the runtime state from a validated configuration. Touches the file system (signing key)
    /// but not the network: the authorization server and Redis are reached lazily.
    pub fn build(config: Config) -> Result<Gateway, BuildError> {
        let Material { signer, server_tls, outbound_tls, introspection_auth, token_handler_auth } =
            Material::load(&config)?;
        if outbound_tls.insecure() {
            log::warn!("{}", crate::transport::INSECURE_WARNING);
        }
        let metrics = Arc::new(Metrics::new());
        let timeout = Duration::from_millis(config.introspection.timeout_ms);
        let http = as_client(timeout, &outbound_tls, None, "issuer.url")?;
        let mode = config.introspection.response;
        let needs_keys = mode != ResponseMode::Json || config.token_handler.enabled;
        let issuer = Arc::new(Issuer::new(http.clone(), config.issuer.clone(), needs_keys));
        let sealer = if config.cache.key_secret.is_empty() {
            Sealer::random()
        } else {
            Sealer::new(hex_key("cache.key_secret", config.cache.key_secret.expose())?)
        };
        let redis = match config.cache.backend {
            CacheBackend::Redis => Some(Arc::new(redis_tier(&config)?)),
            CacheBackend::Memory => None,
        };
        let fill_timeout = Duration::from_millis(config.introspection.timeout_ms + 500);
        let cache =
            Arc::new(GrantCache::new(&config.cache, sealer.clone(), redis.clone(), fill_timeout, metrics.clone()));
        let limits = LimitSource {
            defaults: &config.rate_limit,
            shared: redis.as_ref().map(|redis| (redis.clone(), sealer.clone())),
        };
        let routes = RouteTable::new(&config.routes, &metrics, &limits);
        let trusted_proxies = TrustedProxies::new(&config.rate_limit.trusted_proxies);
        let token_handler = match token_handler_auth {
            Some(auth) => {
                let th_http = match auth.identity() {
                    Some(identity) => {
                        as_client(timeout, &outbound_tls, Some(identity), "token_handler.client_cert_file")?
                    }
                    None => http.clone(),
                };
                Some(TokenHandler::build(&config, th_http, auth, issuer.clone(), sealer, redis)?)
            }
            None => None,
        };
        let introspection_http = match introspection_auth.identity() {
            Some(identity) => as_client(timeout, &outbound_tls, Some(identity), "introspection.client_cert_file")?,
            None => http,
        };
        let client = IntrospectionClient::new(introspection_http, introspection_auth, mode);
        let exchanger = Exchanger::new(&config, issuer.clone(), client, signer.clone(), metrics.clone());
        let opa_http = crate::pipeline::opa::http_client(&outbound_tls)
            .map_err(|e| BuildError::new("routes.opa", format!("cannot build HTTP client: {e}")))?;
        Ok(Gateway {
            config,
            routes,
            issuer,
            exchanger,
            cache,
            token_handler,
            signer,
            metrics,
            opa_http,
            trusted_proxies,
            server_tls,
            outbound_tls,
        })
    }
}

/// Announcements from other instances (and this one) reach the caches here.
impl Subscriber for Arc<Gateway> {
    async fn subscribed(&self, resumed: bool) {
        self.cache.sync_generation().await;
        if resumed {
            log::info!("invalidation subscription restored; emptying the in-process tier in case of missed purges");
            self.cache.forget_all_local();
        }
    }

    async fn apply(&self, message: Invalidation) {
        match message {
            Invalidation::Forget(keys) => self.cache.forget_local(&keys).await,
            Invalidation::Deny(keys) => {
                if let Some(th) = &self.token_handler {
                    th.sessions.note_denied(&keys);
                }
                self.cache.forget_local(&keys).await;
            }
            Invalidation::All { generation } => self.cache.enter_generation(generation),
        }
    }
}

//! The `shroud` command: `serve`, `check-config`, `keygen`, `healthcheck`.

use clap::{Parser, Subcommand};
use shroud::config::{self, Config};
use std::path::PathBuf;
use std::process::ExitCode;

/// Shroud: no usable token reaches a browser, no opaque token reaches an internal API.
#[derive(Parser)]
#[command(name = "shroud", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Configuration file (default: $SHROUD_CONFIG, else config/shroud.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate the configuration and print it with every secret redacted.
    CheckConfig {
        /// Configuration file (default: $SHROUD_CONFIG, else config/shroud.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Probe a running Shroud: exit 0 when the configured listener answers `GET /healthz` with 200 (on
    /// loopback for a wildcard address), 1 otherwise. For container health checks without curl.
    Healthcheck {
        /// Configuration file (default: $SHROUD_CONFIG, else config/shroud.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a fresh random 32-byte key as 64 hex characters (for cache.key_secret and cookie keys),
    /// or with --phantom-key a PKCS#8 PEM signing key for phantom.signing_key_file.
    Keygen {
        /// Print a signing key of this kind instead: es256, rs256 or eddsa.
        #[arg(long, value_name = "KIND")]
        phantom_key: Option<String>,
    },
}

fn load(flag: Option<PathBuf>) -> Result<Config, config::ConfigError> {
    config::load(&config::resolve_path(flag))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    disable_transparent_huge_pages();
    match Cli::parse().command {
        Command::Serve { config } => match load(config).and_then(shroud::server::serve) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("shroud: {e}");
                ExitCode::from(2)
            }
        },
        Command::CheckConfig { config } => {
            match load(config).and_then(|c| shroud::gateway::Material::load(&c).map(|_| c)) {
                Ok(c) => {
                    print!("{}", c.redacted_toml());
                    eprintln!("configuration OK");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("shroud: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Healthcheck { config } => {
            let probed = load(config)
                .map_err(|e| e.to_string())
                .and_then(|c| shroud::health_probe::healthz_url(&c).map_err(|e| e.to_string()))
                .and_then(|url| shroud::health_probe::probe(&url).map_err(|e| e.to_string()));
            match probed {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("shroud: unhealthy: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keygen { phantom_key: None } => {
            let mut key = [0u8; 32];
            match openssl::rand::rand_bytes(&mut key) {
                Ok(()) => {
                    println!("{}", hex::encode(key));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("shroud: no randomness available: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keygen { phantom_key: Some(kind) } => match shroud::jose::mint::generate_pem(&kind) {
            Ok(pem) => {
                print!("{pem}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("shroud: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// Opts the process out of transparent huge pages (`PR_SET_THP_DISABLE`). mimalloc asks for them on its
/// arenas (`madvise(MADV_HUGEPAGE)`), and then every first touch of a 2 MiB region commits all of it and
/// freed memory stays committed: in the soak test, RSS sat flat for minutes and then jumped 2–10 MB at odd
/// moments, in whole huge pages, and never came back down. With 4 KiB pages RSS follows the live heap.
/// Best effort: a kernel that refuses only costs that predictability.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches no memory of ours.
        let status = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if status != 0 {
            log::debug!("transparent huge pages stay enabled: {}", std::io::Error::last_os_error());
        }
    }
}

/// mimalloc: the request path makes many small, short-lived allocations (header maps, buffers).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

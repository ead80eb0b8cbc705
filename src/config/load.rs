//! Loading: the TOML file, then `SHROUD__<SECTION>__<KEY>` environment overrides of scalar keys.

use super::{Config, ConfigError};
use std::path::{Path, PathBuf};

/// The default configuration path, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/shroud.toml";

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file named by `--config` or `$SHROUD_CONFIG`: it must exist.
    Explicit(PathBuf),
    /// The default path: when it does not exist Shroud runs on its embedded defaults.
    Default(PathBuf),
}

/// Chooses the configuration path: `--config`, else `$SHROUD_CONFIG`, else `config/shroud.toml`.
pub fn resolve_path(flag: Option<PathBuf>) -> ConfigSource {
    if let Some(path) = flag {
        return ConfigSource::Explicit(path);
    }
    match std::env::var_os("SHROUD_CONFIG") {
        Some(path) if !path.is_empty() => ConfigSource::Explicit(PathBuf::from(path)),
        _ => ConfigSource::Default(PathBuf::from(DEFAULT_PATH)),
    }
}

/// Loads, overrides from the environment and validates the configuration.
pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
    let mut builder = config::Config::builder();
    match source {
        ConfigSource::Explicit(path) => {
            if !path.is_file() {
                return Err(ConfigError::new("--config", format!("cannot read {}", path.display())));
            }
            builder = builder.add_source(file_source(path));
        }
        ConfigSource::Default(path) => {
            if path.is_file() {
                builder = builder.add_source(file_source(path));
            } else {
                log::warn!("no configuration at {}: running on embedded defaults", path.display());
            }
        }
    }
    let built = builder
        .add_source(config::Environment::with_prefix("SHROUD").prefix_separator("__").separator("__").try_parsing(true))
        .build()
        .map_err(ConfigError::from_source)?;
    let config: Config = built.try_deserialize().map_err(ConfigError::from_source)?;
    config.validate()?;
    Ok(config)
}

fn file_source(path: &Path) -> config::File<config::FileSourceFile, config::FileFormat> {
    config::File::from(path).format(config::FileFormat::Toml).required(true)
}

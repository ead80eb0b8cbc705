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
    builder = builder.add_source(
        config::Environment::with_prefix("SHROUD").prefix_separator("__").separator("__").try_parsing(true),
    );
    finish(builder)
}

/// Reads and validates a configuration from TOML text alone, without environment overrides: the same
/// parsing, checks and error messages as a configuration file gets from [`load`] (used by the fuzz target).
pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
    finish(config::Config::builder().add_source(config::File::from_str(text, config::FileFormat::Toml)))
}

/// Builds the sources, deserializes them strictly and validates the result.
fn finish(builder: config::ConfigBuilder<config::builder::DefaultState>) -> Result<Config, ConfigError> {
    let built = builder.build().map_err(ConfigError::from_source)?;
    let config: Config = built.try_deserialize().map_err(ConfigError::from_source)?;
    config.validate()?;
    Ok(config)
}

fn file_source(path: &Path) -> config::File<config::FileSourceFile, config::FileFormat> {
    config::File::from(path).format(config::FileFormat::Toml).required(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_text_is_read_like_a_file() {
        let text = "[introspection]\nclient_secret = \"s\"\n[[routes]]\npath_prefix = \"/api\"\nupstream = \"http://127.0.0.1:7001\"\n";
        let config = from_toml_str(text).unwrap();
        assert_eq!(config.routes[0].path_prefix, "/api");
        let unknown = from_toml_str("[cache]\nkey_secrett = \"x\"\n").unwrap_err();
        assert!(unknown.to_string().contains("key_secrett"), "{unknown}");
        assert!(from_toml_str("[server\n").is_err(), "malformed TOML");
    }
}

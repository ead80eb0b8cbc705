//! Configuration loading from TOML text (`shroud::config::from_toml_str`): arbitrary files never panic,
//! and every error names a key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match shroud::config::from_toml_str(text) {
        Ok(config) => {
            // What check-config prints must be producible for any accepted configuration.
            let _ = config.redacted_toml();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});

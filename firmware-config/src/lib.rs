//! natbox configuration: the schema (`schema`), its validation (`validate`), and the
//! TOML text form people write.
//!
//! The appliance and the host CLI share this crate, so a config the CLI accepts is
//! exactly a config the box accepts.

pub mod schema;
pub mod validate;

pub use schema::*;
pub use validate::{validate, ValidationError};

/// Why a TOML text could not become a valid `Config`.
#[derive(Debug)]
pub enum ConfigError {
    /// The text is not valid TOML or does not match the schema.
    Syntax(String),
    /// The text parsed but breaks one or more rules.
    Invalid(Vec<ValidationError>),
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Syntax(msg) => write!(f, "{msg}"),
            ConfigError::Invalid(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Parses and validates a TOML configuration.
pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
    let config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
    validate(&config).map_err(ConfigError::Invalid)?;
    Ok(config)
}

/// Renders a configuration as TOML.
pub fn to_toml(config: &Config) -> String {
    toml::to_string_pretty(config).expect("every Config is representable as TOML")
}

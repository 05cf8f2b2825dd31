//! natbox configuration: the schema (`schema`), its validation (`validate`), the TOML
//! text form people write, and the metadata disk the box reads at boot (`disk`).
//!
//! The appliance and the host CLI (`natbox-config`) share this crate, so a config the
//! CLI accepts is exactly a config the box accepts.
//!
//! Contract of the text form: [`from_toml_named`] returns a `Config` only when the text
//! is TOML, fits the schema, and breaks no rule of [`validate`]; otherwise every problem
//! comes back as a [`Diagnostic`] that names the file, the line (when the problem has a
//! place in the text), the field and the fix. [`to_toml`] renders any `Config` as text
//! that [`from_toml`] reads back to an equal `Config`.
//!
//! Besides the metadata disk, the box reads its configuration from a cloud's own
//! volumes (`sources`: cloud-init NoCloud, OpenStack config drive); [`digest`] names
//! the configuration in force whichever source it came from.

mod diagnostic;
pub mod disk;
pub mod flow_log;
pub mod forward;
pub mod host_limits;
mod layered;
mod locate;
pub mod policy;
pub mod port_block;
pub mod schema;
pub mod sources;
pub mod validate;

pub use diagnostic::Diagnostic;
pub use schema::*;
pub use validate::{validate, ValidationError};

/// Why a TOML text could not become a valid `Config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The text is not valid TOML or does not match the schema.
    Syntax(Diagnostic),
    /// The text parsed but breaks one or more rules; all of them are listed.
    Invalid(Vec<Diagnostic>),
}

impl ConfigError {
    /// Every problem, one per entry.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Syntax(d) => std::slice::from_ref(d),
            ConfigError::Invalid(ds) => ds,
        }
    }
}

impl std::fmt::Display for ConfigError {
    /// One line per problem.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, d) in self.diagnostics().iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Parses and validates a TOML configuration; errors name the source `config`.
pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
    from_toml_named("config", text)
}

/// Parses and validates a TOML configuration read from `source` (a file name, used in
/// every error message).
pub fn from_toml_named(source: &str, text: &str) -> Result<Config, ConfigError> {
    let locator = match locate::Locator::new(text) {
        Ok(locator) => locator,
        Err(err) => return Err(ConfigError::Syntax(diagnostic::syntax(source, text, &err))),
    };
    let config: Config = toml::from_str(text)
        .map_err(|e| ConfigError::Syntax(diagnostic::schema(source, text, &locator, &e)))?;
    validate(&config).map_err(|errors| {
        ConfigError::Invalid(
            errors
                .iter()
                .map(|e| diagnostic::rule(source, &locator, e))
                .collect(),
        )
    })?;
    Ok(config)
}

/// The SHA-256 of a configuration's TOML rendering ([`to_toml`]), in hex: equal
/// configurations have equal digests, whichever source or encoding they came from.
pub fn digest(config: &Config) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(to_toml(config).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Renders a configuration as TOML.
pub fn to_toml(config: &Config) -> String {
    toml::to_string_pretty(config).expect("every Config is representable as TOML")
}

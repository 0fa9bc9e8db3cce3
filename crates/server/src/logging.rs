//! Structured logs with `tracing`: a level or `EnvFilter` directive, text or JSON lines on
//! standard error.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Errors while setting up logging.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log level or filter {directive:?}: {source}")]
    Filter { directive: String, source: tracing_subscriber::filter::ParseError },
    #[error("a logger is already installed")]
    AlreadyInstalled,
}

/// The filter in force: `--log-level` if given, else `RUST_LOG` if set, else the config's.
pub fn directive(cli: Option<&str>, config: &str) -> String {
    cli.map(str::to_owned)
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| config.to_owned())
}

/// Installs the global subscriber.
pub fn init(directive: &str, format: LogFormat) -> Result<(), LogError> {
    let filter = EnvFilter::builder()
        .parse(directive)
        .map_err(|source| LogError::Filter { directive: directive.to_owned(), source })?;
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|_| LogError::AlreadyInstalled)
}

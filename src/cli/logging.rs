//! Logging on stderr: tracing in the `--log-format` asked for, filtered by
//! `PALABRE_LOG` or else at the level the command calls for.

use super::args::LogFormat;

/// Installs the global subscriber; `default_level` applies when `PALABRE_LOG`
/// is unset or unreadable.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PALABRE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

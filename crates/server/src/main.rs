//! The `sambung` binary: parses the command line and runs the server library.
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::Parser as _;
use sambung_server::cli::{Cli, Command, ConfigCommand};
use sambung_server::config::{Config, DEFAULT_CONFIG};
use sambung_server::logging;

/// mimalloc instead of glibc's malloc: allocation was a seventh of the CPU a registration took
/// (most of it in malloc, free and their arena bookkeeping), and glibc's per-thread arenas kept
/// memory that freed calls had used (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = Config::load(args.config.as_deref())?;
            logging::init(&logging::directive(args.log_level.as_deref(), &config.log.level), config.log.format)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                // Before anything is bound: a signal that comes once the server answers must
                // find the handlers in place.
                let signal = sambung_server::shutdown_signal();
                sambung_server::serve(config, signal).await
            })?;
        }
        Command::Config(ConfigCommand::PrintDefault) => print!("{DEFAULT_CONFIG}"),
        Command::Config(ConfigCommand::Check { file }) => {
            Config::load(Some(&file))?;
            println!("{}: valid", file.display());
        }
        Command::User(args) => {
            if let Err(e) = sambung_server::cli::user::run(args) {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
        Command::Settings(args) => {
            if let Err(e) = sambung_server::cli::settings::run(args) {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
        Command::Voicemail(args) => {
            if let Err(e) = sambung_server::cli::voicemail::run(args) {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
        Command::Ban(args) => {
            if let Err(e) = sambung_server::cli::ban::run(args) {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
        Command::Number(args) => {
            if let Err(e) = sambung_server::cli::numbers::run(args) {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
        Command::Trunk(args) => {
            if let Err(e) = sambung_server::cli::numbers::run_trunks(args) {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
    }
    Ok(())
}

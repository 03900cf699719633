//! Command line: parse arguments, load the configuration, start the runtime
//! and the server, and turn every outcome into an exit code.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, ConfigErrors};
use crate::server;
use crate::shared::Proxy;

/// cachalot: an HTTP forward proxy with a shared RFC 9111 cache.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Configuration file [default: ./config.toml when present, else built-in defaults]
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding server.listen
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Folder of the disk cache, overriding cache.dir
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a configuration file and print a one-line summary
    CheckConfig {
        /// File to check [default: --config, else ./config.toml, else built-in defaults]
        path: Option<PathBuf>,
    },
    /// Work on the disk cache of a stopped proxy
    #[command(subcommand)]
    Cache(crate::server::cache_tool::CacheCommand),
    /// Hit ratios and traffic breakdowns from Squid-native access logs
    Stats(crate::stats::StatsArgs),
}

/// Command-line values that override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub cache_dir: Option<PathBuf>,
}

impl Overrides {
    fn apply(&self, mut config: Config) -> Config {
        if let Some(listen) = self.listen {
            config.server.listen = listen;
        }
        if let Some(dir) = &self.cache_dir {
            // Relative to the working folder, like any command-line path.
            config.cache.dir = std::env::current_dir().unwrap_or_default().join(dir);
        }
        config
    }
}

/// Loads the configuration the proxy would use, with overrides applied.
/// Returns it with the file it came from (None: built-in defaults).
pub fn load(
    path: Option<&Path>,
    overrides: &Overrides,
) -> Result<(Config, Option<PathBuf>), ConfigErrors> {
    let implicit = PathBuf::from("config.toml");
    let path = match path {
        Some(p) => Some(p.to_path_buf()),
        None if implicit.is_file() => Some(implicit),
        None => None,
    };
    let config = match &path {
        Some(p) => Config::load_file(p)?,
        None => Config::defaults(Path::new("."))?,
    };
    Ok((overrides.apply(config), path))
}

/// Like [`load`], keeping every problem: the configuration as far as it
/// could be read, its file, and the errors.
fn check(
    path: Option<&Path>,
    overrides: &Overrides,
) -> (
    Option<Config>,
    Option<PathBuf>,
    Vec<crate::config::ConfigError>,
) {
    let implicit = PathBuf::from("config.toml");
    let path = match path {
        Some(p) => Some(p.to_path_buf()),
        None if implicit.is_file() => Some(implicit),
        None => None,
    };
    let (config, errors) = match &path {
        Some(p) => Config::check_file(p),
        None => Config::parse_all("", Path::new(".")),
    };
    (config.map(|c| overrides.apply(c)), path, errors)
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        listen: cli.listen,
        cache_dir: cli.cache_dir.clone(),
    };
    if let Some(Command::Stats(args)) = &cli.command {
        return crate::stats::run(args);
    }
    if let Some(Command::Cache(command)) = &cli.command {
        return match load(cli.config.as_deref(), &overrides) {
            Ok((config, _)) => crate::server::cache_tool::run(
                command,
                &config.resolve(&config.cache.dir),
                config.cache.disk_size.as_u64(),
            ),
            Err(errors) => {
                eprintln!("config invalid:\n{errors}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::CheckConfig { path }) = &cli.command {
        let path = path.as_deref().or(cli.config.as_deref());
        let (config, file, mut errors) = check(path, &overrides);
        // What is compiled before use (rules, presets, parents, the users
        // file) is checked by the very code the proxy runs.
        if let Some(config) = &config {
            if let Err(e) = crate::shared::compile(config, config.server.listen) {
                let known: Vec<String> = errors.iter().map(|e| e.key.clone()).collect();
                errors.extend(e.0.into_iter().filter(|e| !known.contains(&e.key)));
            }
        }
        return match config {
            Some(config) if errors.is_empty() => {
                let from = file.map_or("built-in defaults".to_owned(), |p| p.display().to_string());
                println!("config OK ({from}): {}", config.summary());
                ExitCode::SUCCESS
            }
            _ => {
                eprintln!("config invalid:\n{}", ConfigErrors(errors));
                ExitCode::FAILURE
            }
        };
    }
    let (config, file) = match load(cli.config.as_deref(), &overrides) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("cachalot: configuration refused:\n{errors}");
            return ExitCode::FAILURE;
        }
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Diagnostics go to stderr (stdout may be the access log), coloured only
    // for a terminal: journald and fail2ban read plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // The main thread's runtime is the first serving thread (see workers).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cachalot: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(config, file, overrides))
}

async fn serve(config: Config, file: Option<PathBuf>, overrides: Overrides) -> ExitCode {
    let threads = server::workers::count(config.server.threads);
    let listeners = match server::workers::bind(config.server.listen, threads) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cachalot: cannot listen on {}: {e}", config.server.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .unwrap_or(config.server.listen);
    let admin = match config.admin.listen_addr() {
        Some(admin_addr) => match server::bind(admin_addr) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("cachalot: cannot listen on admin.listen {admin_addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let proxy = match Proxy::new(config, addr) {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("cachalot: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Only now: a locked cache folder or a busy admin port fails before it.
    tracing::info!(
        "cachalot {} listening on {addr}, {threads} serving threads ({})",
        env!("CARGO_PKG_VERSION"),
        file.as_ref()
            .map_or("built-in defaults".to_owned(), |p| p.display().to_string())
    );
    server::signals::reload_on_sighup(proxy.clone(), move || {
        load(file.as_deref(), &overrides).map(|(config, _)| config)
    });
    server::signals::reopen_log_on_sigusr1(proxy.clone());
    let stop_admin = tokio_util::sync::CancellationToken::new();
    if let Some(admin) = admin {
        tracing::info!(
            "admin listener on {}",
            admin.local_addr().map_or(String::new(), |a| a.to_string())
        );
        let stop = stop_admin.clone();
        tokio::spawn(server::admin::run(admin, proxy.clone(), async move {
            stop.cancelled().await
        }));
    }
    server::workers::run(listeners, proxy.clone(), server::signals::shutdown()).await;
    stop_admin.cancel();
    proxy.close();
    tracing::info!("stopped");
    ExitCode::SUCCESS
}

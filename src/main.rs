//! The `unscharf` command line: serve, check, explain, test, audit and demo.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tokio::sync::watch;

use unscharf::config::Config;

#[derive(Parser)]
#[command(
    name = "unscharf",
    version,
    about = "PostgreSQL proxy that enforces purpose policies on call-center customer data"
)]
struct Cli {
    /// Config file; with no subcommand, `unscharf --config FILE` serves.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "human", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy. SIGHUP reloads config and policies; SIGTERM/SIGINT drains gracefully.
    Serve,
    /// Start a throwaway Postgres with the sample data and the proxy on 127.0.0.1:6432.
    Demo {
        /// Where the proxy listens.
        #[arg(long, default_value = "127.0.0.1:6432")]
        listen: String,
    },
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UNSCHARF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from("unscharf.yaml"))
}

/// Turns SIGTERM/SIGINT into the shutdown signal.
fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::info!("shutting down: no new sessions; statements in flight may finish");
        let _ = tx.send(true);
    });
    rx
}

async fn serve(cli: &Cli) -> Result<()> {
    let path = config_path(cli);
    let config = Config::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let addr = config.listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    tracing::info!(%addr, "unscharf listening");
    unscharf::server::serve(config, listener, shutdown_on_signals()).await?;
    Ok(())
}

async fn demo(listen: &str) -> Result<()> {
    let demo = unscharf::demo::prepare(listen)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let addr = demo.config.listen_addr()?;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => bail!(
            "cannot listen on {addr}: {e} (is another demo running? use --listen 127.0.0.1:PORT)"
        ),
    };
    println!("{}", unscharf::demo::banner(listen, &demo));
    unscharf::server::serve(demo.config.clone(), listener, shutdown_on_signals()).await?;
    drop(demo);
    println!("demo stopped; the throwaway cluster was removed");
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match &cli.command {
            None | Some(Command::Serve) => serve(&cli).await,
            Some(Command::Demo { listen }) => demo(listen).await,
        }
    })
}

//! The `taskhost` command: `serve` runs the host's HTTP API; the other commands ([`cli`]) are
//! its clients and helpers for writing tasks.

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use taskhost::Host;
use taskhost::config::{Config, ConfigCommand, ServeOptions};
use taskhost::internals::{CompileArgs, run_child};
use taskhost::server::Server;
use tracing_subscriber::EnvFilter;

/// mimalloc, not glibc's malloc: the server allocates a job's record and response on one
/// thread and frees them on another, which glibc serialises on the allocating thread's arena
/// lock (a quarter of the server's CPU under load, much of it futex waits); mimalloc frees to
/// per-thread pages without a lock (and the host has it hand back what is free once idle).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run WebAssembly tasks in a sandbox, over HTTP.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, running the tasks found in --tasks-dir.
    Serve(ServeOptions),
    /// Check the configuration without serving.
    #[command(subcommand)]
    Config(ConfigCommand),
    #[command(flatten)]
    Client(cli::Command),
    /// Compile one component, for a server that runs this as its child.
    #[command(hide = true)]
    Compile(CompileArgs),
}

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        // Only the server runs async; the client commands block.
        Command::Serve(options) => {
            let mut config = options.resolve().validate()?;
            // This is the taskhost binary: it compiles each component in a child of its own.
            if config.compile.compiler.is_none() {
                config.compile.compiler = Some(std::env::current_exe()?);
            }
            tokio::runtime::Runtime::new()?.block_on(serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(command) => {
            std::io::stdout().write_all(command.run()?.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Client(command) => Ok(cli::run(command)),
        Command::Compile(args) => Ok(run_child(args)),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // First, so the host's own files count against the raised open-file limit.
    let server = Server::new(&config.http);
    let host = Arc::new(Host::start(&config)?);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    // Before the first line: a SIGTERM sent as soon as the server says it listens must find
    // its handler (the default action would kill the server without draining).
    let signals = ShutdownSignals::install()?;
    // Scripts and tests read the real port from this first line.
    writeln!(std::io::stdout(), "listening on http://{address}")?;
    std::io::stdout().flush()?;

    let stopping = host.clone();
    let shutdown = async move {
        signals.received().await;
        stopping.close_event_streams();
    };
    server
        .serve(listener, taskhost::api::router(host.clone()), shutdown)
        .await?;
    tracing::info!("stopped accepting requests; letting accepted jobs finish");
    let report = tokio::task::spawn_blocking(move || host.shutdown()).await?;
    if report.drained {
        tracing::info!("shut down: every accepted job finished");
    } else {
        tracing::warn!(
            cancelled = report.cancelled,
            "shut down: the drain timeout passed; cancelled the jobs still queued or running"
        );
    }
    if report.unstopped > 0 {
        tracing::error!(
            unstopped = report.unstopped,
            "jobs cancelled at shutdown had not stopped after {:?}",
            taskhost::host::STOP_GRACE
        );
    }
    Ok(())
}

/// The signals that stop the server (SIGINT, SIGTERM), listened for from when they are
/// installed.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Listens for SIGINT and SIGTERM from now on.
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves once either has arrived.
    async fn received(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

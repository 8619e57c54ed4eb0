//! `server` binary: load `.env`, read and validate the configuration, start (with `--demo`, also
//! the demo's bots), and shut down gracefully on Ctrl-C or SIGTERM — or exit 1 when the
//! sequencer fails or the writer lock is lost, for a supervisor to restart it. `--openapi`
//! prints the API's OpenAPI document and `--env-vars` the environment variables the server
//! reads, each touching no configuration or database; `admin ...` runs an operator command
//! (`server admin --help`). Everything else lives in the library.

use std::process::ExitCode;

use server::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("admin") {
        let _ = dotenvy::dotenv();
        return server::operator::main(args.collect()).await;
    }
    if std::env::args().any(|arg| arg == "--env-vars") {
        let variables = server::config::Variables::of_config();
        let listed = serde_json::json!({
            "read": variables.read,
            "requiredInProduction": variables.required_in_production,
        });
        println!("{listed:#}");
        return ExitCode::SUCCESS;
    }
    if std::env::args().any(|arg| arg == "--openapi") {
        println!("{}", server::http::openapi::pretty_json());
        return ExitCode::SUCCESS;
    }
    let _ = dotenvy::dotenv();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init(config.log_format);
    let server = match server::app::start(config).await {
        Ok(server) => server,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    // `--demo`: seeded markets kept moving by bots, for a first look at a living exchange.
    let (stop_demo, demo_stopped) = tokio::sync::watch::channel(false);
    let demo = if std::env::args().any(|arg| arg == "--demo") {
        match server::demo::seed(server.state()).await {
            Ok(demo) => {
                tracing::info!(
                    email = server::demo::DEMO_EMAIL,
                    password = server::demo::DEMO_PASSWORD,
                    "demo running: log in with these"
                );
                Some(server::demo::spawn(
                    server.state().clone(),
                    demo,
                    demo_stopped,
                ))
            }
            Err(error) => {
                tracing::error!(%error, "cannot seed the demo");
                None
            }
        }
    } else {
        None
    };
    // A failed sequencer refuses every write until a restart recovers it: exit non-zero so a
    // supervisor (systemd, Docker, Kubernetes) restarts the process instead of leaving a zombie.
    let failed = tokio::select! {
        _ = shutdown_signal() => false,
        _ = server.sequencer_failed() => true,
        _ = server.writer_lock_lost() => {
            // Another server may take the database from now on: stop at once, committing
            // nothing more (what was acknowledged is committed; the rest was never promised).
            tracing::error!("the writer lock was lost (its database session ended): stopping now");
            server.kill().await;
            return ExitCode::FAILURE;
        }
    };
    if failed {
        tracing::error!("the sequencer failed: exiting so the restart recovers from the journal");
    }
    tracing::info!("shutting down");
    let _ = stop_demo.send(true);
    if let Some(demo) = demo {
        let _ = demo.await;
    }
    server.shutdown().await;
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

//! Starting and stopping the whole server, in order.
//!
//! Start: connect, migrate, recover the engine (refusing to start on any mismatch), start the
//! sequencer, create the configured admin and any engine accounts left pending, then bind and
//! serve. Stop: stop accepting connections and finish in-flight requests (bounded by the grace
//! period), then drain the sequencer's queue and commit it, store a final snapshot, close the
//! pool. `kill` skips all that, as a crash would; tests use it to prove durability.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::auth::jwt::Keys;
use crate::config::Config;
use crate::db::{Db, DbError};
use crate::http::{self, AppState, Inner};
use crate::metrics::Metrics;
use crate::sequencer::{self, RecoveryError, RecoveryReport, SequencerHandle, SequencerTask};
use crate::users;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot recover the engine: {0}")]
    Recovery(#[from] RecoveryError),
    #[error("cannot create the admin account from ADMIN_EMAIL/ADMIN_PASSWORD: {0}")]
    Admin(crate::http::Error),
    #[error("cannot create pending engine accounts: {0}")]
    Pending(crate::http::Error),
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
}

pub struct Server {
    local_addr: SocketAddr,
    state: AppState,
    http: JoinHandle<()>,
    stop_http: oneshot::Sender<()>,
    sequencer: SequencerTask,
    recovery: RecoveryReport,
}

pub async fn start(config: Config) -> Result<Server, StartError> {
    let db = Db::connect(&config.storage, config.db_max_connections).await?;
    db.migrate().await?;
    let metrics = Arc::new(Metrics::default());
    let (handle, task, recovery) =
        sequencer::start(db.clone(), config.sequencer, metrics.clone()).await?;
    let config_limits = config.limits;
    let state = AppState(Arc::new(Inner {
        keys: Keys::new(&config.auth),
        db,
        config,
        sequencer: handle,
        metrics,
        limits: crate::limits::Limits::new(config_limits),
    }));
    if let Err(error) = prepare_accounts(&state).await {
        task.shutdown().await;
        return Err(error);
    }
    let bind_addr = state.config.bind_addr;
    let listener = match TcpListener::bind(bind_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            task.shutdown().await;
            return Err(StartError::Bind(bind_addr, error));
        }
    };
    let local_addr = listener
        .local_addr()
        .map_err(|error| StartError::Bind(bind_addr, error))?;
    let (stop_http, stopped) = oneshot::channel::<()>();
    let app = http::router(state.clone());
    let http = tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(error) = serve.await {
            tracing::error!(%error, "HTTP server failed");
        }
    });
    tracing::info!(%local_addr, storage = ?state.db.backend, "listening");
    Ok(Server {
        local_addr,
        state,
        http,
        stop_http,
        sequencer: task,
        recovery,
    })
}

async fn prepare_accounts(state: &AppState) -> Result<(), StartError> {
    if let Some(admin) = &state.config.admin {
        crate::auth::bootstrap_admin(state, admin)
            .await
            .map_err(StartError::Admin)?;
    }
    let pending = users::without_engine_user(&state.db)
        .await
        .map_err(StartError::Pending)?;
    for user_id in pending {
        state
            .sequencer
            .ensure_user(user_id)
            .await
            .map_err(|error| StartError::Pending(error.into()))?;
    }
    Ok(())
}

impl Server {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn sequencer(&self) -> &SequencerHandle {
        &self.state.sequencer
    }

    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// The state handlers share (for in-process tools such as `demo`).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// What recovery found at start.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Graceful: finish requests, drain and commit the queue, snapshot, close.
    pub async fn shutdown(self) {
        let grace = self.state.config.shutdown_grace;
        let _ = self.stop_http.send(());
        let http = self.http;
        let abort = http.abort_handle();
        if tokio::time::timeout(grace, http).await.is_err() {
            tracing::warn!(
                ?grace,
                "requests still running after the grace period; cutting them off"
            );
            abort.abort();
        }
        self.sequencer.shutdown().await;
        self.state.db.pool.close().await;
        tracing::info!("shut down");
    }

    /// Stops everything at once without draining or snapshotting, like a crash.
    pub async fn kill(self) {
        self.http.abort();
        self.sequencer.abort();
        self.state.db.pool.close().await;
    }
}

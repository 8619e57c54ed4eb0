//! Starting and stopping the whole server, in order.
//!
//! Start: take the database's writer lock (a primary), connect, migrate, recover the engine (refusing to start on any mismatch), start the
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
use crate::config::{Config, Role};
use crate::db::{Db, DbError};
use crate::http::{self, AppState, Inner};
use crate::metrics::Metrics;
use crate::sequencer::{self, RecoveryError, RecoveryReport, SequencerHandle, SequencerTask};
use crate::stream::hub::Hub;
use crate::stream::redis::RedisSink;
use crate::writer_lock::{LockError, WriterLock};
use crate::{stream, users};

/// How long a starting primary waits for the writer lock: a killed predecessor's PostgreSQL
/// session ends a moment after the process does.
const WRITER_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the stream tasks get at shutdown to publish what the sequencer committed last.
const STREAMS_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);
/// How often expired idempotency keys are purged (the first time at start).
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use REDIS_URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("a read-only gateway streams from Redis: set REDIS_URL")]
    GatewayWithoutRedis,
    #[error(transparent)]
    Locked(#[from] LockError),
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
    /// The engine's task and what its recovery found; `None` on a read-only gateway.
    sequencer: Option<(SequencerTask, RecoveryReport)>,
    /// Stream publishing (primary) or relaying (gateway), stopped after the sequencer.
    streams: Vec<JoinHandle<()>>,
    /// Periodic chores (purging expired idempotency keys, polling revocations), stopped first.
    chores: Vec<JoinHandle<()>>,
    /// A primary's hold on the journal, let go last; `None` on a gateway.
    writer_lock: Option<WriterLock>,
}

/// The engine side of a primary, or nothing on a gateway (which relays streams from Redis).
async fn engine_side(
    db: &Db,
    config: &Config,
    metrics: &Arc<Metrics>,
    hub: &Arc<Hub>,
    streams: &mut Vec<JoinHandle<()>>,
) -> Result<(SequencerHandle, Option<(SequencerTask, RecoveryReport)>), StartError> {
    let redis_url = config.streams.redis_url.as_deref();
    if config.streams.role == Role::Gateway {
        let url = redis_url.ok_or(StartError::GatewayWithoutRedis)?;
        let channel = config.streams.redis_channel.clone();
        streams.push(stream::redis::spawn_relay(url, channel, hub.clone())?);
        return Ok((SequencerHandle::read_only(metrics.clone()), None));
    }
    let redis = match redis_url {
        Some(url) => {
            let channel = config.streams.redis_channel.clone();
            let (sink, join) = RedisSink::spawn(url, channel, metrics.clone())?;
            streams.push(join);
            Some(sink)
        }
        None => None,
    };
    let (publisher, join) = stream::publisher::spawn(hub.clone(), redis, metrics.clone());
    streams.push(join);
    let (handle, task, recovery) =
        sequencer::start(db.clone(), config.sequencer, metrics.clone(), publisher).await?;
    Ok((handle, Some((task, recovery))))
}

pub async fn start(config: Config) -> Result<Server, StartError> {
    match config.streams.role {
        // Two primaries on one journal would each sequence their own history: the second
        // waits, then refuses to start.
        Role::Primary => {
            let lock = WriterLock::acquire(&config.storage, WRITER_LOCK_PATIENCE).await?;
            serve(config, Some(lock)).await
        }
        Role::Gateway => serve(config, None).await,
    }
}

/// `start` for a primary whose writer lock the caller took already (`server admin`).
pub async fn start_holding(config: Config, lock: WriterLock) -> Result<Server, StartError> {
    serve(config, Some(lock)).await
}

async fn serve(config: Config, writer_lock: Option<WriterLock>) -> Result<Server, StartError> {
    let db = Db::connect(&config.storage, config.db_max_connections).await?;
    db.migrate().await?;
    let metrics = Arc::new(Metrics::default());
    let hub = Arc::new(Hub::new(config.streams.history_bytes_max));
    let mut streams = Vec::new();
    let (handle, sequencer) = engine_side(&db, &config, &metrics, &hub, &mut streams).await?;
    let config_limits = config.limits;
    let state = AppState(Arc::new(Inner {
        keys: Keys::new(&config.auth),
        db,
        config,
        sequencer: handle,
        metrics,
        limits: crate::limits::Limits::new(config_limits),
        hub,
        market_ids: crate::markets::MarketIds::default(),
        key_cache: crate::auth::api_keys::KeyCache::default(),
        revocations: Arc::default(),
    }));
    if let Err(error) = prepare_accounts(&state).await {
        stop_engine_side(sequencer, streams).await;
        return Err(error);
    }
    let bind_addr = state.config.bind_addr;
    let listener = match TcpListener::bind(bind_addr).await {
        Ok(listener) => listener,
        Err(error) => {
            stop_engine_side(sequencer, streams).await;
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
    let chores = vec![
        spawn_purge(state.db.clone()),
        crate::auth::revocations::spawn_poller(state.db.clone(), state.revocations.clone()),
    ];
    Ok(Server {
        local_addr,
        state,
        http,
        stop_http,
        sequencer,
        streams,
        chores,
        writer_lock,
    })
}

/// Purges expired idempotency keys now and every `PURGE_EVERY`.
fn spawn_purge(db: Db) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            match http::idempotency::purge_expired(&db).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
                Err(error) => tracing::warn!(%error, "purging idempotency keys failed"),
            }
        }
    })
}

/// Stops the sequencer (draining and committing its queue), then lets the publisher send
/// what was committed, then stops the stream tasks. A gateway's relay just stops.
async fn stop_engine_side(
    sequencer: Option<(SequencerTask, RecoveryReport)>,
    streams: Vec<JoinHandle<()>>,
) {
    let Some((task, _)) = sequencer else {
        for join in streams {
            join.abort();
        }
        return;
    };
    task.shutdown().await;
    for join in streams {
        let abort = join.abort_handle();
        if tokio::time::timeout(STREAMS_DRAIN, join).await.is_err() {
            abort.abort();
        }
    }
}

async fn prepare_accounts(state: &AppState) -> Result<(), StartError> {
    if state.config.streams.role == Role::Gateway {
        return Ok(());
    }
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

    /// Waits until the sequencer has failed (a commit that failed, or a panic): from then on
    /// every write is refused until a restart recovers from the journal. Never returns on a
    /// healthy primary or on a gateway.
    pub async fn sequencer_failed(&self) {
        self.state.sequencer.failed().await
    }

    /// Waits until this primary has lost its writer lock (its PostgreSQL session ended): it
    /// must stop before another server takes the lock. Never returns on SQLite or a gateway.
    pub async fn writer_lock_lost(&self) {
        match &self.writer_lock {
            Some(lock) => lock.lost().await,
            None => std::future::pending().await,
        }
    }

    /// What recovery found at start (`None` on a read-only gateway, which has no engine).
    pub fn recovery(&self) -> Option<&RecoveryReport> {
        self.sequencer.as_ref().map(|(_, report)| report)
    }

    /// Graceful: finish requests, drain and commit the queue, snapshot, close.
    pub async fn shutdown(self) {
        let grace = self.state.config.shutdown_grace;
        for chore in &self.chores {
            chore.abort();
        }
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
        stop_engine_side(self.sequencer, self.streams).await;
        self.state.db.pool.close().await;
        if let Some(lock) = self.writer_lock {
            lock.release().await;
        }
        tracing::info!("shut down");
    }

    /// Stops everything at once without draining or snapshotting, like a crash.
    pub async fn kill(self) {
        for chore in &self.chores {
            chore.abort();
        }
        self.http.abort();
        if let Some((task, _)) = self.sequencer {
            task.abort();
        }
        for join in self.streams {
            join.abort();
        }
        self.state.db.pool.close().await;
        // Dropped, as the kernel would at a crash.
        drop(self.writer_lock);
    }
}

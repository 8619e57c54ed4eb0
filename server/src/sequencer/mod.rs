//! The sequencer: the one task that owns the engine.
//!
//! Handlers send it requests over a bounded channel (`SequencerHandle`); a full queue is an
//! immediate `Overloaded`, never an unbounded buffer. The task takes whatever is queued (up to
//! `batch_max`), stamps each command with the next sequence number and a timestamp from its own
//! never-decreasing clock, applies it, and commits the whole batch — journal rows, projections,
//! the batch's hash-chain link and sometimes a snapshot — in ONE transaction (group commit) on
//! its own connection. Only after that commit does any submitter get its answer, typed for what
//! it asked (a command's carries the orders it touched, as the batch left them), and the
//! market-data read model and the streams see the batch: durability before visibility. The task
//! runs on a thread and runtime of its own ([`SequencerTask`]).
//!
//! A failed commit is fail-stop: the engine has moved past what the database holds, so the task
//! answers `Stopped` to the whole batch and to everything after it, marks itself failed (readyz
//! and metrics say so) and exits. The operator restarts the process, which recovers by replay.
//!
//! Time: the engine never reads a clock, so GTD expiries and market closes happen when a command
//! arrives with a late enough timestamp. The task tracks every deadline it has seen in the
//! events (GTD expiries, market close times) and, every `tick_interval`, sends a journaled `Tick`
//! when one is due, so quiet books expire on time without journaling an idle tick every second.
//!
//! Reads that need the engine itself (queue positions, and an operator's snapshot) are queued
//! like commands but answered before the batch they arrive in is applied, so they see exactly
//! the last committed state, never a command that is not yet durable. They are not journaled.
//!
//! Must never: acknowledge before commit, apply a command it does not journal, or let a
//! projection write fail on user input (every uniqueness the projections enforce is checked
//! here or by the engine first).

mod chain;
mod deadlines;
mod interpret;
pub mod keyed;
mod position_costs;
mod projection;
mod recovery;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use engine::{Command, Engine, Event, Op, OrderId, Reject, UserId};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinError};
use uuid::Uuid;

use crate::config::SequencerConfig;
use crate::db::{now_micros, Db};
use crate::metrics::Metrics;
use crate::stream::feed::Feed;
use crate::stream::market_data::{MarketData, SharedMarketData};
use crate::stream::publisher::Publisher;
use crate::wire::{FillBody, OrderBody};
use deadlines::Deadlines;

pub use recovery::{verify, RecoveryError, RecoveryReport, Verification};

/// What the server attaches to a command: the ids and text the engine does not keep.
/// Journaled with the command, so the UUID-to-engine-id mapping replays with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Subject {
    User {
        user_id: Uuid,
    },
    #[serde(rename_all = "camelCase")]
    Market {
        market_id: Uuid,
        question: String,
        description: String,
    },
    /// A `Deposit` the caller took from the dev faucet (the transfer is labelled FAUCET).
    Faucet,
    /// A command of `server admin import`: the import record it applies and the digest of the
    /// record's values (kept with the commit, so the import run again skips it, and refuses a
    /// record changed since) and, for a share transfer, what the receiver pays for the shares
    /// in its cost basis (default: the giver's average cost).
    #[serde(rename_all = "camelCase")]
    Import {
        key: String,
        digest: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_micros: Option<i64>,
    },
}

/// An order as its command's batch left it: its state at the end of the batch (with its queue
/// position while it rests) and its fills within the batch (for a new order, every fill).
#[derive(Clone, Debug)]
pub struct OrderView {
    pub body: OrderBody,
    pub fills: Vec<FillBody>,
}

/// A command's committed outcome.
#[derive(Clone, Debug)]
pub struct Applied {
    pub seq: u64,
    pub ts_micros: u64,
    pub result: Result<(), Reject>,
    /// Everything the command changed (clock events included, even when rejected).
    pub events: Vec<Event>,
    /// The orders of the command's user that the command placed, changed, ended or replayed
    /// (a replayed order only while it is open or ended in this batch).
    pub orders: BTreeMap<OrderId, OrderView>,
}

impl Applied {
    pub fn order(&self, order: OrderId) -> Option<&OrderView> {
        self.orders.get(&order)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SequencerError {
    #[error("the sequencer queue is full")]
    Overloaded,
    #[error("the sequencer has stopped taking commands")]
    Stopped,
    #[error("rejected: {0}")]
    Rejected(Reject),
    #[error("invalid submission: {0}")]
    Invalid(&'static str),
    #[error("this instance is a read-only gateway")]
    ReadOnly,
    /// Writing a snapshot failed; the state and the journal are untouched.
    #[error("cannot store the snapshot: {0}")]
    Snapshot(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Running,
    /// Shut down on request.
    Stopped,
    /// A commit failed; nothing more is taken until a restart recovers.
    Failed,
    /// A read-only gateway: there is no engine here.
    ReadOnly,
}

type Answer<T> = oneshot::Sender<Result<T, SequencerError>>;

/// What a handler can ask; each kind carries its own reply channel.
enum Request {
    Command {
        op: Op,
        subject: Option<Subject>,
        /// The idempotency key it was submitted under, recorded in its commit (boxed: most
        /// commands have none).
        key: Option<Box<keyed::IdempotencyKey>>,
        /// `None` for the task's own ticks.
        reply: Option<Answer<Applied>>,
    },
    /// The engine user of a server user, created (journaled) on first use.
    EnsureUser {
        user_id: Uuid,
        reply: Answer<UserId>,
    },
    /// Shares ahead of each order at its level (`None` for an order that does not rest).
    QueuePositions {
        orders: Vec<OrderId>,
        reply: Answer<Vec<Option<u64>>>,
    },
    /// Store a snapshot of the committed state now.
    Snapshot { reply: Answer<SnapshotTaken> },
}

impl Request {
    fn is_read(&self) -> bool {
        matches!(
            self,
            Request::QueuePositions { .. } | Request::Snapshot { .. }
        )
    }
}

/// A snapshot of the committed state, stored (or already there for this seq).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotTaken {
    pub seq: u64,
    pub state_hash: String,
}

/// Every server user's engine user, shared with the handlers so a known user costs no trip
/// through the queue. Written only by the sequencer, after the commit that created the user.
pub type KnownUsers = Arc<RwLock<HashMap<Uuid, UserId>>>;

/// Cheap to clone; every handler holds one.
#[derive(Clone)]
pub struct SequencerHandle {
    tx: mpsc::Sender<Request>,
    status: watch::Receiver<Status>,
    metrics: Arc<Metrics>,
    users: KnownUsers,
    market_data: SharedMarketData,
}

impl SequencerHandle {
    /// Applies `op` and answers once it is committed. `CreateUser` goes through `ensure_user`;
    /// `CreateMarket` needs a `Subject::Market`, a `Deposit` may carry `Subject::Faucet`, a
    /// `TransferShares` needs a `Subject::Import` (which transfers, deposits, withdrawals, splits
    /// and merges may carry), and nothing else takes a subject.
    pub async fn submit(
        &self,
        op: Op,
        subject: Option<Subject>,
    ) -> Result<Applied, SequencerError> {
        match (&op, &subject) {
            (Op::CreateUser, _) => return Err(SequencerError::Invalid("use ensure_user")),
            (Op::CreateMarket(_), Some(Subject::Market { .. })) => {}
            (Op::CreateMarket(_), _) => {
                return Err(SequencerError::Invalid(
                    "CreateMarket needs a market subject",
                ))
            }
            (Op::Deposit { .. }, Some(Subject::Faucet)) => {}
            (
                Op::TransferShares { .. }
                | Op::Deposit { .. }
                | Op::Withdraw { .. }
                | Op::Split { .. }
                | Op::Merge { .. },
                Some(Subject::Import { .. }),
            ) => {}
            (Op::TransferShares { .. }, _) => {
                return Err(SequencerError::Invalid("only an import transfers shares"))
            }
            (_, Some(_)) => return Err(SequencerError::Invalid("this command takes no subject")),
            (_, None) => {}
        }
        // A retry of a keyed request that already committed answers from that commit.
        if let Some(applied) = keyed::take_replay() {
            keyed::note_commit();
            return Ok(applied);
        }
        let applied = self
            .request(|reply| Request::Command {
                op,
                subject,
                key: keyed::current_key().map(Box::new),
                reply: Some(reply),
            })
            .await?;
        keyed::note_commit();
        Ok(applied)
    }

    /// The engine user of `user_id` (which must be in `users`), created on first call.
    pub async fn ensure_user(&self, user_id: Uuid) -> Result<UserId, SequencerError> {
        if let Some(user) = self.known_user(user_id) {
            return Ok(user);
        }
        self.request(|reply| Request::EnsureUser { user_id, reply })
            .await
    }

    /// The engine user of `user_id` if it has one (on a read-only gateway, never).
    pub fn known_user(&self, user_id: Uuid) -> Option<UserId> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        users.get(&user_id).copied()
    }

    /// The committed books and tickers (empty on a read-only gateway, which has no engine).
    pub fn market_data(&self) -> &SharedMarketData {
        &self.market_data
    }

    /// Stores a snapshot of the committed state now (unless one is already stored for it).
    pub async fn snapshot(&self) -> Result<SnapshotTaken, SequencerError> {
        self.request(|reply| Request::Snapshot { reply }).await
    }

    /// Shares ahead of each order at its level, as committed (`None` where it does not rest).
    pub async fn queue_positions(
        &self,
        orders: Vec<OrderId>,
    ) -> Result<Vec<Option<u64>>, SequencerError> {
        self.request(|reply| Request::QueuePositions { orders, reply })
            .await
    }

    async fn request<T>(
        &self,
        request: impl FnOnce(Answer<T>) -> Request,
    ) -> Result<T, SequencerError> {
        match *self.status.borrow() {
            Status::Running => {}
            Status::ReadOnly => return Err(SequencerError::ReadOnly),
            Status::Stopped | Status::Failed => return Err(SequencerError::Stopped),
        }
        let (reply, answer) = oneshot::channel();
        match self.tx.try_send(request(reply)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics
                    .overloaded_total
                    .fetch_add(1, Ordering::Relaxed);
                return Err(SequencerError::Overloaded);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(SequencerError::Stopped),
        }
        self.record_queue_depth();
        // A dropped reply means the task went away without answering (fail-stop or abort).
        answer.await.map_err(|_| SequencerError::Stopped)?
    }

    /// Stores the number of commands waiting for the sequencer in the metrics.
    pub fn record_queue_depth(&self) {
        let depth = self.tx.max_capacity() - self.tx.capacity();
        self.metrics
            .queue_depth
            .store(depth as u64, Ordering::Relaxed);
    }

    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Waits until the sequencer has failed (a failed commit or a panic); never returns on a
    /// sequencer that stops on request or keeps running.
    pub async fn failed(&self) {
        let mut status = self.status.clone();
        if status
            .wait_for(|status| *status == Status::Failed)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }

    /// The handle of a read-only gateway: every request answers `ReadOnly`.
    pub fn read_only(metrics: Arc<Metrics>) -> SequencerHandle {
        let (tx, _rx) = mpsc::channel(1);
        let (_status_tx, status) = watch::channel(Status::ReadOnly);
        SequencerHandle {
            tx,
            status,
            metrics,
            users: KnownUsers::default(),
            market_data: SharedMarketData::default(),
        }
    }
}

/// The running task: stop it with `shutdown` (drains and commits what is queued).
///
/// It runs on its own thread, in a runtime of its own: the request handlers fill the server's
/// runtime with short tasks, and a batch's commit is a chain of round trips to its database
/// connection, each of which would otherwise wait its turn behind them.
pub struct SequencerTask {
    shutdown: Option<oneshot::Sender<()>>,
    abort: AbortHandle,
    /// Answered when the task has ended (and its thread with it).
    ended: oneshot::Receiver<Result<(), JoinError>>,
}

impl SequencerTask {
    /// Stops taking commands, applies and commits everything already queued, stores a final
    /// snapshot and returns.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.ended.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "sequencer task ended abnormally"),
            Err(_) => tracing::error!("sequencer thread ended without a word"),
        }
    }

    /// Kills the task where it stands, as a crash would (tests use it to prove durability).
    pub fn abort(self) {
        self.abort.abort();
    }
}

/// What watches the sequencer from outside its task: a task that panics cannot mark itself.
struct Watch {
    status: Arc<watch::Sender<Status>>,
    metrics: Arc<Metrics>,
}

/// Runs `task` (the sequencer's loop) on a thread of its own; answers its abort handle and its
/// end. A panic ends the task without its own fail-stop, so it is marked `Failed` here: readyz
/// says so, writes are refused, and the process exits for its supervisor to restart it.
async fn spawn_on_own_thread(
    task: impl std::future::Future<Output = ()> + Send + 'static,
    watch: Watch,
) -> Result<(AbortHandle, oneshot::Receiver<Result<(), JoinError>>), RecoveryError> {
    let (started_tx, started) = oneshot::channel();
    let (ended_tx, ended) = oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RecoveryError::Thread)?;
    std::thread::Builder::new()
        .name("sequencer".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                let join = tokio::spawn(task);
                let _ = started_tx.send(join.abort_handle());
                let end = join.await;
                if let Err(error) = &end {
                    if error.is_panic() {
                        tracing::error!("THE SEQUENCER PANICKED: writes stop; restart the server to recover from the journal");
                        watch.status.send_replace(Status::Failed);
                        watch.metrics.sequencer_up.store(0, Ordering::Relaxed);
                    }
                }
                let _ = ended_tx.send(end);
            });
        })
        .map_err(RecoveryError::Thread)?;
    let abort = started.await.map_err(|_| {
        RecoveryError::Thread(std::io::Error::other("the sequencer thread did not start"))
    })?;
    Ok((abort, ended))
}

/// Recovers the engine from the database and starts the task.
pub async fn start(
    db: Db,
    config: SequencerConfig,
    metrics: Arc<Metrics>,
    publisher: Publisher,
) -> Result<(SequencerHandle, SequencerTask, RecoveryReport), RecoveryError> {
    let recovered = recovery::recover(&db).await?;
    let feed = Feed::load(&db, &recovered.engine, &recovered.users).await?;
    let costs = position_costs::load(&db).await?;
    // The sequencer's clock, never before the last committed command: every committed trade
    // falls at or before it, so the read model's window takes them all.
    let now = i64::try_from(Clock::new(recovered.engine.now_micros()).now()).unwrap_or(i64::MAX);
    let market_data = SharedMarketData::new(
        MarketData::load(&db, &recovered.engine, feed.markets(), now)
            .await
            .map_err(|error| RecoveryError::MarketData(error.to_string()))?,
    );
    let (tx, rx) = mpsc::channel(config.queue_capacity);
    let (status_tx, status_rx) = watch::channel(Status::Running);
    let status_tx = Arc::new(status_tx);
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    metrics.last_seq.store(recovered.seq, Ordering::Relaxed);
    metrics.open_orders.store(
        recovered.engine.open_order_count() as u64,
        Ordering::Relaxed,
    );
    metrics.sequencer_up.store(1, Ordering::Relaxed);
    let deadlines = Deadlines::of(&recovered.engine);
    let clock = Clock::new(recovered.engine.now_micros());
    let report = recovered.report.clone();
    let known_users = KnownUsers::new(RwLock::new(recovered.users.clone()));
    let sequencer = Sequencer {
        engine: recovered.engine,
        db,
        config,
        metrics: metrics.clone(),
        status: status_tx.clone(),
        seq: recovered.seq,
        seq_at_snapshot: recovered.seq_at_snapshot,
        link: recovered.link,
        clock,
        deadlines,
        users: recovered.users,
        known_users: known_users.clone(),
        created_users: Vec::new(),
        market_data: market_data.clone(),
        events: Vec::new(),
        costs,
        feed,
        publisher,
    };
    let watch = Watch {
        status: status_tx,
        metrics: metrics.clone(),
    };
    let (abort, ended) = spawn_on_own_thread(sequencer.run(rx, shutdown_rx), watch).await?;
    let handle = SequencerHandle {
        tx,
        status: status_rx,
        metrics,
        users: known_users,
        market_data,
    };
    let task = SequencerTask {
        shutdown: Some(shutdown_tx),
        abort,
        ended,
    };
    Ok((handle, task, report))
}

/// Timestamps for commands: wall-clock microseconds, but never below the last one handed out
/// (a clock stepped back holds time still instead of going backwards).
struct Clock {
    wall_at_start_micros: u64,
    started: Instant,
    last_micros: u64,
}

impl Clock {
    fn new(last_micros: u64) -> Clock {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        Clock {
            wall_at_start_micros: u64::try_from(wall).unwrap_or(u64::MAX),
            started: Instant::now(),
            last_micros,
        }
    }

    fn now(&self) -> u64 {
        let elapsed = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.wall_at_start_micros
            .saturating_add(elapsed)
            .max(self.last_micros)
    }

    fn next(&mut self) -> u64 {
        self.last_micros = self.now();
        self.last_micros
    }
}

/// One applied command on its way to the database.
pub(crate) struct Entry {
    pub seq: u64,
    pub command: Command,
    pub result: Result<(), Reject>,
    pub events: Vec<Event>,
    pub subject: Option<Subject>,
    pub key: Option<keyed::IdempotencyKey>,
}

struct Sequencer {
    engine: Engine,
    db: Db,
    config: SequencerConfig,
    metrics: Arc<Metrics>,
    status: Arc<watch::Sender<Status>>,
    /// The last sequence number handed out (and, between batches, committed).
    seq: u64,
    seq_at_snapshot: u64,
    /// The last committed batch's link in the hash chain.
    link: String,
    clock: Clock,
    deadlines: Deadlines,
    /// Server user -> engine user, including users created in the batch being built.
    users: HashMap<Uuid, UserId>,
    /// What the handlers see of `users`: only what is committed.
    known_users: KnownUsers,
    /// Users created in the batch being built, for `known_users` once it is committed.
    created_users: Vec<(Uuid, UserId)>,
    /// Changed right after each commit, before anyone hears of it.
    market_data: SharedMarketData,
    /// Reused event buffer.
    events: Vec<Event>,
    /// Every position's cost basis and realized profit, as committed.
    costs: position_costs::PositionCosts,
    /// Numbers the stream messages of each batch; `publisher` sends them once committed.
    feed: Feed,
    publisher: Publisher,
}

impl Sequencer {
    async fn run(mut self, mut rx: mpsc::Receiver<Request>, mut shutdown: oneshot::Receiver<()>) {
        let mut ticker = tokio::time::interval(self.config.tick_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(self.config.batch_max);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                received = rx.recv_many(&mut batch, self.config.batch_max) => {
                    if received == 0 {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    if !self.tick_due() {
                        continue;
                    }
                    batch.push(Request::Command { op: Op::Tick, subject: None, key: None, reply: None });
                }
            }
            if self.process(&mut batch).await.is_err() {
                self.fail(rx).await;
                return;
            }
        }
        // Shutdown: refuse new commands, then apply and commit what is already queued.
        let _ = self.status.send(Status::Stopped);
        self.metrics.sequencer_up.store(0, Ordering::Relaxed);
        rx.close();
        while rx.recv_many(&mut batch, self.config.batch_max).await > 0 {
            if self.process(&mut batch).await.is_err() {
                self.fail(rx).await;
                return;
            }
        }
        if self.seq > self.seq_at_snapshot {
            if let Err(error) = self.snapshot_now().await {
                tracing::error!(%error, "final snapshot failed (recovery will replay)");
            }
        }
        tracing::info!(seq = self.seq, "sequencer stopped");
    }

    fn tick_due(&self) -> bool {
        self.deadlines.due(self.clock.now())
    }

    /// Applies and commits `batch` (left empty), then answers every submitter.
    async fn process(&mut self, batch: &mut Vec<Request>) -> Result<(), ()> {
        let mut entries = Vec::with_capacity(batch.len());
        let mut waiting = Vec::new();
        let first_seq = self.seq + 1;
        // Reads first: the engine holds exactly the committed state until the loop below.
        let (reads, writes): (Vec<_>, Vec<_>) = batch.drain(..).partition(Request::is_read);
        for read in reads {
            self.answer_read(read).await;
        }
        for request in writes {
            match request {
                Request::Command {
                    op,
                    subject,
                    key,
                    reply,
                } => {
                    let mut entry = self.apply_op(op, subject);
                    entry.key = key.map(|key| *key);
                    entries.push(entry);
                    if let Some(reply) = reply {
                        let index = entries.len() - 1;
                        waiting.push(Waiting::Command { index, reply });
                    }
                }
                Request::EnsureUser { user_id, reply } => {
                    let answer = self.ensure_user(user_id, &mut entries);
                    waiting.push(Waiting::User { answer, reply });
                }
                read => self.answer_read(read).await,
            }
        }
        if entries.is_empty() {
            // Only answers from memory (users that already exist): nothing to commit.
            self.answer_all(waiting, &entries);
            return Ok(());
        }
        let rejected = entries.iter().filter(|entry| entry.result.is_err()).count() as u64;
        let started = Instant::now();
        let committed = self.commit(&entries, first_seq).await;
        match committed {
            Ok(()) => {
                let elapsed = started.elapsed();
                self.metrics
                    .record_batch(entries.len() as u64, rejected, elapsed);
                self.metrics.last_seq.store(self.seq, Ordering::Relaxed);
                self.metrics
                    .open_orders
                    .store(self.engine.open_order_count() as u64, Ordering::Relaxed);
                let mut known = self
                    .known_users
                    .write()
                    .unwrap_or_else(PoisonError::into_inner);
                known.extend(self.created_users.drain(..));
                drop(known);
                self.answer_all(waiting, &entries);
                Ok(())
            }
            Err(error) => {
                // Mark the failure before anyone hears of it, so readyz already says so.
                let _ = self.status.send(Status::Failed);
                self.metrics.sequencer_up.store(0, Ordering::Relaxed);
                self.metrics
                    .commit_failures_total
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    %error,
                    first_seq,
                    last_seq = self.seq,
                    users_created = self.created_users.len(),
                    "BATCH COMMIT FAILED: the sequencer stops taking writes; restart the server to recover from the journal"
                );
                for waiting in waiting {
                    waiting.stop();
                }
                Err(())
            }
        }
    }

    /// Answers a read from the engine as it stands (between batches: the committed state).
    async fn answer_read(&mut self, request: Request) {
        // A submitter that went away no longer wants the answer.
        match request {
            Request::QueuePositions { orders, reply } => {
                let positions = orders
                    .iter()
                    .map(|order| self.engine.queue_position(*order))
                    .collect();
                let _ = reply.send(Ok(positions));
            }
            Request::Snapshot { reply } => {
                let _ = reply.send(self.snapshot_now().await);
            }
            Request::Command { .. } | Request::EnsureUser { .. } => {}
        }
    }

    /// Stores a snapshot of the committed state (on request, and at shutdown), unless the last
    /// one already is of it.
    async fn snapshot_now(&mut self) -> Result<SnapshotTaken, SequencerError> {
        let state_hash = if self.seq > self.seq_at_snapshot {
            let state_hash = projection::store_snapshot(&self.db, &self.engine, self.seq)
                .await
                .map_err(|error| SequencerError::Snapshot(error.to_string()))?;
            self.seq_at_snapshot = self.seq;
            tracing::info!(seq = self.seq, "snapshot stored");
            state_hash
        } else {
            self.engine.state_hash()
        };
        Ok(SnapshotTaken {
            seq: self.seq,
            state_hash: projection::hash_hex(state_hash),
        })
    }

    /// Sends every committed answer (a submitter may have gone: the command stands regardless).
    fn answer_all(&self, waiting: Vec<Waiting>, entries: &[Entry]) {
        for waiting in waiting {
            match waiting {
                Waiting::Command { index, reply } => {
                    let _ = reply.send(Ok(self.applied(&entries[index])));
                }
                Waiting::User { answer, reply } => {
                    let _ = reply.send(answer);
                }
            }
        }
    }

    /// A committed command's outcome, with its user's orders as the batch left them.
    fn applied(&self, entry: &Entry) -> Applied {
        let mut orders = BTreeMap::new();
        if let Some(user) = commanding_user(&entry.command.op) {
            let states = self.feed.orders();
            for order in entry.events.iter().flat_map(orders_of) {
                if orders.contains_key(&order) || states.owner(order) != Some(user) {
                    continue;
                }
                let Some(mut body) = states.body(order) else {
                    continue;
                };
                if body.rests() {
                    body.queue_position = self.engine.queue_position(order);
                }
                let fills = states.batch_fills(order).to_vec();
                orders.insert(order, OrderView { body, fills });
            }
        }
        Applied {
            seq: entry.seq,
            ts_micros: entry.command.ts_micros,
            result: entry.result,
            events: entry.events.clone(),
            orders,
        }
    }

    /// The engine user of `user_id`, created (and journaled) when it has none.
    fn ensure_user(
        &mut self,
        user_id: Uuid,
        entries: &mut Vec<Entry>,
    ) -> Result<UserId, SequencerError> {
        if let Some(user) = self.users.get(&user_id) {
            return Ok(*user);
        }
        let entry = self.apply_op(Op::CreateUser, Some(Subject::User { user_id }));
        let created = entry.events.iter().find_map(|event| match event {
            Event::UserCreated { user } => Some(*user),
            _ => None,
        });
        let answer = match (entry.result, created) {
            (Ok(()), Some(user)) => {
                self.users.insert(user_id, user);
                self.created_users.push((user_id, user));
                Ok(user)
            }
            (Err(reject), _) => Err(SequencerError::Rejected(reject)),
            (Ok(()), None) => Err(SequencerError::Invalid("CreateUser created no user")),
        };
        entries.push(entry);
        answer
    }

    fn apply_op(&mut self, op: Op, subject: Option<Subject>) -> Entry {
        let command = Command {
            ts_micros: self.clock.next(),
            op,
        };
        self.events.clear();
        let result = self.engine.apply(&command, &mut self.events);
        self.seq += 1;
        self.deadlines
            .after_command(&self.events, command.ts_micros);
        Entry {
            seq: self.seq,
            command,
            result,
            events: self.events.clone(),
            subject,
            key: None,
        }
    }

    async fn commit(
        &mut self,
        entries: &[Entry],
        first_seq: u64,
    ) -> Result<(), projection::CommitError> {
        let snapshot = if self.seq - self.seq_at_snapshot >= self.config.snapshot_every {
            let bytes = projection::encode_snapshot(&self.engine)?;
            Some((bytes, self.engine.state_hash()))
        } else {
            None
        };
        let interpret::Interpreted { projection, plan } = interpret::interpret(
            entries,
            &self.engine,
            &self.link,
            &mut self.costs,
            self.db.backend,
            &mut self.feed,
        )?;
        debug_assert_eq!(
            self.feed.orders().first_difference(
                &self.engine,
                entries
                    .iter()
                    .flat_map(|entry| entry.events.iter().flat_map(orders_of))
            ),
            None,
            "the order states must follow the engine"
        );
        let link = projection.link.clone();
        let batch = projection::Batch {
            first_seq,
            last_seq: self.seq,
            snapshot,
            committed_at: now_micros(),
        };
        let with_snapshot = batch.snapshot.is_some();
        projection::commit(&self.db, projection, batch).await?;
        self.link = link;
        let now = i64::try_from(self.clock.now()).unwrap_or(i64::MAX);
        let messages = plan.finish(&mut self.market_data.write(), now);
        self.publisher.publish(messages);
        if with_snapshot {
            self.seq_at_snapshot = self.seq;
            tracing::info!(seq = self.seq, "snapshot stored");
        }
        Ok(())
    }

    /// Fail-stop: answer `Stopped` to everything still queued and keep the channel closed.
    async fn fail(self, mut rx: mpsc::Receiver<Request>) {
        let _ = self.status.send(Status::Failed);
        self.metrics.sequencer_up.store(0, Ordering::Relaxed);
        rx.close();
        while let Some(request) = rx.recv().await {
            request.stop();
        }
    }
}

/// A reply waiting for its batch's commit.
enum Waiting {
    /// The command at `index` among the batch's entries.
    Command {
        index: usize,
        reply: Answer<Applied>,
    },
    User {
        answer: Result<UserId, SequencerError>,
        reply: Answer<UserId>,
    },
}

impl Waiting {
    fn stop(self) {
        match self {
            Waiting::Command { reply, .. } => {
                let _ = reply.send(Err(SequencerError::Stopped));
            }
            Waiting::User { reply, .. } => {
                let _ = reply.send(Err(SequencerError::Stopped));
            }
        }
    }
}

impl Request {
    /// Answers `Stopped` (the task is failing).
    fn stop(self) {
        match self {
            Request::Command { reply, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(SequencerError::Stopped));
                }
            }
            Request::EnsureUser { reply, .. } => {
                let _ = reply.send(Err(SequencerError::Stopped));
            }
            Request::QueuePositions { reply, .. } => {
                let _ = reply.send(Err(SequencerError::Stopped));
            }
            Request::Snapshot { reply } => {
                let _ = reply.send(Err(SequencerError::Stopped));
            }
        }
    }
}

/// The user a trading command acts for.
fn commanding_user(op: &Op) -> Option<UserId> {
    match op {
        Op::Place(order) => Some(order.user),
        Op::Cancel { user, .. }
        | Op::CancelAll { user, .. }
        | Op::Amend { user, .. }
        | Op::Batch { user, .. } => Some(*user),
        _ => None,
    }
}

/// The orders an event is about.
fn orders_of(event: &Event) -> impl Iterator<Item = OrderId> {
    let (first, second) = match event {
        Event::OrderAccepted { order, .. }
        | Event::OrderReplayed { order, .. }
        | Event::OrderRested { order, .. }
        | Event::OrderReduced { order, .. }
        | Event::OrderAmended { order, .. }
        | Event::OrderEnded { order, .. } => (Some(*order), None),
        Event::Trade {
            maker_order,
            taker_order,
            ..
        } => (Some(*taker_order), Some(*maker_order)),
        _ => (None, None),
    };
    first.into_iter().chain(second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sequencer_that_panics_is_marked_failed_not_left_running() {
        let (status, watched) = watch::channel(Status::Running);
        let metrics = Arc::new(Metrics::default());
        metrics.sequencer_up.store(1, Ordering::Relaxed);
        let watch = Watch {
            status: Arc::new(status),
            metrics: metrics.clone(),
        };
        let handle = SequencerHandle {
            tx: mpsc::channel(1).0,
            status: watched,
            metrics: metrics.clone(),
            users: KnownUsers::default(),
            market_data: SharedMarketData::default(),
        };
        let (_abort, ended) = spawn_on_own_thread(async { panic!("a bug") }, watch)
            .await
            .unwrap();
        assert!(ended.await.unwrap().unwrap_err().is_panic());
        tokio::time::timeout(std::time::Duration::from_secs(5), handle.failed())
            .await
            .expect("the failure is seen");
        assert_eq!(handle.status(), Status::Failed);
        assert_eq!(metrics.sequencer_up.load(Ordering::Relaxed), 0);
    }
}

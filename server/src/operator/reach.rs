//! Reaching the exchange an operator command acts on, and acting as one of its admins.
//!
//! Whoever holds the database's writer lock is the one process that may sequence commands. If
//! nobody does, the command starts the whole server in this process, on a loopback port, and
//! holds the lock until it is done; if a server holds it, the command talks to that server.
//! Either way every change goes through the same HTTP API and the same sequencer, so it is
//! journaled like any other: this module must never write engine state to the database itself.
//! It acts as an admin through a short-lived session it opens for the admin account and closes
//! when done, with an access token signed by the configured `JWT_SECRET`.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::app::{self, Server};
use crate::auth::jwt::Keys;
use crate::auth::session;
use crate::config::Config;
use crate::db::Db;
use crate::domain::Email;
use crate::users::{self, Role};
use crate::writer_lock::{LockError, WriterLock};

use super::Failure;

/// The admin session lives no longer than a command could take.
const SESSION_TTL: Duration = Duration::from_secs(600);

/// The exchange, started here or found running.
pub enum Exchange {
    /// Nobody held the writer lock: the server runs in this process until `close`.
    Here(Box<Server>),
    /// A server holds the lock: reached at its URL, with a pool of our own for reads.
    Running { base_url: String, db: Db },
}

impl Exchange {
    /// Starts the server here when the database is free, else finds the one running on it.
    pub async fn reach(config: &Config, url: Option<&str>) -> Result<Exchange, Failure> {
        match WriterLock::acquire(&config.storage, Duration::ZERO).await {
            Ok(lock) => {
                let mut config = config.clone();
                config.bind_addr = "127.0.0.1:0".parse().expect("literal");
                let server = app::start_holding(config, lock)
                    .await
                    .map_err(Failure::unavailable)?;
                Ok(Exchange::Here(Box::new(server)))
            }
            Err(LockError::Held(_)) => {
                let base_url = match url {
                    Some(url) => url.trim_end_matches('/').to_owned(),
                    None => local_url(config),
                };
                let db = Db::connect(&config.storage, 2)
                    .await
                    .map_err(Failure::unavailable)?;
                Ok(Exchange::Running { base_url, db })
            }
            Err(error) => Err(Failure::unavailable(error)),
        }
    }

    pub fn db(&self) -> &Db {
        match self {
            Exchange::Here(server) => server.db(),
            Exchange::Running { db, .. } => db,
        }
    }

    pub fn base_url(&self) -> String {
        match self {
            Exchange::Here(server) => format!("http://{}", server.local_addr()),
            Exchange::Running { base_url, .. } => base_url.clone(),
        }
    }

    /// Whether the server runs in this process (commands then see their engine accounts made
    /// at once, not at the running server's next use of them).
    pub fn server_here(&self) -> Option<&Server> {
        match self {
            Exchange::Here(server) => Some(server),
            Exchange::Running { .. } => None,
        }
    }

    /// Stops a server started here (committing, snapshotting, releasing the lock).
    pub async fn close(self) {
        match self {
            Exchange::Here(server) => server.shutdown().await,
            Exchange::Running { db, .. } => db.pool.close().await,
        }
    }
}

/// Where a server bound to `BIND_ADDR` answers on this machine.
fn local_url(config: &Config) -> String {
    let mut addr = config.bind_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

/// An admin's session on the exchange, for API calls.
pub struct AdminSession {
    client: reqwest::Client,
    base_url: String,
    token: String,
    session_id: Uuid,
}

impl AdminSession {
    /// Opens a session for the admin `as_email`, else `ADMIN_EMAIL`, else the oldest admin.
    pub async fn open(
        exchange: &Exchange,
        config: &Config,
        as_email: Option<&str>,
    ) -> Result<AdminSession, Failure> {
        let db = exchange.db();
        let wanted = as_email.or(config.admin.as_ref().map(|admin| admin.email.as_str()));
        let user_id = match wanted {
            Some(raw) => {
                let email = Email::parse(raw).map_err(|error| Failure::Usage(error.to_string()))?;
                let user = users::by_email(db, &email).await.map_err(Failure::from)?;
                match user {
                    Some(user) if user.role == Role::Admin => user.id,
                    Some(_) => return Err(Failure::Usage(format!("{raw} is not an admin"))),
                    None => return Err(Failure::Usage(format!("no account has the email {raw}"))),
                }
            }
            None => oldest_admin(db).await?.ok_or_else(|| {
                Failure::Usage(
                    "no admin account: create one with `server admin create-admin`".to_owned(),
                )
            })?,
        };
        let issued = session::open(db, user_id, SESSION_TTL)
            .await
            .map_err(Failure::from)?;
        let token = Keys::new(&config.auth)
            .issue(user_id, issued.session_id)
            .map_err(Failure::from)?;
        Ok(AdminSession {
            client: reqwest::Client::new(),
            base_url: exchange.base_url(),
            token,
            session_id: issued.session_id,
        })
    }

    /// Sends `body` and answers the JSON reply of a 2xx; anything else is the API's error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut request = self
            .client
            .request(method, format!("{}/v1{path}", self.base_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|error| {
            Failure::Unavailable(format!(
                "cannot reach the server at {}: {error}",
                self.base_url
            ))
        })?;
        let status = response.status();
        let text = response.text().await.map_err(Failure::unavailable)?;
        if !status.is_success() {
            return Err(Failure::Refused(format!("{status}: {text}")));
        }
        serde_json::from_str(&text)
            .map_err(|error| Failure::Unavailable(format!("an answer that is not JSON: {error}")))
    }

    /// Ends the session (its token is refused from now on).
    pub async fn close(self, db: &Db) {
        if let Err(error) = session::revoke(db, self.session_id, "admin command done").await {
            tracing::warn!(%error, "cannot revoke the admin command's session");
        }
    }
}

async fn oldest_admin(db: &Db) -> Result<Option<Uuid>, Failure> {
    let id: Option<String> =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1")
            .fetch_optional(&db.pool)
            .await
            .map_err(Failure::unavailable)?;
    id.map(|id| Uuid::parse_str(&id).map_err(Failure::unavailable))
        .transpose()
}

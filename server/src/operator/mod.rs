//! `server admin ...`: the operator's command line, on the configured database.
//!
//! Reads the same configuration as the server (environment and `.env`). Commands that change
//! the exchange (`create-market`, `resolve`, `deposit`, `snapshot`) go through the HTTP API of
//! the server that holds the database (started in this process when none runs: `reach`), so
//! they are journaled and sequenced like a trader's. `create-admin` writes an account the way
//! registration does. `verify`, `backup`, `restore` and `export` read the database under the
//! writer lock or from a consistent copy. Must never write engine state behind the sequencer.
//!
//! Exit status: 0 done, 1 refused or failed (the reason on standard error), 2 a usage or
//! configuration problem.

mod backup;
mod export;
mod import;
mod reach;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reqwest::Method;
use serde_json::{json, Value};

use crate::config::Config;
use crate::domain::{Email, FullName, Password};
use crate::users::Role;
use reach::{AdminSession, Exchange};

/// Why a command did not do what it was asked.
#[derive(Debug)]
pub enum Failure {
    /// The command or the configuration is wrong.
    Usage(String),
    /// The database or the server cannot be used.
    Unavailable(String),
    /// The exchange refused (the API's error).
    Refused(String),
    /// `verify` (or a restore's verification) found a difference.
    Differs(String),
}

impl Failure {
    /// The database, the server or the file system failed under the command.
    pub(crate) fn unavailable(error: impl std::fmt::Display) -> Failure {
        Failure::Unavailable(error.to_string())
    }
}

/// A SQLite database must exist to be read (connecting would create an empty one).
fn require_database(storage: &crate::config::Storage) -> Result<(), Failure> {
    match storage {
        crate::config::Storage::Sqlite(path) if !path.exists() => {
            Err(Failure::Usage(format!("{} does not exist", path.display())))
        }
        _ => Ok(()),
    }
}

/// The account named by `user`: its id, or its email.
async fn account(db: &crate::db::Db, user: &str) -> Result<crate::users::User, Failure> {
    let found = match uuid::Uuid::parse_str(user.trim()) {
        Ok(id) => crate::users::by_id(db, id).await?,
        Err(_) => {
            let email = Email::parse(user).map_err(|error| Failure::Usage(error.to_string()))?;
            crate::users::by_email(db, &email).await?
        }
    };
    found.ok_or_else(|| Failure::Usage(format!("no account is {user}")))
}

impl From<crate::http::Error> for Failure {
    fn from(error: crate::http::Error) -> Failure {
        Failure::unavailable(error)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Usage(why) => write!(f, "usage: {why}"),
            Failure::Unavailable(why) => write!(f, "cannot proceed: {why}"),
            Failure::Refused(why) => write!(f, "refused: {why}"),
            Failure::Differs(why) => write!(f, "VERIFY FAILED: {why}"),
        }
    }
}

#[derive(Parser)]
#[command(
    name = "server admin",
    about = "Operate the exchange on the configured database (DATABASE_URL or DATA_DIR), \
             whether or not a server is running on it."
)]
struct Admin {
    /// A running server's base URL, when it is not at BIND_ADDR on this machine.
    #[arg(long, global = true)]
    url: Option<String>,
    /// The admin account to act as (default: ADMIN_EMAIL, else the oldest admin).
    #[arg(long = "as", global = true, value_name = "EMAIL")]
    as_email: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an admin account; the password is read from standard input (one line).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
    /// Create a market (prints it).
    CreateMarket {
        #[arg(long)]
        slug: String,
        #[arg(long)]
        question: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, default_value = "0.01")]
        tick_size: String,
        #[arg(long, default_value_t = 1)]
        min_qty: u64,
        #[arg(long, default_value_t = 1_000_000)]
        max_qty: u64,
        #[arg(long, default_value = "0")]
        maker_fee_rate: String,
        #[arg(long, default_value = "0")]
        taker_fee_rate: String,
        /// RFC 3339, in the future.
        #[arg(long)]
        closes_at: Option<String>,
    },
    /// Resolve a market (by slug or id): YES, NO, or SPLIT with --yes-payout.
    Resolve {
        market: String,
        #[arg(long)]
        outcome: String,
        #[arg(long)]
        yes_payout: Option<String>,
    },
    /// Credit a user's cash (the user by email or id).
    Deposit {
        #[arg(long)]
        user: String,
        #[arg(long)]
        amount: String,
    },
    /// Store a snapshot of the committed state now.
    Snapshot,
    /// Replay the journal from empty and from the latest snapshot and check every projection;
    /// exits 1 on any difference.
    Verify,
    /// Copy the database into DIR (online), then verify the copy.
    Backup { dir: PathBuf },
    /// Restore a backup from DIR into the configured, empty database, then verify it.
    Restore { dir: PathBuf },
    /// Import users, balances, markets and positions from JSON lines (docs/IMPORT.md) into a
    /// stopped exchange; checks the whole file first and writes nothing if any record is bad.
    Import {
        file: PathBuf,
        /// How long the reset tokens of accounts without a usable password hash work.
        #[arg(long, default_value_t = crate::auth::password_reset::RESET_TTL_DEFAULT_HOURS)]
        reset_ttl_hours: u64,
    },
    /// Issue a one-time password-reset token for an account (printed; hand it over privately).
    PasswordReset {
        #[arg(long)]
        user: String,
        #[arg(long, default_value_t = crate::auth::password_reset::RESET_TTL_DEFAULT_HOURS)]
        ttl_hours: u64,
    },
    /// Print users, balances, markets, positions and trades as JSON lines.
    Export {
        /// Include users' password hashes (argon2id; keep the file as secret as the database).
        #[arg(long)]
        with_password_hashes: bool,
    },
}

/// Runs `server admin <args>` (`args` without the program name and `admin`).
pub async fn main(args: Vec<String>) -> ExitCode {
    let admin = match Admin::try_parse_from(std::iter::once("server admin".to_owned()).chain(args))
    {
        Ok(admin) => admin,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    match run(admin, &config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            match failure {
                Failure::Usage(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

async fn run(admin: Admin, config: &Config) -> Result<(), Failure> {
    match admin.command {
        Command::CreateAdmin { email, name } => create_admin(config, &email, &name).await,
        Command::Verify => backup::verify_configured(config).await,
        Command::Backup { dir } => backup::backup(config, &dir).await,
        Command::Restore { dir } => backup::restore(config, &dir).await,
        Command::Export {
            with_password_hashes,
        } => export::export(config, with_password_hashes).await,
        Command::Import {
            file,
            reset_ttl_hours,
        } => import::import(config, &file, reset_ttl_hours).await,
        Command::PasswordReset { user, ttl_hours } => {
            password_reset(config, &user, ttl_hours).await
        }
        command => {
            let exchange = Exchange::reach(config, admin.url.as_deref()).await?;
            let done = act(&exchange, config, admin.as_email.as_deref(), command).await;
            exchange.close().await;
            print_json(&done?);
            Ok(())
        }
    }
}

/// The commands that go through the API, as an admin.
async fn act(
    exchange: &Exchange,
    config: &Config,
    as_email: Option<&str>,
    command: Command,
) -> Result<Value, Failure> {
    let (method, path, body) = match command {
        Command::CreateMarket {
            slug,
            question,
            description,
            tick_size,
            min_qty,
            max_qty,
            maker_fee_rate,
            taker_fee_rate,
            closes_at,
        } => {
            let mut body = json!({
                "slug": slug, "question": question, "description": description,
                "tickSize": tick_size, "minQty": min_qty, "maxQty": max_qty,
                "makerFeeRate": maker_fee_rate, "takerFeeRate": taker_fee_rate,
            });
            if let Some(closes_at) = closes_at {
                body["closesAt"] = json!(closes_at);
            }
            (Method::POST, "/markets".to_owned(), Some(body))
        }
        Command::Resolve {
            market,
            outcome,
            yes_payout,
        } => {
            let mut body = json!({ "outcome": outcome.to_uppercase() });
            if let Some(payout) = yes_payout {
                body["yesPayout"] = json!(payout);
            }
            let path = format!("/markets/{}/resolve", path_segment(&market)?);
            (Method::POST, path, Some(body))
        }
        Command::Deposit { user, amount } => {
            let user_id = account(exchange.db(), &user).await?.id;
            let body = json!({ "userId": user_id, "amount": amount });
            (Method::POST, "/transfers/deposit".to_owned(), Some(body))
        }
        Command::Snapshot => (Method::POST, "/admin/snapshot".to_owned(), None),
        Command::CreateAdmin { .. }
        | Command::Verify
        | Command::Backup { .. }
        | Command::Restore { .. }
        | Command::Import { .. }
        | Command::PasswordReset { .. }
        | Command::Export { .. } => unreachable!("run handles these"),
    };
    let session = AdminSession::open(exchange, config, as_email).await?;
    let answer = session.call(method, &path, body).await;
    session.close(exchange.db()).await;
    answer
}

/// A market slug or id, checked so it cannot change the path it goes in.
fn path_segment(market: &str) -> Result<&str, Failure> {
    let ok = !market.is_empty()
        && market
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(market)
    } else {
        Err(Failure::Usage(format!(
            "{market:?} is not a market slug or id"
        )))
    }
}

/// Creates an admin account with the password on standard input. On a stopped exchange its
/// engine account is opened now; a running server opens it on first use, as for any account.
async fn create_admin(config: &Config, email: &str, name: &str) -> Result<(), Failure> {
    let email = Email::parse(email).map_err(|error| Failure::Usage(error.to_string()))?;
    let full_name = FullName::parse(name).map_err(|error| Failure::Usage(error.to_string()))?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|error| Failure::Usage(format!("cannot read the password: {error}")))?;
    let raw = line.trim_end_matches(['\r', '\n']).to_owned();
    let password = Password::parse(raw, &email)
        .map_err(|error| Failure::Usage(format!("password: {error}")))?;
    let exchange = Exchange::reach(config, None).await?;
    let created = match exchange.server_here() {
        Some(server) => {
            crate::auth::create_user(server.state(), &email, &full_name, &password, Role::Admin)
                .await
        }
        None => match crate::auth::password::hash(password.expose().to_owned()).await {
            Ok(hash) => {
                crate::users::insert(exchange.db(), &email, &full_name, hash, Role::Admin).await
            }
            Err(error) => Err(error),
        },
    };
    exchange.close().await;
    let user = created.map_err(|error| Failure::Refused(error.to_string()))?;
    print_json(&json!({ "id": user.id, "email": user.email, "role": "admin" }));
    Ok(())
}

/// A reset token for the account `user` (an email or id); the database only, whether or not a
/// server runs.
async fn password_reset(config: &Config, user: &str, ttl_hours: u64) -> Result<(), Failure> {
    require_database(&config.storage)?;
    let db = crate::db::Db::connect(&config.storage, 1)
        .await
        .map_err(Failure::unavailable)?;
    let issued = async {
        let found = account(&db, user).await?;
        let issued = crate::auth::password_reset::issue(&db, found.id, ttl_hours).await?;
        Ok::<_, Failure>(json!({
            "email": found.email,
            "token": issued.token,
            "expiresAt": issued.expires_at,
        }))
    }
    .await;
    db.pool.close().await;
    print_json(&issued?);
    Ok(())
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

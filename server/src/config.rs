//! Configuration: read once from the environment at start, validated as a whole.
//!
//! Owns every knob the server has and its default. `Config::from_vars` collects *all* problems
//! before failing, so an operator fixes a bad `.env` in one go. It must never be read again
//! after start (no hidden `std::env::var` calls elsewhere) and never log secrets: `Secret`
//! prints as `[redacted]`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;

/// Shortest JWT secret accepted: 256 bits, the HS256 key size.
pub const JWT_SECRET_BYTES_MIN: usize = 32;
pub const SEQUENCER_QUEUE_MAX: usize = 1_000_000;
pub const BATCH_COMMANDS_MAX: usize = 10_000;
const _: () = assert!(BATCH_COMMANDS_MAX <= SEQUENCER_QUEUE_MAX);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
    /// An embedded SQLite database file.
    Sqlite(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Bytes that must not reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Debug)]
pub struct AuthConfig {
    pub jwt_secret: Secret,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Cookies get `Secure` (only sent over TLS).
    pub cookie_secure: bool,
}

#[derive(Clone, Debug)]
pub struct AdminBootstrap {
    pub email: String,
    pub password: Secret,
}

#[derive(Clone, Copy, Debug)]
pub struct SequencerConfig {
    /// Commands waiting for the engine; a full queue answers 503.
    pub queue_capacity: usize,
    /// Most commands applied and committed in one transaction.
    pub batch_max: usize,
    /// A snapshot is stored with the first batch that ends this many commands after the last.
    pub snapshot_every: u64,
    /// How often the sequencer checks for due GTD expiries and market closes.
    pub tick_interval: Duration,
}

impl Default for SequencerConfig {
    fn default() -> SequencerConfig {
        SequencerConfig {
            queue_capacity: 4_096,
            batch_max: 1_000,
            snapshot_every: 10_000,
            tick_interval: Duration::from_millis(250),
        }
    }
}

/// How much test cash the faucet hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaucetConfig {
    /// The most one call may credit (`FAUCET_MAX_AMOUNT`).
    pub per_call_micros: i64,
    /// The most one user may take in any 24 hours (`FAUCET_DAILY_MAX_AMOUNT`, default ten calls).
    pub per_day_micros: i64,
}

/// Faucet calls a day the daily total allows when `FAUCET_DAILY_MAX_AMOUNT` is unset.
const FAUCET_CALLS_PER_DAY_DEFAULT: i64 = 10;

#[derive(Clone, Debug)]
pub struct Config {
    pub env: AppEnv,
    pub bind_addr: SocketAddr,
    pub storage: Storage,
    pub data_dir: PathBuf,
    pub db_max_connections: u32,
    pub auth: AuthConfig,
    pub admin: Option<AdminBootstrap>,
    pub sequencer: SequencerConfig,
    /// Longest wait for in-flight requests at shutdown before connections are cut.
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// The dev faucet (`POST /v1/transfers/faucet`). `None` (the default, `FAUCET_MAX_AMOUNT`
    /// unset, and always in production) means the endpoint does not exist.
    pub faucet: Option<FaucetConfig>,
    /// Browser origins allowed to call the API cross-origin (`CORS_ALLOWED_ORIGINS`, comma
    /// separated, like `https://app.example.com`). Empty: same-origin only.
    pub cors_allowed_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client (`TRUSTED_PROXIES`, comma-separated IPs
    /// or CIDRs, like `10.0.0.0/8,127.0.0.1`). Empty: the peer address is the client, and the
    /// header is ignored (anyone can send it).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `RATE_LIMIT_AUTH_PER_MINUTE`, `RATE_LIMIT_READS_PER_SECOND`, `RATE_LIMIT_READS_IN_FLIGHT`
    /// (per client IP), `RATE_LIMIT_ORDERS_PER_SECOND` and `RATE_LIMIT_FAUCET_PER_MINUTE` (per
    /// user).
    pub limits: crate::limits::LimitsConfig,
    pub streams: StreamsConfig,
}

/// What this instance is: the one primary (owns the engine) or a read-only gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Primary,
    /// No engine: REST reads from the database, streams relayed from Redis, writes refused.
    Gateway,
}

/// Real-time streams (`/v1/ws`) and their fan-out.
#[derive(Clone, Debug)]
pub struct StreamsConfig {
    /// `SERVER_ROLE`: `primary` (default) or `gateway`.
    pub role: Role,
    /// `REDIS_URL`: where the primary publishes and gateways subscribe (required by a gateway).
    pub redis_url: Option<String>,
    /// `REDIS_CHANNEL`: the pub/sub channel of this exchange's instances (default
    /// `predex:stream`; separate exchanges on one Redis need separate channels).
    pub redis_channel: String,
    /// `WS_PING_SECS`: how often the server pings each connection.
    pub ping_interval: Duration,
    /// `WS_IDLE_TIMEOUT_SECS`: a connection that sends nothing (not even a pong) this long is
    /// closed as dead.
    pub idle_timeout: Duration,
    /// `WS_SEND_QUEUE`: messages queued per connection before it is cut off as too slow.
    pub send_queue: usize,
    /// `STREAM_HISTORY_MAX_BYTES`: what all topics' resume histories may hold together.
    pub history_bytes_max: usize,
}

impl Default for StreamsConfig {
    fn default() -> StreamsConfig {
        StreamsConfig {
            role: Role::Primary,
            redis_url: None,
            redis_channel: "predex:stream".to_owned(),
            ping_interval: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(45),
            send_queue: 4_096,
            history_bytes_max: crate::stream::hub::HISTORY_BYTES_DEFAULT,
        }
    }
}

/// Everything wrong with the environment, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    /// Reads the process environment (after `.env`, which `main` loads).
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads variables through `var`; in development, a missing `JWT_SECRET` is generated and
    /// persisted under the data directory so tokens survive restarts.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut reader = Reader {
            var: &var,
            problems: Vec::new(),
        };
        let env = match reader.get("APP_ENV").as_deref() {
            None | Some("development") | Some("dev") => AppEnv::Development,
            Some("production") | Some("prod") => AppEnv::Production,
            Some(other) => {
                reader.problem(format!(
                    "APP_ENV: expected `development` or `production`, got `{other}`"
                ));
                AppEnv::Development
            }
        };
        let bind_addr = reader.parse("BIND_ADDR", "127.0.0.1:8080".parse().expect("literal"));
        let data_dir = PathBuf::from(reader.get("DATA_DIR").unwrap_or_else(|| "./data".into()));
        let storage = reader.storage(&data_dir);
        let db_max_connections = reader.parse_in("DB_MAX_CONNECTIONS", 10u32, 1..=1_000);
        let auth = reader.auth(env, &data_dir);
        let admin = reader.admin();
        let sequencer = SequencerConfig {
            queue_capacity: reader.parse_in("SEQUENCER_QUEUE", 4_096, 1..=SEQUENCER_QUEUE_MAX),
            batch_max: reader.parse_in("BATCH_MAX", 1_000, 1..=BATCH_COMMANDS_MAX),
            snapshot_every: reader.parse_in("SNAPSHOT_EVERY", 10_000, 1..=100_000_000),
            tick_interval: Duration::from_millis(reader.parse_in("TICK_MS", 250, 10..=1_000)),
        };
        let shutdown_grace =
            Duration::from_secs(reader.parse_in("SHUTDOWN_GRACE_SECS", 10, 0..=600));
        let log_format = match reader.get("LOG_FORMAT").as_deref() {
            None => match env {
                AppEnv::Production => LogFormat::Json,
                AppEnv::Development => LogFormat::Pretty,
            },
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                reader.problem(format!(
                    "LOG_FORMAT: expected `json` or `pretty`, got `{other}`"
                ));
                LogFormat::Pretty
            }
        };
        let faucet = reader.faucet(env);
        let cors_allowed_origins = reader.origins();
        let trusted_proxies = reader.proxies();
        let defaults = crate::limits::LimitsConfig::default();
        let limits = crate::limits::LimitsConfig {
            auth_per_minute: reader.rate("RATE_LIMIT_AUTH_PER_MINUTE", defaults.auth_per_minute),
            orders_per_second: reader
                .rate("RATE_LIMIT_ORDERS_PER_SECOND", defaults.orders_per_second),
            faucet_per_minute: reader
                .rate("RATE_LIMIT_FAUCET_PER_MINUTE", defaults.faucet_per_minute),
            reads_per_second: reader.rate("RATE_LIMIT_READS_PER_SECOND", defaults.reads_per_second),
            reads_in_flight: reader.rate("RATE_LIMIT_READS_IN_FLIGHT", defaults.reads_in_flight),
        };
        let streams = reader.streams();
        if !reader.problems.is_empty() {
            return Err(ConfigError {
                problems: reader.problems,
            });
        }
        let auth = auth.expect("no problems means the auth section parsed");
        Ok(Config {
            env,
            bind_addr,
            storage,
            data_dir,
            db_max_connections,
            auth,
            admin,
            sequencer,
            shutdown_grace,
            log_format,
            faucet,
            cors_allowed_origins,
            trusted_proxies,
            limits,
            streams,
        })
    }
}

/// The environment variables the server reads, and those a production start cannot do
/// without, found by reading a configuration rather than listed by hand (`server --env-vars`;
/// `.ci/run` checks the compose file and `.env.example` against them).
#[derive(Debug, PartialEq, Eq)]
pub struct Variables {
    pub read: std::collections::BTreeSet<String>,
    pub required_in_production: std::collections::BTreeSet<String>,
}

/// Read by the log filter (`telemetry`), not by `Config`.
const LOG_FILTER_VARIABLE: &str = "RUST_LOG";

impl Variables {
    pub fn of_config() -> Variables {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        // Production, so nothing is generated on disk; a secret and an admin, so what is read
        // only with them is asked for too.
        let _ = Config::from_vars(|name| {
            asked.borrow_mut().insert(name.to_owned());
            match name {
                "APP_ENV" => Some("production".into()),
                "ADMIN_EMAIL" => Some("admin@example.com".into()),
                "JWT_SECRET" => Some("0123456789abcdef".repeat(4)),
                _ => None,
            }
        });
        let mut read = asked.into_inner();
        read.insert(LOG_FILTER_VARIABLE.to_owned());
        let problems =
            match Config::from_vars(|name| (name == "APP_ENV").then(|| "production".into())) {
                Ok(_) => Vec::new(),
                Err(error) => error.problems,
            };
        let required_in_production = read
            .iter()
            .filter(|name| {
                problems
                    .iter()
                    .any(|problem| problem.starts_with(&format!("{name}:")))
            })
            .cloned()
            .collect();
        Variables {
            read,
            required_in_production,
        }
    }
}

struct Reader<'a> {
    var: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

impl Reader<'_> {
    /// A set, non-blank variable, trimmed.
    fn get(&self, name: &str) -> Option<String> {
        (self.var)(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }

    /// `FAUCET_MAX_AMOUNT`: a cash amount like "1000" turns the faucet on, up to that much a
    /// call; `FAUCET_DAILY_MAX_AMOUNT` caps a user's total over 24 hours. Free money has no
    /// place in production: setting either there is a problem, not a warning.
    fn faucet(&mut self, env: AppEnv) -> Option<FaucetConfig> {
        let per_call = self.cash("FAUCET_MAX_AMOUNT");
        let per_day = self.cash("FAUCET_DAILY_MAX_AMOUNT");
        if env == AppEnv::Production && (per_call.is_some() || per_day.is_some()) {
            self.problem(
                "FAUCET_MAX_AMOUNT/FAUCET_DAILY_MAX_AMOUNT: the faucet credits free cash and is \
                 refused with APP_ENV=production; unset them"
                    .into(),
            );
            return None;
        }
        let Some(per_call_micros) = per_call else {
            if per_day.is_some() {
                self.problem("FAUCET_DAILY_MAX_AMOUNT needs FAUCET_MAX_AMOUNT".into());
            }
            return None;
        };
        let per_day_micros =
            per_day.unwrap_or(per_call_micros.saturating_mul(FAUCET_CALLS_PER_DAY_DEFAULT));
        if per_day_micros < per_call_micros {
            self.problem("FAUCET_DAILY_MAX_AMOUNT must be at least FAUCET_MAX_AMOUNT".into());
        }
        Some(FaucetConfig {
            per_call_micros,
            per_day_micros,
        })
    }

    /// A cash amount like "1000", if set.
    fn cash(&mut self, name: &'static str) -> Option<i64> {
        let raw = self.get(name)?;
        match crate::domain::parse_transfer_amount(&raw, name) {
            Ok(micros) => Some(micros),
            Err(_) => {
                self.problem(format!(
                    "{name}: expected a cash amount like 1000, got `{raw}`"
                ));
                None
            }
        }
    }

    /// `CORS_ALLOWED_ORIGINS`: each entry a bare origin, `scheme://host[:port]` (no path, no
    /// wildcard: cookies are sent cross-origin only to origins named here).
    fn origins(&mut self) -> Vec<String> {
        let Some(raw) = self.get("CORS_ALLOWED_ORIGINS") else {
            return Vec::new();
        };
        let mut origins = Vec::new();
        for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let bare = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .is_some_and(|host| {
                    !host.is_empty()
                        && host
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
                });
            if bare {
                origins.push(origin.to_owned());
            } else {
                self.problem(format!(
                    "CORS_ALLOWED_ORIGINS: `{origin}` is not an origin like https://app.example.com"
                ));
            }
        }
        origins
    }

    /// `TRUSTED_PROXIES`: IPs (`127.0.0.1`) or networks (`10.0.0.0/8`).
    fn proxies(&mut self) -> Vec<ipnet::IpNet> {
        let Some(raw) = self.get("TRUSTED_PROXIES") else {
            return Vec::new();
        };
        let mut proxies = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let parsed = entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(net) => proxies.push(net),
                Err(_) => self.problem(format!(
                    "TRUSTED_PROXIES: `{entry}` is not an IP address or a network like 10.0.0.0/8"
                )),
            }
        }
        proxies
    }

    fn streams(&mut self) -> StreamsConfig {
        let defaults = StreamsConfig::default();
        let role = match self.get("SERVER_ROLE").as_deref() {
            None | Some("primary") => Role::Primary,
            Some("gateway") => Role::Gateway,
            Some(other) => {
                self.problem(format!(
                    "SERVER_ROLE: expected `primary` or `gateway`, got `{other}`"
                ));
                Role::Primary
            }
        };
        let redis_url = self.get("REDIS_URL");
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                self.problem(format!(
                    "REDIS_URL: expected redis://host:port, got `{url}`"
                ));
            }
        }
        if role == Role::Gateway && redis_url.is_none() {
            self.problem("SERVER_ROLE=gateway needs REDIS_URL (it streams from Redis)".into());
        }
        let ping_secs = self.parse_in("WS_PING_SECS", 15, 1..=3_600);
        let idle_secs = self.parse_in("WS_IDLE_TIMEOUT_SECS", 45, 2..=7_200);
        if idle_secs <= ping_secs {
            self.problem(format!(
                "WS_IDLE_TIMEOUT_SECS ({idle_secs}) must exceed WS_PING_SECS ({ping_secs})"
            ));
        }
        StreamsConfig {
            role,
            redis_url,
            redis_channel: self.get("REDIS_CHANNEL").unwrap_or(defaults.redis_channel),
            ping_interval: Duration::from_secs(ping_secs),
            idle_timeout: Duration::from_secs(idle_secs),
            send_queue: self.parse_in("WS_SEND_QUEUE", defaults.send_queue, 16..=1_000_000),
            history_bytes_max: self.parse_in(
                "STREAM_HISTORY_MAX_BYTES",
                defaults.history_bytes_max,
                1 << 20..=1 << 36,
            ),
        }
    }

    /// A rate: a whole number of requests from 1 to 1,000,000.
    fn rate(&mut self, name: &str, default: std::num::NonZeroU32) -> std::num::NonZeroU32 {
        let value = self.parse_in(name, default.get(), 1..=1_000_000);
        std::num::NonZeroU32::new(value).unwrap_or(default)
    }

    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    fn parse<T: std::str::FromStr>(&mut self, name: &str, default: T) -> T {
        match self.get(name) {
            None => default,
            Some(text) => match text.parse() {
                Ok(value) => value,
                Err(_) => {
                    self.problem(format!("{name}: cannot parse `{text}`"));
                    default
                }
            },
        }
    }

    fn parse_in<T>(&mut self, name: &str, default: T, range: std::ops::RangeInclusive<T>) -> T
    where
        T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
    {
        let value = self.parse(name, default);
        if !range.contains(&value) {
            self.problem(format!(
                "{name}: {value} is outside {}..={}",
                range.start(),
                range.end()
            ));
        }
        value
    }

    fn bool(&mut self, name: &str, default: bool) -> bool {
        match self.get(name).as_deref() {
            None => default,
            Some("1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                self.problem(format!("{name}: expected true or false, got `{other}`"));
                default
            }
        }
    }

    fn storage(&mut self, data_dir: &Path) -> Storage {
        match self.get("DATABASE_URL") {
            None => Storage::Sqlite(data_dir.join("predex.db")),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Storage::Postgres(url)
            }
            Some(url) if url.starts_with("sqlite:") => {
                let path = url
                    .trim_start_matches("sqlite:")
                    .trim_start_matches("//")
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if path.is_empty() || path == ":memory:" {
                    self.problem(
                        "DATABASE_URL: SQLite needs a file path (an in-memory database is not durable)"
                            .into(),
                    );
                }
                Storage::Sqlite(PathBuf::from(path))
            }
            Some(_) => {
                self.problem(
                    "DATABASE_URL: expected postgres://... or sqlite://PATH (unset means ./data/predex.db)"
                        .into(),
                );
                Storage::Sqlite(data_dir.join("predex.db"))
            }
        }
    }

    fn auth(&mut self, env: AppEnv, data_dir: &Path) -> Option<AuthConfig> {
        let jwt_secret = match self.get("JWT_SECRET") {
            Some(secret) if secret.len() >= JWT_SECRET_BYTES_MIN => {
                Some(Secret::new(secret.into_bytes()))
            }
            Some(_) => {
                self.problem(format!(
                    "JWT_SECRET: must be at least {JWT_SECRET_BYTES_MIN} bytes (try `openssl rand -hex 32`)"
                ));
                None
            }
            None if env == AppEnv::Production => {
                self.problem(
                    "JWT_SECRET: required when APP_ENV=production (a generated development secret is never used in production)"
                        .into(),
                );
                None
            }
            None => match dev_secret(data_dir) {
                Ok(secret) => Some(secret),
                Err(error) => {
                    self.problem(format!(
                        "JWT_SECRET: unset, and the development secret under {} could not be read or created: {error}",
                        data_dir.display()
                    ));
                    None
                }
            },
        };
        let access_secs = self.parse_in("ACCESS_TOKEN_TTL_SECS", 900u64, 30..=86_400);
        let refresh_secs =
            self.parse_in("REFRESH_TOKEN_TTL_SECS", 30 * 86_400u64, 60..=365 * 86_400);
        if refresh_secs <= access_secs {
            self.problem(
                "REFRESH_TOKEN_TTL_SECS: must be longer than ACCESS_TOKEN_TTL_SECS".into(),
            );
        }
        let cookie_secure = self.bool("COOKIE_SECURE", env == AppEnv::Production);
        if env == AppEnv::Production && !cookie_secure {
            self.problem("COOKIE_SECURE: must be true when APP_ENV=production".into());
        }
        Some(AuthConfig {
            jwt_secret: jwt_secret?,
            jwt_issuer: self.get("JWT_ISSUER").unwrap_or_else(|| "predex".into()),
            jwt_audience: self
                .get("JWT_AUDIENCE")
                .unwrap_or_else(|| "predex-api".into()),
            access_token_ttl: Duration::from_secs(access_secs),
            refresh_token_ttl: Duration::from_secs(refresh_secs),
            cookie_secure,
        })
    }

    fn admin(&mut self) -> Option<AdminBootstrap> {
        match (self.get("ADMIN_EMAIL"), (self.var)("ADMIN_PASSWORD")) {
            (None, None) => None,
            (Some(email), Some(password)) if !password.is_empty() => Some(AdminBootstrap {
                email,
                password: Secret::new(password.into_bytes()),
            }),
            _ => {
                self.problem("ADMIN_EMAIL and ADMIN_PASSWORD: set both or neither".into());
                None
            }
        }
    }
}

/// The development JWT secret: read from `DATA_DIR/jwt-secret`, or generated (256 random bits,
/// hex) and written there with owner-only permissions.
fn dev_secret(data_dir: &Path) -> std::io::Result<Secret> {
    let path = data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= JWT_SECRET_BYTES_MIN => {
            return Ok(Secret::new(text.trim().as_bytes().to_vec()))
        }
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is shorter than {JWT_SECRET_BYTES_MIN} bytes",
                path.display()
            )))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    std::fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    write_private(&path, hex.as_bytes())?;
    // Logging is not set up yet (its format is part of this configuration): say it plainly.
    eprintln!(
        "generated a development JWT secret in {} (set JWT_SECRET in production)",
        path.display()
    );
    Ok(Secret::new(hex.into_bytes()))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variables_read_are_found_by_reading_and_production_needs_a_secret() {
        let variables = Variables::of_config();
        for name in [
            "DATABASE_URL",
            "JWT_ISSUER",
            "ADMIN_PASSWORD",
            "WS_SEND_QUEUE",
            "RUST_LOG",
        ] {
            assert!(variables.read.contains(name), "{name}: {variables:?}");
        }
        assert!(!variables
            .read
            .iter()
            .any(|name| name.starts_with("POSTGRES_")));
        let required: Vec<&str> = variables
            .required_in_production
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(required, ["JWT_SECRET"]);
    }
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        Config::from_vars(|name| map.get(name).cloned())
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults_to_sqlite_under_the_data_dir() {
        let config = config(&[("JWT_SECRET", SECRET), ("DATA_DIR", "/tmp/x")]).unwrap();
        assert_eq!(config.storage, Storage::Sqlite("/tmp/x/predex.db".into()));
        assert_eq!(config.env, AppEnv::Development);
        assert!(!config.auth.cookie_secure);
    }

    #[test]
    fn cors_origins_are_bare_origins_or_a_startup_error() {
        let none = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert!(none.cors_allowed_origins.is_empty());
        let two = config(&[
            ("JWT_SECRET", SECRET),
            (
                "CORS_ALLOWED_ORIGINS",
                "https://app.example.com, http://localhost:5173",
            ),
        ])
        .unwrap();
        assert_eq!(
            two.cors_allowed_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/path",
            "https://",
        ] {
            let error =
                config(&[("JWT_SECRET", SECRET), ("CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert!(
                error.problems[0].starts_with("CORS_ALLOWED_ORIGINS"),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_faucet_is_off_unless_given_a_cash_limit_and_never_in_production() {
        let off = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(off.faucet, None);
        let on = config(&[("JWT_SECRET", SECRET), ("FAUCET_MAX_AMOUNT", "1000")]).unwrap();
        let ten_calls = FaucetConfig {
            per_call_micros: 1_000_000_000,
            per_day_micros: 10_000_000_000,
        };
        assert_eq!(on.faucet, Some(ten_calls));
        let capped = config(&[
            ("JWT_SECRET", SECRET),
            ("FAUCET_MAX_AMOUNT", "1000"),
            ("FAUCET_DAILY_MAX_AMOUNT", "2500"),
        ])
        .unwrap();
        assert_eq!(capped.faucet.unwrap().per_day_micros, 2_500_000_000);
        for bad in [
            vec![("FAUCET_MAX_AMOUNT", "lots")],
            vec![("FAUCET_DAILY_MAX_AMOUNT", "100")],
            vec![
                ("FAUCET_MAX_AMOUNT", "100"),
                ("FAUCET_DAILY_MAX_AMOUNT", "10"),
            ],
            vec![("FAUCET_MAX_AMOUNT", "100"), ("APP_ENV", "production")],
        ] {
            let mut vars = vec![("JWT_SECRET", SECRET)];
            vars.extend(bad.iter().copied());
            let error = config(&vars).unwrap_err();
            assert!(error.to_string().contains("FAUCET_"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn trusted_proxies_are_ips_or_networks() {
        let none = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert!(none.trusted_proxies.is_empty());
        let some = config(&[
            ("JWT_SECRET", SECRET),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1"),
        ])
        .unwrap();
        let shown: Vec<String> = some.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
        let error =
            config(&[("JWT_SECRET", SECRET), ("TRUSTED_PROXIES", "proxy.local")]).unwrap_err();
        assert!(error.to_string().contains("TRUSTED_PROXIES"), "{error}");
    }

    #[test]
    fn a_gateway_needs_redis_and_heartbeats_must_leave_room_for_a_pong() {
        let primary = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert_eq!(primary.streams.role, Role::Primary);
        assert_eq!(primary.streams.redis_url, None);
        let gateway = config(&[
            ("JWT_SECRET", SECRET),
            ("SERVER_ROLE", "gateway"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("WS_PING_SECS", "5"),
            ("WS_IDLE_TIMEOUT_SECS", "12"),
        ])
        .unwrap();
        assert_eq!(gateway.streams.role, Role::Gateway);
        assert_eq!(gateway.streams.idle_timeout, Duration::from_secs(12));
        for (vars, problem) in [
            (vec![("SERVER_ROLE", "gateway")], "needs REDIS_URL"),
            (vec![("SERVER_ROLE", "replica")], "SERVER_ROLE"),
            (vec![("REDIS_URL", "127.0.0.1:6379")], "REDIS_URL"),
            (
                vec![("WS_PING_SECS", "30"), ("WS_IDLE_TIMEOUT_SECS", "30")],
                "must exceed",
            ),
            (vec![("WS_SEND_QUEUE", "1")], "WS_SEND_QUEUE"),
        ] {
            let mut vars = vars;
            vars.push(("JWT_SECRET", SECRET));
            let error = config(&vars).unwrap_err();
            assert!(error.to_string().contains(problem), "{error}");
        }
    }

    #[test]
    fn production_refuses_to_start_without_a_jwt_secret() {
        let error = config(&[("APP_ENV", "production")]).unwrap_err();
        assert!(
            error.to_string().contains("JWT_SECRET: required"),
            "{error}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = config(&[
            ("JWT_SECRET", "short"),
            ("BIND_ADDR", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
            ("ADMIN_EMAIL", "a@b.c"),
        ])
        .unwrap_err();
        assert_eq!(error.problems.len(), 4, "{error}");
    }

    #[test]
    fn a_development_secret_is_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("predex-config-{}", uuid::Uuid::new_v4()));
        let dir_text = dir.to_str().unwrap();
        let first = config(&[("DATA_DIR", dir_text)]).unwrap();
        let second = config(&[("DATA_DIR", dir_text)]).unwrap();
        assert_eq!(first.auth.jwt_secret, second.auth.jwt_secret);
        assert!(first.auth.jwt_secret.expose().len() >= JWT_SECRET_BYTES_MIN);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn secrets_never_print() {
        let config = config(&[("JWT_SECRET", SECRET)]).unwrap();
        assert!(!format!("{config:?}").contains(SECRET));
    }
}

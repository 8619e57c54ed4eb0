//! Users: the `users` table and the public shape of a user.
//!
//! Owns inserting users (a taken email is a 409, decided by the unique index, not by a racy
//! check), finding them, roles, and the list of users whose engine account is still pending.
//! It never touches the engine: linking a user to its engine id is the sequencer's job, in the
//! same transaction as the journaled `CreateUser`.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::{is_unique_violation, now_micros, Db};
use crate::domain::{rfc3339, Email, FullName};
use crate::http::Error;

/// What an account may do: admins also create and drive markets and deposit cash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Result<Role, Error> {
        match text {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            other => Err(Error::internal(format!("unknown role {other:?} in users"))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: i64,
}

/// `GET /v1/me` and the `user` of auth answers.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = User)]
pub struct UserBody {
    pub id: Uuid,
    /// Trimmed and lower-cased.
    #[schema(format = Email)]
    pub email: String,
    pub full_name: String,
    pub role: Role,
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&User> for UserBody {
    fn from(user: &User) -> UserBody {
        UserBody {
            id: user.id,
            email: user.email.clone(),
            full_name: user.full_name.clone(),
            role: user.role,
            created_at: rfc3339(user.created_at),
        }
    }
}

const USER_COLUMNS: &str = "id, email, full_name, role, password_hash, created_at";

fn from_row(row: &AnyRow) -> Result<User, Error> {
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    Ok(User {
        id: Uuid::parse_str(&id).map_err(Error::internal)?,
        email: row.try_get("email")?,
        full_name: row.try_get("full_name")?,
        role: Role::parse(&role)?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

pub async fn insert(
    db: &Db,
    email: &Email,
    full_name: &FullName,
    password_hash: String,
    role: Role,
) -> Result<User, Error> {
    let user = User {
        id: Uuid::new_v4(),
        email: email.as_str().to_owned(),
        full_name: full_name.as_str().to_owned(),
        role,
        password_hash,
        created_at: now_micros(),
    };
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, full_name, password_hash, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(user.id.to_string())
    .bind(&user.email)
    .bind(&user.full_name)
    .bind(&user.password_hash)
    .bind(role.as_str())
    .bind(user.created_at)
    .execute(&db.pool)
    .await;
    match inserted {
        Ok(_) => Ok(user),
        Err(error) if is_unique_violation(&error) => {
            Err(Error::Conflict("an account with this email already exists"))
        }
        Err(error) => Err(error.into()),
    }
}

/// Replaces the password hash `old` with `new`; a hash changed meanwhile (a reset) is kept.
pub async fn replace_password_hash(db: &Db, id: Uuid, old: &str, new: &str) -> Result<(), Error> {
    sqlx::query(
        "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3 AND password_hash = $4",
    )
    .bind(new)
    .bind(now_micros())
    .bind(id.to_string())
    .bind(old)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn by_email(db: &Db, email: &Email) -> Result<Option<User>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    let row = sqlx::query(&sql)
        .bind(email.as_str())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_id(db: &Db, id: Uuid) -> Result<Option<User>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id.to_string())
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The engine user of `id`, if its `CreateUser` has been committed.
pub async fn engine_user(db: &Db, id: Uuid) -> Result<Option<engine::UserId>, Error> {
    let row = sqlx::query("SELECT engine_user_id FROM users WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&db.pool)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let engine_id: Option<i64> = row.try_get("engine_user_id")?;
    engine_id
        .map(|id| {
            u32::try_from(id)
                .map(engine::UserId)
                .map_err(Error::internal)
        })
        .transpose()
}

/// Users registered but not yet given an engine account (a crash or an overload in between).
pub async fn without_engine_user(db: &Db) -> Result<Vec<Uuid>, Error> {
    let rows = sqlx::query("SELECT id FROM users WHERE engine_user_id IS NULL ORDER BY created_at")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("id")?;
            Uuid::parse_str(&id).map_err(Error::internal)
        })
        .collect()
}

//! Password hashing: argon2id with OWASP's parameters (m = 19 MiB, t = 2, p = 1), PHC strings.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool (`spawn_blocking`), never on an
//! async worker, and at most `HASHES_AT_ONCE` run at a time (each takes 19 MiB: a flood of
//! logins queues for a permit instead of taking the machine's memory). Verification reads the parameters from the stored hash, so raising them later
//! keeps old hashes working. A login for an unknown email verifies against a dummy hash, so the
//! answer takes as long as for a wrong password. bcrypt hashes imported from another backend
//! verify too, and are replaced by argon2id at the first login (`is_current`); an account with
//! no hash this server can check (waiting for a password reset) takes the same time to refuse.

use std::sync::OnceLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::http::Error;

/// OWASP Password Storage Cheat Sheet, argon2id option 5: 19 MiB, 2 iterations, 1 lane.
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_LANES: u32 = 1;
/// Hashes computed at once, at most: 4 x 19 MiB.
pub const HASHES_AT_ONCE: usize = 4;

static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHES_AT_ONCE);

/// Runs `work` on the blocking pool once one of the `HASHES_AT_ONCE` permits is free.
async fn bounded<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let _permit = HASHING.acquire().await.map_err(Error::internal)?;
    tokio::task::spawn_blocking(move || {
        #[cfg(test)]
        let _probe = tests::Probe::enter();
        work()
    })
    .await
    .map_err(Error::internal)?
}

fn argon2() -> Result<Argon2<'static>, Error> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES, None)
        .map_err(Error::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> Result<String, Error> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(Error::internal)?;
    Ok(hash.to_string())
}

fn verify_blocking(password: &str, hash: &str) -> bool {
    if is_bcrypt(hash) {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            if let Ok(dummy) = dummy_hash() {
                verify_blocking(password, dummy);
            }
            false
        }
    }
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix))
}

/// The costliest bcrypt hash taken from another backend: each login with one holds a hashing
/// permit for as long as it takes (cost 12 is ~0.25 s; every step up doubles it).
pub const BCRYPT_COST_MAX: u32 = 12;

/// Whether a login can be checked against `hash` here: argon2, or a well-formed bcrypt hash of
/// cost at most `BCRYPT_COST_MAX`.
pub fn verifiable(hash: &str) -> bool {
    if is_bcrypt(hash) {
        return hash
            .parse::<bcrypt::HashParts>()
            .is_ok_and(|parts| parts.get_cost() <= BCRYPT_COST_MAX);
    }
    hash.starts_with("$argon2") && PasswordHash::new(hash).is_ok()
}

/// Whether `hash` is what `hash` makes today (else a login replaces it).
pub fn is_current(hash: &str) -> bool {
    hash.starts_with("$argon2id$")
}

pub async fn hash(password: String) -> Result<String, Error> {
    bounded(move || hash_blocking(&password)).await
}

/// Whether `password` matches `hash`; with no hash (unknown user) it checks a dummy one and
/// answers false, taking the same time.
pub async fn verify(password: String, hash: Option<String>) -> Result<bool, Error> {
    bounded(move || match hash {
        Some(hash) => Ok(verify_blocking(&password, &hash)),
        None => {
            let dummy = dummy_hash()?;
            verify_blocking(&password, dummy);
            Ok(false)
        }
    })
    .await
}

fn dummy_hash() -> Result<&'static str, Error> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_blocking("not a password anyone has: dummy for timing")?;
    Ok(DUMMY.get_or_init(|| hash))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    /// Counts hashes running at once while alive.
    pub(super) struct Probe;

    impl Probe {
        pub(super) fn enter() -> Probe {
            let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
            PEAK.fetch_max(now, Ordering::SeqCst);
            Probe
        }
    }

    impl Drop for Probe {
        fn drop(&mut self) {
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_bound_hash_at_once() {
        let logins = (0..24).map(|n| tokio::spawn(verify(format!("guess {n}"), None)));
        for login in logins {
            assert!(!login.await.unwrap().unwrap());
        }
        let peak = PEAK.load(Ordering::SeqCst);
        assert!((1..=HASHES_AT_ONCE).contains(&peak), "{peak} at once");
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = hash("correct horse battery".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify("correct horse battery".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!verify("wrong horse battery".into(), Some(hash))
            .await
            .unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
        assert!(!verify("anything".into(), Some("not a phc string".into()))
            .await
            .unwrap());
    }
}

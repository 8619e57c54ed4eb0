//! Access tokens (JWT) and CSRF tokens.
//!
//! Access tokens are HS256 JWTs with one pinned algorithm (RFC 8725): `alg: none` and any other
//! algorithm fail before the signature is looked at; `exp`, `iss`, `aud` and `sub` are required
//! and checked. A token names its session (`sid`), which the extractor checks is still live, so
//! logout and refresh-token reuse cut a token off before it expires.
//!
//! CSRF tokens are the signed double-submit pattern bound to the session: HMAC-SHA256 of the
//! session id under a key derived from the JWT secret. Must never accept a token whose algorithm
//! it did not pin, or compare secrets in variable time.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::AuthConfig;
use crate::http::Error;

type HmacSha256 = Hmac<Sha256>;

/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user's id.
    pub sub: String,
    /// The session (refresh-token family) the token was issued under.
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub access_ttl: Duration,
    csrf_key: Vec<u8>,
}

/// A verified access token.
pub struct Verified {
    pub user_id: Uuid,
    pub session_id: Uuid,
}

impl Keys {
    pub fn new(config: &AuthConfig) -> Keys {
        let secret = config.jwt_secret.expose();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            access_ttl: config.access_token_ttl,
            csrf_key: derive_key(secret, b"predex/csrf/v1"),
        }
    }

    /// A signed access token for `user_id` in `session_id`, valid for `access_ttl`.
    pub fn issue(&self, user_id: Uuid, session_id: Uuid) -> Result<String, Error> {
        let now = unix_now();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            iat: now,
            exp: now + self.access_ttl.as_secs(),
            jti: Uuid::new_v4().to_string(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(Error::internal)
    }

    pub fn verify(&self, token: &str) -> Result<Verified, Error> {
        let invalid = Error::Unauthenticated("invalid or expired access token");
        let data =
            decode::<Claims>(token, &self.decoding, &self.validation).map_err(|_| invalid)?;
        let user_id = Uuid::parse_str(&data.claims.sub);
        let session_id = Uuid::parse_str(&data.claims.sid);
        match (user_id, session_id) {
            (Ok(user_id), Ok(session_id)) => Ok(Verified {
                user_id,
                session_id,
            }),
            _ => Err(Error::Unauthenticated("invalid or expired access token")),
        }
    }

    /// The CSRF token of a session.
    pub fn csrf_token(&self, session_id: Uuid) -> String {
        URL_SAFE_NO_PAD.encode(self.csrf_mac(session_id).finalize().into_bytes())
    }

    /// Whether `presented` is the CSRF token of `session_id` (constant-time).
    pub fn csrf_valid(&self, session_id: Uuid, presented: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(presented) {
            Ok(bytes) => self.csrf_mac(session_id).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    fn csrf_mac(&self, session_id: Uuid) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.csrf_key).expect("HMAC takes any key size");
        mac.update(session_id.as_bytes());
        mac
    }
}

fn derive_key(secret: &[u8], purpose: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key size");
    mac.update(purpose);
    mac.finalize().into_bytes().to_vec()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn keys(secret: &str) -> Keys {
        Keys::new(&AuthConfig {
            jwt_secret: Secret::new(secret.as_bytes().to_vec()),
            jwt_issuer: "predex".into(),
            jwt_audience: "predex-api".into(),
            access_token_ttl: Duration::from_secs(900),
            refresh_token_ttl: Duration::from_secs(86_400),
            cookie_secure: false,
        })
    }

    #[test]
    fn a_token_verifies_only_under_its_own_secret() {
        let keys_a = keys("a-secret-that-is-long-enough-for-hs256!!");
        let keys_b = keys("another-secret-that-is-long-enough-too!!");
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys_a.issue(user, session).unwrap();
        let verified = keys_a.verify(&token).unwrap();
        assert_eq!((verified.user_id, verified.session_id), (user, session));
        assert!(keys_b.verify(&token).is_err());
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let keys = keys("a-secret-that-is-long-enough-for-hs256!!");
        let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.csrf_token(one);
        assert!(keys.csrf_valid(one, &token));
        assert!(!keys.csrf_valid(two, &token));
        assert!(!keys.csrf_valid(one, "not base64 !"));
    }
}

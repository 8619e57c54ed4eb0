//! Domain types parsed at the HTTP boundary: an `Email`, a `FullName`, a `Password` that meets
//! the policy, an API key's `KeyName`, and exact cash amounts.
//!
//! Parse, don't validate: a handler turns raw strings into these once, and nothing past it sees
//! a raw string. Every parser returns a 422 naming the field; none may panic on any input. Cash
//! is exact: a decimal string becomes integer micro-dollars or is refused, never rounded.

use std::str::FromStr;

use engine::units::{MICROS_PER_SHARE, TRANSFER_MICROS_MAX};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::http::Error;

pub const EMAIL_LEN_MAX: usize = 254;
pub const EMAIL_LOCAL_LEN_MAX: usize = 64;
pub const FULL_NAME_CHARS_MAX: usize = 100;
/// NIST SP 800-63B / OWASP: length is what matters; no composition rules.
pub const PASSWORD_CHARS_MIN: usize = 12;
/// Long enough for any passphrase, short enough that hashing stays cheap (argon2 reads it all).
pub const PASSWORD_CHARS_MAX: usize = 128;
pub const KEY_NAME_CHARS_MAX: usize = 64;
/// Decimal places a cash amount may carry (micro-dollars).
pub const CASH_DECIMALS_MAX: u32 = 6;

/// A normalized email address: trimmed and lower-cased, so `Alice@Example.com` and
/// `alice@example.com` are one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Error> {
        let email = raw.trim().to_lowercase();
        let invalid = |why: &str| Error::validation("email", why.to_owned());
        if email.is_empty() || email.len() > EMAIL_LEN_MAX {
            return Err(invalid("must be 1 to 254 characters"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces or control characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("must look like name@example.com"));
        };
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || local.len() > EMAIL_LOCAL_LEN_MAX || !domain_ok {
            return Err(invalid("must look like name@example.com"));
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    pub fn parse(raw: &str) -> Result<FullName, Error> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > FULL_NAME_CHARS_MAX {
            return Err(Error::validation("fullName", "must be 1 to 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::validation(
                "fullName",
                "must not contain control characters",
            ));
        }
        Ok(FullName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy. Never printed.
pub struct Password(String);

impl Password {
    pub fn parse(raw: String, email: &Email) -> Result<Password, Error> {
        let chars = raw.chars().count();
        if chars < PASSWORD_CHARS_MIN {
            return Err(Error::validation(
                "password",
                format!("must be at least {PASSWORD_CHARS_MIN} characters"),
            ));
        }
        if chars > PASSWORD_CHARS_MAX {
            return Err(Error::validation(
                "password",
                format!("must be at most {PASSWORD_CHARS_MAX} characters"),
            ));
        }
        if raw.trim().is_empty() || raw.to_lowercase() == email.as_str() {
            return Err(Error::validation(
                "password",
                "must not be blank or your email address",
            ));
        }
        Ok(Password(raw))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<KeyName, Error> {
        let name = raw.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > KEY_NAME_CHARS_MAX || name.chars().any(char::is_control) {
            return Err(Error::validation(
                "name",
                "must be 1 to 64 characters without control characters",
            ));
        }
        Ok(KeyName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A positive cash amount for a transfer: a decimal string with at most 6 decimals, at most the
/// engine's single-transfer bound, exactly converted to micro-dollars.
pub fn parse_transfer_amount(raw: &str, field: &'static str) -> Result<i64, Error> {
    let digits_ok = {
        let (whole, fraction) = raw.split_once('.').unwrap_or((raw, ""));
        !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && (!raw.contains('.') || !fraction.is_empty())
            && fraction.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits_ok {
        return Err(Error::validation(
            field,
            "must be a decimal string like \"100.00\"",
        ));
    }
    let amount = Decimal::from_str(raw)
        .map_err(|_| Error::validation(field, "is not a number we can represent"))?;
    if amount.scale() > CASH_DECIMALS_MAX && amount.normalize().scale() > CASH_DECIMALS_MAX {
        return Err(Error::validation(field, "has more than 6 decimals"));
    }
    let micros = (amount * Decimal::from(MICROS_PER_SHARE))
        .to_i64()
        .filter(|micros| (1..=TRANSFER_MICROS_MAX).contains(micros))
        .ok_or_else(|| Error::validation(field, "must be more than 0 and at most 1000000000"))?;
    Ok(micros)
}

/// Micro-dollars as a decimal string with 2 to 6 decimals (`"12.50"`, `"0.123456"`).
pub fn format_cash(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let magnitude = micros.unsigned_abs();
    let per_dollar = MICROS_PER_SHARE as u64;
    let whole = magnitude / per_dollar;
    let mut fraction = format!("{:06}", magnitude % per_dollar);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{sign}{whole}.{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Alice@Example.COM ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "", "alice", "a@b", "a@@b.c", "a b@c.d", "@b.c", "a@.b.c", "a@b..c", "a@b.c.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_follow_the_length_policy() {
        let email = Email::parse("alice@example.com").unwrap();
        assert!(Password::parse("short".into(), &email).is_err());
        assert!(Password::parse(" ".repeat(20), &email).is_err());
        assert!(Password::parse("x".repeat(129), &email).is_err());
        assert!(Password::parse("alice@example.com".into(), &email).is_err());
        assert!(Password::parse("correct horse battery".into(), &email).is_ok());
        let secret = Password::parse("correct horse battery".into(), &email).unwrap();
        assert!(!format!("{secret:?}").contains("horse"));
    }

    #[test]
    fn cash_parses_exactly_or_not_at_all() {
        assert_eq!(parse_transfer_amount("100", "a").unwrap(), 100_000_000);
        assert_eq!(parse_transfer_amount("12.50", "a").unwrap(), 12_500_000);
        assert_eq!(parse_transfer_amount("0.000001", "a").unwrap(), 1);
        assert_eq!(parse_transfer_amount("1.5000000", "a").unwrap(), 1_500_000);
        for bad in [
            "",
            "0",
            "0.0000001",
            "-1",
            "+1",
            "1e3",
            "1.",
            ".5",
            " 1",
            "NaN",
            "1000000000.01",
        ] {
            assert!(parse_transfer_amount(bad, "a").is_err(), "{bad}");
        }
        assert_eq!(
            parse_transfer_amount("1000000000", "a").unwrap(),
            TRANSFER_MICROS_MAX
        );
    }

    #[test]
    fn cash_formats_with_two_to_six_decimals() {
        assert_eq!(format_cash(12_500_000), "12.50");
        assert_eq!(format_cash(123_456), "0.123456");
        assert_eq!(format_cash(0), "0.00");
        assert_eq!(format_cash(100_000_000), "100.00");
        assert_eq!(format_cash(1_230_000), "1.23");
        assert_eq!(format_cash(1_234_500), "1.2345");
        assert_eq!(format_cash(-5_000_000), "-5.00");
    }
}

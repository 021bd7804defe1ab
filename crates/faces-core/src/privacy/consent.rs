//! Consent records: the legal basis for holding a person's templates. Each
//! record states the basis (explicit `consent`, or another basis in words,
//! such as `research`), the purpose, who recorded it and when, a reference to
//! the evidence (a form's file name or id, never the form itself), an
//! optional expiry date, and its withdrawal. A subject is matchable only
//! while one of their records is active.

use serde::Serialize;

use crate::{Error, Result};

/// The basis that needs a reference to evidence (a signed form).
pub const EXPLICIT_CONSENT: &str = "consent";

/// A new record as the user states it.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    pub basis: String,
    pub purpose: String,
    pub evidence: Option<String>,
    pub recorded_by: String,
    /// Last day the record is valid, `YYYY-MM-DD`.
    pub expires: Option<String>,
}

impl ConsentInput {
    /// Checks the fields: a basis and purpose in words, evidence for explicit
    /// consent, and a well-formed expiry date not already past.
    pub fn validate(&self, today: &str) -> Result<()> {
        if self.basis.trim().is_empty() || self.purpose.trim().is_empty() {
            return Err(Error::Invalid("a consent record needs --basis and --purpose".into()));
        }
        if self.basis == EXPLICIT_CONSENT && self.evidence.as_deref().is_none_or(|e| e.trim().is_empty()) {
            return Err(Error::Invalid(
                "explicit consent needs --evidence: a reference to the signed form (its file name or id, not the form)".into(),
            ));
        }
        if let Some(date) = &self.expires {
            check_date(date)?;
            if date.as_str() < today {
                return Err(Error::Invalid(format!("--expires {date} is already past")));
            }
        }
        Ok(())
    }
}

/// A stored record.
#[derive(Debug, Clone, Serialize)]
pub struct Consent {
    pub id: i64,
    /// The subject's name; `None` once the subject has been erased.
    pub subject: Option<String>,
    /// The subject's pseudonymous id, as used in the audit trail.
    pub subject_id: String,
    pub basis: String,
    pub purpose: String,
    pub evidence: Option<String>,
    pub recorded_by: Option<String>,
    pub recorded: String,
    pub expires: Option<String>,
    pub withdrawn: Option<String>,
    pub erased: Option<String>,
    pub active: bool,
}

/// Whether a record is in force on `today` (`YYYY-MM-DD`).
pub fn is_active(expires: Option<&str>, withdrawn: Option<&str>, erased: Option<&str>, today: &str) -> bool {
    withdrawn.is_none() && erased.is_none() && expires.is_none_or(|e| e >= today)
}

/// Accepts `YYYY-MM-DD` only.
pub fn check_date(date: &str) -> Result<()> {
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 10 && b[4] == b'-' && b[7] == b'-' && digits(0..4) && digits(5..7) && digits(8..10);
    let (month, day): (u32, u32) = if ok { (date[5..7].parse().unwrap_or(0), date[8..10].parse().unwrap_or(0)) } else { (0, 0) };
    if !ok || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(Error::Invalid(format!("{date:?} is not a date; use YYYY-MM-DD")));
    }
    Ok(())
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today() -> String {
    crate::clock::now()[..10].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(basis: &str, evidence: Option<&str>, expires: Option<&str>) -> ConsentInput {
        ConsentInput {
            basis: basis.into(),
            purpose: "door access".into(),
            evidence: evidence.map(String::from),
            recorded_by: "alice".into(),
            expires: expires.map(String::from),
        }
    }

    #[test]
    fn records_are_checked() {
        let today = "2026-12-03";
        assert!(input("consent", Some("form-17.pdf"), Some("2027-12-31")).validate(today).is_ok());
        assert!(input("consent", None, None).validate(today).unwrap_err().to_string().contains("--evidence"));
        assert!(input("research", None, None).validate(today).is_ok(), "other bases state themselves");
        assert!(input("consent", Some("f"), Some("2026-12-02")).validate(today).unwrap_err().to_string().contains("past"));
        assert!(input("consent", Some("f"), Some("31/12/2027")).validate(today).is_err());
    }

    #[test]
    fn activity_follows_expiry_withdrawal_and_erasure() {
        let today = "2026-12-03";
        assert!(is_active(None, None, None, today));
        assert!(is_active(Some("2026-12-03"), None, None, today), "valid through its last day");
        assert!(!is_active(Some("2026-12-02"), None, None, today));
        assert!(!is_active(None, Some("2026-12-01T10:00:00Z"), None, today));
        assert!(!is_active(None, None, Some("2026-12-01T10:00:00Z"), today));
    }
}

//! Privacy by design: the key that encrypts templates at rest ([`key`]),
//! consent records ([`consent`]) and the hash-chained audit trail ([`audit`]).
//! The gallery uses them; nothing here knows about faces.

pub mod audit;
pub mod consent;
pub mod key;

pub use audit::{AuditLog, Event};
pub use consent::{Consent, ConsentInput};
pub use key::{KeySource, TemplateKey};

//! One module per sub-command.

pub mod bench;
pub mod detect;
pub mod models;

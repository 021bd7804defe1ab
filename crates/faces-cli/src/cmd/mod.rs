//! One module per sub-command.

pub mod bench;
pub mod clean;
pub mod compare;
pub mod detect;
pub mod embed;
pub mod enrol;
pub mod evaluate;
pub mod gallery;
pub mod identify;
pub mod models;

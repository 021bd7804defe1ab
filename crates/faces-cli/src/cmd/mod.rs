//! One module per sub-command.

pub mod audit;
pub mod bench;
pub mod calibrate;
pub mod clean;
pub mod compare;
pub mod consent;
pub mod detect;
pub mod embed;
pub mod enrol;
pub mod evaluate;
pub mod forget;
pub mod gallery;
pub mod identify;
pub mod keys;
pub mod models;
pub mod serve;
pub mod subject;

//! Built-in stage kinds, one file each. Register a new one in `Registry::builtin`.

pub mod command;
pub mod files;
pub mod reaper;

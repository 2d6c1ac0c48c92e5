//! Scenarios, sweeps and the results store: TOML → validated runs → per-run results on disk.

pub mod cost;
pub mod eta;
pub mod memory;
pub mod scenario;
pub mod shard;
pub mod store;
pub mod sweep;

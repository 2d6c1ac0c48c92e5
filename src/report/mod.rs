//! What is drawn from stored results: tables, statistics, claims, figures and the paper page.

pub mod claims;
pub mod paper;
pub mod plot;
pub mod results;
pub mod stats;
pub mod summary;
pub mod table;
pub mod text;
pub mod theory;
pub mod tsne;
pub mod zoo;

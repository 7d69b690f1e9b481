//! labelwise: decides what humans should label next, and labels the rest itself when it can
//! show it is right often enough.
//!
//! The library is split the way the work is: label-independent stages (loading, the neighbour
//! graph, duplicates, rarity, clusters) are computed once per embedding set and cached;
//! label-dependent stages (models, calibration, auto-labels, the batch, the budget) are cheap and
//! rerun every labeling round. Stages take plain data and return plain data; only `cmd` and
//! `output` touch the filesystem.

pub mod autolabel;
pub mod budget;
pub mod cache;
pub mod calibrate;
pub mod certify;
pub mod cmd;
pub mod dataset;
pub mod dedup;
pub mod error;
pub mod graph;
pub mod hnsw;
pub mod incremental;
pub mod kmeans;
pub mod memory;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod rarity;
pub mod report;
pub mod select;
pub mod simulate;

pub use error::{Error, Result};

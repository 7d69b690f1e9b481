//! labelwise: decides what humans should label next, and labels the rest itself when it can
//! show it is right often enough.
//!
//! The library is split the way the work is: label-independent stages (loading, the neighbour
//! graph, duplicates, rarity, clusters) are computed once per embedding set and cached;
//! label-dependent stages (models, calibration, auto-labels, the batch, the budget) are cheap and
//! rerun every labeling round. Stages take plain data and return plain data; only `cmd` and
//! `output` touch the filesystem.

#![warn(missing_docs)]

pub mod cli;
pub mod data;
pub mod error;
pub mod index;
pub mod model;
pub mod output;
pub mod progress;
pub mod round;
pub mod rules;
pub mod simulate;
pub mod store;
pub mod tools;

pub use error::{Error, Result};

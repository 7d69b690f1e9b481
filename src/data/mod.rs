//! Getting the pool into memory: streaming Parquet load and validation, the labels merge, and the
//! up-front memory estimate that refuses a run which would not fit.

pub mod dataset;
pub mod label_formats;
pub mod memory;

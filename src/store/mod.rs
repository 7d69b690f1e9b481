//! Bytes on disk that outlive a run: the content-addressed, checksummed cache, and the atomic
//! temp-file-then-rename writes every file labelwise leaves behind goes through.

pub mod atomic;
pub mod cache;
pub mod history;

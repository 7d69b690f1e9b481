//! The neighbour graph, the label-independent artifact every stage reads: its routes (exact,
//! partitioned, `hnsw_rs`), the k-means they share, checkpointed builds, appending rows to a
//! cached graph, and fetching or building it through the cache.

pub mod cached;
pub mod graph;
pub mod hnsw;
pub mod incremental;
pub mod kmeans;

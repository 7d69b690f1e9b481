//! The neighbour graph, the label-independent artifact every stage reads: its routes (exact,
//! partitioned, `hnsw_rs`), the k-means they share, checkpointed builds, appending rows to a
//! cached graph, fetching or building it through the cache, and the pieces a cluster runs
//! apart (`shard`).

pub mod build;
pub mod cached;
pub mod checkpoint;
pub mod exact;
pub mod graph;
pub mod hnsw;
pub mod incremental;
pub mod kmeans;
pub mod partitioned;
pub mod shard;
pub mod topk;

pub use build::{build, build_keeping_index, build_resumable};
pub use checkpoint::{CheckpointStore, ResumeStats};
pub use graph::{recall_at_10, GraphParams, IndexKind, NeighborGraph, DEFAULT_K, DEFAULT_PROBES};

//! The command line: flag groups defined once ([`args`]) and one module per subcommand, each
//! converting its flags into parameters, running the round's stages and writing their files (in
//! the manner of xsv).

pub mod autolabel;
pub mod budget;
pub mod dedup;
pub mod export;
pub mod inspect;
pub mod plan;
pub mod score;
pub mod select;
pub mod simulate;

pub mod args;

use crate::error::Result;
use crate::index::cached::CacheChoice;
use crate::progress::Progress;
use crate::round::timings::Timings;
use crate::round::Pool;

pub use args::*;

/// Loads the pool the input flags name and gets its graph, the way the run flags say (cache,
/// memory limit, seed).
pub fn load_pool(
    input: &InputArgs,
    run: &RunArgs,
    graph: &GraphArgs,
    carry_extra: bool,
    progress: Progress,
    timings: &mut Timings,
) -> Result<Pool> {
    let opts = input.load_options(carry_extra);
    let cache = CacheChoice::from_flags(run.cache.as_deref(), run.no_cache, &input.data[0]);
    Pool::load(
        &input.data,
        &opts,
        &graph.params(run.seed)?,
        &cache,
        run.max_memory,
        progress,
        timings,
    )
}

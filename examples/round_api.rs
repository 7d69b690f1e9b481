//! A labeling round through the library alone, without the command line: load a pool, get its
//! neighbour graph, run every stage with parameter structs, read the plain results, and write
//! the same files `plan` writes. This is the API the Python bindings and a distributed driver
//! call.
//!
//! ```sh
//! cargo run --example round_api -- datasets/banking77_sample.parquet /tmp/round1
//! ```
//!
//! Exits non-zero when the round's results are inconsistent (CI runs it on the bundled sample).

use std::path::PathBuf;

use labelwise::data::dataset::LoadOptions;
use labelwise::index::cached::CacheChoice;
use labelwise::index::GraphParams;
use labelwise::output::{round_files, OutDir};
use labelwise::progress::Progress;
use labelwise::round::autolabel::Route;
use labelwise::round::select::SelectParams;
use labelwise::round::timings::Timings;
use labelwise::round::{route_name, Pool, Round, RoundParams, Stages};
use labelwise::{Error, Result};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "datasets/banking77_sample.parquet".into()),
    );
    let out = args.next().map(PathBuf::from);

    // Label-independent: the pool and its graph (no cache here; `CacheChoice::Dir` keeps it).
    let mut timings = Timings::default();
    let pool = Pool::load(
        &[data],
        &LoadOptions::default(),
        &GraphParams::default(),
        &CacheChoice::Off,
        None,
        Progress::hidden(),
        &mut timings,
    )?;

    // Label-dependent: every stage; Round::run validates every parameter struct first.
    let params = RoundParams {
        select: SelectParams {
            batch: 50,
            ..SelectParams::default()
        },
        ..RoundParams::default()
    };
    let round = Round::run(
        &pool,
        &params,
        Stages::ALL,
        Progress::hidden(),
        &mut timings,
    )?;

    let n = pool.data.len();
    let autolabel = round
        .autolabel
        .as_ref()
        .ok_or_else(|| Error::Internal("auto-labeling did not run".into()))?;
    let selection = round
        .selection
        .as_ref()
        .ok_or_else(|| Error::Internal("selection did not run".into()))?;
    for route in [Route::Labeled, Route::Auto, Route::Duplicate, Route::Human] {
        let count = autolabel.route.iter().filter(|&&r| r == route).count();
        println!("{:>9}: {count}", route_name(route));
    }
    println!("batch: {} items, first {:?}", selection.picked.len(), {
        selection
            .picked
            .iter()
            .take(3)
            .map(|&i| pool.data.ids[i as usize].as_str())
            .collect::<Vec<_>>()
    });
    if let Some(budget) = &round.budget {
        println!("budget: {}", budget.advice.text);
    }

    // The batch must be non-empty, every pick routed to humans, and the routes cover the pool.
    let consistent = !selection.picked.is_empty()
        && selection.picked.len() <= params.select.batch
        && selection
            .picked
            .iter()
            .all(|&i| autolabel.route[i as usize] == Route::Human)
        && autolabel.route.len() == n;
    if !consistent {
        return Err(Error::Internal(
            "the round's results are inconsistent".into(),
        ));
    }

    if let Some(dir) = out {
        let out = OutDir::create(&dir)?;
        out.write_parquet("items.parquet", &round_files::items_table(&round)?)?;
        round_files::write_duplicates(&round, &out)?;
        round_files::write_autolabels(&round, &out, &[])?;
        round_files::write_batch(&round, &out, &round_files::picked_carried(&round)?)?;
        round_files::write_budget(&round, &out)?;
        println!("wrote {}", dir.display());
    }
    Ok(())
}

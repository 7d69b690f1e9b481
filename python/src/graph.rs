//! The neighbour graph a cluster's search groups computed, assembled on the driver once. Each
//! group's rows are written straight into one n × k graph, which `cache_graph` or `plan_rows`
//! then takes: the driver holds the graph once, not as numpy arrays plus their bytes plus the
//! copies an argument conversion makes (four copies, ≈ 0.5 KB an item at k = 16).

use labelwise::index::NeighborGraph;
use pyo3::prelude::*;

use crate::InputError;

/// Marks a neighbour no group has written yet (a real neighbour is a row index below n).
const UNSET: u32 = u32::MAX;

/// `PoolGraph(n, k)`: an n × k neighbour graph filled group by group with [`PoolGraph::put`].
#[pyclass(module = "labelwise._labelwise")]
pub struct PoolGraph {
    n: usize,
    graph: Option<NeighborGraph>,
}

#[pymethods]
impl PoolGraph {
    #[new]
    fn new(n: usize, k: usize) -> PoolGraph {
        PoolGraph {
            n,
            graph: Some(NeighborGraph {
                k,
                neighbors: vec![UNSET; n * k],
                cosines: vec![0.0; n * k],
            }),
        }
    }

    /// `put(rows, neighbors, cosines)`: one group's rows (u32), their neighbours (rows × k u32)
    /// and cosines (rows × k f32), little-endian bytes.
    fn put(&mut self, rows: &[u8], neighbors: &[u8], cosines: &[u8]) -> PyResult<()> {
        let n = self.n;
        let g = self.graph_mut()?;
        let k = g.k;
        let rows = crate::u32s(rows, "PoolGraph.put rows")?;
        let neighbors = crate::u32s(neighbors, "PoolGraph.put neighbors")?;
        let cosines = crate::f32s(cosines, "PoolGraph.put cosines")?;
        if neighbors.len() != rows.len() * k || cosines.len() != rows.len() * k {
            return Err(InputError::new_err(format!(
                "PoolGraph.put: {} rows need {} neighbours and cosines",
                rows.len(),
                rows.len() * k
            )));
        }
        for (j, &row) in rows.iter().enumerate() {
            let row = row as usize;
            if row >= n {
                return Err(InputError::new_err(format!(
                    "PoolGraph.put: row {row} of a pool of {n}"
                )));
            }
            let (to, from) = (row * k..(row + 1) * k, j * k..(j + 1) * k);
            g.neighbors[to.clone()].copy_from_slice(&neighbors[from.clone()]);
            g.cosines[to].copy_from_slice(&cosines[from]);
        }
        Ok(())
    }

    /// Rows some neighbour of which no group has written.
    fn missing(&self) -> PyResult<usize> {
        let g = self.graph.as_ref().ok_or_else(taken)?;
        Ok(g.neighbors
            .chunks(g.k.max(1))
            .filter(|row| row.contains(&UNSET))
            .count())
    }
}

impl PoolGraph {
    fn graph_mut(&mut self) -> PyResult<&mut NeighborGraph> {
        self.graph.as_mut().ok_or_else(taken)
    }

    /// The graph, leaving this object empty: the round owns it from here.
    pub fn take(&mut self) -> PyResult<NeighborGraph> {
        self.graph.take().ok_or_else(taken)
    }
}

fn taken() -> PyErr {
    InputError::new_err("PoolGraph: the graph was already handed over")
}

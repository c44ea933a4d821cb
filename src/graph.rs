//! The pipeline as a DAG (petgraph): topological order, cycles, ancestors, descendants.

use petgraph::Direction;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, Reversed};
use std::collections::BTreeSet;

pub struct Dag {
    g: DiGraph<usize, ()>,
}

impl Dag {
    /// `n` stages; `edges` are (upstream, downstream) stage indices.
    pub fn new(n: usize, edges: impl IntoIterator<Item = (usize, usize)>) -> Dag {
        let mut g = DiGraph::with_capacity(n, n);
        for i in 0..n {
            g.add_node(i);
        }
        for (a, b) in edges {
            g.update_edge(NodeIndex::new(a), NodeIndex::new(b), ());
        }
        Dag { g }
    }

    /// Stage indices in an order where every stage follows its inputs; ties keep the file
    /// order, so output is stable.
    pub fn topo_order(&self) -> Result<Vec<usize>, Vec<Vec<usize>>> {
        if toposort(&self.g, None).is_err() {
            return Err(self.cycles());
        }
        // Kahn's algorithm with a min-heap gives the stable order toposort doesn't promise.
        let n = self.g.node_count();
        let mut indeg: Vec<usize> = (0..n)
            .map(|i| {
                self.g
                    .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for m in self
                .g
                .neighbors_directed(NodeIndex::new(i), Direction::Outgoing)
            {
                indeg[m.index()] -= 1;
                if indeg[m.index()] == 0 {
                    ready.insert(m.index());
                }
            }
        }
        Ok(order)
    }

    /// Every cycle's stages (strongly connected components with more than one node, or a
    /// stage that feeds itself), each sorted.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut out: Vec<Vec<usize>> = tarjan_scc(&self.g)
            .into_iter()
            .filter(|c| c.len() > 1 || self.g.contains_edge(c[0], c[0]))
            .map(|c| {
                let mut v: Vec<usize> = c.into_iter().map(|n| n.index()).collect();
                v.sort();
                v
            })
            .collect();
        out.sort();
        out
    }

    pub fn upstream(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .g
            .neighbors_directed(NodeIndex::new(i), Direction::Incoming)
            .map(|n| n.index())
            .collect();
        v.sort();
        v
    }

    /// `roots` and everything downstream of them.
    pub fn descendants(&self, roots: &[usize]) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        for &r in roots {
            let mut dfs = Dfs::new(&self.g, NodeIndex::new(r));
            while let Some(n) = dfs.next(&self.g) {
                out.insert(n.index());
            }
        }
        out
    }

    /// `roots` and everything they depend on.
    pub fn ancestors(&self, roots: &[usize]) -> BTreeSet<usize> {
        let rev = Reversed(&self.g);
        let mut out = BTreeSet::new();
        for &r in roots {
            let mut dfs = Dfs::new(rev, NodeIndex::new(r));
            while let Some(n) = dfs.next(rev) {
                out.insert(n.index());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_cycles_and_reachability() {
        let d = Dag::new(4, [(0, 1), (1, 2), (0, 3)]);
        assert_eq!(d.topo_order().unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(
            d.descendants(&[1]).into_iter().collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(
            d.ancestors(&[2]).into_iter().collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let c = Dag::new(3, [(0, 1), (1, 2), (2, 1)]);
        assert_eq!(c.topo_order().unwrap_err(), vec![vec![1, 2]]);
    }
}

//! A small integral network-flow engine for the site planner: blocking
//! flows (Dinic) and min-cost flow by successive shortest paths with
//! potentials, pushing a blocking flow on each shortest-path layer.
//!
//! Capacities are whole minutes and costs exact integers, so the answers
//! are exact and the same on every run (invariant 1): no float touches
//! the optimisation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A directed graph with residual edges: edge `e` and `e ^ 1` are each
/// other's reverse.
#[derive(Debug, Default, Clone)]
pub(crate) struct Graph {
    /// Outgoing edge ids of each node.
    adj: Vec<Vec<u32>>,
    /// Head of each edge.
    to: Vec<u32>,
    /// Residual capacity of each edge.
    cap: Vec<i64>,
    /// Cost of one unit on each edge (the reverse edge has the negation).
    cost: Vec<i128>,
    /// Scratch: BFS levels.
    level: Vec<u32>,
    /// Scratch: next edge to try per node in a blocking-flow search.
    next: Vec<usize>,
}

const UNSEEN: u32 = u32::MAX;

impl Graph {
    /// An empty graph of `nodes` nodes.
    pub fn new(nodes: usize) -> Self {
        Graph {
            adj: vec![Vec::new(); nodes],
            ..Graph::default()
        }
    }

    /// Adds an edge `u -> v`; returns its id (the forward edge).
    pub fn add(&mut self, u: usize, v: usize, cap: i64, cost: i128) -> usize {
        let e = self.to.len();
        self.to.extend([v as u32, u as u32]);
        self.cap.extend([cap, 0]);
        self.cost.extend([cost, -cost]);
        self.adj[u].push(e as u32);
        self.adj[v].push(e as u32 + 1);
        e
    }

    /// Cost of one unit on edge `e`.
    pub fn cost_of(&self, e: usize) -> i128 {
        self.cost[e]
    }

    /// Flow on forward edge `e`.
    pub fn flow(&self, e: usize) -> i64 {
        self.cap[e ^ 1]
    }

    fn admissible(&self, e: usize, u: usize, pot: Option<&[i128]>) -> bool {
        self.cap[e] > 0 && pot.is_none_or(|p| self.cost[e] + p[u] - p[self.to[e] as usize] == 0)
    }

    /// Pushes up to `limit` units from `s` to `t` (Dinic), never entering
    /// node `avoid`. With `pot`, only edges of zero reduced cost are used.
    /// Returns the amount pushed.
    pub fn max_flow(
        &mut self,
        s: usize,
        t: usize,
        limit: i64,
        avoid: usize,
        pot: Option<&[i128]>,
    ) -> i64 {
        let n = self.adj.len();
        let mut total = 0;
        while total < limit {
            self.level.clear();
            self.level.resize(n, UNSEEN);
            self.level[s] = 0;
            let mut queue = std::collections::VecDeque::from([s]);
            while let Some(u) = queue.pop_front() {
                for &e in &self.adj[u] {
                    let e = e as usize;
                    let v = self.to[e] as usize;
                    if v != avoid && self.level[v] == UNSEEN && self.admissible(e, u, pot) {
                        self.level[v] = self.level[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            if self.level[t] == UNSEEN {
                break;
            }
            self.next.clear();
            self.next.resize(n, 0);
            loop {
                let f = self.push(s, t, limit - total, pot);
                if f == 0 {
                    break;
                }
                total += f;
                if total == limit {
                    break;
                }
            }
        }
        total
    }

    /// One augmenting path along the level graph (iterative, so a long
    /// path cannot overflow the stack); returns the amount pushed.
    fn push(&mut self, s: usize, t: usize, limit: i64, pot: Option<&[i128]>) -> i64 {
        let mut path: Vec<usize> = Vec::new();
        let mut u = s;
        loop {
            if u == t {
                let f = path.iter().map(|&e| self.cap[e]).fold(limit, i64::min);
                for &e in &path {
                    self.cap[e] -= f;
                    self.cap[e ^ 1] += f;
                }
                return f;
            }
            let mut advanced = false;
            while self.next[u] < self.adj[u].len() {
                let e = self.adj[u][self.next[u]] as usize;
                let v = self.to[e] as usize;
                if self.level[v] == self.level[u].wrapping_add(1) && self.admissible(e, u, pot) {
                    path.push(e);
                    u = v;
                    advanced = true;
                    break;
                }
                self.next[u] += 1;
            }
            if !advanced {
                // dead end: never try this node again in this phase
                self.level[u] = UNSEEN;
                match path.pop() {
                    Some(e) => {
                        u = self.to[e ^ 1] as usize;
                        self.next[u] += 1;
                    }
                    None => return 0,
                }
            }
        }
    }

    /// Min-cost flow of up to `limit` units from `s` to `t`, starting from
    /// the current flow, which must have no negative cycle in its residual
    /// graph; `pot` must make every residual reduced cost non-negative (the
    /// caller's initial shortest distances). Returns the amount sent.
    pub fn min_cost_flow(&mut self, s: usize, t: usize, limit: i64, pot: &mut [i128]) -> i64 {
        let n = self.adj.len();
        let mut dist = vec![i128::MAX; n];
        let mut sent = 0;
        while sent < limit {
            dist.iter_mut().for_each(|d| *d = i128::MAX);
            dist[s] = 0;
            let mut heap = BinaryHeap::from([Reverse((0i128, s))]);
            while let Some(Reverse((d, u))) = heap.pop() {
                if d > dist[u] {
                    continue;
                }
                for &e in &self.adj[u] {
                    let e = e as usize;
                    if self.cap[e] <= 0 {
                        continue;
                    }
                    let v = self.to[e] as usize;
                    let nd = d + self.cost[e] + pot[u] - pot[v];
                    if nd < dist[v] {
                        dist[v] = nd;
                        heap.push(Reverse((nd, v)));
                    }
                }
            }
            if dist[t] == i128::MAX {
                break;
            }
            for (p, &d) in pot.iter_mut().zip(&dist) {
                if d != i128::MAX {
                    *p += d;
                }
            }
            let f = self.max_flow(s, t, limit - sent, usize::MAX, Some(pot));
            if f == 0 {
                break;
            }
            sent += f;
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_cost_flow_takes_the_cheap_path_first() {
        // s=0, a=1, b=2, t=3: s->a->t costs 1 (cap 2), s->b->t costs 5
        let mut g = Graph::new(4);
        g.add(0, 1, 5, 0);
        g.add(0, 2, 5, 0);
        let at = g.add(1, 3, 2, 1);
        let bt = g.add(2, 3, 9, 5);
        let mut pot = vec![0, 0, 0, 1];
        assert_eq!(g.min_cost_flow(0, 3, 4, &mut pot), 4);
        assert_eq!((g.flow(at), g.flow(bt)), (2, 2));
    }

    #[test]
    fn max_flow_reroutes_through_a_reverse_edge() {
        // x -> s1 -> t is taken; y can only use s1, x can move to s2
        let (x, y, s1, s2, t) = (0, 1, 2, 3, 4);
        let mut g = Graph::new(5);
        g.add(x, s1, 1, 0);
        g.add(x, s2, 1, 0);
        g.add(y, s1, 1, 0);
        g.add(s1, t, 1, 0);
        g.add(s2, t, 1, 0);
        assert_eq!(g.max_flow(x, t, 1, usize::MAX, None), 1);
        assert_eq!(g.max_flow(y, t, 1, usize::MAX, None), 1);
    }
}

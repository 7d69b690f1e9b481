//! Rule votes: which rules fired on which items, and their majority vote per item.

use rayon::prelude::*;

/// Items per parallel task when combining votes.
const ITEMS_PER_TASK: usize = 8192;

/// Per rule, per item: whether the rule fired (it then votes a class) or abstained.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleVotes {
    /// Class names votes index into: the pool's classes (same indices as `Dataset::classes`),
    /// then the labels only rules name, sorted.
    pub classes: Vec<String>,
    /// The class each rule votes for, indexed like the rules.
    class: Vec<RuleClass>,
    /// `fired[r][i]`: rule `r` fired on item `i`.
    fired: Vec<Vec<bool>>,
    items: usize,
}

/// The class a rule votes for where it fires: one class everywhere (a rules-file rule, whose
/// condition decides only where), or one per item (votes given from outside, e.g. a Python
/// function that returns a label per row).
#[derive(Debug, Clone, PartialEq)]
pub enum RuleClass {
    /// The same class on every item.
    One(u32),
    /// `classes[i]` on item `i` (meaningful only where the rule fired).
    PerItem(Vec<u32>),
}

/// The majority vote on one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MajorityVote {
    /// The class with strictly the most votes; `None` when no rule fired or the top is tied.
    pub label: Option<u32>,
    /// Rules that fired on the item.
    pub votes: u32,
    /// Votes for the top class (for every tied class when tied).
    pub top: u32,
    /// The top is shared by two or more classes (the item then gets no label, as Snorkel's
    /// `MajorityLabelVoter` with its default tie-break policy `abstain`).
    pub tie: bool,
}

impl RuleVotes {
    /// Votes of rules that each vote one class (`rule_class`), from their fired flags (every
    /// vector `items` long).
    pub fn new(classes: Vec<String>, rule_class: Vec<u32>, fired: Vec<Vec<bool>>) -> RuleVotes {
        let class = rule_class.into_iter().map(RuleClass::One).collect();
        RuleVotes::with_classes(classes, class, fired)
    }

    /// Votes from each rule's class (one, or one per item) and fired flags (every vector
    /// `items` long).
    pub fn with_classes(
        classes: Vec<String>,
        class: Vec<RuleClass>,
        fired: Vec<Vec<bool>>,
    ) -> RuleVotes {
        let items = fired.first().map_or(0, Vec::len);
        debug_assert!(fired.iter().all(|f| f.len() == items));
        debug_assert_eq!(class.len(), fired.len());
        debug_assert!(class.iter().all(|c| match c {
            RuleClass::One(_) => true,
            RuleClass::PerItem(v) => v.len() == items,
        }));
        RuleVotes {
            classes,
            class,
            fired,
            items,
        }
    }

    /// The class rule `rule` votes on `item` where it fires.
    pub fn class_of(&self, rule: usize, item: usize) -> u32 {
        match &self.class[rule] {
            RuleClass::One(c) => *c,
            RuleClass::PerItem(v) => v[item],
        }
    }

    /// The classes rule `rule` voted for on at least one item, ascending.
    pub fn classes_voted(&self, rule: usize) -> Vec<u32> {
        match &self.class[rule] {
            RuleClass::One(c) => vec![*c],
            RuleClass::PerItem(v) => {
                let mut seen: Vec<u32> = v
                    .iter()
                    .zip(&self.fired[rule])
                    .filter(|(_, &f)| f)
                    .map(|(&c, _)| c)
                    .collect();
                seen.sort_unstable();
                seen.dedup();
                seen
            }
        }
    }

    /// Number of items.
    pub fn items(&self) -> usize {
        self.items
    }

    /// Number of rules.
    pub fn rules(&self) -> usize {
        self.fired.len()
    }

    /// Whether rule `rule` fired on each item.
    pub fn fired(&self, rule: usize) -> &[bool] {
        &self.fired[rule]
    }

    /// Rule `rule`'s vote on `item`: its class, or `None` where it abstained.
    pub fn vote(&self, item: usize, rule: usize) -> Option<u32> {
        self.fired[rule][item].then(|| self.class_of(rule, item))
    }

    /// The rules that fired on `item`, in rule order.
    pub fn fired_on(&self, item: usize) -> impl Iterator<Item = usize> + '_ {
        (0..self.rules()).filter(move |&r| self.fired[r][item])
    }

    /// The votes on the items `rows` (in that order): a pool carved out of a larger file.
    pub fn select(&self, rows: &[usize]) -> RuleVotes {
        let fired = self
            .fired
            .iter()
            .map(|f| rows.iter().map(|&i| f[i]).collect())
            .collect();
        let class = self
            .class
            .iter()
            .map(|c| match c {
                RuleClass::One(c) => RuleClass::One(*c),
                RuleClass::PerItem(v) => RuleClass::PerItem(rows.iter().map(|&i| v[i]).collect()),
            })
            .collect();
        RuleVotes::with_classes(self.classes.clone(), class, fired)
    }

    /// Items each rule fired on.
    pub fn fired_counts(&self) -> Vec<u64> {
        self.fired
            .par_iter()
            .map(|f| f.iter().filter(|&&b| b).count() as u64)
            .collect()
    }

    /// The majority vote on every item, in item order.
    pub fn majority(&self) -> Vec<MajorityVote> {
        let mut out = vec![
            MajorityVote {
                label: None,
                votes: 0,
                top: 0,
                tie: false,
            };
            self.items
        ];
        out.par_chunks_mut(ITEMS_PER_TASK)
            .enumerate()
            .for_each(|(task, chunk)| {
                let mut counts: Vec<(u32, u32)> = Vec::new();
                for (j, slot) in chunk.iter_mut().enumerate() {
                    *slot = self.majority_of(task * ITEMS_PER_TASK + j, &mut counts);
                }
            });
        out
    }

    /// The majority vote on `item`; `counts` is scratch space.
    fn majority_of(&self, item: usize, counts: &mut Vec<(u32, u32)>) -> MajorityVote {
        counts.clear();
        for r in self.fired_on(item) {
            let class = self.class_of(r, item);
            match counts.iter_mut().find(|(c, _)| *c == class) {
                Some((_, n)) => *n += 1,
                None => counts.push((class, 1)),
            }
        }
        let votes = counts.iter().map(|(_, n)| n).sum();
        let top = counts.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let at_top: Vec<u32> = counts
            .iter()
            .filter(|(_, n)| *n == top)
            .map(|(c, _)| *c)
            .collect();
        MajorityVote {
            label: (at_top.len() == 1).then(|| at_top[0]),
            votes,
            top,
            tie: at_top.len() > 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_counts_ties_and_abstains() {
        // Rules vote classes 0, 0, 1; items: [r0, r2] tie, [r0, r1, r2] → 0, [] none, [r2] → 1.
        let fired = vec![
            vec![true, true, false, false],
            vec![false, true, false, false],
            vec![true, true, false, true],
        ];
        let v = RuleVotes::new(vec!["a".into(), "b".into()], vec![0, 0, 1], fired);
        let m = v.majority();
        assert_eq!(
            m[0],
            MajorityVote {
                label: None,
                votes: 2,
                top: 1,
                tie: true
            }
        );
        assert_eq!(m[1].label, Some(0));
        assert_eq!((m[1].votes, m[1].top), (3, 2));
        assert_eq!(
            m[2],
            MajorityVote {
                label: None,
                votes: 0,
                top: 0,
                tie: false
            }
        );
        assert_eq!(m[3].label, Some(1));
        assert_eq!(v.vote(3, 0), None);
        assert_eq!(v.vote(3, 2), Some(1));
        assert_eq!(v.fired_on(1).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(v.fired_counts(), vec![2, 1, 3]);
    }

    #[test]
    fn a_rule_voting_per_item_counts_its_own_class_on_each() {
        // r0 votes 0 everywhere; r1 (given per item) votes 1 on item 0 and 0 on item 1.
        let fired = vec![vec![true, true, false], vec![true, true, false]];
        let class = vec![RuleClass::One(0), RuleClass::PerItem(vec![1, 0, 7])];
        let v = RuleVotes::with_classes(vec!["a".into(), "b".into()], class, fired);
        let m = v.majority();
        assert!(m[0].tie && m[0].label.is_none());
        assert_eq!((m[1].label, m[1].top), (Some(0), 2));
        assert_eq!(v.vote(0, 1), Some(1));
        assert_eq!(v.vote(2, 1), None);
        assert_eq!(v.classes_voted(1), vec![0, 1]);
        let picked = v.select(&[1, 0]);
        assert_eq!(picked.vote(0, 1), Some(0));
        assert_eq!(picked.vote(1, 1), Some(1));
    }
}

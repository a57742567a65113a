//! Routing: which sample a stage-0 miner starts, and which miner of each later stage gets it.
//!
//! A sample's id is a keyed hash of (run, epoch, origin hotkey, counter), so two miners never
//! start the same sample and anyone can tell which text it holds: the data index is a pure
//! function of the id. At every later stage the sample goes to the miner chosen by a keyed hash
//! of (run, epoch, sample, stage), weighted by each miner's share of its stage
//! ([`crate::assignment::weights`]): each sample's path is an independent draw of one miner per
//! stage, which is what loss attribution across paths (CLASP) needs.

use std::collections::HashMap;

use crate::artifact::Hotkey;
use crate::assignment::{Assignment, Member, StageIndex};
use crate::data::{Corpus, Split};
use crate::model::{Batch, ModelError};
use crate::schedule::Epoch;
use crate::spec::RunSpec;

fn keyed(domain: &str, run: &str, parts: &[&[u8]]) -> u64 {
    let mut h = blake3::Hasher::new_derive_key(domain);
    h.update(&(run.len() as u64).to_le_bytes());
    h.update(run.as_bytes());
    for p in parts {
        h.update(p);
    }
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(out)
}

/// The id of the `counter`-th sample `origin` starts in `epoch`.
pub fn sample_id(run: &str, epoch: Epoch, origin: &Hotkey, counter: u64) -> u64 {
    keyed(
        "sliver routing v1 sample",
        run,
        &[&epoch.to_le_bytes(), &origin.0, &counter.to_le_bytes()],
    )
}

/// The most samples one stage-0 miner can start in an epoch, as far as the spec bounds it: one
/// round of `swarm.window · swarm.rounds` per block over `swarm.epoch_blocks` blocks (no sample
/// goes round the pipeline within one block). What a reader re-derives ids up to ([`Origins`]).
pub fn max_samples_per_origin(spec: &RunSpec) -> u64 {
    let swarm = &spec.swarm;
    swarm
        .epoch_blocks
        .saturating_mul(swarm.window.saturating_mul(swarm.rounds) as u64)
}

/// Which stage-0 miner started each sample of an epoch. A sample id is derived from its
/// origin's hotkey and counter ([`sample_id`]), so a reader re-derives every id each origin
/// can have started ([`max_samples_per_origin`]) rather than trust whoever holds an artifact
/// under it: a miner publishing under another's ids, or under ids no origin started, is told
/// apart without anything in the artifact to forge.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    by_id: HashMap<u64, Hotkey>,
}

impl Origins {
    /// The ids `origins` (the epoch's stage-0 miners) can have started in `epoch`, up to
    /// `per_origin` each.
    pub fn new(run: &str, epoch: Epoch, origins: &[Member], per_origin: u64) -> Self {
        let mut by_id = HashMap::with_capacity(origins.len() * per_origin as usize);
        for m in origins {
            for counter in 0..per_origin {
                by_id.insert(sample_id(run, epoch, &m.hotkey, counter), m.hotkey);
            }
        }
        Self { by_id }
    }

    /// The stage-0 miner that started sample `id`, if any did.
    pub fn of(&self, id: u64) -> Option<Hotkey> {
        self.by_id.get(&id).copied()
    }
}

/// The training-data index of sample `id` (what `Corpus::batch` draws from): 40 bits of it, so
/// `index * batch_size` cannot overflow.
pub fn data_index(id: u64) -> u64 {
    id >> 24
}

/// The batch of sample `id`: the training text every stage on its path reads (stage 0 its
/// inputs, a stage with a token embedding its inputs too, the last stage its targets), and what
/// a validator reads to recompute any of them.
///
/// # Errors
/// [`ModelError`] when the corpus cannot fill a batch of the spec's shape, or its shards cannot
/// be read ([`ModelError::Data`]).
pub fn sample_batch(
    spec: &RunSpec,
    corpus: &Corpus,
    id: u64,
    device: tch::Device,
) -> Result<Batch, ModelError> {
    let (batch, seq) = (spec.optimizer.batch_size, spec.model.seq_len);
    let tokens = corpus.batch(Split::Train, spec.seed, data_index(id), batch, seq)?;
    Batch::from_tokens(&tokens, batch, seq, device)
}

/// The miner of `stage` that processes sample `id` in `epoch`: a keyed draw among that stage's
/// miners in `assignment`, each as likely as its routing weight; `None` when the stage has none.
pub fn route<'a>(
    run: &str,
    epoch: Epoch,
    id: u64,
    stage: StageIndex,
    assignment: &'a Assignment,
) -> Option<&'a Member> {
    let (miners, weights) = (assignment.stage(stage), assignment.weights(stage));
    let total = weights.iter().fold(0u64, |a, &w| a.saturating_add(w));
    if miners.is_empty() || total == 0 {
        return None;
    }
    let h = keyed(
        "sliver routing v2 route",
        run,
        &[
            &epoch.to_le_bytes(),
            &id.to_le_bytes(),
            &u64::from(stage.0).to_le_bytes(),
        ],
    );
    // A uniform point of `[0, total)`, then the miner whose run of weight holds it.
    let mut x = ((u128::from(h) * u128::from(total)) >> 64) as u64;
    for (m, &w) in miners.iter().zip(weights) {
        if x < w {
            return Some(m);
        }
        x -= w;
    }
    miners.last()
}

/// The miners sample `id` passes through after `stage`, in stage order: the one it is routed to
/// at every later stage of `assignment` (fewer when a stage has none). What a miner looks along
/// when a sample it sent on is overdue, and what a stage-0 miner checks a new sample's path
/// against before it starts it.
pub fn downstream<'a>(
    run: &str,
    epoch: Epoch,
    id: u64,
    stage: StageIndex,
    assignment: &'a Assignment,
) -> Vec<(StageIndex, &'a Member)> {
    StageIndex::all(assignment.stage_count())
        .skip(stage.index() + 1)
        .map_while(|s| route(run, epoch, id, s, assignment).map(|m| (s, m)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_distinct_and_routes_spread_evenly() {
        let miners: Vec<Member> = (0..4u16)
            .map(|uid| Member {
                uid,
                hotkey: Hotkey([uid as u8; 32]),
            })
            .collect();
        // Stage 1 holds uids 1 and 3 (uid modulo 2).
        let even = Assignment::new(2, &miners);
        let origin = Hotkey([9; 32]);
        let mut counts = [0usize; 4];
        let mut ids = std::collections::HashSet::new();
        for c in 0..3000 {
            let id = sample_id("r", Epoch(1), &origin, c);
            assert!(ids.insert(id));
            let m = route("r", Epoch(1), id, StageIndex(1), &even).unwrap();
            counts[usize::from(m.uid)] += 1;
            // Deterministic.
            assert_eq!(route("r", Epoch(1), id, StageIndex(1), &even), Some(m));
        }
        assert_eq!(counts[0] + counts[2], 0, "{counts:?}");
        assert!(
            [counts[1], counts[3]]
                .iter()
                .all(|&c| (1400..1600).contains(&c)),
            "{counts:?}"
        );
        assert_ne!(
            sample_id("r", Epoch(2), &origin, 0),
            sample_id("r", Epoch(1), &origin, 0)
        );
        assert!(route("r", Epoch(1), 5, StageIndex(2), &even).is_none());
        // Every id is traced to the origin it derives from; a stranger's ids to none.
        let origins = Origins::new("r", Epoch(1), &miners, 50);
        for m in &miners {
            let id = |e, c| sample_id("r", Epoch(e), &m.hotkey, c);
            assert_eq!(origins.of(id(1, 49)), Some(m.hotkey));
            assert_eq!(origins.of(id(1, 50)), None);
            assert_eq!(origins.of(id(2, 0)), None);
        }
        assert_eq!(origins.of(sample_id("r", Epoch(1), &origin, 0)), None);
    }

    /// A sample's path past a stage is its route at every later stage, and stops at a stage
    /// without miners.
    #[test]
    fn downstream_is_the_route_at_each_later_stage() {
        let miners: Vec<Member> = (0..6u16)
            .map(|uid| Member {
                uid,
                hotkey: Hotkey([uid as u8; 32]),
            })
            .collect();
        let three = Assignment::new(3, &miners);
        for id in [1, 99, u64::MAX] {
            let path = downstream("r", Epoch(2), id, StageIndex(0), &three);
            let stages: Vec<StageIndex> = path.iter().map(|(s, _)| *s).collect();
            assert_eq!(stages, [StageIndex(1), StageIndex(2)]);
            for (s, m) in &path {
                assert_eq!(route("r", Epoch(2), id, *s, &three), Some(*m));
            }
            assert_eq!(
                downstream("r", Epoch(2), id, StageIndex(1), &three),
                path[1..]
            );
            assert!(downstream("r", Epoch(2), id, StageIndex(2), &three).is_empty());
        }
        let gap = Assignment::new(4, &miners[..2]);
        assert_eq!(downstream("r", Epoch(2), 5, StageIndex(0), &gap).len(), 1);
    }

    /// A miner at a quarter of its peer's rate gets about a fifth of the stage's samples.
    #[test]
    fn routes_follow_weights() {
        use crate::assignment::Declared;
        let miners: Vec<Member> = (0..4u16)
            .map(|uid| Member {
                uid,
                hotkey: Hotkey([uid as u8; 32]),
            })
            .collect();
        let rate = |m: &Member| Declared {
            rate: Some(if m.uid == 1 { 1.0 } else { 4.0 }),
            stage: Some(StageIndex(m.uid % 2)),
            paid: true,
        };
        let weighted = Assignment::declared(&[1.0, 1.0], &miners, rate, 8.0);
        let origin = Hotkey([9; 32]);
        let slow = (0..5000)
            .map(|c| sample_id("r", Epoch(1), &origin, c))
            .filter(|&id| {
                route("r", Epoch(1), id, StageIndex(1), &weighted)
                    .unwrap()
                    .uid
                    == 1
            })
            .count();
        assert!((900..1100).contains(&slow), "{slow} of 5000");
    }
}

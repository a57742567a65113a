//! Adversarial behaviours, for the validator's tests and the incentives benchmark only.
//!
//! `btminer --adversary NAME` (a hidden flag) makes the miner cheat in one way while looking
//! like any other miner: it signs what it uploads with its own hotkey and keeps every format
//! right, so that only the validator's checks can tell. Nobody running a real miner gains from
//! these: each is what the validator must catch and pay nothing for.

use std::collections::HashSet;

use anyhow::{Context as _, Result};
use sliver_common::artifact::{ArtifactId, Header, Hotkey, Kind};
use sliver_common::storage::StoreConfig;
use sliver_common::{Epoch, StageIndex};
use sliver_common::{layout, routing};
use sliver_subnet::fetch;
use sliver_subnet::neuron;
use sliver_subnet::run::Roster;
use tch::Tensor;
use tracing::debug;

pub use sliver_common::adversary::Behaviour as Adversary;

use crate::node::Node;
use crate::outbox::{Claims, Outbox};

mod churn;
mod griefer;

/// What the epoch's cheats need beyond the tensor they are handed: the miner's I/O, the
/// roster and where in it this miner trains (set by the worker each epoch, [`Conduct::enter`]).
struct Scene {
    node: Node,
    roster: Roster,
    epoch: Epoch,
    stage: StageIndex,
}

/// How this miner behaves: honestly, or as the adversary it plays. The training loop and the
/// merge ask it what to send and whether to compute or merge at all; only here do the
/// adversaries differ, so the honest path never branches on them.
#[derive(Default)]
pub(crate) struct Conduct {
    adversary: Option<Adversary>,
    /// The lazy miner's first output of the epoch.
    first: Option<Tensor>,
    /// The lazy miner's first gradient of the epoch.
    first_grad: Option<Tensor>,
    /// A copier's peer's activation keys not yet re-signed.
    peer_keys: Vec<String>,
    /// Keys a copier re-signed already.
    copied: HashSet<String>,
    /// The last peer output a copier re-signed.
    last_copy: Option<Tensor>,
    /// The epoch's scene, for the cheats that upload on their own (`fake-work`).
    scene: Option<Scene>,
    /// `fake-work`: where its fakes go, and the next candidate in its walk of the epoch's
    /// sample ids (origin `k % n`, counter `k / n` for `n` stage-0 miners).
    fakes: Option<(Outbox, u64)>,
}

impl Conduct {
    /// Honest when `adversary` is `None`.
    pub(crate) fn new(adversary: Option<Adversary>) -> Self {
        Self {
            adversary,
            ..Self::default()
        }
    }

    /// Where this epoch trains: the worker tells it before training, so that the cheats that
    /// upload on their own know the roster. Only `fake-work` keeps it.
    pub(crate) fn enter(&mut self, node: &Node, roster: &Roster, epoch: Epoch, stage: StageIndex) {
        self.scene = (self.adversary == Some(Adversary::FakeWork)).then(|| Scene {
            node: node.clone(),
            roster: roster.clone(),
            epoch,
            stage,
        });
    }

    /// A new epoch: what a cheat kept of the last one is dropped (the scene the worker set for
    /// it stays).
    pub(crate) fn begin_epoch(&mut self) {
        let scene = self.scene.take();
        *self = Self::new(self.adversary);
        self.scene = scene;
    }

    /// Whether it computes at all (a free rider does not).
    pub(crate) fn computes(&self) -> bool {
        self.adversary.is_none_or(Adversary::computes)
    }

    /// The hotkey its samples' ids derive from: its own, or (`id-squat`) another stage-0
    /// miner's, so that its activations go out under that miner's ids.
    pub(crate) fn origin(&self, me: Hotkey, roster: &Roster) -> Hotkey {
        if self.adversary == Some(Adversary::IdSquat)
            && let Some(peer) = roster
                .assignment
                .stage(StageIndex::FIRST)
                .iter()
                .find(|m| m.hotkey != me)
        {
            return peer.hotkey;
        }
        me
    }

    /// Whether it skips the merge altogether and keeps its own weights.
    pub(crate) fn skips_merge(&self) -> bool {
        self.adversary == Some(Adversary::Late)
    }

    /// The activations to upload for `honest` (computed at `stage` in `epoch`).
    pub(crate) fn activations(
        &mut self,
        honest: &Tensor,
        node: &Node,
        roster: &Roster,
        (epoch, stage): (Epoch, StageIndex),
    ) -> Tensor {
        match self.adversary {
            None => honest.shallow_clone(),
            // Re-signs a peer's output, the last one again when the peer has no new one yet.
            Some(Adversary::Copier) => match self.peer_output(node, roster, epoch, stage) {
                Some(t) => {
                    self.last_copy = Some(t.shallow_clone());
                    t
                }
                None => self.last_copy.as_ref().unwrap_or(honest).shallow_clone(),
            },
            Some(a) => a.tamper(honest, &mut self.first),
        }
    }

    /// The gradient to upload for `honest` (a copier has no peer gradient of the same sample to
    /// copy, so it sends the honest one; `fake-work` sends it and a fake beside it).
    pub(crate) fn gradients(&mut self, honest: &Tensor) -> Tensor {
        match self.adversary {
            None | Some(Adversary::Copier) => honest.shallow_clone(),
            Some(Adversary::FakeWork) => {
                self.fake_gradient(honest);
                honest.shallow_clone()
            }
            Some(a) => a.tamper(honest, &mut self.first_grad),
        }
    }

    /// `fake-work`: signs `like` as its gradient for the next sample of the epoch that was
    /// routed to a stage peer, not to it, and uploads it, naming as its evidence the real input
    /// activation of that sample (read from the previous stage's store, where the peer found it;
    /// a sample whose input is not there yet is faked later). On the last stage the fake claims
    /// the loss of a model that predicts nothing (ln of the vocabulary), so that it opens like any
    /// gradient and only the routing check can refuse it.
    fn fake_gradient(&mut self, like: &Tensor) {
        let Some((id, input)) = self.next_fake() else {
            return;
        };
        let Some(scene) = &self.scene else {
            return;
        };
        let spec = scene.node.spec();
        let last = scene.stage.is_last(spec.stages.len());
        let claims = Claims {
            loss: last.then(|| (spec.model.vocab_size as f32).ln()),
            inputs: vec![input],
            ..Claims::default()
        };
        let at = ArtifactId {
            epoch: scene.epoch,
            stage: scene.stage,
            kind: Kind::Grad,
            id,
        };
        let (outbox, _) = self
            .fakes
            .get_or_insert_with(|| (Outbox::new(&scene.node), 0));
        match outbox.send(at, &spec.gradient_codec(), like, claims) {
            Ok(()) => {
                debug!(%at.epoch, id, "fake-work: signed a gradient for a sample routed to a peer")
            }
            Err(e) => debug!(error = %e, "fake-work: could not seal a fake gradient"),
        }
    }

    /// The next id of this epoch's samples routed to a stage peer of this miner ([`fake_id`])
    /// whose input activation is in its producer's store, with that input's verified header.
    /// One candidate per stage-0 miner is tried (a stage-0 store that cannot be read does not
    /// stop the walk); when none has its input yet, the walk stays where it is.
    fn next_fake(&mut self) -> Option<(u64, Header)> {
        let scene = self.scene.as_ref()?;
        let next = &mut self
            .fakes
            .get_or_insert_with(|| (Outbox::new(&scene.node), 0))
            .1;
        let spec = scene.node.spec();
        let origins = scene.roster.assignment.stage(StageIndex::FIRST);
        let prev = scene.stage.prev();
        let mut probe = *next;
        for _ in 0..origins.len() {
            let id = fake_id(
                spec,
                &scene.roster.assignment,
                (scene.epoch, scene.stage),
                scene.node.me(),
                &mut probe,
            )?;
            let producer = if prev.is_first() {
                // The walk's k-th id is stage-0 miner k mod n's.
                origins[((probe - 1) % origins.len() as u64) as usize].hotkey
            } else {
                routing::route(&spec.name, scene.epoch, id, prev, &scene.roster.assignment)?.hotkey
            };
            let at = ArtifactId {
                epoch: scene.epoch,
                stage: prev,
                kind: Kind::Act,
                id,
            };
            let read = fetch::boundary(spec, &scene.roster, &scene.node.metrics, at, &producer);
            if let Some((input, _)) = scene.node.rt.block_on(read) {
                *next = probe;
                return Some((id, input));
            }
        }
        None
    }

    /// This miner's copy of a merge shard to upload for `honest`.
    pub(crate) fn copy(&self, honest: &Tensor) -> Tensor {
        self.adversary
            .map_or(honest.shallow_clone(), |a| a.copy(honest))
    }

    /// The reduction of a merge shard to upload for `honest`.
    pub(crate) fn reduction(&self, honest: &Tensor) -> Tensor {
        self.adversary
            .map_or(honest.shallow_clone(), |a| a.reduction(honest))
    }

    /// A stage peer's activations this copier has not re-signed yet, verified like any input.
    fn peer_output(
        &mut self,
        node: &Node,
        roster: &Roster,
        epoch: Epoch,
        stage: StageIndex,
    ) -> Option<Tensor> {
        let spec = node.spec();
        let me = node.me();
        let peer = roster
            .assignment
            .stage(stage)
            .iter()
            .find(|m| m.hotkey != me)?
            .hotkey;
        let store = roster.store(&peer).ok()?;
        if self.peer_keys.is_empty() {
            let prefix = layout::artifacts(&spec.name, epoch, stage, &peer, Kind::Act);
            let keys = node.rt.block_on(store.list(&prefix)).ok()?;
            self.peer_keys = keys
                .into_iter()
                .filter(|k| !self.copied.contains(k))
                .collect();
        }
        let key = self.peer_keys.pop()?;
        self.copied.insert(key.clone());
        let at = ArtifactId {
            epoch,
            stage,
            kind: Kind::Act,
            id: layout::id_of_key(&key)?,
        };
        node.rt
            .block_on(fetch::boundary(spec, roster, &node.metrics, at, &peer))
            .map(|(_, t)| t)
    }
}

/// `fake-work`'s walk of `epoch`'s sample ids, in the order stage-0 miners start them (the
/// `k`-th is counter `k / n` of stage-0 miner `k % n`, from `*next` on): the next one routed at
/// `stage` to a miner other than `me`. `None` on stage 0 (it returns no gradients) and once
/// every id the stage-0 miners may start is passed.
fn fake_id(
    spec: &sliver_common::RunSpec,
    assignment: &sliver_common::assignment::Assignment,
    (epoch, stage): (Epoch, StageIndex),
    me: Hotkey,
    next: &mut u64,
) -> Option<u64> {
    if stage.is_first() {
        return None;
    }
    let origins = assignment.stage(StageIndex::FIRST);
    let n = origins.len() as u64;
    let limit = routing::max_samples_per_origin(spec).saturating_mul(n);
    while *next < limit {
        let k = *next;
        *next += 1;
        let origin = origins[(k % n) as usize].hotkey;
        let id = routing::sample_id(&spec.name, epoch, &origin, k / n);
        let to = routing::route(&spec.name, epoch, id, stage, assignment)?;
        if to.hotkey != me {
            return Some(id);
        }
    }
    None
}

/// The location this miner announces in place of its store's own, if its behaviour lies
/// about where it can be read: `store-denial` one its store refuses every reader
/// ([`neuron::denied_location`]); `store-slow` and `store-equivocate` its store's, with
/// `front` (the endpoint of the front the local subnet runs before it) as the endpoint.
///
/// # Errors
/// A fronted behaviour without a front, or on a store that is not S3; a store that cannot be
/// published.
pub(crate) fn announced_location(
    adversary: Option<Adversary>,
    store: &StoreConfig,
    front: Option<&str>,
) -> Result<Option<String>> {
    match adversary {
        Some(Adversary::StoreDenial) => Ok(Some(neuron::denied_location(store)?)),
        Some(a) if a.needs_front() => {
            let front = front.with_context(|| {
                format!("--adversary {a} needs --adversary.front: the endpoint of the front before its store (btsubnet runs one)")
            })?;
            anyhow::ensure!(
                store.url.starts_with("s3://"),
                "--adversary {a} needs an s3:// store (its front stands before an S3 endpoint), not {store}"
            );
            let mut fronted = store.clone();
            fronted.endpoint = Some(front.to_owned());
            Ok(Some(fronted.to_location()?))
        }
        _ => Ok(None),
    }
}

/// Starts what an adversary does beside its training, as tasks on `node`'s shutdown tracker:
/// `roster-churn` re-commits its announcement every epoch ([`churn`]), `griefer` attacks its
/// peers' and the validators' stores ([`griefer`]). `announced` is the announcement it made at
/// start. Nothing for the other behaviours.
pub(crate) fn spawn_beside(
    adversary: Option<Adversary>,
    node: &Node,
    hotkey: &sliver_chain::wallet::Keypair,
    announced: &sliver_subnet::announce::Announcement,
) {
    match adversary {
        Some(Adversary::RosterChurn) => {
            let task = churn::run(node.clone(), hotkey.clone(), announced.clone());
            node.shutdown.spawn("roster churn", task);
        }
        Some(Adversary::Griefer) => {
            let task = griefer::run(node.clone());
            node.shutdown.spawn("griefer", task);
        }
        _ => {}
    }
}

/// What each behaviour does to what the miner uploads.
pub trait Tamper {
    /// Whether it computes at all (a free rider does not).
    fn computes(self) -> bool;
    /// The activations it uploads in place of `honest`; `first` keeps the lazy miner's first
    /// output of the epoch. (`Copier` is handled by the worker: it needs a peer's artifacts.)
    fn tamper(self, honest: &Tensor, first: &mut Option<Tensor>) -> Tensor;
    /// Its copy of a merge shard it uploads in place of `honest`.
    fn copy(self, honest: &Tensor) -> Tensor;
    /// The reduction of a shard it uploads in place of `honest`.
    fn reduction(self, honest: &Tensor) -> Tensor;
}

/// Finite values near the float limit, a quarter of `f32::MAX` with random signs, shaped as
/// `like`: what `merge-extreme` uploads.
fn extreme(like: &Tensor) -> Tensor {
    like.rand_like().lt(0.5).to_kind(tch::Kind::Float) * (f64::from(f32::MAX) / 2.0)
        - f64::from(f32::MAX) / 4.0
}

impl Tamper for Adversary {
    fn computes(self) -> bool {
        self != Adversary::FreeRider
    }

    fn tamper(self, honest: &Tensor, first: &mut Option<Tensor>) -> Tensor {
        match self {
            Adversary::Noise => {
                let (mean, std) = (honest.mean(None), honest.std(true));
                honest.randn_like() * std + mean
            }
            Adversary::Lazy => first.get_or_insert_with(|| honest.copy()).shallow_clone(),
            Adversary::Scaled => honest * 1.1,
            _ => honest.shallow_clone(),
        }
    }

    fn copy(self, honest: &Tensor) -> Tensor {
        if self == Adversary::MergeExtreme {
            extreme(honest)
        } else {
            honest.shallow_clone()
        }
    }

    fn reduction(self, honest: &Tensor) -> Tensor {
        match self {
            Adversary::PoisonMerge => honest * 0.5 + honest.randn_like() * 0.01,
            Adversary::MergeExtreme => extreme(honest),
            _ => honest.shallow_clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_change_what_they_claim_to() {
        let honest = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        let mut first = None;
        let scaled = Adversary::Scaled.tamper(&honest, &mut first);
        assert!(scaled.allclose(&(&honest * 1.1), 1e-6, 1e-6, false));
        let lazy = Adversary::Lazy.tamper(&honest, &mut first);
        let later = Adversary::Lazy.tamper(&(&honest + 1.0), &mut first);
        assert!(lazy.equal(&later) && lazy.equal(&honest));
        let noise = Adversary::Noise.tamper(&honest, &mut None);
        assert!(!noise.equal(&honest));
        assert_eq!(noise.size(), honest.size());
        assert!(!Adversary::PoisonMerge.reduction(&honest).equal(&honest));
        assert!(Adversary::Late.reduction(&honest).equal(&honest));
        assert!(Adversary::PoisonMerge.copy(&honest).equal(&honest));
        for t in [
            Adversary::MergeExtreme.copy(&honest),
            Adversary::MergeExtreme.reduction(&honest),
        ] {
            let v = Vec::<f32>::try_from(&t).unwrap();
            assert!(
                v.iter().all(|x| x.is_finite() && x.abs() == f32::MAX / 4.0),
                "{v:?}"
            );
        }
        assert!(!Adversary::FreeRider.computes());
        assert!(Adversary::Noise.computes());
    }

    /// `fake-work` fakes only ids that stage-0 miners start and that are routed to a stage
    /// peer, each once; on stage 0 it has nothing to fake.
    #[test]
    fn fake_work_picks_samples_routed_to_a_peer() {
        use sliver_common::assignment::{Assignment, Member};
        use sliver_common::routing::Origins;
        let spec = sliver_common::testing::tiny_spec(
            &[[0, 1], [1, 2]],
            8,
            sliver_common::CodecKind::Int8,
            false,
        );
        let members: Vec<Member> = (1..=4u16)
            .map(|uid| Member {
                uid,
                hotkey: Hotkey([uid as u8; 32]),
            })
            .collect();
        let assignment = Assignment::new(2, &members);
        let epoch = Epoch(3);
        let stage = StageIndex(1);
        let me = assignment.stage(stage)[0].hotkey;
        let origins = Origins::new(
            &spec.name,
            epoch,
            assignment.stage(StageIndex::FIRST),
            routing::max_samples_per_origin(&spec),
        );
        let mut next = 0;
        let ids: Vec<u64> =
            std::iter::from_fn(|| fake_id(&spec, &assignment, (epoch, stage), me, &mut next))
                .take(50)
                .collect();
        assert_eq!(ids.len(), 50, "a peer is routed many samples");
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "each once"
        );
        for id in &ids {
            assert!(
                origins.of(*id).is_some(),
                "{id} is no stage-0 miner's sample"
            );
            let to = routing::route(&spec.name, epoch, *id, stage, &assignment).unwrap();
            assert_ne!(to.hotkey, me, "{id} was routed to the faker itself");
        }
        let mut next = 0;
        let first = assignment.stage(StageIndex::FIRST)[0].hotkey;
        assert_eq!(
            fake_id(
                &spec,
                &assignment,
                (epoch, StageIndex::FIRST),
                first,
                &mut next
            ),
            None
        );
    }

    /// The fronted behaviours announce their store's location at the front's endpoint, and
    /// need one; `store-denial` a location its store refuses; the others their own.
    #[test]
    fn fronted_behaviours_announce_the_front() {
        let mut store = StoreConfig::at("s3://bucket/prefix");
        store.endpoint = Some("http://127.0.0.1:9000".into());
        store.access_key_id = Some("write".into());
        store.secret_access_key = Some("write-secret".into());
        store.read_access_key_id = Some("read".into());
        store.read_secret_access_key = Some("read-secret".into());
        let front = "http://127.0.0.1:9100";
        for a in [Adversary::StoreSlow, Adversary::StoreEquivocate] {
            let loc = announced_location(Some(a), &store, Some(front))
                .unwrap()
                .unwrap();
            let read = StoreConfig::from_location(&loc).unwrap();
            assert_eq!(read.endpoint.as_deref(), Some(front), "{loc}");
            assert_eq!(read.url, store.url);
            assert_eq!(
                read.access_key_id.as_deref(),
                Some("read"),
                "the read key only"
            );
            assert!(announced_location(Some(a), &store, None).is_err());
            let fs = StoreConfig::at("/tmp/store");
            assert!(announced_location(Some(a), &fs, Some(front)).is_err());
        }
        let denied = announced_location(Some(Adversary::StoreDenial), &store, None)
            .unwrap()
            .unwrap();
        assert!(denied.contains("key=store-denial"), "{denied}");
        for a in [None, Some(Adversary::FakeWork), Some(Adversary::Griefer)] {
            assert_eq!(announced_location(a, &store, Some(front)).unwrap(), None);
        }
    }
}

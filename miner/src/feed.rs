//! The feed: finds, downloads and verifies what is routed to this miner, while it computes.
//!
//! It runs on the async runtime for one epoch. Activations are found two ways:
//!
//! - **By name, every round.** Which samples reach this miner is a pure function of the roster:
//!   stage 0's miners number their samples with a counter ([`routing::sample_id`]) and every
//!   later stage is a keyed draw ([`routing::route`]). [`Expected`] walks each stage-0 miner's
//!   counter a little past the furthest sample delivered so far and asks for the ids routed here
//!   by key, from the miner that must have produced them: one small GET per sample, and only for
//!   the oldest few pending of each stream (origin and producer), the ones that can have landed.
//! - **By listing, every [`SWEEP_POLLS`] polls at first.** Each previous-stage miner's activations
//!   of the epoch are listed, for whatever the names missed: a sample that fell too far behind its
//!   origin's counter, or a stage-0 miner that numbers its samples some other way. A producer
//!   whose listing found nothing new is listed half as often (down to once every
//!   `SWEEP_POLLS << MAX_SWEEP_DOUBLINGS` polls); one whose listing found something is listed
//!   at the first rate again.
//!
//! Listing every round was what the feed did first; each listing returns every activation of the
//! epoch so far, so its cost grows through the epoch and, on a machine shared by many miners
//! (the local subnet, the swarm benchmark), took CPU from the training it was feeding.
//!
//! Every request (a GET by name, a listing) runs on its own, bounded by a sample's timeout, and
//! is handled as it answers; a read in flight is not asked for again. A peer whose store
//! answers slowly or never holds only its own requests, never a round of everyone's: its
//! activations arrive late or not at all, the others' at their pace.
//!
//! Gradients are fetched by name only: the worker says which miner each sample went to. Every
//! artifact is opened with [`artifact::open`](sliver_common::artifact::open) against the roster before its payload is decoded;
//! a rejection is a log line naming the producer and the reason, and a counter, and the
//! artifact is never trained on.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use sliver_common::artifact::{ArtifactId, Expect, Header, Hotkey, Kind};
use sliver_common::assignment::Assignment;
use sliver_common::layout;
use sliver_common::metrics::Metrics;
use sliver_common::routing::{self, Origins};
use sliver_common::{Epoch, StageIndex};
use sliver_common::{RunSpec, WireCodec};
use sliver_subnet::fetch::fetch_opened;
use sliver_subnet::run::Roster;
use tch::Tensor;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Most downloads in flight at once.
const CONCURRENCY: usize = 16;

/// Most activations asked for by name per poll from one producer for one stage-0 miner's
/// samples: the oldest pending, which are the ones that can have landed (see [`Expected::due`]).
const PER_STREAM: usize = 4;

/// Every how many polls (`--miner.poll_ms`) the feed lists a previous-stage miner's activations
/// at first, whatever its round: once a second at the default poll.
pub const SWEEP_POLLS: u32 = 10;

/// How many times a producer's listing interval doubles while its listings find nothing the
/// names missed: up to `SWEEP_POLLS << MAX_SWEEP_DOUBLINGS` polls (32 s at the default poll).
/// A listing returns the producer's whole epoch so far, so listing at a fixed rate costs each
/// miner requests and bytes that grow with the epoch and with the previous stage's size; when
/// the names find everything, the listings back off to a few per minute per producer.
pub const MAX_SWEEP_DOUBLINGS: u32 = 5;

/// An input for the worker, verified and decoded.
pub enum Input {
    /// Activations of sample `id` from the previous stage.
    Act {
        /// Sample id.
        id: u64,
        /// Their verified header: named as evidence in what is computed from them.
        header: Header,
        /// `[batch, seq, wire_dim]` on the CPU.
        tensor: Tensor,
    },
    /// The gradient for what this miner forwarded for sample `id`.
    Grad {
        /// Sample id.
        id: u64,
        /// Its verified header: named as evidence in the gradient computed from it.
        header: Header,
        /// `[batch, seq, wire_dim]` on the CPU.
        tensor: Tensor,
    },
}

/// What the worker tells the feed of the gradients it waits for.
#[derive(Debug, Clone, Copy)]
pub enum Want {
    /// It waits for the gradient of sample `id` from miner `from` of the next stage.
    Gradient {
        /// Sample id.
        id: u64,
        /// The next stage's miner it was routed to.
        from: Hotkey,
    },
    /// It no longer waits for sample `id`'s gradient (dropped: overdue, or its path goes
    /// through a silent peer).
    Abandon {
        /// Sample id.
        id: u64,
    },
}

/// What the feed needs to know about this epoch.
pub struct Context {
    /// The run spec.
    pub spec: RunSpec,
    /// The epoch.
    pub epoch: Epoch,
    /// This miner's stage.
    pub stage: StageIndex,
    /// This miner.
    pub me: Hotkey,
    /// The epoch's roster.
    pub roster: Roster,
    /// Metrics (bytes down, rejections).
    pub metrics: Metrics,
    /// Boundary tensor dims.
    pub dims: Vec<i64>,
    /// Activation codec.
    pub act_codec: WireCodec,
    /// Gradient codec.
    pub grad_codec: WireCodec,
    /// Pause between rounds.
    pub poll: Duration,
    /// How far past the furthest sample delivered from a stage-0 miner [`Expected`] asks, in that
    /// miner's samples (it has at most `swarm.window * swarm.rounds` in flight).
    pub lookahead: u64,
}

/// The activations this miner should receive next, by name.
///
/// For every stage-0 miner (an *origin*) it walks the origin's sample counter up to
/// `lookahead` samples past the furthest one delivered here, keeping the ids routed to this
/// miner with the previous-stage miner that must produce each. A sample more than `lookahead`
/// behind its origin's furthest is dropped from the names asked for (its path broke somewhere
/// upstream, or it comes late); the listing still finds it if it ever lands.
pub struct Expected {
    run: String,
    epoch: Epoch,
    stage: StageIndex,
    lookahead: u64,
    origins: Vec<Origin>,
    /// (origin index, counter) → (sample id, producer), not yet delivered.
    pending: BTreeMap<(usize, u64), (u64, Hotkey)>,
    /// Sample id → (origin index, counter), for every id in `pending`.
    by_id: HashMap<u64, (usize, u64)>,
    /// The furthest counter delivered here from each stream (origin index, producer): a
    /// pending sample behind it is late (see [`Expected::due`]).
    streams: HashMap<(usize, Hotkey), u64>,
}

struct Origin {
    hotkey: Hotkey,
    /// Counters below this have been walked.
    walked: u64,
    /// The furthest counter delivered here, if any.
    furthest: Option<u64>,
}

impl Expected {
    /// The samples routed to `me` at `stage` (at least 1) under `assignment`.
    pub fn new(
        run: &str,
        epoch: Epoch,
        stage: StageIndex,
        assignment: &Assignment,
        me: Hotkey,
        lookahead: u64,
    ) -> Self {
        let origins = if stage.is_first() || !assignment.stage(stage).iter().any(|m| m.hotkey == me)
        {
            Vec::new()
        } else {
            assignment
                .stage(StageIndex::FIRST)
                .iter()
                .map(|m| Origin {
                    hotkey: m.hotkey,
                    walked: 0,
                    furthest: None,
                })
                .collect()
        };
        let mut expected = Self {
            run: run.to_string(),
            epoch,
            stage,
            lookahead: lookahead.max(1),
            origins,
            pending: BTreeMap::new(),
            by_id: HashMap::new(),
            streams: HashMap::new(),
        };
        expected.walk(assignment, me);
        expected
    }

    /// Walks every origin's counter up to `lookahead` past its furthest delivered sample.
    fn walk(&mut self, assignment: &Assignment, me: Hotkey) {
        for o in 0..self.origins.len() {
            let until = self.origins[o].furthest.map_or(0, |f| f + 1) + self.lookahead;
            self.walk_origin(o, until, false, assignment, me);
        }
    }

    /// Walks on, for every origin none of whose samples is pending here, until one is (or a
    /// bounded walk finds none). The walk's end is anchored on the furthest sample delivered
    /// *here*; with `n` miners on this stage, the origin's next sample for this miner lies about
    /// `n` samples further on, so with more miners than `lookahead` a stage's miner would, most
    /// rounds, have nothing pending from an origin whose samples keep coming: found only by
    /// listing, tens of seconds late, while the origin's round waits for them (what the scale
    /// benchmark showed from two miners a stage). Walking on while nothing is pending keeps one
    /// name per origin asked for, whatever the stage's size: what is asked stays flat in it.
    pub fn fill(&mut self, assignment: &Assignment, me: Hotkey) {
        let n = assignment.stage(self.stage).len().max(1) as u64;
        // A bound on the walk: the next sample for this miner lies within this many of any
        // counter but with a vanishing chance ((1 - 1/n)^(8n) < e^-8).
        let bound = 8 * n + self.lookahead;
        for o in 0..self.origins.len() {
            if self.pending.range((o, 0)..(o + 1, 0)).next().is_none() {
                let until = self.origins[o].walked + bound;
                self.walk_origin(o, until, true, assignment, me);
            }
        }
    }

    /// Walks origin `o`'s counter up to `until`, keeping the samples routed to `me` as pending;
    /// with `first_only`, stops at the first.
    fn walk_origin(
        &mut self,
        o: usize,
        until: u64,
        first_only: bool,
        assignment: &Assignment,
        me: Hotkey,
    ) {
        let (run, epoch, stage) = (self.run.as_str(), self.epoch, self.stage);
        let origin = &mut self.origins[o];
        while origin.walked < until {
            let counter = origin.walked;
            origin.walked += 1;
            let id = routing::sample_id(run, epoch, &origin.hotkey, counter);
            if let Some(producer) = producer_for_me(run, epoch, stage, assignment, me, origin, id) {
                self.pending.insert((o, counter), (id, producer));
                self.by_id.insert(id, (o, counter));
                if first_only {
                    return;
                }
            }
        }
    }

    /// Sample `id` was delivered or rejected: stop asking for it, and walk on past it.
    pub fn done(&mut self, id: u64, assignment: &Assignment, me: Hotkey) {
        let Some((o, counter)) = self.by_id.remove(&id) else {
            return;
        };
        if let Some((_, producer)) = self.pending.remove(&(o, counter)) {
            let furthest = self.streams.entry((o, producer)).or_insert(counter);
            *furthest = (*furthest).max(counter);
        }
        let origin = &mut self.origins[o];
        if origin.furthest.is_none_or(|f| counter > f) {
            origin.furthest = Some(counter);
            let lookahead = self.lookahead;
            let stale: Vec<(usize, u64)> = self
                .pending
                .range((o, 0)..(o, (counter + 1).saturating_sub(lookahead)))
                .map(|(k, _)| *k)
                .collect();
            for k in stale {
                if let Some((id, _)) = self.pending.remove(&k) {
                    self.by_id.remove(&id);
                }
            }
            self.walk(assignment, me);
        }
    }

    /// The (sample id, producer) pairs to ask for now: at most `per_stream` of each origin's
    /// samples from each producer, the oldest first, and at most `max` in all.
    ///
    /// An origin numbers its samples in the order it produces them, and each producer forwards
    /// them in about the order they reach it, so the oldest few pending of a stream are the ones
    /// that can have landed; asking for the rest is a GET that finds nothing.
    ///
    /// A pending sample behind one its stream already delivered is *late*: it may never come (an
    /// origin skips the samples whose path goes through a silent peer, `crate::silence`, and a
    /// sample dropped upstream never lands). Late samples have their own `per_stream` slots,
    /// the oldest first, so however many never come they do not take the slots of those that
    /// can have landed.
    pub fn due(&self, max: usize, per_stream: usize) -> Vec<(u64, Hotkey)> {
        let mut per_origin: Vec<Vec<(u64, Hotkey)>> = vec![Vec::new(); self.origins.len()];
        // Per stream: (on-time asked, late asked).
        let mut asked: HashMap<(usize, Hotkey), (usize, usize)> = HashMap::new();
        for (&(o, counter), &(id, producer)) in &self.pending {
            let late = self
                .streams
                .get(&(o, producer))
                .is_some_and(|&furthest| counter < furthest);
            let (on_time, behind) = asked.entry((o, producer)).or_default();
            let slot = if late { behind } else { on_time };
            if *slot < per_stream {
                *slot += 1;
                per_origin[o].push((id, producer));
            }
        }
        // Round-robin over origins, so one slow origin cannot take every slot.
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < max && per_origin.iter().any(|v| i < v.len()) {
            out.extend(per_origin.iter().filter_map(|v| v.get(i).copied()));
            i += 1;
        }
        out.truncate(max);
        out
    }
}

/// The previous-stage miner that must produce sample `id` of `origin` for `me` at `stage`, when
/// the routing sends it to `me`.
fn producer_for_me(
    run: &str,
    epoch: Epoch,
    stage: StageIndex,
    assignment: &Assignment,
    me: Hotkey,
    origin: &Origin,
    id: u64,
) -> Option<Hotkey> {
    let here = routing::route(run, epoch, id, stage, assignment).is_some_and(|m| m.hotkey == me);
    if !here {
        return None;
    }
    if stage.prev().is_first() {
        Some(origin.hotkey)
    } else {
        routing::route(run, epoch, id, stage.prev(), assignment).map(|m| m.hotkey)
    }
}

/// How long one read of a peer's store may take ([`sliver_subnet::fetch::peer_deadline`]).
fn peer_deadline(cx: &Context) -> Duration {
    sliver_subnet::fetch::peer_deadline(&cx.spec)
}

/// Fetches the `kind` artifact of sample `id` that `producer` uploaded at `stage` (activations
/// from the previous stage, gradients from the next): `Ok(Some)` when it is there and sound,
/// `Ok(None)` when not there yet (or not within [`peer_deadline`]), `Err(())` when rejected.
async fn fetch_from(
    cx: &Context,
    stage: StageIndex,
    kind: Kind,
    codec: &WireCodec,
    producer: Hotkey,
    id: u64,
) -> Result<Option<(Header, Tensor)>, ()> {
    let store = cx.roster.store(&producer).map_err(|_| ())?;
    let at = ArtifactId {
        epoch: cx.epoch,
        stage,
        kind,
        id,
    };
    let key = layout::artifact(&cx.spec.name, &producer, at);
    let expect = Expect::of(&cx.roster.run, at, producer, codec, &cx.dims);
    let read = fetch_opened(store, &key, &expect, &cx.roster, &cx.metrics, codec);
    match tokio::time::timeout(peer_deadline(cx), read).await {
        Ok(r) => r,
        Err(_) => {
            cx.metrics.reject("timeout");
            debug!(producer = %producer.short(), key, "a peer's store did not answer in time");
            Ok(None)
        }
    }
}

/// Whether `producer` of the previous stage is the one miner whose copy of sample `id` this
/// miner takes. Past stage 1 a sample has one producer per stage, the routed one; stage 0's
/// producer is whoever started the sample, the origin its id derives from (`origins`).
fn is_producer(cx: &Context, origins: &Origins, producer: Hotkey, id: u64) -> bool {
    let stage = cx.stage.prev();
    if stage.is_first() {
        return origins.of(id) == Some(producer);
    }
    routing::route(&cx.spec.name, cx.epoch, id, stage, &cx.roster.assignment)
        .is_some_and(|m| m.hotkey == producer)
}

/// Lists `up`'s activations of the epoch (the previous stage's), within [`peer_deadline`]:
/// `None` when the listing failed or took too long (tried again at the next sweep).
async fn list_activations(cx: &Context, up: Hotkey) -> Option<Vec<String>> {
    let store = cx.roster.store(&up).ok()?;
    let prefix = layout::artifacts(&cx.spec.name, cx.epoch, cx.stage.prev(), &up, Kind::Act);
    match tokio::time::timeout(peer_deadline(cx), store.list(&prefix)).await {
        Ok(Ok(keys)) => Some(keys),
        Ok(Err(e)) => {
            warn!(producer = %up.short(), error = %e, "listing activations failed; will retry");
            None
        }
        Err(_) => {
            cx.metrics.reject("timeout");
            debug!(producer = %up.short(), "listing activations took too long; will retry");
            None
        }
    }
}

/// Of the activation keys listed in `up`'s store, up to [`CONCURRENCY`] ids routed here and
/// not yet `seen`; ids routed elsewhere are marked seen.
fn routed_here(
    cx: &Context,
    origins: &Origins,
    seen: &mut HashSet<(Hotkey, u64)>,
    up: Hotkey,
    keys: &[String],
) -> Vec<u64> {
    let mut found = Vec::new();
    for id in keys.iter().filter_map(|k| layout::id_of_key(k)) {
        if found.len() == CONCURRENCY || seen.contains(&(up, id)) {
            continue;
        }
        let here = is_producer(cx, origins, up, id)
            && routing::route(&cx.spec.name, cx.epoch, id, cx.stage, &cx.roster.assignment)
                .is_some_and(|m| m.hotkey == cx.me);
        if here {
            found.push(id);
        } else {
            seen.insert((up, id));
        }
    }
    found
}

/// One request of the feed to a peer's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Request {
    /// Sample `id`'s activation from `producer` (`listed`: found by a listing, not by name).
    Act {
        id: u64,
        producer: Hotkey,
        listed: bool,
    },
    /// Sample `id`'s gradient from `from`, the next stage's miner it was routed to.
    Grad { id: u64, from: Hotkey },
    /// The listing of `producer`'s activations.
    List { producer: Hotkey },
}

/// Which read a [`Request`] is, whatever found it: a kind, a peer and a sample (a listing has
/// no sample).
type Read = (Option<Kind>, Hotkey, u64);

impl Request {
    fn read(self) -> Read {
        match self {
            Request::Act { id, producer, .. } => (Some(Kind::Act), producer, id),
            Request::Grad { id, from } => (Some(Kind::Grad), from, id),
            Request::List { producer } => (None, producer, 0),
        }
    }
}

/// What a [`Request`] got.
enum Answer {
    /// An artifact: see [`fetch_from`] (boxed: a header is large beside a listing).
    Artifact(Box<Result<Option<(Header, Tensor)>, ()>>),
    /// A listing: see [`list_activations`].
    Listing(Option<Vec<String>>),
}

/// Carries out one request, bounded by [`peer_deadline`].
async fn perform(cx: &Context, request: Request) -> (Request, Answer) {
    let answer = match request {
        Request::Act { id, producer, .. } => Answer::Artifact(Box::new(
            fetch_from(cx, cx.stage.prev(), Kind::Act, &cx.act_codec, producer, id).await,
        )),
        Request::Grad { id, from } => Answer::Artifact(Box::new(
            fetch_from(cx, cx.stage.next(), Kind::Grad, &cx.grad_codec, from, id).await,
        )),
        Request::List { producer } => Answer::Listing(list_activations(cx, producer).await),
    };
    (request, answer)
}

/// Activations the feed delivered in an epoch, by how it found them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Received {
    /// Asked for by key, as [`Expected`] named them.
    pub by_name: u64,
    /// Found by listing a producer's activations.
    pub by_listing: u64,
    /// Listings made (each returns one producer's activations of the epoch so far).
    pub listings: u64,
}

/// When each previous-stage miner's activations are listed next: every [`SWEEP_POLLS`] polls
/// at first, twice as long after each listing that found nothing the names missed (up to
/// [`MAX_SWEEP_DOUBLINGS`] times), back to the first rate after one that found something.
#[derive(Debug, Default)]
struct Sweeps {
    /// By producer: doublings so far, and when its next listing is due (`None` while one is
    /// in flight).
    due: HashMap<Hotkey, (u32, Option<Instant>)>,
}

impl Sweeps {
    /// The producers among `producers` whose listing is due at `now`; each is then not due
    /// again until [`Sweeps::listed`] says what its listing found.
    fn due(&mut self, producers: impl Iterator<Item = Hotkey>, now: Instant) -> Vec<Hotkey> {
        let mut out = Vec::new();
        for p in producers {
            let (_, at) = self.due.entry(p).or_insert((0, Some(now)));
            if at.is_some_and(|t| t <= now) {
                *at = None;
                out.push(p);
            }
        }
        out
    }

    /// `producer`'s listing answered at `now`; `found` whether it found anything new.
    fn listed(&mut self, producer: Hotkey, found: bool, now: Instant, poll: Duration) {
        let (doublings, at) = self.due.entry(producer).or_insert((0, None));
        *doublings = if found {
            0
        } else {
            (*doublings + 1).min(MAX_SWEEP_DOUBLINGS)
        };
        *at = Some(now + poll * (SWEEP_POLLS << *doublings));
    }
}

/// Runs the feed until `cancel` fires or the worker hangs up; returns what it delivered.
pub async fn run(
    cx: Context,
    mut wants: UnboundedReceiver<Want>,
    out: mpsc::Sender<Input>,
    cancel: CancellationToken,
) -> Received {
    let run = cx.spec.name.clone();
    // Ids already delivered, rejected, or routed to another miner: never looked at again.
    let mut seen: HashSet<(Hotkey, u64)> = HashSet::new();
    let mut waiting: HashMap<u64, Hotkey> = HashMap::new();
    let mut expected = Expected::new(
        &run,
        cx.epoch,
        cx.stage,
        &cx.roster.assignment,
        cx.me,
        cx.lookahead,
    );
    // Stage 1 takes a sample only from the stage-0 miner its id derives from.
    let origins = if cx.stage.prev().is_first() && !cx.stage.is_first() {
        Origins::new(
            &run,
            cx.epoch,
            cx.roster.assignment.stage(StageIndex::FIRST),
            routing::max_samples_per_origin(&cx.spec),
        )
    } else {
        Origins::default()
    };
    let mut sweeps = Sweeps::default();
    // Activations received, by how they were found: the epoch's record says whether the names
    // did their job.
    let mut received = Received::default();
    let last = cx.stage.is_last(cx.spec.stages.len());
    let cx = &cx;
    // Every request runs on its own and is handled as it answers: a peer whose store answers
    // slowly, or never, holds only its own requests (each bounded by a sample's timeout), never
    // a round of everyone's. Rounds are paced by the peers that answer: the next one starts a
    // poll after the last one's requests have all answered, or once the round has waited
    // `SWEEP_POLLS` polls, whichever is first; what is still in flight then stays in flight (it
    // is handled when it answers) and is not asked for again.
    let mut inflight = FuturesUnordered::new();
    let mut busy: HashSet<Read> = HashSet::new();
    let mut round: HashSet<Read> = HashSet::new();
    let mut round_began = Instant::now();
    let round_cap = cx.poll * SWEEP_POLLS;
    let mut next_round = tokio::time::Instant::now();
    loop {
        let mut asks: Vec<Request> = Vec::new();
        tokio::select! {
            () = cancel.cancelled() => return received,
            Some((request, answer)) = inflight.next(), if !inflight.is_empty() => {
                let request: Request = request;
                busy.remove(&request.read());
                if round.remove(&request.read()) && round.is_empty() {
                    next_round = tokio::time::Instant::now() + cx.poll;
                }
                match (request, answer) {
                    (Request::List { producer }, Answer::Listing(keys)) => {
                        received.listings += 1;
                        let ids = keys.map_or_else(Vec::new, |keys| {
                            routed_here(cx, &origins, &mut seen, producer, &keys)
                        });
                        sweeps.listed(producer, !ids.is_empty(), Instant::now(), cx.poll);
                        for id in ids {
                            asks.push(Request::Act { id, producer, listed: true });
                        }
                    }
                    (Request::Act { id, producer, listed }, Answer::Artifact(r)) => match *r {
                        Ok(Some((header, tensor))) => {
                            if seen.insert((producer, id)) {
                                expected.done(id, &cx.roster.assignment, cx.me);
                                let how = if listed {
                                    received.by_listing += 1;
                                    "received_by_listing"
                                } else {
                                    received.by_name += 1;
                                    "received_by_name"
                                };
                                cx.metrics.add_samples(how, 1);
                                if out.send(Input::Act { id, header, tensor }).is_err() {
                                    return received;
                                }
                            }
                        }
                        Ok(None) => {}
                        Err(()) => {
                            seen.insert((producer, id));
                            expected.done(id, &cx.roster.assignment, cx.me);
                        }
                    },
                    (Request::Grad { id, .. }, Answer::Artifact(r)) => match *r {
                        Ok(Some((header, tensor))) => {
                            if waiting.remove(&id).is_some()
                                && out.send(Input::Grad { id, header, tensor }).is_err()
                            {
                                return received;
                            }
                        }
                        Ok(None) => {}
                        Err(()) => {
                            waiting.remove(&id);
                        }
                    },
                    _ => {}
                }
            }
            () = tokio::time::sleep_until(next_round) => {
                if !round.is_empty() && round_began.elapsed() < round_cap {
                    // The round is still out: looked at again once it is over, or at the cap.
                    next_round = tokio::time::Instant::now() + round_cap - round_began.elapsed();
                    continue;
                }
                round.clear();
                round_began = Instant::now();
                next_round = tokio::time::Instant::now() + cx.poll;
                // Activations routed here: by name every round, by listing when a producer's
                // listing is due (`Sweeps`).
                if !cx.stage.is_first() {
                    expected.fill(&cx.roster.assignment, cx.me);
                    asks.extend(
                        expected
                            .due(usize::MAX, PER_STREAM)
                            .into_iter()
                            .filter(|&(id, producer)| !seen.contains(&(producer, id)))
                            .map(|(id, producer)| Request::Act { id, producer, listed: false })
                            .filter(|r| !busy.contains(&r.read()))
                            .take(CONCURRENCY * 2),
                    );
                    let producers = cx.roster.assignment.stage(cx.stage.prev()).iter().map(|up| up.hotkey);
                    asks.extend(
                        sweeps
                            .due(producers, Instant::now())
                            .into_iter()
                            .map(|producer| Request::List { producer }),
                    );
                }
                // Gradients the worker waits for.
                if !last {
                    while let Ok(w) = wants.try_recv() {
                        match w {
                            Want::Gradient { id, from } => waiting.insert(id, from),
                            Want::Abandon { id } => waiting.remove(&id),
                        };
                    }
                    asks.extend(
                        waiting
                            .iter()
                            .map(|(&id, &from)| Request::Grad { id, from })
                            .filter(|r| !busy.contains(&r.read()))
                            .take(CONCURRENCY * 2),
                    );
                }
            }
        }
        for request in asks {
            if busy.insert(request.read()) {
                round.insert(request.read());
                inflight.push(perform(cx, request));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sliver_common::assignment::Member;

    /// A producer whose listings find nothing is listed half as often each time, down to once
    /// every `SWEEP_POLLS << MAX_SWEEP_DOUBLINGS` polls; one listing that finds something puts
    /// it back at the first rate. Nothing is due twice while its listing is in flight.
    #[test]
    fn listings_back_off_while_they_find_nothing() {
        let poll = Duration::from_millis(100);
        let (a, b) = (Hotkey([1; 32]), Hotkey([2; 32]));
        let mut sweeps = Sweeps::default();
        let t0 = Instant::now();
        assert_eq!(sweeps.due([a, b].into_iter(), t0), vec![a, b]);
        assert!(
            sweeps.due([a, b].into_iter(), t0 + poll * 1000).is_empty(),
            "in flight"
        );

        // `a` finds nothing, again and again: the gaps double up to the cap.
        let mut now = t0;
        let mut gaps = Vec::new();
        for _ in 0..(MAX_SWEEP_DOUBLINGS + 2) {
            sweeps.listed(a, false, now, poll);
            let mut next = now;
            while sweeps.due([a].into_iter(), next).is_empty() {
                next += poll;
            }
            gaps.push((next - now).as_millis() / poll.as_millis());
            now = next;
        }
        let expect: Vec<u128> = (1..=MAX_SWEEP_DOUBLINGS + 2)
            .map(|d| u128::from(SWEEP_POLLS << d.min(MAX_SWEEP_DOUBLINGS)))
            .collect();
        assert_eq!(gaps, expect);

        // One that finds something: back to the first rate.
        sweeps.listed(a, true, now, poll);
        assert!(
            sweeps
                .due([a].into_iter(), now + poll * (SWEEP_POLLS - 1))
                .is_empty()
        );
        assert_eq!(
            sweeps.due([a].into_iter(), now + poll * SWEEP_POLLS),
            vec![a]
        );
        // `b` was never answered: still in flight, never asked again.
        assert!(sweeps.due([b].into_iter(), now + poll * 100_000).is_empty());
    }

    fn assignment(stages: usize, miners: u16) -> Assignment {
        let members: Vec<Member> = (0..miners)
            .map(|uid| Member {
                uid,
                hotkey: Hotkey([uid as u8 + 1; 32]),
            })
            .collect();
        Assignment::new(stages, &members)
    }

    /// Every sample an origin starts is asked for by exactly one miner of stage 1, from that
    /// origin, and by exactly one of stage 2, from the stage-1 miner it was routed to.
    #[test]
    fn names_partition_the_samples_by_route() {
        let a = assignment(3, 9);
        let lookahead = 24;
        for stage in [1, 2].map(StageIndex) {
            let mut asked: HashMap<u64, Hotkey> = HashMap::new();
            for m in a.stage(stage) {
                let e = Expected::new("r", Epoch(4), stage, &a, m.hotkey, lookahead);
                let due = e.due(usize::MAX, usize::MAX);
                assert!(!due.is_empty(), "stage {stage} miner asks for nothing");
                for (id, producer) in due {
                    assert_eq!(
                        routing::route("r", Epoch(4), id, stage, &a).unwrap().hotkey,
                        m.hotkey
                    );
                    assert!(
                        asked.insert(id, producer).is_none(),
                        "two miners ask for {id}"
                    );
                }
            }
            for origin in a.stage(StageIndex(0)) {
                for counter in 0..lookahead {
                    let id = routing::sample_id("r", Epoch(4), &origin.hotkey, counter);
                    let want = if stage == StageIndex(1) {
                        origin.hotkey
                    } else {
                        routing::route("r", Epoch(4), id, StageIndex(1), &a)
                            .unwrap()
                            .hotkey
                    };
                    assert_eq!(
                        asked.get(&id),
                        Some(&want),
                        "stage {stage} counter {counter}"
                    );
                }
            }
            assert_eq!(
                asked.len() as u64,
                lookahead * a.stage(StageIndex(0)).len() as u64
            );
        }
    }

    /// Delivering the furthest sample walks the origin's counter on; samples more than the
    /// lookahead behind it are no longer asked for; unknown ids change nothing.
    #[test]
    fn names_walk_on_and_drop_what_falls_behind() {
        let a = assignment(2, 2);
        let (origin, me) = (
            a.stage(StageIndex(0))[0].hotkey,
            a.stage(StageIndex(1))[0].hotkey,
        );
        let lookahead = 8;
        let mut e = Expected::new("r", Epoch(1), StageIndex(1), &a, me, lookahead);
        let counters = |e: &Expected| -> Vec<u64> {
            e.due(usize::MAX, usize::MAX)
                .into_iter()
                .map(|(id, _)| e.by_id[&id].1)
                .collect()
        };
        assert_eq!(counters(&e), (0..8).collect::<Vec<_>>());
        e.done(u64::MAX, &a, me);
        assert_eq!(counters(&e).len(), 8);
        // Sample 5 lands first: 0..=4 are still asked for, and 6..=13.
        e.done(routing::sample_id("r", Epoch(1), &origin, 5), &a, me);
        let want: Vec<u64> = (0..5).chain(6..14).collect();
        assert_eq!(counters(&e), want);
        // Sample 12 lands: 0..=4 are more than 8 behind it and dropped.
        e.done(routing::sample_id("r", Epoch(1), &origin, 12), &a, me);
        let want: Vec<u64> = (6..12).chain(13..21).collect();
        assert_eq!(counters(&e), want);
        // A miner outside the stage asks for nothing.
        let outsider = Expected::new(
            "r",
            Epoch(1),
            StageIndex(1),
            &a,
            Hotkey([99; 32]),
            lookahead,
        );
        assert!(outsider.due(usize::MAX, usize::MAX).is_empty());
    }

    /// On a stage of many miners, an origin's next sample for one of them lies far past the
    /// lookahead: while nothing of that origin is pending, the walk goes on until something is,
    /// so every sample routed here is asked for by name, in order, one origin's at a time.
    #[test]
    fn a_wide_stage_still_asks_for_every_sample_by_name() {
        // 2 stages of 40 miners: one origin's samples reach a stage-1 miner one in 40.
        let a = assignment(2, 80);
        let origin = a.stage(StageIndex(0))[0].hotkey;
        let me = a.stage(StageIndex(1))[0].hotkey;
        let lookahead = 8;
        let mut e = Expected::new("r", Epoch(1), StageIndex(1), &a, me, lookahead);
        let mine: Vec<u64> = (0..4000)
            .map(|c| routing::sample_id("r", Epoch(1), &origin, c))
            .filter(|&id| {
                routing::route("r", Epoch(1), id, StageIndex(1), &a).is_some_and(|m| m.hotkey == me)
            })
            .take(20)
            .collect();
        assert_eq!(mine.len(), 20);
        for &id in &mine {
            e.fill(&a, me);
            let from_origin: Vec<u64> = e
                .due(usize::MAX, usize::MAX)
                .into_iter()
                .filter(|&(_, p)| p == origin)
                .map(|(id, _)| id)
                .collect();
            assert_eq!(
                from_origin.first(),
                Some(&id),
                "the next sample for this miner is asked for by name"
            );
            assert!(from_origin.len() <= 3, "{from_origin:?}");
            e.done(id, &a, me);
        }
    }

    /// The names asked for in one round are capped, and shared among origins.
    #[test]
    fn due_is_capped_and_round_robin() {
        let a = assignment(2, 6);
        let me = a.stage(StageIndex(1))[0].hotkey;
        let e = Expected::new("r", Epoch(1), StageIndex(1), &a, me, 64);
        let due = e.due(6, usize::MAX);
        assert_eq!(due.len(), 6);
        let origins: HashSet<Hotkey> = due.iter().map(|&(_, p)| p).collect();
        assert_eq!(origins.len(), 3, "{due:?}");
    }

    /// Past stage 1 each origin's samples come from several producers: each producer's oldest
    /// few are asked for, so one silent producer does not hold up the others.
    #[test]
    fn due_asks_each_stream_for_its_oldest() {
        let a = assignment(3, 6);
        let me = a.stage(StageIndex(2))[0].hotkey;
        let e = Expected::new("r", Epoch(1), StageIndex(2), &a, me, 64);
        let all = e.due(usize::MAX, usize::MAX);
        let few = e.due(usize::MAX, 2);
        let producers: HashSet<Hotkey> = all.iter().map(|&(_, p)| p).collect();
        assert_eq!(producers.len(), 2, "both stage-1 miners produce for me");
        for (o, origin) in a.stage(StageIndex(0)).iter().enumerate() {
            for &p in &producers {
                let stream = |d: &[(u64, Hotkey)]| -> Vec<u64> {
                    d.iter()
                        .filter(|&&(id, q)| q == p && e.by_id[&id].0 == o)
                        .map(|&(id, _)| e.by_id[&id].1)
                        .collect()
                };
                let (mut all, mut few) = (stream(&all), stream(&few));
                all.sort_unstable();
                few.sort_unstable();
                assert!(
                    all.len() > 2,
                    "origin {} producer stream too short",
                    origin.uid
                );
                assert_eq!(few, all[..2], "origin {}", origin.uid);
            }
        }
    }

    /// An origin skipped three samples routed here (their path went through a silent peer) and
    /// the fourth came: the three are late and take the late slots (the oldest two), so the
    /// ones after the fourth are still asked for.
    #[test]
    fn late_samples_do_not_hold_the_stream() {
        let a = assignment(2, 4);
        let me = a.stage(StageIndex(1))[0].hotkey;
        let mut e = Expected::new("r", Epoch(1), StageIndex(1), &a, me, 64);
        let stream = |e: &Expected| -> Vec<u64> {
            e.due(usize::MAX, 2)
                .iter()
                .filter(|&&(id, _)| e.by_id[&id].0 == 0)
                .map(|&(id, _)| e.by_id[&id].1)
                .collect()
        };
        let pending: Vec<(u64, u64)> = e
            .pending
            .iter()
            .filter(|((o, _), _)| *o == 0)
            .map(|(&(_, c), &(id, _))| (c, id))
            .collect();
        assert!(pending.len() > 6);
        assert_eq!(stream(&e), [pending[0].0, pending[1].0]);
        e.done(pending[3].1, &a, me);
        let mut due = stream(&e);
        due.sort_unstable();
        assert_eq!(
            due,
            [pending[0].0, pending[1].0, pending[4].0, pending[5].0],
            "the oldest two late ones, and the next two"
        );
    }

    /// A stage-1 miner with two stage-0 peers: one whose store accepts connections and never
    /// answers, one honest with its first activations stored. Every honest activation reaches
    /// the worker well inside the slow store's read deadline: the feed never waits on the slow
    /// peer's requests to ask for, or hand on, anyone else's.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_that_never_answers_does_not_hold_back_the_others() {
        use sliver_common::artifact::{self, Signer, Unsealed};
        use sliver_common::codec::CodecKind;
        use sliver_common::storage::{Reach, Store, StoreConfig};
        use sliver_subnet::signer::HotkeySigner as Key;

        let mut spec =
            sliver_common::testing::tiny_spec(&[[0, 1], [1, 2]], 8, CodecKind::Int8, false);
        spec.name = "r".into();
        spec.swarm.sample_timeout_secs = 5;
        use sliver_common::testing::hostile::{Behaviour, HostileServer};
        let hung = HostileServer::spawn(Behaviour::Silent).await;
        let silent = hung.config("silent");
        let dir = tempfile::tempdir().unwrap();
        let honest_store = Store::open(&StoreConfig::filesystem(dir.path())).unwrap();
        // Uids 0 and 2 on stage 0 (honest, silent), uid 1 (this miner) on stage 1.
        let keys: Vec<Key> = (0..3)
            .map(|_| Key(sliver_chain::wallet::Keypair::generate()))
            .collect();
        let members: Vec<Member> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Member {
                uid: i as u16,
                hotkey: k.hotkey(),
            })
            .collect();
        let (honest, me, slow) = (&keys[0], keys[1].hotkey(), keys[2].hotkey());
        let roster = Roster {
            run: sliver_common::testing::test_run("r"),
            epoch: Epoch(1),
            assignment: Assignment::new(2, &members),
            stores: HashMap::from([
                (honest.hotkey(), honest_store.clone()),
                (slow, Store::open_peer(&silent, Reach::Local).unwrap()),
            ]),
        };
        let codec = spec.activation_codec();
        let dims = spec.wire_dims();
        let sent = 6;
        for c in 0..sent {
            let at = ArtifactId {
                epoch: Epoch(1),
                stage: StageIndex(0),
                kind: Kind::Act,
                id: routing::sample_id("r", Epoch(1), &honest.hotkey(), c),
            };
            let t = Tensor::zeros(dims.as_slice(), (tch::Kind::Float, tch::Device::Cpu));
            let bytes = artifact::seal(
                Unsealed {
                    run: &roster.run,
                    at,
                    codec: codec.kind(),
                    dims: &dims,
                    weights: None,
                    loss: None,
                    inputs: &[],
                },
                &codec.encode(&t).unwrap(),
                honest,
            )
            .unwrap();
            let key = layout::artifact("r", &honest.hotkey(), at);
            honest_store.put_once(&key, bytes.into()).await.unwrap();
        }
        let cx = Context {
            act_codec: spec.activation_codec(),
            grad_codec: spec.gradient_codec(),
            spec,
            epoch: Epoch(1),
            stage: StageIndex(1),
            me,
            roster,
            metrics: Metrics::new("miner"),
            dims: dims.to_vec(),
            poll: Duration::from_millis(20),
            lookahead: 8,
        };
        let (_wants_tx, wants) = tokio::sync::mpsc::unbounded_channel();
        let (out, inputs) = mpsc::channel();
        let cancel = CancellationToken::new();
        let feed = tokio::spawn(run(cx, wants, out, cancel.clone()));
        let t0 = Instant::now();
        let got = tokio::task::spawn_blocking(move || {
            let mut got = HashSet::new();
            while got.len() < sent as usize && t0.elapsed() < Duration::from_secs(4) {
                if let Ok(Input::Act { id, header, .. }) =
                    inputs.recv_timeout(Duration::from_millis(100))
                {
                    assert_eq!(header.id, id);
                    got.insert(id);
                }
            }
            got
        })
        .await
        .unwrap();
        let took = t0.elapsed();
        cancel.cancel();
        let received = feed.await.unwrap();
        assert_eq!(got.len(), sent as usize, "after {took:?}");
        assert!(took < Duration::from_secs(2), "took {took:?}");
        assert_eq!(received.by_name + received.by_listing, sent);
    }
}

//! The feed: finds, downloads and verifies what is routed to this miner, while it computes.
//!
//! It runs on the async runtime for one epoch. Every round it lists the activations of the
//! previous stage's miners, keeps the ids routed here, and fetches the gradients the worker is
//! waiting for (their keys are known: the worker says which miner each sample went to). Every
//! artifact is opened with [`artifact::open`] against the roster before its payload is decoded;
//! a rejection is a log line naming the producer and the reason, and a counter, and the
//! artifact is never trained on.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::Duration;

use futures::future::join_all;
use sliver_common::artifact::{self, Expect, Hotkey, Kind};
use sliver_common::metrics::Metrics;
use sliver_common::routing;
use sliver_common::{RunSpec, WireCodec};
use sliver_subnet::fetch::fetch;
use sliver_subnet::run::Roster;
use tch::Tensor;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// Most downloads in flight at once.
const CONCURRENCY: usize = 16;

/// An input for the worker, verified and decoded.
pub enum Input {
    /// Activations of sample `id` from the previous stage.
    Act {
        /// Sample id.
        id: u64,
        /// `[batch, seq, wire_dim]` on the CPU.
        tensor: Tensor,
    },
    /// The gradient for what this miner forwarded for sample `id`.
    Grad {
        /// Sample id.
        id: u64,
        /// `[batch, seq, wire_dim]` on the CPU.
        tensor: Tensor,
    },
}

/// The worker waits for the gradient of sample `id` from miner `from` of the next stage.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    /// Sample id.
    pub id: u64,
    /// The next stage's miner it was routed to.
    pub from: Hotkey,
}

/// What the feed needs to know about this epoch.
pub struct Context {
    /// The run spec.
    pub spec: RunSpec,
    /// The epoch.
    pub epoch: u64,
    /// This miner's stage.
    pub stage: usize,
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
}

/// Runs the feed until `cancel` fires or the worker hangs up.
pub async fn run(
    cx: Context,
    mut wants: UnboundedReceiver<Want>,
    out: mpsc::Sender<Input>,
    cancel: CancellationToken,
) {
    let run = cx.spec.name.clone();
    // Ids already delivered, rejected, or routed to another miner: never looked at again.
    let mut seen: HashSet<(Hotkey, u64)> = HashSet::new();
    let mut waiting: HashMap<u64, Hotkey> = HashMap::new();
    let last = cx.stage + 1 == cx.spec.stages.len();
    let cx = &cx;
    loop {
        // Activations routed here.
        if cx.stage > 0 {
            for up in cx.roster.assignment.stage(cx.stage - 1) {
                let Ok(store) = cx.roster.store(&up.hotkey) else {
                    continue;
                };
                let prefix = artifact::prefix(&run, cx.epoch, cx.stage - 1, &up.hotkey, Kind::Act);
                let keys = match store.list(&prefix).await {
                    Ok(k) => k,
                    Err(e) => {
                        warn!(error = %e, "listing activations failed; will retry");
                        continue;
                    }
                };
                let mut mine: Vec<(String, u64)> = Vec::new();
                for (key, id) in keys
                    .into_iter()
                    .filter_map(|k| artifact::id_of_key(&k).map(|id| (k, id)))
                {
                    if mine.len() == CONCURRENCY || seen.contains(&(up.hotkey, id)) {
                        continue;
                    }
                    // Past stage 1 a sample has one producer per stage, the routed one: a copy
                    // under its id from anyone else is not taken (stage 0's producer is whoever
                    // started the sample, which its id does not name).
                    let producer = cx.stage - 1;
                    if producer > 0
                        && routing::route(
                            &run,
                            cx.epoch,
                            id,
                            producer,
                            cx.roster.assignment.stage(producer),
                        )
                        .is_none_or(|m| m.hotkey != up.hotkey)
                    {
                        seen.insert((up.hotkey, id));
                        continue;
                    }
                    let routed_here = routing::route(
                        &run,
                        cx.epoch,
                        id,
                        cx.stage,
                        cx.roster.assignment.stage(cx.stage),
                    )
                    .is_some_and(|m| m.hotkey == cx.me);
                    if routed_here {
                        mine.push((key, id));
                    } else {
                        seen.insert((up.hotkey, id));
                    }
                }
                let fetched = join_all(mine.iter().map(|(key, id)| {
                    let expect = Expect::of(
                        &run,
                        (cx.epoch, cx.stage - 1, Kind::Act, *id),
                        up.hotkey,
                        &cx.act_codec,
                        &cx.dims,
                    );
                    async move {
                        fetch(store, key, &expect, &cx.roster, &cx.metrics, &cx.act_codec).await
                    }
                }))
                .await;
                for ((_, id), r) in mine.iter().zip(fetched) {
                    match r {
                        Ok(Some(tensor)) => {
                            seen.insert((up.hotkey, *id));
                            if out.send(Input::Act { id: *id, tensor }).is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(()) => {
                            seen.insert((up.hotkey, *id));
                        }
                    }
                }
            }
        }
        // Gradients the worker waits for.
        if !last {
            while let Ok(w) = wants.try_recv() {
                waiting.insert(w.id, w.from);
            }
            let batch: Vec<(u64, Hotkey)> = waiting
                .iter()
                .take(CONCURRENCY * 2)
                .map(|(id, from)| (*id, *from))
                .collect();
            let fetched = join_all(batch.iter().map(|(id, from)| {
                let run = &run;
                async move {
                    let store = cx.roster.store(from).map_err(|_| ())?;
                    let key = artifact::key(run, cx.epoch, cx.stage + 1, from, Kind::Grad, *id);
                    let expect = Expect::of(
                        run,
                        (cx.epoch, cx.stage + 1, Kind::Grad, *id),
                        *from,
                        &cx.grad_codec,
                        &cx.dims,
                    );
                    fetch(
                        store,
                        &key,
                        &expect,
                        &cx.roster,
                        &cx.metrics,
                        &cx.grad_codec,
                    )
                    .await
                }
            }))
            .await;
            for ((id, _), r) in batch.iter().zip(fetched) {
                match r {
                    Ok(Some(tensor)) => {
                        waiting.remove(id);
                        if out.send(Input::Grad { id: *id, tensor }).is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(()) => {
                        waiting.remove(id);
                    }
                }
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(cx.poll) => {}
        }
    }
}

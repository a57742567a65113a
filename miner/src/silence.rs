//! Silent peers: a miner further down the pipeline that stops answering is found from what
//! every peer can read in the stores, and routed around.
//!
//! A sample a miner sent on owes it a gradient within `swarm.sample_timeout_secs`. When one is
//! overdue, the miner looks along the sample's path past itself, as anyone can: each later
//! stage's activation and each gradient back, in the order they are made
//! ([`routing::downstream`]). The first one missing names the miner that held the sample up.
//!
//! - That miner is *suspect* at once: a stage-0 miner starts no sample whose path goes through
//!   it (it skips that counter: which samples it starts is its own choice, and the validator
//!   accepts any counter), and every miner drops the samples it has in flight through it rather
//!   than wait out their timeouts. A stage-0 miner's freed window starts new samples, routed
//!   around it: the work is done again elsewhere, not waited on.
//! - One deadline later the same artifact is looked at again, and the folder it belongs in
//!   counted before and after. There, or the folder grew: the miner was slow, not silent, and
//!   samples go to it again. Still missing and no progress: it is *silent*, avoided for the rest of
//!   the epoch and the next ones until it shows it is back: its merge contribution to an epoch
//!   (looked for once an epoch, at its start).
//!
//! A stage is never avoided whole: when every miner of a stage is suspect or silent, none of
//! them is avoided (there is nowhere else to send its samples). Each look is one metadata
//! request per artifact on the path, in parallel and bounded by a peer's deadline, and at most
//! [`MAX_LOOKS`] run at once: what a silent peer costs its readers is flat in the swarm's size.
//!
//! What this does not catch: a store that answers "there" for every key hides its miner's
//! silence from the look (its samples keep timing out, one deadline each, and the validator
//! pays it nothing for them).

use std::collections::HashMap;
use std::sync::mpsc;

use sliver_common::artifact::{ArtifactId, Hotkey, Kind};
use sliver_common::assignment::{Assignment, Member};
use sliver_common::{Epoch, StageIndex, layout, routing};
use sliver_subnet::run::Roster;
use tracing::{info, warn};

use crate::node::Node;

/// The most looks along overdue samples' paths under way at once.
pub const MAX_LOOKS: usize = 4;

/// How a peer stands with this miner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// It held a sample up; avoided until a second look, a deadline later, at what it owed.
    Suspect,
    /// It still owed it a deadline later; avoided until its merge shows it is back.
    Silent,
}

/// An artifact a sample's path owed, and the miner that owed it.
#[derive(Debug, Clone)]
struct Owed {
    peer: Hotkey,
    stage: StageIndex,
    key: String,
}

/// What a look found, sent back from the runtime to the training thread.
enum Finding {
    /// Along an overdue sample's path: the first artifact missing, if any was.
    Looked { epoch: Epoch, owed: Option<Owed> },
    /// At a suspect's owed artifact, a deadline later.
    Relooked { peer: Hotkey, there: bool },
}

/// The peers this miner routes around, kept across epochs, and the looks under way.
pub(crate) struct Silence {
    peers: HashMap<Hotkey, (StageIndex, Standing)>,
    tx: mpsc::Sender<Finding>,
    rx: mpsc::Receiver<Finding>,
    looking: usize,
    epoch: Epoch,
}

impl Default for Silence {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            peers: HashMap::new(),
            tx,
            rx,
            looking: 0,
            epoch: Epoch(0),
        }
    }
}

impl Silence {
    /// Starts `epoch` on `roster`: peers no longer on the roster, or on another stage, are
    /// forgotten, and a silent peer that put its merge contribution to the last epoch is back.
    /// A suspect stays one until its second look, whichever epoch that falls in.
    pub(crate) fn begin_epoch(&mut self, node: &Node, roster: &Roster, epoch: Epoch) {
        self.epoch = epoch;
        self.looking = 0;
        self.peers.retain(|peer, (stage, _)| {
            roster
                .assignment
                .position(peer)
                .is_some_and(|(s, _)| s == *stage)
        });
        if epoch.0 == 0 {
            return;
        }
        let run = &node.spec().name;
        let deadline = sliver_subnet::fetch::peer_deadline(node.spec());
        let silent = self
            .peers
            .iter()
            .filter(|(_, (_, standing))| *standing == Standing::Silent);
        let back: Vec<Hotkey> = node.rt.block_on(async {
            let looks = silent.map(|(peer, (stage, _))| async move {
                let folder = layout::artifacts(run, Epoch(epoch.0 - 1), *stage, peer, Kind::Shard);
                let store = roster.store(peer).ok()?;
                match tokio::time::timeout(deadline, store.list(&folder)).await {
                    Ok(Ok(keys)) if !keys.is_empty() => Some(*peer),
                    _ => None,
                }
            });
            futures::future::join_all(looks)
                .await
                .into_iter()
                .flatten()
                .collect()
        });
        for peer in back {
            info!(peer = %peer.short(), "a silent peer merged the last epoch: routing to it again");
            self.peers.remove(&peer);
        }
    }

    /// Whether a sample whose path past this miner is `path` goes through a peer this miner
    /// avoids (see the module's note on whole stages).
    pub(crate) fn blocks(&self, path: &[(StageIndex, &Member)], assignment: &Assignment) -> bool {
        !self.peers.is_empty()
            && path.iter().any(|(stage, m)| {
                self.peers.contains_key(&m.hotkey)
                    && assignment
                        .stage(*stage)
                        .iter()
                        .any(|other| !self.peers.contains_key(&other.hotkey))
            })
    }

    /// The peers avoided now.
    pub(crate) fn avoided(&self) -> usize {
        self.peers.len()
    }

    /// Sample `id`, sent on from `stage`, is overdue: looks along its path for the artifact
    /// missing, unless the path already goes through a peer avoided or [`MAX_LOOKS`] looks are
    /// under way.
    pub(crate) fn overdue(&mut self, node: &Node, roster: &Roster, stage: StageIndex, id: u64) {
        let spec = node.spec();
        let path = routing::downstream(&spec.name, self.epoch, id, stage, &roster.assignment);
        if self.looking >= MAX_LOOKS
            || path.is_empty()
            || path.iter().any(|(_, m)| self.peers.contains_key(&m.hotkey))
        {
            return;
        }
        let owed = owed_along(&spec.name, self.epoch, id, &path);
        let mut looks = Vec::with_capacity(owed.len());
        for o in owed {
            let Ok(store) = roster.store(&o.peer) else {
                return;
            };
            looks.push((o, store.clone()));
        }
        self.looking += 1;
        let (tx, epoch) = (self.tx.clone(), self.epoch);
        let deadline = sliver_subnet::fetch::peer_deadline(spec);
        node.shutdown
            .spawn("look along an overdue sample's path", async move {
                let there = futures::future::join_all(looks.iter().map(|(o, store)| async {
                    matches!(
                        tokio::time::timeout(deadline, store.exists(&o.key)).await,
                        Ok(Ok(true))
                    )
                }))
                .await;
                let owed = looks
                    .into_iter()
                    .zip(there)
                    .find(|(_, there)| !there)
                    .map(|((o, _), _)| o);
                let _ = tx.send(Finding::Looked { epoch, owed });
                Ok::<(), std::convert::Infallible>(())
            });
    }

    /// Takes what the looks found since the last call: the peers newly suspect (the caller
    /// drops its samples in flight through them). A peer found slow is routed to again; one
    /// found silent is said so once, as a warning.
    pub(crate) fn take(&mut self, node: &Node, roster: &Roster) -> Vec<Hotkey> {
        let mut suspects = Vec::new();
        while let Ok(finding) = self.rx.try_recv() {
            match finding {
                Finding::Looked { epoch, owed } if epoch == self.epoch => {
                    self.looking = self.looking.saturating_sub(1);
                    let Some(o) = owed else { continue };
                    if self.peers.contains_key(&o.peer) {
                        continue;
                    }
                    info!(
                        peer = %o.peer.short(), stage = %o.stage, key = o.key,
                        "a peer held a sample up past its deadline: not routing to it until it shows it is working"
                    );
                    self.peers.insert(o.peer, (o.stage, Standing::Suspect));
                    suspects.push(o.peer);
                    self.relook(node, roster, o);
                }
                Finding::Relooked { peer, there } => {
                    if there {
                        info!(peer = %peer.short(), "a suspect peer was slow, not silent: routing to it again");
                        self.peers.remove(&peer);
                    } else if let Some((_, standing)) = self.peers.get_mut(&peer) {
                        warn!(
                            peer = %peer.short(),
                            "a peer is silent (what it owed is still missing a deadline later): routing around it until it merges an epoch"
                        );
                        *standing = Standing::Silent;
                    }
                }
                // Looked along a path of an epoch since ended.
                Finding::Looked { .. } => {}
            }
        }
        suspects
    }

    /// Looks at what suspect `o.peer` owed again, a deadline from now.
    fn relook(&self, node: &Node, roster: &Roster, o: Owed) {
        let Ok(store) = roster.store(&o.peer).cloned() else {
            return;
        };
        let tx = self.tx.clone();
        let deadline = sliver_subnet::fetch::peer_deadline(node.spec());
        let cancel = node.cancel.clone();
        node.shutdown
            .spawn("look again at what a suspect peer owed", async move {
                // Progress, not one artifact, tells slow from silent: a slow peer with a deep
                // queue still puts artifacts of the kind it owed while this one is late.
                let folder = o
                    .key
                    .rsplit_once('/')
                    .map_or(o.key.clone(), |(f, _)| format!("{f}/"));
                let count = || async {
                    match tokio::time::timeout(deadline, store.list(&folder)).await {
                        Ok(Ok(keys)) => Some(keys.len()),
                        _ => None,
                    }
                };
                let before = count().await;
                tokio::select! {
                    () = tokio::time::sleep(deadline) => {}
                    () = cancel.cancelled() => return Ok(()),
                }
                let owed_there = matches!(
                    tokio::time::timeout(deadline, store.exists(&o.key)).await,
                    Ok(Ok(true))
                );
                let after = count().await;
                let there = owed_there || matches!((before, after), (Some(b), Some(a)) if a > b);
                let _ = tx.send(Finding::Relooked {
                    peer: o.peer,
                    there,
                });
                Ok::<(), std::convert::Infallible>(())
            });
    }
}

/// What sample `id`'s `path` past a miner owes it, in the order it is made: each later stage's
/// activation (the last stage makes none), then each gradient back, the last stage's first.
fn owed_along(run: &str, epoch: Epoch, id: u64, path: &[(StageIndex, &Member)]) -> Vec<Owed> {
    let owed = |kind: Kind, (stage, m): &(StageIndex, &Member)| Owed {
        peer: m.hotkey,
        stage: *stage,
        key: layout::artifact(
            run,
            &m.hotkey,
            ArtifactId {
                epoch,
                stage: *stage,
                kind,
                id,
            },
        ),
    };
    let forward = path[..path.len() - 1].iter().map(|p| owed(Kind::Act, p));
    let back = path.iter().rev().map(|p| owed(Kind::Grad, p));
    forward.chain(back).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Miners of `uids`, each hotkey its uid's byte.
    fn members(uids: std::ops::Range<u16>) -> Vec<Member> {
        uids.map(|uid| Member {
            uid,
            hotkey: Hotkey([uid as u8; 32]),
        })
        .collect()
    }

    /// A path through an avoided peer is blocked, unless that peer's stage has no one else.
    #[test]
    fn avoids_a_peer_but_never_a_whole_stage() {
        let members = members(0..5);
        // Stage 1: uids 1 and 3 (uid modulo 2).
        let a = Assignment::new(2, &members);
        let (one, three) = (&members[1], &members[3]);
        let mut silence = Silence::default();
        let through = |m| [(StageIndex(1), m)];
        assert!(!silence.blocks(&through(one), &a));
        silence
            .peers
            .insert(one.hotkey, (StageIndex(1), Standing::Suspect));
        assert!(silence.blocks(&through(one), &a));
        assert!(!silence.blocks(&through(three), &a));
        silence
            .peers
            .insert(three.hotkey, (StageIndex(1), Standing::Silent));
        assert!(!silence.blocks(&through(one), &a), "the whole stage");
        assert!(!silence.blocks(&through(three), &a), "the whole stage");
    }

    /// The path's artifacts in the order they are made: activations forward, gradients back.
    #[test]
    fn owed_in_the_order_made() {
        let members = members(1..4);
        let path: Vec<(StageIndex, &Member)> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (StageIndex::at(i + 1), m))
            .collect();
        let owed = owed_along("r", Epoch(3), 7, &path);
        let seen: Vec<(u16, &str)> = owed
            .iter()
            .map(|o| {
                let uid = u16::from(o.peer.0[0]);
                let kind = o.key.rsplit('/').nth(1).unwrap();
                (uid, kind)
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, "act"),
                (2, "act"),
                (3, "grad"),
                (2, "grad"),
                (1, "grad")
            ]
        );
        assert!(owed.iter().all(|o| o.key.ends_with("/7")));
        assert_eq!(owed[2].stage, StageIndex::at(3));
    }
}

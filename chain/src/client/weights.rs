//! Weights: what a validator sets, the commit hash of commit-reveal, and the reveal window.
//!
//! The commit hash is subtensor's `get_commit_hash`: BlakeTwo256 over the SCALE encoding of
//! `(hotkey: AccountId32, netuid_index: u16, uids: Vec<u16>, values: Vec<u16>, salt: Vec<u16>,
//! version_key: u64)`, where `netuid_index` is the mechanism storage index
//! `mechanism * 4096 + netuid`, which is the netuid itself for a subnet's main mechanism (the
//! only one Sliver uses). A commit made at block `c` can be revealed only during epoch
//! `epoch(c) + RevealPeriodEpochs`, where `epoch(b) = (b + netuid + 1) / (tempo + 1)`: that is
//! the blocks `first ..= first + tempo` with `first = reveal_epoch * (tempo + 1) - (netuid + 1)`,
//! the window subtensor also stores beside each commit in `WeightCommits`.
//!
//! Timelocked weights (commit-reveal v4, what finney's validators use): the SCALE payload
//! `(hotkey: Vec<u8>, uids: Vec<u16>, values: Vec<u16>, version_key: u64)` is encrypted
//! ([`crate::timelock`]) to the drand round published three blocks into the reveal epoch, by the
//! chain's clock: `round = (now + (first reveal block + 3 - block) x block time - genesis) /
//! period` (bittensor's formula, [`reveal_round`]); the chain decrypts and applies it itself once
//! that round's pulse is stored, so nothing is left to reveal. The beacon's key and clock come
//! from the chain (`Drand.BeaconConfig`), the block time from its timestamps.

use serde::{Deserialize, Serialize};
use subxt::config::Hasher;
use subxt::config::substrate::BlakeTwo256;
use subxt::ext::codec::Encode;
use subxt::utils::AccountId32;

use super::error::Error;
use super::ids::{BlockNumber, NetUid, Uid};
use super::runtime::api;
use super::storage::{self, SubnetParams, fetch, try_fetch};
use super::transaction::Included;
use super::{Call, Client, metagraph};
use crate::wallet::Keypair;

type H256 = [u8; 32];

/// Number of `u16`s in a generated salt (as bittensor).
pub const SALT_LEN: usize = 8;

/// Sparse weights: one value per listed uid. Subtensor normalises them (max-upscales to
/// `u16::MAX`), so only their ratios matter.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Weights {
    uids: Vec<Uid>,
    values: Vec<u16>,
}

impl Weights {
    /// Weights from `(uid, value)` pairs, sorted by uid.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Uid, u16)>) -> Weights {
        let mut pairs: Vec<(Uid, u16)> = pairs.into_iter().collect();
        pairs.sort_by_key(|(uid, _)| *uid);
        let (uids, values) = pairs.into_iter().unzip();
        Weights { uids, values }
    }

    /// Weights from non-negative scores, scaled so the largest is `u16::MAX` (as bittensor's
    /// `convert_weights_and_uids_for_emit`); uids with a zero, negative or non-finite score are
    /// left out.
    pub fn from_scores(scores: impl IntoIterator<Item = (Uid, f64)>) -> Weights {
        let scores: Vec<(Uid, f64)> = scores
            .into_iter()
            .filter(|(_, s)| s.is_finite() && *s > 0.0)
            .collect();
        let max = scores.iter().map(|(_, s)| *s).fold(0.0, f64::max);
        if max <= 0.0 {
            return Weights::default();
        }
        Weights::from_pairs(scores.into_iter().filter_map(|(uid, s)| {
            // In range by construction: 0 < s / max <= 1.
            let v = (s / max * f64::from(u16::MAX)).round() as u16;
            (v > 0).then_some((uid, v))
        }))
    }

    /// The uids, ascending.
    pub fn uids(&self) -> &[Uid] {
        &self.uids
    }

    /// The values, in the order of [`Weights::uids`].
    pub fn values(&self) -> &[u16] {
        &self.values
    }

    /// Whether there are no weights.
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty()
    }

    /// Checks what subtensor would refuse without reading chain state: unequal lengths
    /// (`WeightVecNotEqualSize`) and duplicate uids (`DuplicateUids`).
    pub(crate) fn check(&self, netuid: NetUid) -> Result<(), Error> {
        let invalid = |reason: String| Error::InvalidWeights { netuid, reason };
        if self.uids.len() != self.values.len() {
            return Err(invalid(format!(
                "{} uids but {} values",
                self.uids.len(),
                self.values.len()
            )));
        }
        if let Some(w) = self.uids.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("uid {} appears twice", w[0])));
        }
        Ok(())
    }
}

/// Subtensor's commit hash of a reveal (see the module docs for the encoding).
pub fn commit_hash(
    hotkey: &AccountId32,
    netuid: NetUid,
    uids: &[Uid],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    let uids: Vec<u16> = uids.iter().map(|u| u.0).collect();
    let encoded = (hotkey.0, netuid.0, uids, values, salt, version_key).encode();
    BlakeTwo256.hash(&encoded).0
}

/// A fresh random salt of [`SALT_LEN`] values.
///
/// # Panics
///
/// If the operating system has no randomness to give.
#[allow(
    clippy::expect_used,
    reason = "no randomness from the OS leaves nothing safe to do (documented panic)"
)]
pub fn random_salt() -> Vec<u16> {
    let mut bytes = [0u8; SALT_LEN * 2];
    getrandom::fill(&mut bytes).expect("the OS random number generator must work");
    bytes
        .chunks_exact(2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The blocks in which a commit can be revealed, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevealWindow {
    /// First block of the window.
    pub first: BlockNumber,
    /// Last block of the window.
    pub last: BlockNumber,
}

impl RevealWindow {
    /// The window of a commit made at `commit_block` on a subnet with `tempo` and
    /// `reveal_period` (`RevealPeriodEpochs`).
    pub fn of_commit(
        netuid: NetUid,
        tempo: u16,
        reveal_period: u64,
        commit_block: BlockNumber,
    ) -> RevealWindow {
        let tempo_plus_one = u64::from(tempo) + 1;
        let netuid_plus_one = u64::from(netuid.0) + 1;
        let commit_epoch = commit_block.0.saturating_add(netuid_plus_one) / tempo_plus_one;
        let reveal_epoch = commit_epoch.saturating_add(reveal_period);
        let first = reveal_epoch
            .saturating_mul(tempo_plus_one)
            .saturating_sub(netuid_plus_one);
        RevealWindow {
            first: BlockNumber(first),
            last: BlockNumber(first.saturating_add(u64::from(tempo))),
        }
    }

    /// Whether `block` is in the window.
    pub fn contains(&self, block: BlockNumber) -> bool {
        self.first <= block && block <= self.last
    }
}

/// A commit made with [`Client::commit_weights`](super::Client::commit_weights): everything
/// needed to reveal it later, also after a restart (it is `serde`-serialisable; the salt is
/// what keeps the weights secret until then, so store it privately).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReveal {
    /// The subnet.
    pub netuid: NetUid,
    /// The committing hotkey.
    pub hotkey: AccountId32,
    /// The committed weights.
    pub weights: Weights,
    /// The salt.
    pub salt: Vec<u16>,
    /// The version key committed.
    pub version_key: u64,
    /// The commit hash sent.
    pub commit_hash: [u8; 32],
    /// The block the commit was included in.
    pub commit_block: BlockNumber,
    /// When it can be revealed.
    pub window: RevealWindow,
}

/// The drand round a timelocked commit made at `block` names: the round published three blocks
/// into the commit's reveal epoch, with blocks `block_time` seconds apart from `now` (Unix
/// seconds); at least 1.
pub fn reveal_round(
    window: RevealWindow,
    block: BlockNumber,
    block_time: f64,
    now: f64,
    beacon: &crate::timelock::Beacon,
) -> u64 {
    let target = window.first.0.saturating_add(3);
    let secs = target.saturating_sub(block.0) as f64 * block_time;
    let since = now + secs - beacon.genesis_time as f64;
    ((since / beacon.period.max(1) as f64).floor() as u64).max(1)
}

/// The block whose epoch a timelocked commit included at `block` counts in: the next one when
/// `block` is where the subnet's epoch runs (subtensor's `blocks_until_next_epoch == 0`), as
/// the chain files it.
fn filed_at(netuid: NetUid, tempo: u16, block: BlockNumber) -> BlockNumber {
    let tempo = u64::from(tempo);
    if tempo - (block.0 + u64::from(netuid.0) + 1) % (tempo + 1) == 0 {
        block.plus(1)
    } else {
        block
    }
}

/// A timelocked commit sent with [`Client::commit_timelocked_weights`]: the chain reveals it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelockedCommit {
    /// The subnet.
    pub netuid: NetUid,
    /// The committed weights.
    pub weights: Weights,
    /// The version key committed.
    pub version_key: u64,
    /// The drand round that opens it.
    pub reveal_round: u64,
    /// The block the commit was included in.
    pub commit_block: BlockNumber,
    /// The epoch in which the chain reveals it (as blocks).
    pub window: RevealWindow,
}

impl Client {
    /// Commits `weights` encrypted to a future drand round (`commit_timelocked_weights`,
    /// commit-reveal v4); the chain decrypts and sets them in the commit's reveal epoch.
    ///
    /// # Errors
    ///
    /// As [`Client::commit_weights`], [`Error::Malformed`] for a beacon key that is not one, or
    /// what [`Client::submit`] returns.
    pub async fn commit_timelocked_weights(
        &self,
        netuid: NetUid,
        hotkey: &Keypair,
        weights: &Weights,
        version_key: u64,
    ) -> Result<TimelockedCommit, Error> {
        let check = self
            .check_weights(netuid, hotkey, weights, version_key, true)
            .await?;
        let (beacon, version) = self
            .read(
                "reading the beacon and commit-reveal version",
                |at| async move {
                    let config = fetch(&at, api::storage().drand().beacon_config(), ()).await?;
                    let st = api::storage().subtensor_module();
                    let version = fetch(&at, st.commit_reveal_weights_version(), ()).await?;
                    let public_key: [u8; crate::timelock::PUBLIC_KEY_LEN] =
                        config.public_key.0.as_slice().try_into().map_err(|_| {
                            Error::malformed(
                                "Drand.BeaconConfig",
                                "a public key that is not 96 bytes",
                            )
                        })?;
                    let beacon = crate::timelock::Beacon {
                        public_key,
                        genesis_time: u64::from(config.genesis_time),
                        period: u64::from(config.period),
                    };
                    Ok((beacon, version))
                },
            )
            .await?;
        let block_time = self.block_time().await?.as_secs_f64();
        let p = &check.params;
        // The commit should land in the next block; the round is that commit's.
        let window = RevealWindow::of_commit(
            netuid,
            p.tempo,
            p.reveal_period,
            filed_at(netuid, p.tempo, p.block.plus(1)),
        );
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let round = reveal_round(window, p.block, block_time, now, &beacon);
        let account = hotkey.account_id();
        let uids: Vec<u16> = weights.uids().iter().map(|u| u.0).collect();
        let payload = (
            account.0.to_vec(),
            uids,
            weights.values().to_vec(),
            version_key,
        )
            .encode();
        let commit = crate::timelock::encrypt(&beacon.public_key, round, &payload)
            .map_err(|e| Error::malformed("Drand.BeaconConfig", e))?;
        let included = self
            .submit(
                &Call::commit_timelocked_weights(netuid, commit, round, version),
                hotkey,
            )
            .await?;
        tracing::info!(
            netuid = netuid.0,
            uid = check.uid.0,
            block = included.block.0,
            reveal_round = round,
            reveal_from = window.first.0,
            "timelocked weights committed"
        );
        Ok(TimelockedCommit {
            netuid,
            weights: weights.clone(),
            version_key,
            reveal_round: round,
            commit_block: included.block,
            // Filed by the block it landed in, which may be later than predicted.
            window: RevealWindow::of_commit(
                netuid,
                p.tempo,
                p.reveal_period,
                filed_at(netuid, p.tempo, included.block),
            ),
        })
    }

    /// Sets `weights` for `hotkey`'s uid on `netuid` (`set_weights`), after checking what the
    /// chain would refuse.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidWeights`], [`Error::SubnetNotFound`], [`Error::CommitRevealEnabled`],
    /// [`Error::VersionKeyTooLow`], [`Error::NotRegistered`], [`Error::NoValidatorPermit`],
    /// [`Error::RateLimited`], or what [`Client::submit`] returns.
    pub async fn set_weights(
        &self,
        netuid: NetUid,
        hotkey: &Keypair,
        weights: &Weights,
        version_key: u64,
    ) -> Result<Included, Error> {
        let check = self
            .check_weights(netuid, hotkey, weights, version_key, false)
            .await?;
        let call = Call::set_weights(netuid, weights.uids(), weights.values(), version_key);
        let included = self.submit(&call, hotkey).await?;
        tracing::info!(
            netuid = netuid.0,
            uid = check.uid.0,
            block = included.block.0,
            n = weights.uids().len(),
            "weights set"
        );
        Ok(included)
    }

    /// Commits to `weights` (`commit_weights`) with a fresh random salt, and returns what is
    /// needed to reveal them in their window ([`Client::reveal_weights`]).
    ///
    /// # Errors
    ///
    /// As [`Client::set_weights`], with [`Error::CommitRevealDisabled`] instead of
    /// [`Error::CommitRevealEnabled`].
    pub async fn commit_weights(
        &self,
        netuid: NetUid,
        hotkey: &Keypair,
        weights: &Weights,
        version_key: u64,
    ) -> Result<PendingReveal, Error> {
        let check = self
            .check_weights(netuid, hotkey, weights, version_key, true)
            .await?;
        let account = hotkey.account_id();
        let salt = random_salt();
        let hash = commit_hash(
            &account,
            netuid,
            weights.uids(),
            weights.values(),
            &salt,
            version_key,
        );
        let included = self
            .submit(&Call::commit_weights(netuid, hash), hotkey)
            .await?;
        let stored = self.stored_commits(netuid, &account).await?;
        let window = stored
            .iter()
            .find(|c| c.0 == hash)
            .and_then(|&(_, _, first, last)| {
                (first != 0 && first <= last).then_some(RevealWindow {
                    first: BlockNumber(first),
                    last: BlockNumber(last),
                })
            })
            .unwrap_or_else(|| {
                RevealWindow::of_commit(
                    netuid,
                    check.params.tempo,
                    check.params.reveal_period,
                    included.block,
                )
            });
        tracing::info!(
            netuid = netuid.0,
            uid = check.uid.0,
            block = included.block.0,
            reveal_from = window.first.0,
            "weights committed"
        );
        Ok(PendingReveal {
            netuid,
            hotkey: account,
            weights: weights.clone(),
            salt,
            version_key,
            commit_hash: hash,
            commit_block: included.block,
            window,
        })
    }

    /// Reveals a commit (`reveal_weights`) if its window is open and the chain still holds it.
    ///
    /// # Errors
    ///
    /// [`Error::RevealTooEarly`], [`Error::RevealExpired`], [`Error::NoMatchingCommit`] (e.g. the
    /// salt or weights differ from what was committed), [`Error::CommitRevealDisabled`], or what
    /// [`Client::submit`] returns.
    pub async fn reveal_weights(
        &self,
        hotkey: &Keypair,
        pending: &PendingReveal,
    ) -> Result<Included, Error> {
        let netuid = pending.netuid;
        let account = hotkey.account_id();
        let params = self.subnet_params(netuid).await?;
        if !params.commit_reveal {
            return Err(Error::CommitRevealDisabled { netuid });
        }
        let w = &pending.weights;
        let hash = commit_hash(
            &account,
            netuid,
            w.uids(),
            w.values(),
            &pending.salt,
            pending.version_key,
        );
        let stored = self.stored_commits(netuid, &account).await?;
        if !stored.iter().any(|c| c.0 == hash) {
            return Err(Error::NoMatchingCommit {
                netuid,
                hotkey: account,
                commit_hash: hex::encode(hash),
            });
        }
        // The extrinsic lands in a later block than the one just read.
        let landing = params.block.plus(1);
        let window = pending.window;
        let (commit_block, first, last, current) = (
            pending.commit_block,
            window.first,
            window.last,
            params.block,
        );
        if landing < window.first {
            return Err(Error::RevealTooEarly {
                netuid,
                commit_block,
                first,
                last,
                current,
            });
        }
        if landing > window.last {
            return Err(Error::RevealExpired {
                netuid,
                commit_block,
                first,
                last,
                current,
            });
        }
        let call = Call::reveal_weights(
            netuid,
            w.uids(),
            w.values(),
            &pending.salt,
            pending.version_key,
        );
        let included = self.submit(&call, hotkey).await?;
        tracing::info!(
            netuid = netuid.0,
            block = included.block.0,
            "weights revealed"
        );
        Ok(included)
    }

    /// Waits for the reveal window of `pending` to open, then reveals it.
    ///
    /// # Errors
    ///
    /// As [`Client::reveal_weights`].
    pub async fn reveal_when_ready(
        &self,
        hotkey: &Keypair,
        pending: &PendingReveal,
    ) -> Result<Included, Error> {
        // The reveal lands one block after the block it is sent at.
        self.wait_for_block(BlockNumber(pending.window.first.0.saturating_sub(1)))
            .await?;
        self.reveal_weights(hotkey, pending).await
    }

    /// `WeightCommits` of `hotkey` on `netuid`: `(hash, commit block, first reveal block, last
    /// reveal block)`.
    async fn stored_commits(
        &self,
        netuid: NetUid,
        hotkey: &AccountId32,
    ) -> Result<Vec<(H256, u64, u64, u64)>, Error> {
        self.read("reading weight commits", |at| async move {
            let addr = api::storage().subtensor_module().weight_commits();
            Ok(try_fetch(&at, addr, (netuid.0, *hotkey))
                .await?
                .unwrap_or_default())
        })
        .await
        .map(|v| v.into_iter().map(|(h, a, b, c)| (h.0, a, b, c)).collect())
    }

    /// The checks common to setting (`commit_reveal == false`) and committing weights, in
    /// the order that names the most fundamental problem first; what they read.
    async fn check_weights(
        &self,
        netuid: NetUid,
        hotkey: &Keypair,
        weights: &Weights,
        version_key: u64,
        commit_reveal: bool,
    ) -> Result<WeightsCheck, Error> {
        weights.check(netuid)?;
        let account = hotkey.account_id();
        self.read("checking weights", |at| async move {
            let params = storage::subnet_params(&at, netuid).await?;
            match (params.commit_reveal, commit_reveal) {
                (true, false) => return Err(Error::CommitRevealEnabled { netuid }),
                (false, true) => return Err(Error::CommitRevealDisabled { netuid }),
                _ => {}
            }
            if params.weights_version_key != 0 && version_key < params.weights_version_key {
                return Err(Error::VersionKeyTooLow {
                    netuid,
                    given: version_key,
                    required: params.weights_version_key,
                });
            }
            let Some(uid) = metagraph::uid_of(&at, netuid, &account).await? else {
                return Err(Error::NotRegistered {
                    netuid,
                    hotkey: account,
                });
            };
            if let Some(bad) = weights.uids().iter().find(|u| u.0 >= params.n) {
                return Err(Error::InvalidWeights {
                    netuid,
                    reason: format!(
                        "uid {bad} is not registered (the subnet has {} neurons)",
                        params.n
                    ),
                });
            }
            let st = api::storage().subtensor_module();
            let self_weight = weights.uids() == [uid];
            let permits = fetch(&at, st.validator_permit(), (netuid.0,)).await?;
            if !self_weight && !permits.get(usize::from(uid.0)).copied().unwrap_or(false) {
                return Err(Error::NoValidatorPermit { netuid, uid });
            }
            let last = fetch(&at, st.last_update(), (netuid.0,)).await?;
            let last_update = BlockNumber(last.get(usize::from(uid.0)).copied().unwrap_or(0));
            let landing = params.block.plus(1);
            if last_update.0 != 0 && landing.since(last_update) < params.weights_rate_limit {
                return Err(Error::RateLimited {
                    netuid,
                    uid,
                    last_update,
                    rate_limit: params.weights_rate_limit,
                    next_allowed: last_update.plus(params.weights_rate_limit),
                    current: params.block,
                });
            }
            Ok(WeightsCheck { params, uid })
        })
        .await
    }
}

/// What [`Client::check_weights`] read.
struct WeightsCheck {
    params: SubnetParams,
    uid: Uid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reveal_round_is_bittensors_three_blocks_into_the_reveal_epoch() {
        // netuid 9, tempo 360: block 1000 is in epoch (1000 + 10) / 361 = 2, so the reveal
        // epoch 3 starts at 3 * 361 - 10 = 1073; three blocks in is 76 blocks (912 s) away.
        let q = crate::timelock::Beacon::quicknet();
        let window = RevealWindow::of_commit(NetUid(9), 360, 1, BlockNumber(1000));
        assert_eq!(window.first, BlockNumber(1073));
        let now = q.genesis_time as f64 + 3000.0;
        assert_eq!(
            reveal_round(window, BlockNumber(1000), 12.0, now, &q),
            (3000 + 912) / 3
        );
        // Never round 0, even for a clock before the beacon's genesis.
        assert_eq!(reveal_round(window, BlockNumber(1000), 12.0, 0.0, &q), 1);
    }

    #[test]
    fn reveal_window_follows_subtensor_epochs() {
        // tempo 360, netuid 1: epochs start at blocks k * 361 - 2.
        let w = RevealWindow::of_commit(NetUid(1), 360, 1, BlockNumber(1000));
        // epoch(1000) = 1002 / 361 = 2, reveal epoch 3, first = 3 * 361 - 2.
        assert_eq!(w.first, BlockNumber(1081));
        assert_eq!(w.last, BlockNumber(1441));
        assert!(w.contains(BlockNumber(1081)) && !w.contains(BlockNumber(1080)));
        // A commit in the last block of an epoch reveals in the next epoch.
        let w = RevealWindow::of_commit(NetUid(1), 360, 1, BlockNumber(1080));
        assert_eq!(w.first, BlockNumber(1081));
    }

    #[test]
    fn weights_are_checked_and_scaled() {
        let w = Weights::from_pairs([(Uid(2), 5), (Uid(1), 10)]);
        assert_eq!(w.uids(), [Uid(1), Uid(2)]);
        assert_eq!(w.values(), [10, 5]);
        assert!(w.check(NetUid(1)).is_ok());
        let dup = Weights::from_pairs([(Uid(1), 5), (Uid(1), 10)]);
        let err = dup.check(NetUid(1)).unwrap_err();
        assert!(err.to_string().contains("uid 1 appears twice"), "{err}");
        let s = Weights::from_scores([
            (Uid(0), 2.0),
            (Uid(1), 1.0),
            (Uid(2), 0.0),
            (Uid(3), f64::NAN),
        ]);
        assert_eq!(s.uids(), [Uid(0), Uid(1)]);
        assert_eq!(s.values(), [u16::MAX, 32768]);
        assert_eq!(random_salt().len(), SALT_LEN);
    }
}

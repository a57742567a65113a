//! The local chain's randomness beacon: finney's `Drand` pallet stores drand quicknet's pulses
//! (fetched by offchain workers); the local chain has no network, so it runs its own beacon
//! ([`LocalBeacon`], a fixed dev key) and writes each round's pulse in the block hook, exactly
//! as drand would sign it. Timelocked weight commits sealed to this beacon's key then open with
//! those pulses (`subtensor::weights::reveal_timelocked`).
//!
//! At block 1 the beacon configuration becomes the local beacon's (its key, a round every
//! [`PERIOD`] seconds from that block's time); every block then stores the pulses of the rounds
//! published since the last one, at most [`MAX_PER_BLOCK`] a block (as finney's pallet fetches
//! at most 50; the rest follow in the next blocks), and removes those older than [`KEEP`]
//! rounds.

use std::sync::OnceLock;

use super::dispatch::Ext;
use super::items::Drand::{BeaconConfig, LastStoredRound, Pulses};
use super::values::{BeaconConfiguration, BeaconMetadata, Pulse};
use sliver_chain::timelock::{Beacon, LocalBeacon};

/// Seconds between the local beacon's rounds (drand quicknet: 3).
pub(crate) const PERIOD: u32 = 1;
/// Most pulses stored in one block.
const MAX_PER_BLOCK: u64 = 50;
/// Rounds kept.
const KEEP: u64 = 10_000;

impl BeaconConfiguration {
    /// The local beacon, its round 1 at `genesis_time`.
    fn local(genesis_time: u32) -> Self {
        let public_key = public_key().to_vec();
        let hash = sha256(&public_key);
        Self {
            public_key,
            period: PERIOD,
            genesis_time,
            hash: hash.clone(),
            group_hash: hash,
            scheme_id: b"bls-unchained-g1-rfc9380".to_vec(),
            metadata: BeaconMetadata {
                beacon_id: b"sliver-local".to_vec(),
            },
        }
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// The local beacon's key (derived from a fixed seed, like the dev accounts).
/// The local beacon's public key, derived once (a G2 multiplication: not for every block).
fn public_key() -> &'static [u8; sliver_chain::timelock::PUBLIC_KEY_LEN] {
    static KEY: OnceLock<[u8; sliver_chain::timelock::PUBLIC_KEY_LEN]> = OnceLock::new();
    KEY.get_or_init(|| beacon().public_key())
}

pub(crate) fn beacon() -> &'static LocalBeacon {
    static BEACON: OnceLock<LocalBeacon> = OnceLock::new();
    BEACON.get_or_init(|| LocalBeacon::from_seed(b"btlocalnet"))
}

/// The block hook: switches to the local beacon at block 1, then stores the pulses published
/// up to `now_ms`.
pub(crate) fn on_initialize(ext: &mut Ext<'_>, now_ms: u64) {
    let o = &mut ext.storage;
    let now = now_ms / 1000;
    let mut config = BeaconConfig::get(o);
    if config.public_key != public_key() {
        config = BeaconConfiguration::local(u32::try_from(now).unwrap_or(u32::MAX));
        BeaconConfig::put(o, &config);
    }
    let clock = Beacon {
        public_key: [0; sliver_chain::timelock::PUBLIC_KEY_LEN],
        genesis_time: u64::from(config.genesis_time),
        period: u64::from(config.period),
    };
    let latest = clock.round_at(now_ms as f64 / 1000.0);
    let last = LastStoredRound::get(o);
    if latest <= last {
        return;
    }
    // After a stall the missing rounds are caught up over the next blocks, as finney's
    // offchain worker fetches them.
    let upto = latest.min(last + MAX_PER_BLOCK);
    for round in (last + 1)..=upto {
        let signature = beacon().sign(round).to_vec();
        let randomness = sha256(&signature);
        Pulses::put(
            o,
            &round,
            &Pulse {
                round,
                randomness,
                signature,
            },
        );
        if let Some(old) = round.checked_sub(KEEP) {
            Pulses::remove(o, &old);
        }
    }
    LastStoredRound::put(o, &upto);
}

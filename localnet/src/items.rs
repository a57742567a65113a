//! Every storage item the local chain has, each declared once: its pallet, name, map keys with
//! their hashers, value type and default (an item without a default is read as `Option`, FRAME's
//! `OptionQuery`).
//!
//! From each declaration come both its metadata entry (`<Pallet>::metadata`, which the runtime
//! metadata uses) and a typed accessor: `SubtensorModule::Tempo::get(&overlay, &netuid)`,
//! `::try_get`, `::put`, `::remove`, `::update` and `::key` (the raw key, as any Substrate client
//! computes it from the metadata). Types are named by what finney's metadata calls them
//! ([`Meta`](super::metadata::types::Meta)); the Rust type read and written follows from that.
//! Names, hashers and defaults are finney's; `localnet/tests/localnet/metadata_layout.rs` holds
//! them against finney's metadata.
//!
//! Adding an item is one line here.

#![allow(non_snake_case)] // Modules are named as the pallets they describe.

use frame_metadata::v16::{PalletStorageMetadata, StorageHasher};
use scale_info::form::PortableForm;

use super::metadata::pallet::Storage as Entries;
use super::metadata::types::{
    AccountId32, BeaconConfiguration, BoundedBytes, Cx, Encoded, EventRecords, GenericDigest, H256,
    Meta, Pulse, Registration,
};
use super::state::{Hasher, Key, Overlay};
use super::values::{AccountInfo, AxonInfo, PrometheusInfo};

macro_rules! items {
    // A value read as `Option`.
    (@access ($($key:ident: $kty:ty),*) $vty:ty) => {
        /// The value, `None` when absent.
        pub(crate) fn get(o: &Overlay<'_>, $($key: &<$kty as Meta>::Rust),*) -> Option<<$vty as Meta>::Rust> {
            o.get(&Self::key($($key),*))
        }
    };
    // A value with a default.
    (@access ($($key:ident: $kty:ty),*) $vty:ty = $default:expr) => {
        /// The value, or the default when absent.
        pub(crate) fn get(o: &Overlay<'_>, $($key: &<$kty as Meta>::Rust),*) -> <$vty as Meta>::Rust {
            o.get(&Self::key($($key),*)).unwrap_or_else(Self::initial)
        }

        /// The value, `None` when absent (FRAME's `try_get`).
        pub(crate) fn try_get(o: &Overlay<'_>, $($key: &<$kty as Meta>::Rust),*) -> Option<<$vty as Meta>::Rust> {
            o.get(&Self::key($($key),*))
        }

        /// The default: what an absent entry reads as.
        pub(crate) fn initial() -> <$vty as Meta>::Rust {
            $default
        }

        /// Reads the value (or the default), changes it with `f` and writes it back.
        pub(crate) fn update<R>(
            o: &mut Overlay<'_>,
            $($key: &<$kty as Meta>::Rust,)*
            f: impl FnOnce(&mut <$vty as Meta>::Rust) -> R,
        ) -> R {
            let mut v = Self::get(o, $($key),*);
            let r = f(&mut v);
            Self::put(o, $($key,)* &v);
            r
        }
    };
    (@meta $s:ident $cx:ident $item:ident () $vty:ty) => {{
        let ty = <$vty as Meta>::id($cx);
        $s.optional_value($item::NAME, ty);
    }};
    (@meta $s:ident $cx:ident $item:ident () $vty:ty = $default:expr) => {{
        let ty = <$vty as Meta>::id($cx);
        $s.value($item::NAME, ty, $item::initial());
    }};
    (@meta $s:ident $cx:ident $item:ident ($($hasher:ident $kty:ty),+) $vty:ty) => {{
        let keys = [$((StorageHasher::$hasher, <$kty as Meta>::id($cx))),+];
        let ty = <$vty as Meta>::id($cx);
        $s.optional_map($cx.t, $item::NAME, &keys, ty);
    }};
    (@meta $s:ident $cx:ident $item:ident ($($hasher:ident $kty:ty),+) $vty:ty = $default:expr) => {{
        let keys = [$((StorageHasher::$hasher, <$kty as Meta>::id($cx))),+];
        let ty = <$vty as Meta>::id($cx);
        $s.map($cx.t, $item::NAME, &keys, ty, $item::initial());
    }};
    ($(
        $(#[doc = $pdoc:literal])*
        pallet $pallet:ident {
            $(
                $(#[doc = $doc:literal])*
                $item:ident $(($($hasher:ident $key:ident: $kty:ty),+))? -> $vty:ty $(= $default:expr)?;
            )*
        }
    )*) => {
    $(
        $(#[doc = $pdoc])*
        pub(crate) mod $pallet {
            use super::*;

            /// The pallet's name: the first half of every key.
            pub(crate) const PALLET: &str = stringify!($pallet);

            $(
                $(#[doc = $doc])*
                #[derive(Debug, Clone, Copy)]
                pub(crate) struct $item;

                #[allow(dead_code)] // Not every item is read, written and removed.
                impl $item {
                    /// The item's name: the second half of every key.
                    pub(crate) const NAME: &'static str = stringify!($item);

                    /// The raw key of an entry.
                    pub(crate) fn key($($($key: &<$kty as Meta>::Rust),+)?) -> Vec<u8> {
                        Key::new(PALLET, Self::NAME)$($(.with(Hasher::$hasher, $key))+)?.build()
                    }

                    items!(@access ($($($key: $kty),+)?) $vty $(= $default)?);

                    /// Writes an entry.
                    pub(crate) fn put(
                        o: &mut Overlay<'_>,
                        $($($key: &<$kty as Meta>::Rust,)+)?
                        v: &<$vty as Meta>::Rust,
                    ) {
                        o.put(Self::key($($($key),+)?), v);
                    }

                    /// Removes an entry.
                    pub(crate) fn remove(o: &mut Overlay<'_>, $($($key: &<$kty as Meta>::Rust),+)?) {
                        o.remove(Self::key($($($key),+)?));
                    }
                }
            )*

            /// The pallet's storage entries, for the metadata.
            pub(crate) fn metadata(cx: &mut Cx<'_>) -> PalletStorageMetadata<PortableForm> {
                let mut s = Entries::new(PALLET);
                $(items!(@meta s cx $item ($($($hasher $kty),+)?) $vty $(= $default)?);)*
                s.finish()
            }
        }
    )*

    /// The storage entries of pallet `pallet`, for the metadata; `None` for a pallet without
    /// storage.
    pub(crate) fn metadata(pallet: &str, cx: &mut Cx<'_>) -> Option<PalletStorageMetadata<PortableForm>> {
        match pallet {
            $(stringify!($pallet) => Some($pallet::metadata(cx)),)*
            _ => None,
        }
    }
    };
}

/// A weight commit: `(hash, commit block, first reveal block, last reveal block)`.
pub(crate) type WeightCommit = (H256, u64, u64, u64);
/// A timelocked weight commit: `(hotkey, commit block, ciphertext, drand round)`.
pub(crate) type TimelockedCommit = (AccountId32, u64, BoundedBytes, u64);

items! {
    /// `frame_system`: accounts, block bookkeeping and events.
    pallet System {
        /// Nonce, reference counts and balances of each account.
        Account(Blake2_128Concat who: AccountId32) -> AccountInfo = Default::default();
        /// Extrinsics in the block being built.
        ExtrinsicCount -> u32;
        /// Hashes of recent blocks.
        BlockHash(Twox64Concat number: u32) -> H256 = [0; 32];
        /// The current block number.
        Number -> u32 = 0;
        /// The parent block's hash.
        ParentHash -> H256 = [0; 32];
        /// The block's digest.
        Digest -> GenericDigest = Encoded(vec![0]);
        /// The block's events.
        Events -> EventRecords = Encoded(vec![0]);
        /// How many events the block has.
        EventCount -> u32 = 0;
    }

    /// `pallet_timestamp`.
    pallet Timestamp {
        /// The current block's time, ms since the Unix epoch.
        Now -> u64 = 0;
    }

    /// `pallet_balances`.
    pallet Balances {
        /// All TAO in existence, rao.
        TotalIssuance -> u64 = 0;
    }

    /// `pallet_subtensor`.
    pallet SubtensorModule {
        /// The coldkey owning each hotkey.
        Owner(Blake2_128Concat hotkey: AccountId32) -> AccountId32 = [0; 32];
        /// Hotkeys a coldkey has staked to.
        StakingHotkeys(Blake2_128Concat coldkey: AccountId32) -> Vec<AccountId32> = Vec::new();
        /// Hotkeys a coldkey owns.
        OwnedHotkeys(Blake2_128Concat coldkey: AccountId32) -> Vec<AccountId32> = Vec::new();
        /// Each hotkey's stake on each subnet, rao.
        TotalHotkeyAlpha(Blake2_128Concat hotkey: AccountId32, Identity netuid: u16) -> u64 = 0;
        /// A subnet's token symbol.
        TokenSymbol(Identity netuid: u16) -> Vec<u8> = "\u{1D70F}".as_bytes().to_vec();
        /// Registrations a subnet accepts per block.
        MaxRegistrationsPerBlock(Identity netuid: u16) -> u16 = 1;
        /// Subnets created.
        TotalNetworks -> u16 = 0;
        /// Blocks per epoch.
        Tempo(Identity netuid: u16) -> u16 = super::super::metadata::DEFAULT_TEMPO;
        /// Neurons on a subnet.
        SubnetworkN(Identity netuid: u16) -> u16 = 0;
        /// Whether a subnet exists.
        NetworksAdded(Identity netuid: u16) -> bool = false;
        /// The block a subnet was created at.
        NetworkRegisteredAt(Identity netuid: u16) -> u64 = 0;
        /// Blocks since a subnet's last epoch.
        BlocksSinceLastStep(Identity netuid: u16) -> u64 = 0;
        /// A subnet's owner coldkey.
        SubnetOwner(Identity netuid: u16) -> AccountId32 = [0; 32];
        /// Consensus sharpness.
        Kappa(Identity netuid: u16) -> u16 = 32_767;
        /// Most neurons a subnet holds.
        MaxAllowedUids(Identity netuid: u16) -> u16 = 256;
        /// Blocks a new neuron is safe from replacement.
        ImmunityPeriod(Identity netuid: u16) -> u16 = 4096;
        /// Blocks without weights after which a validator is inactive.
        ActivityCutoff(Identity netuid: u16) -> u16 = 5000;
        /// Largest normalised weight a validator may give one uid.
        MaxWeightsLimit(Identity netuid: u16) -> u16 = u16::MAX;
        /// Version key weights must carry.
        WeightsVersionKey(Identity netuid: u16) -> u64 = 0;
        /// Fewest uids a weight vector may hold.
        MinAllowedWeights(Identity netuid: u16) -> u16 = 1024;
        /// Validator permits per subnet.
        MaxAllowedValidators(Identity netuid: u16) -> u16 = 128;
        /// Blocks between burn adjustments.
        AdjustmentInterval(Identity netuid: u16) -> u16 = 100;
        /// Blocks between two weight settings of one hotkey.
        WeightsSetRateLimit(Identity netuid: u16) -> u64 = 100;
        /// Registrations per adjustment interval the burn aims at.
        TargetRegistrationsPerInterval(Identity netuid: u16) -> u16 = 2;
        /// Whether weights go through commit-reveal.
        CommitRevealWeightsEnabled(Identity netuid: u16) -> bool = true;
        /// Registration cost, rao.
        Burn(Identity netuid: u16) -> u64 = 100_000_000;
        /// Proof-of-work difficulty.
        Difficulty(Identity netuid: u16) -> u64 = 10_000_000;
        /// Lowest burn.
        MinBurn(Identity netuid: u16) -> u64 = 500_000;
        /// Highest burn.
        MaxBurn(Identity netuid: u16) -> u64 = 100_000_000_000;
        /// Registrations in the current block.
        RegistrationsThisBlock(Identity netuid: u16) -> u16 = 0;
        /// Each hotkey's uid.
        Uids(Identity netuid: u16, Blake2_128Concat hotkey: AccountId32) -> u16;
        /// Each uid's hotkey.
        Keys(Identity netuid: u16, Identity uid: u16) -> AccountId32 = [0; 32];
        /// Per uid: active.
        Active(Identity netuid: u16) -> Vec<bool> = Vec::new();
        /// Per uid: rank.
        Rank(Identity netuid: u16) -> Vec<u16> = Vec::new();
        /// Per uid: trust.
        Trust(Identity netuid: u16) -> Vec<u16> = Vec::new();
        /// Per uid: consensus.
        Consensus(Identity netuid: u16) -> Vec<u16> = Vec::new();
        /// Per uid: incentive.
        Incentive(Identity netuid: u16) -> Vec<u16> = Vec::new();
        /// Per uid: dividends.
        Dividends(Identity netuid: u16) -> Vec<u16> = Vec::new();
        /// Per uid: emission in the last epoch, rao.
        Emission(Identity netuid: u16) -> Vec<u64> = Vec::new();
        /// Per uid: the block its weights were last set (or it registered).
        LastUpdate(Identity netuid: u16) -> Vec<u64> = Vec::new();
        /// Per uid: holds a validator permit.
        ValidatorPermit(Identity netuid: u16) -> Vec<bool> = Vec::new();
        /// Each uid's weights, `(uid, weight)`.
        Weights(Identity netuid: u16, Identity uid: u16) -> Vec<(u16, u16)> = Vec::new();
        /// The block each uid registered at.
        BlockAtRegistration(Identity netuid: u16, Identity uid: u16) -> u64 = 0;
        /// Each hotkey's axon.
        Axons(Identity netuid: u16, Blake2_128Concat hotkey: AccountId32) -> AxonInfo;
        /// Each hotkey's Prometheus endpoint (the local chain serves none).
        Prometheus(Identity netuid: u16, Blake2_128Concat hotkey: AccountId32) -> PrometheusInfo;
        /// The block a hotkey last sent a rate-limited transaction, by kind.
        TransactionKeyLastBlock(
            Blake2_128Concat hotkey: AccountId32,
            Identity netuid: u16,
            Identity kind: u16
        ) -> u64 = 0;
        /// The block an account last sent a rate-limited transaction.
        LastTxBlock(Identity who: AccountId32) -> u64 = 0;
        /// Unrevealed weight commits of each hotkey, oldest first.
        WeightCommits(Twox64Concat netuid: u16, Twox64Concat who: AccountId32) -> Vec<WeightCommit>;
        /// Epochs between a weight commit and its reveal.
        RevealPeriodEpochs(Twox64Concat netuid: u16) -> u64 = 1;
        /// Timelocked weight commits (commit-reveal v4) by subnet and the epoch they count in.
        TimelockedWeightCommits(Twox64Concat netuid: u16, Twox64Concat epoch: u64)
            -> Vec<TimelockedCommit> = Vec::new();
        /// The commit-reveal version `commit_timelocked_weights` must name.
        CommitRevealWeightsVersion -> u16 = 4;
    }

    /// `pallet_drand`.
    pallet Drand {
        /// The beacon whose pulses are stored.
        BeaconConfig -> BeaconConfiguration = crate::values::BeaconConfiguration::quicknet();
        /// Each stored round's pulse.
        Pulses(Blake2_128Concat round: u64) -> Pulse;
        /// The latest round stored.
        LastStoredRound -> u64 = 0;
    }

    /// `pallet_commitments`.
    pallet Commitments {
        /// Each hotkey's commitment on each subnet, as set (a `Registration`).
        CommitmentOf(Identity netuid: u16, Twox64Concat who: AccountId32) -> Registration;
        /// The block each hotkey last set its commitment.
        LastCommitment(Identity netuid: u16, Twox64Concat who: AccountId32) -> u32;
    }
}

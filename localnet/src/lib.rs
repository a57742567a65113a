//! `sliver-localnet`: the local finney-compatible chain (`btlocalnet`) Sliver's tests and local
//! subnet run against.
//!
//! No subtensor node can be built on the machines Sliver is developed and tested on, so Sliver
//! carries its own: [`metadata`] describes a runtime with finney's layout for everything Sliver
//! (and common Bittensor clients) use, and the `btlocalnet` binary ([`LocalChain`]) serves it
//! over the Substrate JSON-RPC that `subxt` speaks, on 127.0.0.1.
//!
//! Layout: `values` (the value types the runtime keeps and the metadata describes, below both),
//! `state` (versioned SCALE key → value storage with FRAME's key hashing), `items` (every storage
//! item, declared once), `block` (headers and hashes), `extrinsic` (decoding and signature
//! checks), `dispatch` and `subtensor` (call execution), `drand` (the local beacon), `runtime`
//! (genesis, validation, block building), `runtime_api` (`state_call`), `node` (pool, block
//! producer, notifications), `rpc` (the JSON-RPC methods), `persist` (the state file), `server`
//! (start/stop), `dev` (dev accounts). `testing` (feature `testing`) is support for this crate's
//! tests. It uses `sliver-chain` for the timelock scheme (the local beacon, the chain's reveals)
//! and sr25519 signature checks.
//!
//! # Status (what is served)
//!
//! RPC: `rpc_methods`; `system_chain|name|version|chainType|properties|health|peers|accountNextIndex`;
//! `chainSpec_v1_chainName|genesisHash|properties`; `chain_getBlockHash` (alias `chain_getHead`),
//! `chain_getHeader`, `chain_getBlock`, `chain_getFinalizedHead` (alias `…Finalised…`),
//! `chain_subscribeNewHeads|FinalizedHeads|AllHeads` (+ unsubscribe; the current head is sent
//! first); `state_getRuntimeVersion` (alias `chain_…`), `state_subscribeRuntimeVersion`,
//! `state_getMetadata`, `state_call` (`state_callAt`), `state_getStorage` (`…At`),
//! `state_getStorageHash`, `state_getStorageSize`, `state_getKeysPaged` (`…At`),
//! `state_queryStorageAt`; `author_submitExtrinsic`, `author_submitAndWatchExtrinsic`
//! (`"ready"`, `{"inBlock"}`, `{"finalized"}`, or `"invalid"`), `author_pendingExtrinsics`.
//! No `chainHead_v1_*`/`archive_v1_*`: subxt 0.51 uses its legacy backend.
//!
//! Runtime APIs (`state_call`): `Core_version`, `Metadata_metadata`,
//! `Metadata_metadata_at_version` (16), `Metadata_metadata_versions` (`[16]`),
//! `AccountNonceApi_account_nonce`, `TaggedTransactionQueue_validate_transaction`,
//! `TransactionPaymentApi_query_info|query_fee_details` (fees are zero),
//! `NeuronInfoRuntimeApi_get_neurons|get_neuron|get_neurons_lite|get_neuron_lite`,
//! `SubnetInfoRuntimeApi_get_subnet_info|get_subnets_info|get_subnet_hyperparams` and their
//! `_v2` forms, the metagraph family `get_metagraph|get_all_metagraphs|get_selective_metagraph`
//! (what current bittensor SDKs call for `subtensor.metagraph(netuid)`), its mechanism forms
//! `get_mechagraph|get_all_mechagraphs|get_selective_mechagraph` (one mechanism, 0, per subnet),
//! `get_dynamic_info|get_all_dynamic_info`, `get_subnet_state`, and
//! `get_coldkey_auto_stake_hotkey`/`get_subnet_to_prune` (always `None`). Metagraph fields come
//! from the chain state; what the local chain has no concept of (pools, names, identities, root
//! stake) is zero, empty or `None`, listed in `runtime_api/metagraph.rs`. Not served: the other
//! runtime APIs finney has (`DelegateInfoRuntimeApi`, `StakeInfoRuntimeApi`, `SwapRuntimeApi`,
//! …), which are not in the local metadata either.
//!
//! Calls: `System.remark`; `Balances.transfer_allow_death|transfer_keep_alive|transfer_all`;
//! `SubtensorModule.burned_register` (burns `Burn` from the coldkey), `serve_axon` (finney's IP
//! check: 127.0.0.1 is `InvalidIpAddress`; `ServingRateLimit` 50 blocks), `add_stake` (1 TAO =
//! 1 alpha), `set_weights` (refused with `CommitRevealEnabled` where commit-reveal is on),
//! `commit_weights`, `reveal_weights` (only in epoch `commit epoch + RevealPeriodEpochs`),
//! `commit_timelocked_weights` (revealed by the chain with its own drand beacon's pulses, see
//! `drand`),
//! `register_network` is in the metadata but not served; `Commitments.set_commitment`.
//! Extrinsics must be v4, signed (sr25519, `MultiAddress::Id`), with `CheckMetadataHash`
//! disabled; a nonce ahead of the account's (counting the pool) is refused with
//! "Transaction will be valid in the future" rather than queued.
//!
//! Subnets at genesis (`--netuid`, owner `//Alice`): `MinAllowedWeights` 1,
//! `MaxRegistrationsPerBlock` 64, tempo, `WeightsSetRateLimit`, `CommitRevealWeightsEnabled`,
//! `RevealPeriodEpochs` and `Burn` from flags. Validator permits, incentive, dividends and
//! emission are computed at each subnet's epoch (see `subtensor`), so a new validator gets its
//! permit at the first epoch after it has stake.
//!
//! Finney semantics clients should expect (they follow subtensor's current source): registration
//! sets the new uid's `LastUpdate` to the registration block (so the first `set_weights` or
//! `commit_weights` waits `WeightsSetRateLimit` blocks after registering); a commit also sets
//! `LastUpdate`; `set_weights` checks, in order, root netuid, `WeightVecNotEqualSize`,
//! `SubnetNotExists`, `UidsLengthExceedUidsInSubNet` (more uids than the subnet has neurons —
//! raised before the registration check, so an unregistered hotkey on an empty subnet gets
//! this), `HotKeyNotRegisteredInSubNet`, `IncorrectWeightVersionKey`, `SettingWeightsTooFast`,
//! `NeuronNoValidatorPermit`, `DuplicateUids`, `UidVecContainInvalidOne`,
//! `WeightVecLengthIsLow`, `MaxWeightExceeded`. Reveals skip the rate limit.

mod block;
mod dev;
mod dispatch;
mod drand;
mod extrinsic;
mod items;
pub mod metadata;
mod node;
mod persist;
mod rpc;
mod rpc_stats;
mod runtime;
mod runtime_api;
mod server;
mod state;
mod subtensor;
mod values;

pub use self::dev::{DEV_NAMES, DEV_PHRASE, dev_account};
pub use self::node::{MAX_EXTRINSIC_LEN, PoolLimits};
pub use self::persist::{FORMAT_VERSION as STATE_FORMAT_VERSION, PersistError};
pub use self::rpc::CHAIN_NAME;
pub use self::runtime::{GenesisConfig, SubnetParamsConfig};
pub use self::server::{LocalChain, ServerConfig, ServerError};

#[cfg(feature = "testing")]
pub mod testing;

//! The chain itself: genesis, the blocks kept, the versioned state, transaction validation (what
//! a node's pool asks the runtime) and block building (initialise, apply each extrinsic, write
//! events, finalise), with every block final as soon as it is built.

use std::collections::{BTreeMap, HashMap};

use parity_scale_codec::{Decode, Encode};
use tracing::debug;

use super::block::{Block, Hash, Header, extrinsics_root};
use super::dispatch::{self, Call, Ext, pallet};
use super::extrinsic::{Extrinsic, Implicit, InvalidTransaction, TxError};
use super::items::{Balances, System, Timestamp};
use super::metadata::types::Encoded;
use super::metadata::{BLOCK_HASH_COUNT, SPEC_VERSION, SystemEvent, TRANSACTION_VERSION};
use super::state::{HISTORY, Overlay, Storage};
use super::subtensor::{self, SubnetParams};
use super::values::{AccountId, AccountInfo};

/// How the chain starts.
#[derive(Debug, Clone)]
pub struct GenesisConfig {
    /// Subnets created at genesis, owned by `owner` (`//Alice` when `None`).
    pub netuids: Vec<u16>,
    /// The coldkey owning the subnets created at genesis.
    pub owner: Option<[u8; 32]>,
    /// Further accounts funded with `dev_balance` at genesis (an operator's own coldkeys).
    pub funded: Vec<[u8; 32]>,
    /// How they are set up.
    pub subnet: SubnetParamsConfig,
    /// How many dev accounts (`//Alice`, `//Bob`, ...) are funded.
    pub dev_accounts: usize,
    /// Free balance of each dev account, rao.
    pub dev_balance: u64,
}

/// Subnet parameters given on the command line.
#[derive(Debug, Clone)]
pub struct SubnetParamsConfig {
    /// `Tempo`, blocks.
    pub tempo: u16,
    /// `WeightsSetRateLimit`, blocks.
    pub weights_rate_limit: u64,
    /// `CommitRevealWeightsEnabled`.
    pub commit_reveal: bool,
    /// `RevealPeriodEpochs`.
    pub reveal_period: u64,
    /// Registration burn, rao.
    pub burn: u64,
    /// `WeightsVersionKey`: the least version key weights must carry, and the release
    /// Sliver's neurons must run (0: any).
    pub weights_version_key: u64,
}

/// A valid transaction, as `TaggedTransactionQueue_validate_transaction` reports it.
#[derive(Debug, Clone)]
pub(crate) struct Valid {
    /// The signer.
    pub signer: AccountId,
    /// Its nonce.
    pub nonce: u32,
    /// Priority (the tip).
    pub priority: u64,
    /// Blocks the transaction stays valid for.
    pub longevity: u64,
    /// Whether an earlier nonce must be applied first.
    pub requires_earlier: bool,
}

/// What happened to an extrinsic given to [`Chain::build_block`].
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Applied (successfully or not) at this index of the block.
    Included(u32),
    /// Not applied: it was no longer valid.
    Invalid(TxError),
}

/// The local chain.
#[derive(Debug)]
pub(crate) struct Chain {
    storage: Storage,
    blocks: BTreeMap<u32, Block>,
    hashes: HashMap<Hash, u32>,
    head: u32,
    genesis_hash: Hash,
    netuids: Vec<u16>,
}

impl Chain {
    /// A new chain with block 0 built from `config`.
    pub(crate) fn genesis(config: &GenesisConfig) -> Self {
        let empty = Storage::default();
        let mut ext = Ext::new(Overlay::new(&empty, 0), 0);
        let mut issuance = 0u64;
        let devs =
            (0..config.dev_accounts).map(|i| super::dev::dev_account(&super::dev::dev_name(i)));
        for who in devs.chain(config.funded.iter().copied()) {
            let info = AccountInfo {
                providers: 1,
                free: config.dev_balance,
                ..AccountInfo::default()
            };
            ext.set_account(&who, &info);
            issuance = issuance.saturating_add(config.dev_balance);
        }
        Balances::TotalIssuance::put(&mut ext.storage, &issuance);
        let owner = config
            .owner
            .unwrap_or_else(|| super::dev::dev_account("Alice"));
        let p = SubnetParams {
            tempo: config.subnet.tempo,
            weights_rate_limit: config.subnet.weights_rate_limit,
            commit_reveal: config.subnet.commit_reveal,
            reveal_period: config.subnet.reveal_period,
            burn: config.subnet.burn,
            weights_version_key: config.subnet.weights_version_key,
        };
        for &netuid in &config.netuids {
            subtensor::create_subnet(&mut ext, netuid, &owner, &p);
        }
        // Genesis has no events; the NetworkAdded ones are dropped like any genesis build's.
        System::BlockHash::put(&mut ext.storage, &0, &[0x45u8; 32]);
        let changes = ext.storage.into_changes();
        let mut storage = Storage::default();
        storage.apply(0, changes);
        let header = Header {
            parent_hash: [0; 32],
            number: 0,
            state_root: storage.root(0),
            extrinsics_root: extrinsics_root(&[]),
        };
        let genesis = Block {
            header,
            extrinsics: Vec::new(),
        };
        let genesis_hash = genesis.header.hash();
        Self {
            storage,
            hashes: HashMap::from([(genesis_hash, 0)]),
            blocks: BTreeMap::from([(0, genesis)]),
            head: 0,
            genesis_hash,
            netuids: config.netuids.clone(),
        }
    }

    /// A chain restored from saved parts (see [`super::persist`]).
    pub(crate) fn restore(
        values: Vec<(Vec<u8>, Vec<u8>)>,
        blocks: Vec<Block>,
        netuids: Vec<u16>,
    ) -> Result<Self, String> {
        let head = blocks
            .iter()
            .map(|b| b.header.number)
            .max()
            .ok_or("no blocks")?;
        let genesis_hash = blocks
            .iter()
            .find(|b| b.header.number == 0)
            .ok_or("no genesis block")?
            .header
            .hash();
        let storage = Storage::from_values(head, values);
        // The saved state must be the one the head block commits to: a flipped byte is an
        // error, never a different chain.
        let head_root = blocks
            .iter()
            .find(|b| b.header.number == head)
            .map(|b| b.header.state_root)
            .ok_or("no head block")?;
        if storage.root(head) != head_root {
            return Err(format!(
                "the state does not match block {head}'s state root"
            ));
        }
        let hashes = blocks
            .iter()
            .map(|b| (b.header.hash(), b.header.number))
            .collect();
        let blocks = blocks.into_iter().map(|b| (b.header.number, b)).collect();
        Ok(Self {
            storage,
            blocks,
            hashes,
            head,
            genesis_hash,
            netuids,
        })
    }

    /// The genesis hash.
    pub(crate) fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// The best (and finalized) block number.
    pub(crate) fn head(&self) -> u32 {
        self.head
    }

    /// The head block.
    #[allow(
        clippy::expect_used,
        reason = "invariant: the head block is never pruned"
    )]
    pub(crate) fn head_block(&self) -> &Block {
        // Invariant: the head block is always kept.
        self.blocks
            .get(&self.head)
            .or_else(|| self.blocks.values().next_back())
            .expect("the chain always holds its head block")
    }

    /// The block at `number`, if it is still kept.
    pub(crate) fn block(&self, number: u32) -> Option<&Block> {
        self.blocks.get(&number)
    }

    /// The number of the block with `hash`.
    pub(crate) fn number_of(&self, hash: &Hash) -> Option<u32> {
        self.hashes.get(hash).copied()
    }

    /// The kept blocks, oldest first.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = &Block> {
        self.blocks.values()
    }

    /// The subnets this chain was created with.
    pub(crate) fn netuids(&self) -> &[u16] {
        &self.netuids
    }

    /// The raw storage value at `key` as of block `at`.
    pub(crate) fn storage(&self, key: &[u8], at: u32) -> Option<&[u8]> {
        self.storage.get(key, at)
    }

    /// The versioned storage.
    pub(crate) fn state(&self) -> &Storage {
        &self.storage
    }

    /// A read-only view of the state as of block `at`, for the runtime APIs.
    pub(crate) fn view(&self, at: u32) -> Overlay<'_> {
        Overlay::new(&self.storage, at)
    }

    /// The account nonce of `who` at the head.
    pub(crate) fn account_nonce(&self, who: &AccountId) -> u32 {
        System::Account::get(&self.view(self.head), who).nonce
    }

    fn implicit(&self) -> Implicit {
        Implicit {
            spec_version: SPEC_VERSION,
            tx_version: TRANSACTION_VERSION,
            genesis: self.genesis_hash,
        }
    }

    /// The hash `CheckMortality` signs for birth block `n`, seen while building block `current`:
    /// blocks within `BlockHashCount` of it, and genesis.
    fn birth_hash(&self, n: u32, current: u32) -> Option<Hash> {
        if n >= current || (n != 0 && current - n > BLOCK_HASH_COUNT) {
            return None;
        }
        self.blocks.get(&n).map(|b| b.header.hash())
    }

    /// Validates `xt` at the head, as the pool does before accepting it; `pending` is how many
    /// earlier transactions of the same signer the pool holds.
    pub(crate) fn validate(&self, xt: &Extrinsic, pending: u32) -> Result<Valid, TxError> {
        let signed = &xt.signed;
        Call::decode_all(&signed.call).map_err(TxError::Decode)?;
        let current = self.head + 1;
        signed.verify(&self.implicit(), current, |n| self.birth_hash(n, current))?;
        let nonce = self.account_nonce(&signed.signer);
        if signed.nonce < nonce {
            return Err(TxError::Invalid(InvalidTransaction::Stale));
        }
        if signed.nonce > nonce.saturating_add(pending) {
            return Err(TxError::Invalid(InvalidTransaction::Future));
        }
        let current = u64::from(current);
        Ok(Valid {
            signer: signed.signer,
            nonce: signed.nonce,
            priority: signed.tip,
            longevity: signed.era.death(current).saturating_sub(current),
            requires_earlier: signed.nonce > nonce,
        })
    }

    /// Builds block `head + 1` at time `now_ms` from `xts`, in order, and makes it the head.
    /// Returns what happened to each extrinsic and whether the block changed more than the
    /// per-block bookkeeping (an extrinsic applied or an epoch ran).
    pub(crate) fn build_block(&mut self, xts: &[Extrinsic], now_ms: u64) -> (Vec<Outcome>, bool) {
        let number = self.head + 1;
        let parent_hash = self.head_block().header.hash();
        let implicit = self.implicit();
        let mut ext = Ext::new(Overlay::new(&self.storage, self.head), number);
        let epoch_ran = initialize(&mut ext, number, parent_hash, now_ms, &self.netuids);

        let mut outcomes = Vec::with_capacity(xts.len());
        let mut included = Vec::new();
        for xt in xts {
            let signed = &xt.signed;
            let checked = Call::decode_all(&signed.call)
                .map_err(TxError::Decode)
                .and_then(|call| {
                    signed.verify(&implicit, number, |n| self.birth_hash(n, number))?;
                    let nonce = ext.account(&signed.signer).nonce;
                    match signed.nonce.cmp(&nonce) {
                        std::cmp::Ordering::Less => {
                            Err(TxError::Invalid(InvalidTransaction::Stale))
                        }
                        std::cmp::Ordering::Greater => {
                            Err(TxError::Invalid(InvalidTransaction::Future))
                        }
                        std::cmp::Ordering::Equal => Ok(call),
                    }
                });
            let call = match checked {
                Ok(call) => call,
                Err(e) => {
                    debug!(hash = %hex::encode(xt.hash), error = %e, "dropping extrinsic at block building");
                    outcomes.push(Outcome::Invalid(e));
                    continue;
                }
            };
            let index = u32::try_from(included.len()).unwrap_or(u32::MAX);
            ext.set_phase(Some(index));
            let mut account = ext.account(&signed.signer);
            account.nonce = account.nonce.saturating_add(1);
            ext.set_account(&signed.signer, &account);

            let events_before = ext.events.len();
            ext.storage.begin();
            let result = dispatch::dispatch(&mut ext, &signed.signer, &call);
            let (ref_time, pays) = call.dispatch_info();
            let info = (
                parity_scale_codec::Compact(ref_time),
                parity_scale_codec::Compact(0u64),
                0u8,
                u8::from(!pays),
            );
            match result {
                Ok(()) => {
                    ext.storage.commit();
                    let event = SystemEvent::ExtrinsicSuccess {
                        dispatch_info: info,
                    };
                    ext.deposit(pallet::SYSTEM, &event);
                }
                Err(e) => {
                    ext.storage.rollback();
                    ext.events.truncate(events_before);
                    debug!(hash = %hex::encode(xt.hash), error = ?e, "extrinsic failed");
                    let event = SystemEvent::ExtrinsicFailed {
                        dispatch_error: e,
                        dispatch_info: info,
                    };
                    ext.deposit(pallet::SYSTEM, &event);
                }
            }
            outcomes.push(Outcome::Included(index));
            included.push(xt.bytes.clone());
        }

        finalize(&mut ext, &included);
        let changes = ext.storage.into_changes();
        self.storage.apply(number, changes);
        let header = Header {
            parent_hash,
            number,
            state_root: self.storage.root(number),
            extrinsics_root: extrinsics_root(&included),
        };
        let changed = !included.is_empty() || epoch_ran;
        let hash = header.hash();
        self.blocks.insert(
            number,
            Block {
                header,
                extrinsics: included,
            },
        );
        self.hashes.insert(hash, number);
        self.head = number;
        if number.is_multiple_of(256) {
            self.prune();
        }
        (outcomes, changed)
    }

    fn prune(&mut self) {
        let keep_from = self.head.saturating_sub(HISTORY);
        self.storage.prune(keep_from);
        let old: Vec<u32> = self
            .blocks
            .range(1..keep_from.max(1))
            .map(|(n, _)| *n)
            .collect();
        for n in old {
            if let Some(b) = self.blocks.remove(&n) {
                self.hashes.remove(&b.header.hash());
            }
        }
    }
}

/// `on_initialize`: System bookkeeping, the timestamp, then subtensor's per-block work.
fn initialize(ext: &mut Ext<'_>, number: u32, parent: Hash, now_ms: u64, netuids: &[u16]) -> bool {
    let o = &mut ext.storage;
    System::Number::put(o, &number);
    System::ParentHash::put(o, &parent);
    System::BlockHash::put(o, &(number - 1), &parent);
    System::Events::remove(o);
    System::EventCount::remove(o);
    Timestamp::Now::put(o, &now_ms);
    ext.set_phase(None);
    // Pulses first: a commit whose round was just published is revealed in this block.
    super::drand::on_initialize(ext, now_ms);
    subtensor::on_initialize(ext, netuids)
}

/// `on_finalize`: prune `BlockHash`, write the events and the extrinsic count.
fn finalize(ext: &mut Ext<'_>, included: &[Vec<u8>]) {
    let number = ext.block;
    if let Some(old) = number.checked_sub(BLOCK_HASH_COUNT + 1)
        && old != 0
    {
        System::BlockHash::remove(&mut ext.storage, &old);
    }
    let count = u32::try_from(ext.events.len()).unwrap_or(u32::MAX);
    let mut events = parity_scale_codec::Compact(count).encode();
    for record in &ext.events {
        events.extend_from_slice(record);
    }
    let o = &mut ext.storage;
    System::Events::put(o, &Encoded(events));
    System::EventCount::put(o, &count);
    let xts = u32::try_from(included.len()).unwrap_or(u32::MAX);
    System::ExtrinsicCount::put(o, &xts);
}

/// Decodes `T` from the whole of `bytes`.
pub(crate) fn decode_all<T: Decode>(bytes: &[u8]) -> Option<T> {
    let mut input = bytes;
    let v = T::decode(&mut input).ok()?;
    input.is_empty().then_some(v)
}

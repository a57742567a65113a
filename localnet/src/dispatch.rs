//! Calls of the local runtime, decoded from their SCALE encoding (pallet index, call index,
//! arguments, as finney lays them out) and executed against storage: `System`, `Balances` and
//! `Commitments` here, `SubtensorModule` in [`super::subtensor`]. A call either succeeds, having
//! deposited its events, or fails with a [`DispatchError`] as FRAME encodes it (module errors
//! carry the pallet index and the error's index in the metadata).

use parity_scale_codec::{Decode, Encode};

use super::items::{Balances, Commitments, System};
use super::metadata::types::Encoded;
use super::metadata::{
    BalancesCall, BalancesEvent, CommitmentsCall, CommitmentsError, CommitmentsEvent, SystemCall,
    SystemEvent,
};
use super::state::Overlay;
use super::subtensor::{self, SubtensorCall};
use super::values::{AccountId, AccountInfo, CommitmentInfo, DispatchError, MultiAddress};

/// Pallet indices (finney's `construct_runtime!`), declared with the metadata.
pub(crate) use super::metadata::pallet::index as pallet;

/// `TokenError` variants used by balance transfers.
pub(crate) mod token {
    /// `FundsUnavailable`.
    pub(crate) const FUNDS_UNAVAILABLE: u8 = 0;
    /// `BelowMinimum`.
    pub(crate) const BELOW_MINIMUM: u8 = 2;
    /// `NotExpendable`.
    pub(crate) const NOT_EXPENDABLE: u8 = 8;
}

impl MultiAddress {
    fn lookup(&self) -> Result<AccountId, DispatchError> {
        match self {
            Self::Account(a) => Ok(*a),
            Self::Other => Err(DispatchError::CannotLookup),
        }
    }
}

/// The calls the local runtime has (`RuntimeCall`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// `System::remark`.
    Remark(Vec<u8>),
    /// `Balances::transfer_allow_death` (0), `transfer_keep_alive` (3).
    Transfer {
        /// Recipient.
        dest: MultiAddress,
        /// Amount in rao.
        value: u64,
        /// Whether the sender must stay above the existential deposit.
        keep_alive: bool,
    },
    /// `Balances::transfer_all`.
    TransferAll {
        /// Recipient.
        dest: MultiAddress,
        /// Whether the sender must stay above the existential deposit.
        keep_alive: bool,
    },
    /// A `SubtensorModule` call.
    Subtensor(SubtensorCall),
    /// `Commitments::set_commitment`.
    SetCommitment {
        /// Subnet.
        netuid: u16,
        /// What is committed.
        info: CommitmentInfo,
    },
}

impl Call {
    /// Decodes a whole call; trailing bytes are an error.
    pub(crate) fn decode_all(bytes: &[u8]) -> Result<Self, String> {
        let mut input = bytes;
        let call = Self::decode_from(&mut input).map_err(|e| e.to_string())?;
        if !input.is_empty() {
            return Err(format!("{} trailing bytes after the call", input.len()));
        }
        Ok(call)
    }

    fn decode_from(input: &mut &[u8]) -> Result<Self, parity_scale_codec::Error> {
        Ok(match u8::decode(input)? {
            pallet::SYSTEM => match SystemCall::decode(input)? {
                SystemCall::Remark { remark } => Self::Remark(remark),
            },
            pallet::BALANCES => match BalancesCall::decode(input)? {
                BalancesCall::TransferAllowDeath { dest, value } => Self::Transfer {
                    dest,
                    value: value.0,
                    keep_alive: false,
                },
                BalancesCall::TransferKeepAlive { dest, value } => Self::Transfer {
                    dest,
                    value: value.0,
                    keep_alive: true,
                },
                BalancesCall::TransferAll { dest, keep_alive } => {
                    Self::TransferAll { dest, keep_alive }
                }
            },
            pallet::SUBTENSOR => match SubtensorCall::decode(input)? {
                SubtensorCall::RegisterNetwork { .. } => {
                    return Err(
                        "SubtensorModule::register_network is not served by the local chain".into(),
                    );
                }
                // A `BoundedVec` longer than its bound does not decode.
                SubtensorCall::CommitTimelockedWeights { commit, .. }
                    if commit.len() > super::metadata::MAX_TIMELOCKED_COMMIT_BYTES =>
                {
                    return Err("a timelocked commit longer than its bound".into());
                }
                call => Self::Subtensor(call),
            },
            pallet::COMMITMENTS => match CommitmentsCall::decode(input)? {
                CommitmentsCall::SetCommitment { netuid, info } => {
                    Self::SetCommitment { netuid, info }
                }
            },
            _ => return Err("no such pallet in the local runtime".into()),
        })
    }

    /// `(ref_time, pays_fee)` of the call's `DispatchEventInfo`: nominal weights; subtensor's
    /// neuron calls are free, as on finney.
    pub(crate) fn dispatch_info(&self) -> (u64, bool) {
        match self {
            Self::Subtensor(c) => (c.weight(), c.pays_fee()),
            Self::SetCommitment { .. } => (50_000_000, true),
            _ => (200_000_000, true),
        }
    }
}

/// The execution context of one block: storage writes and the events deposited so far.
#[derive(Debug)]
pub(crate) struct Ext<'a> {
    /// Storage, over the parent block's state.
    pub storage: Overlay<'a>,
    /// Number of the block being built.
    pub block: u32,
    /// `(phase, event)` records, SCALE-encoded.
    pub events: Vec<Vec<u8>>,
    phase: Option<u32>,
}

impl<'a> Ext<'a> {
    /// A context for building block `block` over `storage`.
    pub(crate) fn new(storage: Overlay<'a>, block: u32) -> Self {
        Self {
            storage,
            block,
            events: Vec::new(),
            phase: None,
        }
    }

    /// Sets the phase of the events deposited next: `Some(i)` = `ApplyExtrinsic(i)`, `None` =
    /// `Initialization`.
    pub(crate) fn set_phase(&mut self, phase: Option<u32>) {
        self.phase = phase;
    }

    /// Deposits event `variant` of `pallet` with SCALE-encoded `fields`.
    pub(crate) fn deposit(&mut self, pallet: u8, event: &impl Encode) {
        let mut record = match self.phase {
            Some(i) => {
                let mut r = vec![0u8];
                i.encode_to(&mut r);
                r
            }
            None => vec![2u8],
        };
        record.push(pallet);
        event.encode_to(&mut record);
        // topics: none
        record.push(0);
        self.events.push(record);
    }

    /// The current block as subtensor counts (`u64`).
    pub(crate) fn block_u64(&self) -> u64 {
        u64::from(self.block)
    }

    /// `System.Account` of `who`.
    pub(crate) fn account(&self, who: &AccountId) -> AccountInfo {
        System::Account::get(&self.storage, who)
    }

    /// Writes `System.Account` of `who`.
    pub(crate) fn set_account(&mut self, who: &AccountId, info: &AccountInfo) {
        System::Account::put(&mut self.storage, who, info);
    }

    /// Takes `amount` from `who`'s free balance and out of the total issuance (a burn).
    pub(crate) fn burn(&mut self, who: &AccountId, amount: u64) -> Result<(), ()> {
        let mut info = self.account(who);
        info.free = info.free.checked_sub(amount).ok_or(())?;
        self.set_account(who, &info);
        Balances::TotalIssuance::update(&mut self.storage, |issuance| {
            *issuance = issuance.saturating_sub(amount);
        });
        Ok(())
    }

    /// Takes `amount` from `who`'s free balance (into stake), or fails when it is not there.
    pub(crate) fn withdraw(&mut self, who: &AccountId, amount: u64) -> Result<(), ()> {
        let mut info = self.account(who);
        info.free = info.free.checked_sub(amount).ok_or(())?;
        self.set_account(who, &info);
        Ok(())
    }
}

/// Executes `call` signed by `who`.
pub(crate) fn dispatch(
    ext: &mut Ext<'_>,
    who: &AccountId,
    call: &Call,
) -> Result<(), DispatchError> {
    match call {
        Call::Remark(_) => Ok(()),
        Call::Transfer {
            dest,
            value,
            keep_alive,
        } => transfer(ext, who, &dest.lookup()?, *value, *keep_alive),
        Call::TransferAll { dest, keep_alive } => {
            let dest = dest.lookup()?;
            let free = ext.account(who).free;
            let value = if *keep_alive {
                free.saturating_sub(super::metadata::EXISTENTIAL_DEPOSIT)
            } else {
                free
            };
            transfer(ext, who, &dest, value, *keep_alive)
        }
        Call::Subtensor(c) => subtensor::dispatch(ext, who, c),
        Call::SetCommitment { netuid, info } => set_commitment(ext, who, *netuid, info),
    }
}

fn transfer(
    ext: &mut Ext<'_>,
    from: &AccountId,
    to: &AccountId,
    value: u64,
    keep_alive: bool,
) -> Result<(), DispatchError> {
    let ed = super::metadata::EXISTENTIAL_DEPOSIT;
    let mut source = ext.account(from);
    let left = source
        .free
        .checked_sub(value)
        .ok_or(DispatchError::Token(token::FUNDS_UNAVAILABLE))?;
    if keep_alive && left < ed {
        return Err(DispatchError::Token(token::NOT_EXPENDABLE));
    }
    if from == to || value == 0 {
        return Ok(());
    }
    let mut dest = ext.account(to);
    let new_account = dest.providers == 0 && dest.free == 0;
    if new_account && value < ed {
        return Err(DispatchError::Token(token::BELOW_MINIMUM));
    }
    source.free = left;
    dest.free = dest.free.saturating_add(value);
    if new_account {
        dest.providers = 1;
    }
    ext.set_account(from, &source);
    ext.set_account(to, &dest);
    if new_account {
        ext.deposit(pallet::SYSTEM, &SystemEvent::NewAccount { account: *to });
        ext.deposit(
            pallet::BALANCES,
            &BalancesEvent::Endowed {
                account: *to,
                free_balance: value,
            },
        );
    }
    ext.deposit(
        pallet::BALANCES,
        &BalancesEvent::Transfer {
            from: *from,
            to: *to,
            amount: value,
        },
    );
    Ok(())
}

fn set_commitment(
    ext: &mut Ext<'_>,
    who: &AccountId,
    netuid: u16,
    info: &CommitmentInfo,
) -> Result<(), DispatchError> {
    if !subtensor::is_registered(ext, netuid, who) {
        return Err(CommitmentsError::AccountNotAllowedCommit.into());
    }
    let max_fields = usize::try_from(super::metadata::COMMITMENT_MAX_FIELDS).unwrap_or(usize::MAX);
    if info.fields > max_fields {
        return Err(CommitmentsError::TooManyFieldsInCommitmentInfo.into());
    }
    // Registration { deposit: u64, block: u32, info: CommitmentInfo }
    let mut registration = 0u64.encode();
    ext.block.encode_to(&mut registration);
    registration.extend_from_slice(&info.encoded);
    let block = ext.block;
    Commitments::CommitmentOf::put(&mut ext.storage, &netuid, who, &Encoded(registration));
    Commitments::LastCommitment::put(&mut ext.storage, &netuid, who, &block);
    ext.deposit(
        pallet::COMMITMENTS,
        &CommitmentsEvent::Commitment { netuid, who: *who },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use parity_scale_codec::Compact;

    use super::*;
    use crate::metadata::{COMMITMENT_MAX_BIG_RAW_BYTES, COMMITMENT_MAX_TIMELOCK_BYTES};

    #[test]
    fn calls_decode_with_finneys_indices() {
        // Balances::transfer_keep_alive(Id(Bob), 1000)
        let mut bytes = vec![5u8, 3, 0];
        bytes.extend_from_slice(&[7u8; 32]);
        Compact(1000u64).encode_to(&mut bytes);
        assert_eq!(
            Call::decode_all(&bytes),
            Ok(Call::Transfer {
                dest: MultiAddress::Account([7; 32]),
                value: 1000,
                keep_alive: true
            })
        );
        bytes.push(0);
        assert!(Call::decode_all(&bytes).is_err());
        assert!(Call::decode_all(&[5, 99]).is_err());
    }

    #[test]
    fn commitment_data_is_bounded_as_finney_bounds_it() {
        let one_field = |variant: u8, len: u32, tail: &[u8]| {
            let mut bytes = vec![4u8, variant];
            Compact(len).encode_to(&mut bytes);
            bytes.extend(std::iter::repeat_n(7u8, len as usize));
            bytes.extend_from_slice(tail);
            CommitmentInfo::decode(&mut &bytes[..])
        };
        let round = 5u64.to_le_bytes();
        assert!(one_field(136, COMMITMENT_MAX_BIG_RAW_BYTES, &[]).is_ok());
        assert!(one_field(136, COMMITMENT_MAX_BIG_RAW_BYTES + 1, &[]).is_err());
        assert!(one_field(134, COMMITMENT_MAX_TIMELOCK_BYTES, &round).is_ok());
        assert!(one_field(134, COMMITMENT_MAX_TIMELOCK_BYTES + 1, &round).is_err());
        // A length prefix far beyond the bytes present is refused from the prefix alone.
        let mut huge = vec![4u8, 136];
        Compact(u32::MAX).encode_to(&mut huge);
        assert!(CommitmentInfo::decode(&mut &huge[..]).is_err());
    }

    #[test]
    fn commitment_info_keeps_its_encoding() {
        // two fields: Raw3(b"abc"), Sha256([1; 32])
        let mut bytes = vec![8u8, 4, b'a', b'b', b'c', 131];
        bytes.extend_from_slice(&[1; 32]);
        let info = CommitmentInfo::decode(&mut &bytes[..]).ok();
        assert_eq!(
            info,
            Some(CommitmentInfo {
                encoded: bytes.clone(),
                fields: 2
            })
        );
    }

    #[test]
    fn module_errors_encode_as_frame_does() {
        let e = DispatchError::from(CommitmentsError::SpaceLimitExceeded);
        assert_eq!(e.encode(), vec![3, 18, 2, 0, 0, 0]);
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// `Balances::transfer_keep_alive(Id(dest), value)` as a client encodes it.
        fn transfer_bytes(dest: [u8; 32], value: u64) -> Vec<u8> {
            let mut bytes = vec![pallet::BALANCES, 3, 0];
            bytes.extend_from_slice(&dest);
            Compact(value).encode_to(&mut bytes);
            bytes
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Arbitrary bytes, most of them under a real pallet and call index: never a
            /// panic, and what decodes keeps no more bytes than it was given.
            #[test]
            fn arbitrary_calls_never_panic(
                pallet_index in prop_oneof![Just(0u8), Just(5), Just(7), Just(18), any::<u8>()],
                call_index in any::<u8>(),
                rest in proptest::collection::vec(any::<u8>(), 0..300),
            ) {
                let mut bytes = vec![pallet_index, call_index];
                bytes.extend_from_slice(&rest);
                match Call::decode_all(&bytes) {
                    Ok(Call::Remark(r)) => prop_assert!(r.len() <= bytes.len()),
                    Ok(Call::SetCommitment { info, .. }) => {
                        prop_assert!(info.encoded.len() <= bytes.len());
                        prop_assert!(info.fields <= bytes.len());
                    }
                    Ok(other) => { let _ = other.dispatch_info(); }
                    Err(_) => {}
                }
            }

            /// A well-formed transfer decodes to exactly what was encoded, and any change
            /// in length is refused (no trailing or missing bytes accepted).
            #[test]
            fn transfers_round_trip(dest in any::<[u8; 32]>(), value in any::<u64>(), cut in 1usize..8) {
                let bytes = transfer_bytes(dest, value);
                prop_assert_eq!(
                    Call::decode_all(&bytes),
                    Ok(Call::Transfer { dest: MultiAddress::Account(dest), value, keep_alive: true })
                );
                let mut longer = bytes.clone();
                longer.push(0);
                prop_assert!(Call::decode_all(&longer).is_err());
                prop_assert!(Call::decode_all(&bytes[..bytes.len().saturating_sub(cut)]).is_err());
            }

            /// A commitment of up to three fields of any kind decodes to its own encoding.
            #[test]
            fn commitments_round_trip(
                netuid in any::<u16>(),
                fields in proptest::collection::vec((0u8..=136, proptest::collection::vec(any::<u8>(), 0..600), any::<u64>()), 0..=3),
            ) {
                let mut info = Compact(fields.len() as u32).encode();
                for (variant, data, round) in &fields {
                    info.push(*variant);
                    match variant {
                        0 | 135 => {}
                        1..=129 => info.extend_from_slice(&data[..usize::from(variant - 1).min(data.len())]),
                        130..=133 => info.extend_from_slice(&[9u8; 32]),
                        134 => {
                            let d = &data[..data.len().min(COMMITMENT_MAX_TIMELOCK_BYTES as usize)];
                            d.to_vec().encode_to(&mut info);
                            round.encode_to(&mut info);
                        }
                        _ => {
                            let d = &data[..data.len().min(COMMITMENT_MAX_BIG_RAW_BYTES as usize)];
                            d.to_vec().encode_to(&mut info);
                        }
                    }
                }
                // A RawN shorter than N (data ran out) is not well formed: skip those cases.
                let well_formed = fields.iter().all(|(v, d, _)| !(1..=129).contains(v) || d.len() >= usize::from(v - 1));
                prop_assume!(well_formed);
                let mut call = vec![pallet::COMMITMENTS, 0];
                netuid.encode_to(&mut call);
                call.extend_from_slice(&info);
                prop_assert_eq!(
                    Call::decode_all(&call),
                    Ok(Call::SetCommitment { netuid, info: CommitmentInfo { encoded: info, fields: fields.len() } })
                );
            }
        }
    }
}

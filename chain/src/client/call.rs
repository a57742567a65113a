//! The extrinsics Sliver sends, as one typed [`Call`] that subxt can sign and submit.
//!
//! Each constructor builds subxt's statically generated payload (from `metadata/local.scale`)
//! and keeps its validation hash: before encoding, [`Call::call_data`] and every submission
//! compare that hash with the connected chain's metadata for this call, so a call whose layout
//! differs on the live runtime is refused instead of being encoded wrongly.

use subxt::ext::scale_encode::{self, EncodeAsFields, FieldIter, TypeResolver};
use subxt::tx::{Payload, ValidationDetails};
use subxt::utils::{AccountId32, H256};

use super::error::Error;
use super::ids::{NetUid, Uid};
use super::runtime::api;

use api::runtime_types::bounded_collections::bounded_vec::BoundedVec;
use api::runtime_types::pallet_commitments::types::CommitmentInfo;

/// One extrinsic call (pallet, call name and arguments), ready to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pallet: &'static str,
    name: &'static str,
    hash: Option<[u8; 32]>,
    args: CallArgs,
}

/// The generated argument structs, one per call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Args {
    SetWeights(api::subtensor_module::calls::SetWeights),
    ServeAxon(api::subtensor_module::calls::ServeAxon),
    BurnedRegister(api::subtensor_module::calls::BurnedRegister),
    CommitWeights(api::subtensor_module::calls::CommitWeights),
    RevealWeights(api::subtensor_module::calls::RevealWeights),
    CommitTimelockedWeights(api::subtensor_module::calls::CommitTimelockedWeights),
    SetCommitment(api::commitments::calls::SetCommitment),
    AddStake(api::subtensor_module::calls::AddStake),
    TransferKeepAlive(api::balances::calls::TransferKeepAlive),
}

/// The arguments of a [`Call`], which subxt encodes against the chain's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallArgs(Args);

impl Call {
    fn from_static<T: Clone + EncodeAsFields>(
        payload: subxt::tx::StaticPayload<T>,
        wrap: impl FnOnce(T) -> Args,
    ) -> Call {
        let details = payload.validation_details().map(|d| d.hash);
        let pallet = static_name(payload.pallet_name());
        let name = static_name(payload.call_name());
        Call {
            pallet,
            name,
            hash: details,
            args: CallArgs(wrap(payload.call_data().clone())),
        }
    }

    /// `SubtensorModule.set_weights(netuid, dests, weights, version_key)`.
    pub fn set_weights(netuid: NetUid, uids: &[Uid], values: &[u16], version_key: u64) -> Call {
        let dests = uids.iter().map(|u| u.0).collect();
        Call::from_static(
            api::tx()
                .subtensor_module()
                .set_weights(netuid.0, dests, values.to_vec(), version_key),
            Args::SetWeights,
        )
    }

    /// `SubtensorModule.serve_axon(netuid, version, ip, port, ip_type, protocol, 0, 0)`.
    pub fn serve_axon(netuid: NetUid, axon: &super::axon::Axon) -> Call {
        let (ip, ip_type) = super::axon::ip_to_chain(axon.addr.ip());
        Call::from_static(
            api::tx().subtensor_module().serve_axon(
                netuid.0,
                axon.version,
                ip,
                axon.addr.port(),
                ip_type,
                axon.protocol,
                0,
                0,
            ),
            Args::ServeAxon,
        )
    }

    /// `SubtensorModule.burned_register(netuid, hotkey)`, signed by the paying coldkey.
    pub fn burned_register(netuid: NetUid, hotkey: &AccountId32) -> Call {
        Call::from_static(
            api::tx()
                .subtensor_module()
                .burned_register(netuid.0, *hotkey),
            Args::BurnedRegister,
        )
    }

    /// `SubtensorModule.commit_weights(netuid, commit_hash)`.
    pub fn commit_weights(netuid: NetUid, commit_hash: [u8; 32]) -> Call {
        Call::from_static(
            api::tx()
                .subtensor_module()
                .commit_weights(netuid.0, H256(commit_hash)),
            Args::CommitWeights,
        )
    }

    /// `SubtensorModule.reveal_weights(netuid, uids, values, salt, version_key)`.
    pub fn reveal_weights(
        netuid: NetUid,
        uids: &[Uid],
        values: &[u16],
        salt: &[u16],
        version_key: u64,
    ) -> Call {
        let uids = uids.iter().map(|u| u.0).collect();
        Call::from_static(
            api::tx().subtensor_module().reveal_weights(
                netuid.0,
                uids,
                values.to_vec(),
                salt.to_vec(),
                version_key,
            ),
            Args::RevealWeights,
        )
    }

    /// `Commitments.set_commitment(netuid, info)` with `data` as `Raw` fields (see
    /// [`super::commitment`]).
    ///
    /// # Errors
    ///
    /// [`Error::CommitmentTooLarge`] beyond [`super::commitment::MAX_COMMITMENT_BYTES`].
    pub fn set_commitment(netuid: NetUid, data: &[u8]) -> Result<Call, Error> {
        let fields = super::commitment::to_fields(data)?;
        let info = CommitmentInfo {
            fields: BoundedVec(fields),
        };
        Ok(Call::from_static(
            api::tx().commitments().set_commitment(netuid.0, info),
            Args::SetCommitment,
        ))
    }

    /// `SubtensorModule.add_stake(hotkey, netuid, amount_staked)`: stake `rao` from the signing
    /// coldkey to `hotkey` on `netuid` (a validator needs stake for a validator permit).
    pub fn add_stake(hotkey: &AccountId32, netuid: NetUid, rao: u64) -> Call {
        Call::from_static(
            api::tx()
                .subtensor_module()
                .add_stake(*hotkey, netuid.0, rao),
            Args::AddStake,
        )
    }

    /// `SubtensorModule.commit_timelocked_weights(netuid, commit, reveal_round,
    /// commit_reveal_version)`: weights encrypted to a drand round (commit-reveal v4).
    pub fn commit_timelocked_weights(
        netuid: NetUid,
        commit: Vec<u8>,
        reveal_round: u64,
        commit_reveal_version: u16,
    ) -> Call {
        Call::from_static(
            api::tx().subtensor_module().commit_timelocked_weights(
                netuid.0,
                BoundedVec(commit),
                reveal_round,
                commit_reveal_version,
            ),
            Args::CommitTimelockedWeights,
        )
    }

    /// `Balances.transfer_keep_alive(dest, value)`: send `rao` to `dest`.
    pub fn transfer_keep_alive(dest: &AccountId32, rao: u64) -> Call {
        Call::from_static(
            api::tx()
                .balances()
                .transfer_keep_alive(subxt::utils::MultiAddress::Id(*dest), rao),
            Args::TransferKeepAlive,
        )
    }

    /// The pallet, e.g. `SubtensorModule`.
    pub fn pallet(&self) -> &'static str {
        self.pallet
    }

    /// The call, e.g. `set_weights`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// `Pallet.call`, as errors name it.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.pallet, self.name)
    }

    /// The SCALE call data (pallet index, call index, arguments) against `metadata`.
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleRuntime`] if the call's layout in `metadata` differs from the one
    /// this client was generated for; [`Error::Rpc`] if encoding fails.
    pub fn call_data(&self, metadata: &subxt::Metadata) -> Result<Vec<u8>, Error> {
        self.check_against(metadata)?;
        subxt::ext::frame_decode::extrinsics::encode_call_data(
            self.pallet,
            self.name,
            &self.args,
            metadata,
            metadata.types(),
        )
        .map_err(|e| {
            Error::rpc(
                format!("encoding {}", self.qualified_name()),
                subxt::error::ExtrinsicError::from(e),
            )
        })
    }

    /// Refuses a call whose layout differs in `metadata`.
    pub(crate) fn check_against(&self, metadata: &subxt::Metadata) -> Result<(), Error> {
        let incompatible = || Error::IncompatibleRuntime {
            item: self.qualified_name(),
        };
        let live = metadata
            .pallet_by_name(self.pallet)
            .and_then(|p| p.call_hash(self.name))
            .ok_or_else(incompatible)?;
        match self.hash {
            Some(hash) if hash != live => Err(incompatible()),
            _ => Ok(()),
        }
    }
}

/// Codegen gives `&'static str` names; subxt hands them back as `&str`.
fn static_name(name: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "SubtensorModule",
        "Commitments",
        "Balances",
        "add_stake",
        "transfer_keep_alive",
        "set_weights",
        "serve_axon",
        "burned_register",
        "commit_weights",
        "commit_timelocked_weights",
        "reveal_weights",
        "set_commitment",
    ];
    NAMES
        .iter()
        .find(|n| **n == name)
        .copied()
        .unwrap_or("unknown")
}

impl Payload for Call {
    type CallData = CallArgs;

    fn pallet_name(&self) -> &str {
        self.pallet
    }

    fn call_name(&self) -> &str {
        self.name
    }

    fn call_data(&self) -> &CallArgs {
        &self.args
    }

    fn validation_details(&self) -> Option<ValidationDetails<'_>> {
        self.hash.map(|hash| ValidationDetails {
            pallet_name: self.pallet,
            call_name: self.name,
            hash,
        })
    }
}

impl EncodeAsFields for CallArgs {
    fn encode_as_fields_to<R: TypeResolver>(
        &self,
        fields: &mut dyn FieldIter<'_, R::TypeId>,
        types: &R,
        out: &mut Vec<u8>,
    ) -> Result<(), scale_encode::Error> {
        match &self.0 {
            Args::SetWeights(a) => a.encode_as_fields_to(fields, types, out),
            Args::ServeAxon(a) => a.encode_as_fields_to(fields, types, out),
            Args::BurnedRegister(a) => a.encode_as_fields_to(fields, types, out),
            Args::CommitWeights(a) => a.encode_as_fields_to(fields, types, out),
            Args::RevealWeights(a) => a.encode_as_fields_to(fields, types, out),
            Args::CommitTimelockedWeights(a) => a.encode_as_fields_to(fields, types, out),
            Args::SetCommitment(a) => a.encode_as_fields_to(fields, types, out),
            Args::AddStake(a) => a.encode_as_fields_to(fields, types, out),
            Args::TransferKeepAlive(a) => a.encode_as_fields_to(fields, types, out),
        }
    }
}

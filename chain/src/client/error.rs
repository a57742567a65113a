//! The client's error type: every failure names the call, the subnet, the uid or block involved,
//! and chain errors carry their module error name (`SubtensorModule::SettingWeightsTooFast`).

use std::fmt;

use subxt::utils::AccountId32;

use super::ids::{BlockNumber, NetUid, Uid};

/// Everything that can go wrong talking to subtensor.
///
/// Checks the client makes before paying for an extrinsic ([`Error::RateLimited`],
/// [`Error::CommitRevealEnabled`], [`Error::VersionKeyTooLow`], [`Error::NotRegistered`], ...)
/// have their own variants; what the chain itself refuses arrives as [`Error::Dispatch`] (the
/// extrinsic ran and failed, fee paid) or [`Error::Rejected`] (the transaction pool refused it,
/// nothing paid).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `--subtensor.network` / `--subtensor.chain_endpoint` is not usable.
    #[error("invalid chain endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// What was given.
        endpoint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No connection could be made, after retrying with backoff.
    #[error("cannot connect to {endpoint} ({attempts} attempts)")]
    Connect {
        /// The URL.
        endpoint: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The connection dropped while doing something; the client reconnects on the next call.
    #[error("lost the connection to {endpoint} while {action}")]
    Disconnected {
        /// The URL.
        endpoint: String,
        /// What the client was doing.
        action: String,
        /// The failure subxt reported.
        #[source]
        source: Box<subxt::Error>,
    },
    /// A request to the chain failed (RPC, decoding, metadata).
    #[error("chain request failed while {action}")]
    Rpc {
        /// What the client was doing.
        action: String,
        /// The failure subxt reported.
        #[source]
        source: Box<subxt::Error>,
    },
    /// The connected runtime's metadata differs from the layout this client was generated
    /// for (finney spec 393) for this call or storage item: it would be encoded wrongly.
    #[error(
        "{item} has a different layout on the connected chain than in finney spec 393's metadata"
    )]
    IncompatibleRuntime {
        /// `Pallet.call` or `Pallet.StorageItem`.
        item: String,
    },
    /// The extrinsic was included and failed; the fee was paid.
    #[error("{call} failed in block {block}: {error}")]
    Dispatch {
        /// `Pallet.call`.
        call: String,
        /// The block it was included in.
        block: BlockNumber,
        /// Why it failed.
        error: DispatchError,
    },
    /// The transaction pool refused the transaction (bad signature, stale nonce, ...).
    #[error("the chain refused {call}: {rejection}")]
    Rejected {
        /// `Pallet.call`.
        call: String,
        /// What the node said.
        rejection: Rejection,
    },
    /// The subnet does not exist.
    #[error("subnet {netuid} does not exist")]
    SubnetNotFound {
        /// The subnet.
        netuid: NetUid,
    },
    /// The hotkey has no uid on the subnet.
    #[error("hotkey {hotkey} is not registered on subnet {netuid}")]
    NotRegistered {
        /// The subnet.
        netuid: NetUid,
        /// The hotkey.
        hotkey: AccountId32,
    },
    /// Setting or committing weights now would fail with `SettingWeightsTooFast` /
    /// `CommittingWeightsTooFast`: `WeightsSetRateLimit` blocks have not passed.
    #[error(
        "uid {uid} on subnet {netuid} last set weights at block {last_update}; WeightsSetRateLimit \
         ({rate_limit} blocks) allows the next at block {next_allowed}, the chain is at {current}"
    )]
    RateLimited {
        /// The subnet.
        netuid: NetUid,
        /// The caller's uid.
        uid: Uid,
        /// When it last set (or committed) weights.
        last_update: BlockNumber,
        /// `WeightsSetRateLimit`.
        rate_limit: u64,
        /// The first block whose extrinsics may set weights again.
        next_allowed: BlockNumber,
        /// The latest block when checked.
        current: BlockNumber,
    },
    /// `set_weights` on a subnet with `CommitRevealWeightsEnabled`.
    #[error(
        "subnet {netuid} has commit-reveal enabled: commit and reveal weights instead of setting them"
    )]
    CommitRevealEnabled {
        /// The subnet.
        netuid: NetUid,
    },
    /// `commit_weights`/`reveal_weights` on a subnet without `CommitRevealWeightsEnabled`.
    #[error("subnet {netuid} has commit-reveal disabled: set weights directly")]
    CommitRevealDisabled {
        /// The subnet.
        netuid: NetUid,
    },
    /// The weights' version key is below the subnet's `WeightsVersionKey`.
    #[error("version key {given} is below subnet {netuid}'s WeightsVersionKey {required}")]
    VersionKeyTooLow {
        /// The subnet.
        netuid: NetUid,
        /// The key the caller gave.
        given: u64,
        /// The subnet's key.
        required: u64,
    },
    /// The weights themselves are malformed.
    #[error("invalid weights for subnet {netuid}: {reason}")]
    InvalidWeights {
        /// The subnet.
        netuid: NetUid,
        /// What is wrong.
        reason: String,
    },
    /// No unexpired commit of this hotkey matches the reveal.
    #[error("no pending weight commit of {hotkey} on subnet {netuid} has hash {commit_hash}")]
    NoMatchingCommit {
        /// The subnet.
        netuid: NetUid,
        /// The hotkey.
        hotkey: AccountId32,
        /// The hash of the reveal's data, hex.
        commit_hash: String,
    },
    /// The reveal window of a commit has not opened yet.
    #[error(
        "the weights committed at block {commit_block} on subnet {netuid} can be revealed in blocks \
         {first}..={last}; the chain is at {current}"
    )]
    RevealTooEarly {
        /// The subnet.
        netuid: NetUid,
        /// The block of the commit.
        commit_block: BlockNumber,
        /// First block of the reveal window.
        first: BlockNumber,
        /// Last block of the reveal window.
        last: BlockNumber,
        /// The latest block when checked.
        current: BlockNumber,
    },
    /// The reveal window of a commit has passed; the commit is lost.
    #[error(
        "the reveal window (blocks {first}..={last}) of the weights committed at block \
         {commit_block} on subnet {netuid} has passed; the chain is at {current}"
    )]
    RevealExpired {
        /// The subnet.
        netuid: NetUid,
        /// The block of the commit.
        commit_block: BlockNumber,
        /// First block of the reveal window.
        first: BlockNumber,
        /// Last block of the reveal window.
        last: BlockNumber,
        /// The latest block when checked.
        current: BlockNumber,
    },
    /// Only validators (and a neuron weighting itself alone) may set weights.
    #[error(
        "uid {uid} on subnet {netuid} has no validator permit, so it may only set a weight on itself"
    )]
    NoValidatorPermit {
        /// The subnet.
        netuid: NetUid,
        /// The caller's uid.
        uid: Uid,
    },
    /// The account cannot pay for what it asked (e.g. the registration burn).
    #[error("account {account} has {free} rao free but {needed} rao are needed for {what}")]
    InsufficientBalance {
        /// The paying account.
        account: AccountId32,
        /// Its free balance.
        free: u64,
        /// What is needed.
        needed: u64,
        /// What for.
        what: &'static str,
    },
    /// The data is larger than a commitment holds.
    #[error("a commitment holds at most {max} bytes, got {len}")]
    CommitmentTooLarge {
        /// Bytes given.
        len: usize,
        /// Bytes a commitment holds.
        max: usize,
    },
    /// The chain returned something this client cannot interpret.
    #[error("unexpected chain data in {what}: {reason}")]
    Malformed {
        /// Which item.
        what: String,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// Whether trying again later may succeed without changing anything: the connection
    /// dropped or could not be made, the node is overloaded, or the transaction pool is
    /// temporarily full. Rate limits are not included; see [`Error::is_rate_limited`].
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Disconnected { .. } => true,
            Error::Rpc { source, .. } => {
                source.is_disconnected_will_reconnect() || source.is_rpc_limit_reached()
            }
            Error::Rejected { rejection, .. } => matches!(
                rejection.kind(),
                RejectionKind::ExhaustsResources | RejectionKind::TemporarilyBanned
            ),
            _ => false,
        }
    }

    /// Whether the action was refused (by this client or by the chain) because it came too
    /// soon after the previous one: weights, commits, axons or registrations.
    pub fn is_rate_limited(&self) -> bool {
        const RATE_LIMIT_ERRORS: &[&str] = &[
            "SettingWeightsTooFast",
            "CommittingWeightsTooFast",
            "ServingRateLimitExceeded",
            "TooManyRegistrationsThisBlock",
            "TooManyRegistrationsThisInterval",
            "TxRateLimitExceeded",
            "NetworkTxRateLimitExceeded",
            "StakingRateLimitExceeded",
        ];
        match self {
            Error::RateLimited { .. } => true,
            Error::Dispatch { error, .. } => error
                .module()
                .is_some_and(|m| RATE_LIMIT_ERRORS.contains(&m.name.as_str())),
            _ => false,
        }
    }

    /// The module error, if the chain ran the extrinsic and a pallet refused it.
    pub fn module_error(&self) -> Option<&ModuleError> {
        match self {
            Error::Dispatch { error, .. } => error.module(),
            _ => None,
        }
    }

    pub(crate) fn rpc(action: impl Into<String>, source: impl Into<subxt::Error>) -> Error {
        Error::Rpc {
            action: action.into(),
            source: Box::new(source.into()),
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl fmt::Display) -> Error {
        Error::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// A module (pallet) error, named as in the runtime metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError {
    /// The pallet, e.g. `SubtensorModule`.
    pub pallet: String,
    /// The error variant, e.g. `SettingWeightsTooFast`.
    pub name: String,
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}", self.pallet, self.name)
    }
}

/// Why an included extrinsic failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DispatchError {
    /// A pallet's error.
    Module(ModuleError),
    /// Any other `DispatchError` (`BadOrigin`, `Token(FundsUnavailable)`, ...), as subxt
    /// prints it.
    Other(String),
}

impl DispatchError {
    /// The module error, if it is one.
    pub fn module(&self) -> Option<&ModuleError> {
        match self {
            DispatchError::Module(m) => Some(m),
            DispatchError::Other(_) => None,
        }
    }

    pub(crate) fn from_subxt(error: &subxt::error::DispatchError) -> DispatchError {
        if let subxt::error::DispatchError::Module(module) = error
            && let Ok(details) = module.details()
        {
            return DispatchError::Module(ModuleError {
                pallet: details.pallet.name().to_owned(),
                name: details.variant.name.clone(),
            });
        }
        DispatchError::Other(error.to_string())
    }
}

impl fmt::Display for DispatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DispatchError::Module(m) => m.fmt(f),
            DispatchError::Other(s) => f.write_str(s),
        }
    }
}

/// The transaction pool's refusal, as the node worded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The JSON-RPC error code (1010 for an invalid transaction, 1011 for an unknown one), if
    /// the refusal came as an RPC error.
    pub code: Option<i32>,
    /// The message, e.g. `Invalid Transaction`.
    pub message: String,
    /// The detail, e.g. `Transaction has a bad signature`.
    pub detail: Option<String>,
}

/// What a [`Rejection`] means, read from Substrate's standard wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// The signature does not verify for the signer and payload (`BadProof`).
    BadSignature,
    /// The nonce was already used (`Stale`).
    StaleNonce,
    /// The nonce is ahead of the account's (`Future`).
    FutureNonce,
    /// The account cannot pay the fee (`Payment`).
    CannotPay,
    /// The mortality era is invalid or over (`AncientBirthBlock`).
    Expired,
    /// The block or pool is full (`ExhaustsResources`).
    ExhaustsResources,
    /// The same transaction was recently refused (`Temporarily banned`).
    TemporarilyBanned,
    /// A runtime-specific refusal (`Custom(n)`), e.g. subtensor's own checks.
    Custom,
    /// Anything else.
    Other,
}

impl Rejection {
    /// What the refusal means.
    pub fn kind(&self) -> RejectionKind {
        let text = format!(
            "{} {}",
            self.message,
            self.detail.as_deref().unwrap_or_default()
        )
        .to_ascii_lowercase();
        let has = |needle: &str| text.contains(needle);
        if has("bad signature") || has("badproof") || has("bad proof") {
            RejectionKind::BadSignature
        } else if has("outdated") || has("stale") {
            RejectionKind::StaleNonce
        } else if has("in the future") || has("future") {
            RejectionKind::FutureNonce
        } else if has("pay") {
            RejectionKind::CannotPay
        } else if has("ancient birth") || has("ancientbirthblock") {
            RejectionKind::Expired
        } else if has("exhaust") {
            RejectionKind::ExhaustsResources
        } else if has("temporarily banned") {
            RejectionKind::TemporarilyBanned
        } else if has("custom") {
            RejectionKind::Custom
        } else {
            RejectionKind::Other
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind() {
            RejectionKind::BadSignature => "bad signature",
            RejectionKind::StaleNonce => "stale nonce (already used)",
            RejectionKind::FutureNonce => "nonce from the future",
            RejectionKind::CannotPay => "cannot pay the fee",
            RejectionKind::Expired => "transaction expired (mortality)",
            RejectionKind::ExhaustsResources => "block or pool full",
            RejectionKind::TemporarilyBanned => "temporarily banned",
            RejectionKind::Custom => "refused by the runtime",
            RejectionKind::Other => "invalid transaction",
        };
        write!(f, "{kind}: {}", self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(code) = self.code {
            write!(f, " (code {code})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(detail: &str) -> Rejection {
        Rejection {
            code: Some(1010),
            message: "Invalid Transaction".into(),
            detail: Some(detail.into()),
        }
    }

    #[test]
    fn rejections_are_classified_from_substrate_wording() {
        assert_eq!(
            rejection("Transaction has a bad signature").kind(),
            RejectionKind::BadSignature
        );
        assert_eq!(
            rejection("Transaction is outdated").kind(),
            RejectionKind::StaleNonce
        );
        assert_eq!(
            rejection("Transaction will be valid in the future").kind(),
            RejectionKind::FutureNonce
        );
        assert_eq!(
            rejection("Inability to pay some fees (e.g. account balance too low)").kind(),
            RejectionKind::CannotPay
        );
        let shown = rejection("Transaction is outdated").to_string();
        assert!(shown.starts_with("stale nonce"), "{shown}");
    }

    #[test]
    fn module_errors_print_pallet_and_name_and_predicates_see_them() {
        let err = Error::Dispatch {
            call: "SubtensorModule.set_weights".into(),
            block: BlockNumber(12),
            error: DispatchError::Module(ModuleError {
                pallet: "SubtensorModule".into(),
                name: "SettingWeightsTooFast".into(),
            }),
        };
        assert!(
            err.to_string()
                .contains("SubtensorModule::SettingWeightsTooFast"),
            "{err}"
        );
        assert!(err.is_rate_limited());
        assert!(!err.is_transient());
        assert_eq!(
            err.module_error().map(|m| m.name.as_str()),
            Some("SettingWeightsTooFast")
        );
    }
}

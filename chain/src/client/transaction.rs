//! Signing, submitting and following one extrinsic, and turning every way it can fail into an
//! [`Error`] that names the call: pool refusals ([`Error::Rejected`]) and dispatch errors with
//! their module error name ([`Error::Dispatch`]).

use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::error::{
    BackendError, ExtrinsicError, RpcError, TransactionEventsError, TransactionProgressError,
    TransactionStatusError,
};
use subxt::tx::{Signer, TransactionStatus};

use super::call::Call;
use super::config::SubtensorConfig;
use super::error::{DispatchError, Error, Rejection};
use super::ids::BlockNumber;
use super::storage::At;

/// How far a submitted extrinsic must get before the call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Included in a best block: fastest, but reads at the finalized block may not see it yet.
    InBlock,
    /// In a finalized block: what the client's own reads (at the latest finalized block) see.
    #[default]
    Finalized,
}

/// Options for one extrinsic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxOptions {
    /// The nonce to use; `None` reads the account's next nonce from the chain (and the
    /// client's record of what it sent since).
    pub nonce: Option<u64>,
    /// Blocks the transaction stays valid for, from the latest finalized block.
    pub mortality: u64,
    /// When to return.
    pub wait: Wait,
}

impl Default for TxOptions {
    /// A chain nonce, 64 blocks of validity, wait for finalization.
    fn default() -> Self {
        TxOptions {
            nonce: None,
            mortality: 64,
            wait: Wait::Finalized,
        }
    }
}

/// Where an extrinsic landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Included {
    /// The block number.
    pub block: BlockNumber,
    /// The block hash.
    pub block_hash: [u8; 32],
    /// The extrinsic hash.
    pub extrinsic_hash: [u8; 32],
    /// The nonce it used.
    pub nonce: u64,
}

/// The outcome of [`submit`], with the events for callers that need one (e.g. the uid of a
/// registration).
pub(crate) struct Submitted {
    pub included: Included,
    pub events: subxt::extrinsics::ExtrinsicEvents<SubtensorConfig>,
}

/// The nonce `account` should use at `at`: the chain's, unless the client already sent more.
pub(crate) async fn chain_nonce(
    at: &At,
    call: &Call,
    account: &subxt::utils::AccountId32,
) -> Result<u64, Error> {
    at.tx().account_nonce(account).await.map_err(|e| {
        Error::rpc(
            format!("reading the nonce for {}", call.qualified_name()),
            e,
        )
    })
}

/// Signs `call` with `signer` at `at` using `nonce`, submits it and follows it to `opts.wait`.
pub(crate) async fn submit<S: Signer<SubtensorConfig>>(
    at: &At,
    call: &Call,
    signer: &S,
    nonce: u64,
    opts: &TxOptions,
) -> Result<Submitted, Error> {
    let name = call.qualified_name();
    call.check_against(at.metadata_ref())?;
    let params = DefaultExtrinsicParamsBuilder::<SubtensorConfig>::new()
        .mortal(opts.mortality)
        .nonce(nonce)
        .build();
    let mut tx = at.tx();
    let signed = tx
        .create_signed(call, signer, params)
        .await
        .map_err(|e| extrinsic_error(&name, e))?;
    tracing::debug!(call = %name, nonce, "submitting extrinsic");
    let mut progress = signed
        .submit_and_watch()
        .await
        .map_err(|e| extrinsic_error(&name, e))?;
    let extrinsic_hash = progress.extrinsic_hash().0;
    while let Some(status) = progress.next().await {
        let status = status.map_err(|e| progress_error(&name, e))?;
        let in_block = match status {
            TransactionStatus::InBestBlock(b) if opts.wait == Wait::InBlock => b,
            TransactionStatus::InFinalizedBlock(b) => b,
            TransactionStatus::Invalid { message }
            | TransactionStatus::Dropped { message }
            | TransactionStatus::Error { message } => {
                return Err(rejected(&name, None, message, None));
            }
            _ => continue,
        };
        let block_client = in_block
            .at()
            .await
            .map_err(|e| Error::rpc(format!("reading the block of {name}"), e))?;
        let block = BlockNumber(block_client.block_number());
        let events = match in_block.wait_for_success().await {
            Ok(events) => events,
            Err(TransactionEventsError::ExtrinsicFailed(e)) => {
                return Err(Error::Dispatch {
                    call: name,
                    block,
                    error: DispatchError::from_subxt(&e),
                });
            }
            Err(e) => return Err(Error::rpc(format!("reading the events of {name}"), e)),
        };
        tracing::debug!(call = %name, block = block.0, "extrinsic included");
        return Ok(Submitted {
            included: Included {
                block,
                block_hash: in_block.block_hash().0,
                extrinsic_hash,
                nonce,
            },
            events,
        });
    }
    Err(Error::rpc(
        format!("following {name}"),
        TransactionProgressError::UnexpectedEndOfTransactionStatusStream,
    ))
}

fn rejected(call: &str, code: Option<i32>, message: String, detail: Option<String>) -> Error {
    Error::Rejected {
        call: call.to_owned(),
        rejection: Rejection {
            code,
            message,
            detail,
        },
    }
}

/// A JSON-RPC error answer (e.g. 1010 Invalid Transaction) inside a backend error.
fn user_error(e: &BackendError) -> Option<&subxt::rpcs::UserError> {
    match e {
        BackendError::Rpc(RpcError::ClientError(subxt::rpcs::Error::User(u))) => Some(u),
        _ => None,
    }
}

fn extrinsic_error(call: &str, e: ExtrinsicError) -> Error {
    match e {
        ExtrinsicError::IncompatibleCodegen
        | ExtrinsicError::PalletNameNotFound(_)
        | ExtrinsicError::CallNameNotFound { .. } => Error::IncompatibleRuntime {
            item: call.to_owned(),
        },
        ExtrinsicError::ErrorSubmittingTransaction(ref b)
        | ExtrinsicError::TransactionStatusStreamError(ref b)
            if let Some(u) = user_error(b) =>
        {
            let detail = u.data.as_ref().map(|d| {
                let raw = d.get();
                serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned())
            });
            rejected(call, Some(u.code), u.message.clone(), detail)
        }
        ExtrinsicError::TransactionStatusError(
            TransactionStatusError::Invalid(m)
            | TransactionStatusError::Dropped(m)
            | TransactionStatusError::Error(m),
        ) => rejected(call, None, m, None),
        e => Error::rpc(format!("submitting {call}"), e),
    }
}

fn progress_error(call: &str, e: TransactionProgressError) -> Error {
    match e {
        TransactionProgressError::TransactionStatusError(
            TransactionStatusError::Invalid(m)
            | TransactionStatusError::Dropped(m)
            | TransactionStatusError::Error(m),
        ) => rejected(call, None, m, None),
        e => Error::rpc(format!("following {call}"), e),
    }
}

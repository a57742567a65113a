//! What a miner sends: each tensor sealed as a signed artifact and put, write-once, in its own
//! store in the background, its bytes counted once the put is durable. Puts run a few at a time
//! (`--miner.uploads_at_once`, [`Node::uploads`](crate::node::Node::uploads)); the rest wait their
//! turn.
//!
//! The training loop and the merge both send through an [`Outbox`], so an artifact is sealed,
//! keyed ([`layout::artifact`]) and counted in one place.

use anyhow::Result;
use bytes::Bytes;
use sliver_common::WireCodec;
use sliver_common::artifact::{self, ArtifactId, Header, Unsealed};
use sliver_common::flat::WeightsHash;
use sliver_common::layout;
use sliver_common::storage::Put;
use tch::Tensor;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::node::Node;

/// Artifacts on their way to storage.
pub(crate) struct Outbox {
    node: Node,
    pending: Vec<JoinHandle<()>>,
}

/// What an artifact claims besides its payload.
#[derive(Debug, Clone, Default)]
pub(crate) struct Claims {
    /// BLAKE3 of the weights the payload was computed with.
    pub(crate) weights: Option<WeightsHash>,
    /// The sample's training loss (the last stage's gradients).
    pub(crate) loss: Option<f32>,
    /// The verified headers of the artifacts the payload was computed from, named as evidence
    /// (see [`sliver_common::artifact`]).
    pub(crate) inputs: Vec<Header>,
}

impl Outbox {
    pub(crate) fn new(node: &Node) -> Self {
        Self {
            node: node.clone(),
            pending: Vec::new(),
        }
    }

    /// Seals `tensor` (encoded with `codec`) as artifact `at` and puts it in the background.
    ///
    /// # Errors
    /// The tensor cannot be encoded, or the header cannot be written.
    pub(crate) fn send(
        &mut self,
        at: ArtifactId,
        codec: &WireCodec,
        tensor: &Tensor,
        claims: Claims,
    ) -> Result<()> {
        let payload = codec.encode(tensor)?;
        let dims = tensor.size();
        let run = &self.node.view.run;
        let inputs: Vec<&Header> = claims.inputs.iter().collect();
        let bytes = artifact::seal(
            Unsealed {
                run,
                at,
                codec: codec.kind(),
                dims: &dims,
                weights: claims.weights,
                loss: claims.loss,
                inputs: &inputs,
            },
            &payload,
            self.node.signer.as_ref(),
        )?;
        let key = layout::artifact(&run.name, &self.node.me(), at);
        let (store, metrics) = (self.node.store.clone(), self.node.metrics.clone());
        let uploads = std::sync::Arc::clone(&self.node.uploads);
        self.pending.retain(|h| !h.is_finished());
        self.pending.push(self.node.rt.spawn(async move {
            let n = bytes.len() as u64;
            // A few puts at a time share the uplink (`Node::uploads`); the semaphore is never
            // closed, so a permit always comes.
            let _permit = uploads.acquire_owned().await.ok();
            match store.put_once(&key, Bytes::from(bytes)).await {
                Ok(Put::Created) => metrics.add_bytes("up", at.kind.as_str(), n),
                Ok(Put::Same) => {}
                // Only a writer of this store can have put it: this miner before a restart
                // (its artifact then stands), or whoever holds its write key.
                Ok(Put::Exists) => {
                    warn!(
                        key,
                        "upload skipped: the key holds another object, not this artifact"
                    )
                }
                Err(e) => warn!(key, error = %e, "upload failed"),
            }
        }));
        Ok(())
    }

    /// Waits until everything sent so far is stored (or failed, which is logged).
    pub(crate) async fn flushed(&mut self) {
        for h in std::mem::take(&mut self.pending) {
            let _ = h.await;
        }
    }
}

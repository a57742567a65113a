//! Writing an artifact: the header laid out as the [module docs](super) describe, signed.

use super::{
    ARTIFACT_MAGIC, ARTIFACT_VERSION, ArtifactId, FIXED_LEN, Header, MAX_INPUTS, MAX_RUN_LEN,
    Rejection, RunId, Signer, evidence_digest,
};
use crate::codec::{CodecKind, MAX_DIMS};
use crate::flat::WeightsHash;

/// A signed artifact as bytes: header, signature, payload.
///
/// # Errors
/// [`Rejection::Malformed`] when the header cannot be written (run name too long, bad dims).
pub fn seal(
    header_fields: Unsealed<'_>,
    payload: &[u8],
    signer: &dyn Signer,
) -> Result<Vec<u8>, Rejection> {
    let Unsealed {
        run,
        at:
            ArtifactId {
                epoch,
                stage,
                kind,
                id,
            },
        codec,
        dims,
        weights,
        loss,
        inputs,
    } = header_fields;
    let RunId {
        name: run,
        netuid,
        spec,
    } = run;
    if inputs.len() > MAX_INPUTS {
        return Err(Rejection::Malformed(
            "more inputs than an artifact may name",
        ));
    }
    if loss.is_some_and(|l| !l.is_finite() || l < 0.0) {
        return Err(Rejection::Malformed("loss must be finite and not negative"));
    }
    if run.is_empty() || run.len() > MAX_RUN_LEN {
        return Err(Rejection::Malformed("run name must be 1 to 64 bytes"));
    }
    if dims.is_empty()
        || dims.len() > MAX_DIMS
        || dims.iter().any(|&d| d < 1 || d > u32::MAX as i64)
    {
        return Err(Rejection::Malformed("dims"));
    }
    let evidence: usize = inputs.iter().map(|h| 2 + h.signed.len()).sum();
    let mut out =
        Vec::with_capacity(FIXED_LEN + run.len() + 4 * dims.len() + 64 + evidence + payload.len());
    out.extend_from_slice(&ARTIFACT_MAGIC);
    out.extend_from_slice(&[ARTIFACT_VERSION, kind.id(), codec.id(), dims.len() as u8]);
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&stage.0.to_le_bytes());
    out.extend_from_slice(&netuid.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&signer.hotkey().0);
    out.extend_from_slice(blake3::hash(payload).as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&weights.map_or([0; 32], |w| w.0));
    out.extend_from_slice(&loss.unwrap_or(f32::NAN).to_le_bytes());
    out.extend_from_slice(spec);
    let signed_inputs: Vec<&[u8]> = inputs.iter().map(|h| h.signed.as_slice()).collect();
    out.extend_from_slice(&evidence_digest(&signed_inputs).unwrap_or([0; 32]));
    out.push(inputs.len() as u8);
    out.push(run.len() as u8);
    out.extend_from_slice(run.as_bytes());
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_le_bytes());
    }
    let signature = signer.sign(&out);
    out.extend_from_slice(&signature);
    for signed in signed_inputs {
        out.extend_from_slice(&(signed.len() as u16).to_le_bytes());
        out.extend_from_slice(signed);
    }
    out.extend_from_slice(payload);
    Ok(out)
}

/// The fields of a header that the producer chooses; the rest are computed by [`seal`].
#[derive(Debug, Clone, Copy)]
pub struct Unsealed<'a> {
    /// The run.
    pub run: &'a RunId,
    /// Which artifact.
    pub at: ArtifactId,
    /// Payload codec.
    pub codec: CodecKind,
    /// Payload dims.
    pub dims: &'a [i64],
    /// BLAKE3 of the weights the payload was computed with, if it was computed with any.
    pub weights: Option<WeightsHash>,
    /// The sample's training loss, on the last stage's gradients.
    pub loss: Option<f32>,
    /// The headers of the artifacts the payload was computed from, as read (the evidence; at
    /// most [`MAX_INPUTS`]).
    pub inputs: &'a [&'a Header],
}

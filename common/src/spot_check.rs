//! Spot checks: the protocol between a validator that recomputes a miner's artifacts and the
//! miner that must show the weights it claimed.
//!
//! Every activation and gradient a miner uploads names, in its signed header, the BLAKE3 of the
//! stage weights it was computed with ([`crate::artifact::Header::weights`]). Once an epoch's
//! samples are done the validator picks a few artifacts of each miner at random and writes a
//! *challenge* into its own store: the weight hashes those artifacts claim. The miner, which
//! kept every weight version it claimed this epoch, answers by putting those weights in its own
//! store under their hash. The validator checks the bytes against the hash, recomputes the
//! artifacts from the inputs in storage on those weights, and compares ([`Agreement`]).
//!
//! ```text
//! runs/{run}/challenges/e{epoch}/{miner}           in the validator's store (text, below)
//! runs/{run}/e{epoch}/s{stage}/{miner}/weights/{hash}  in the miner's store: the flat fp32 LE
//!                                                  weights (`flat::flat_bytes`), BLAKE3 = hash
//! ```
//!
//! A challenge is `sliver-challenge/1` and then one hex weight hash per line. The weights are
//! content-addressed, so they need no signature: the miner's signature is on the artifact that
//! claims the hash. A miner that does not answer, answers with other bytes, or whose artifact
//! does not match its recomputation fails the check.

use std::fmt;

use tch::{Kind, Tensor};

use crate::flat::WeightsHash;
use crate::spec::ValidationSpec;

/// First line of every challenge: the format and its version.
pub const CHALLENGE_MAGIC: &str = "sliver-challenge/1";
/// Most weight hashes one challenge may name.
pub const MAX_CHALLENGED: usize = 64;

/// The largest challenge [`parse_challenge`] accepts, in bytes.
pub const fn max_challenge_len() -> u64 {
    (CHALLENGE_MAGIC.len() + 1 + MAX_CHALLENGED * 65) as u64
}

/// A challenge's text: the weight hashes, deduplicated, in the order given.
pub fn challenge_text(hashes: &[WeightsHash]) -> String {
    let mut out = format!("{CHALLENGE_MAGIC}\n");
    let mut seen = Vec::new();
    for h in hashes {
        if !seen.contains(h) && seen.len() < MAX_CHALLENGED {
            seen.push(*h);
            out.push_str(&h.to_string());
            out.push('\n');
        }
    }
    out
}

/// A challenge could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed challenge: {0}")]
pub struct ChallengeError(String);

/// The weight hashes a challenge names.
///
/// # Errors
/// [`ChallengeError`] when the text is too long, lacks the header line, names more than
/// [`MAX_CHALLENGED`] hashes or holds a line that is not a 64-digit hex hash.
pub fn parse_challenge(bytes: &[u8]) -> Result<Vec<WeightsHash>, ChallengeError> {
    if bytes.len() as u64 > max_challenge_len() {
        return Err(ChallengeError(format!(
            "{} bytes, at most {} allowed",
            bytes.len(),
            max_challenge_len()
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ChallengeError("not UTF-8".into()))?;
    let mut lines = text.lines();
    if lines.next() != Some(CHALLENGE_MAGIC) {
        return Err(ChallengeError(format!(
            "the first line is not {CHALLENGE_MAGIC}"
        )));
    }
    let mut hashes = Vec::new();
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut h = [0u8; 32];
        hex::decode_to_slice(line, &mut h)
            .map_err(|_| ChallengeError(format!("line {} is not a 64-digit hex hash", n + 2)))?;
        hashes.push(WeightsHash(h));
    }
    if hashes.len() > MAX_CHALLENGED {
        return Err(ChallengeError(format!(
            "{} hashes, at most {MAX_CHALLENGED}",
            hashes.len()
        )));
    }
    Ok(hashes)
}

/// How close an uploaded tensor is to its recomputation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agreement {
    /// Cosine similarity of the two, flattened.
    pub cosine: f64,
    /// norm(uploaded) / norm(recomputed).
    pub norm_ratio: f64,
}

impl Agreement {
    /// Compares `uploaded` with `recomputed` (same shape; any float kind).
    pub fn of(uploaded: &Tensor, recomputed: &Tensor) -> Agreement {
        let a = uploaded.to_kind(Kind::Double).reshape([-1]);
        let b = recomputed.to_kind(Kind::Double).reshape([-1]);
        let (na, nb) = (a.norm().double_value(&[]), b.norm().double_value(&[]));
        let dot = a.dot(&b).double_value(&[]);
        let (cosine, norm_ratio) = match (na > 0.0, nb > 0.0) {
            (true, true) => (dot / (na * nb), na / nb),
            (false, false) => (1.0, 1.0),
            _ => (0.0, if nb > 0.0 { 0.0 } else { f64::INFINITY }),
        };
        Agreement { cosine, norm_ratio }
    }

    /// Why the two differ beyond `tolerance`, or `None` when they agree.
    pub fn mismatch(&self, tolerance: &ValidationSpec) -> Option<String> {
        let norm_error = (self.norm_ratio - 1.0).abs();
        if self.cosine.is_nan() || self.cosine < tolerance.min_cosine {
            Some(format!(
                "cosine {:.6} < {}",
                self.cosine, tolerance.min_cosine
            ))
        } else if norm_error.is_nan() || norm_error > tolerance.max_norm_error {
            Some(format!(
                "norm ratio {:.6} off by more than {}",
                self.norm_ratio, tolerance.max_norm_error
            ))
        } else {
            None
        }
    }
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cosine {:.7}, norm ratio {:.7}",
            self.cosine, self.norm_ratio
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_round_trip_and_hostile_ones_are_refused() {
        let [a, b] = [WeightsHash([1u8; 32]), WeightsHash([2u8; 32])];
        let text = challenge_text(&[a, b, a]);
        assert_eq!(parse_challenge(text.as_bytes()).unwrap(), vec![a, b]);
        let many: Vec<WeightsHash> = (0..100u8).map(|i| WeightsHash([i; 32])).collect();
        let text = challenge_text(&many);
        assert_eq!(
            parse_challenge(text.as_bytes()).unwrap().len(),
            MAX_CHALLENGED
        );
        assert!(text.len() as u64 <= max_challenge_len());
        for bad in [
            &b"sliver-challenge/2\n"[..],
            b"",
            b"sliver-challenge/1\nzz",
            b"sliver-challenge/1\n0102",
            &[0xff, 0xfe][..],
        ] {
            assert!(parse_challenge(bad).is_err(), "{bad:?}");
        }
        let long = vec![b'a'; max_challenge_len() as usize + 1];
        assert!(
            parse_challenge(&long)
                .unwrap_err()
                .to_string()
                .contains("bytes")
        );
    }

    #[test]
    fn agreement_tells_a_scaled_or_other_tensor_from_a_recomputation() {
        let tol = ValidationSpec::default();
        let x = Tensor::randn([4, 64], (Kind::Float, tch::Device::Cpu));
        let same = Agreement::of(&x, &(&x + 1e-7));
        assert!(same.mismatch(&tol).is_none(), "{same}");
        let scaled = Agreement::of(&(&x * 1.1), &x);
        assert!((scaled.norm_ratio - 1.1).abs() < 1e-6 && scaled.cosine > 0.9999);
        assert!(scaled.mismatch(&tol).unwrap().contains("norm"));
        let other = Agreement::of(&x.randn_like(), &x);
        assert!(other.mismatch(&tol).unwrap().contains("cosine"));
        let zero = Agreement::of(&x.zeros_like(), &x);
        assert!(zero.mismatch(&tol).is_some());
        let nan = Agreement::of(&(&x * f64::NAN), &x);
        assert!(nan.mismatch(&tol).is_some());
    }
}

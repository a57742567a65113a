//! A stage's weights as one flat fp32 vector: the layout the merge shards, weight hashes cover,
//! and spot-check answers carry.
//!
//! Parameters are taken in name order, each flattened row-major and converted to fp32 on the
//! CPU. [`hash_flat`] is the BLAKE3 of their little-endian bytes ([`flat_bytes`]).

use std::fmt;

use tch::{Device, Kind, Tensor, nn};

/// The BLAKE3 of a stage's flat weights ([`hash_flat`]): what an artifact claims it was computed
/// with, what a validator's challenge names, and what a stage's miners compare after a merge.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WeightsHash(pub [u8; 32]);

impl WeightsHash {
    /// The hash of flat weights already laid out as bytes ([`flat_bytes`]).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// The first 8 hex digits: enough to tell versions apart in logs.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_owned()
    }
}

impl fmt::Display for WeightsHash {
    /// Lower-case hex: the form used in storage keys, file names and challenges.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for WeightsHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WeightsHash({})", self.short())
    }
}

/// A stage's weights could not be flattened or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlatError {
    /// The flat vector does not have the stage's parameter count.
    #[error("merged weights hold {got} values, the stage has {expected}")]
    Length {
        /// Parameters of the stage.
        expected: i64,
        /// Values given.
        got: i64,
    },
    /// A merged value is NaN or infinite.
    #[error("merged weights hold non-finite values")]
    NonFinite,
    /// libtorch failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

fn sorted_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Every parameter of `vs` in name order, as one fp32 vector on the CPU.
///
/// # Errors
/// When libtorch fails.
pub fn flatten(vs: &nn::VarStore) -> Result<Tensor, FlatError> {
    let parts = sorted_variables(vs)
        .into_iter()
        .map(|(_, t)| {
            t.f_detach()?
                .f_to_device(Device::Cpu)?
                .f_to_kind(Kind::Float)?
                .f_reshape([-1])
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::f_cat(&parts, 0)?)
}

/// Flat weights (as [`flatten`] lays them out) as fp32 little-endian bytes: what weight
/// hashes cover and what a miner shows a validator's spot check.
///
/// # Errors
/// When libtorch fails.
pub fn flat_bytes(flat: &Tensor) -> Result<Vec<u8>, FlatError> {
    let values = Vec::<f32>::try_from(flat.f_to_kind(Kind::Float)?.f_reshape([-1])?)?;
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Ok(bytes)
}

/// The flat weights [`flat_bytes`] wrote; `None` when the length is not a multiple of 4.
pub fn flat_from_bytes(bytes: &[u8]) -> Option<Tensor> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Some(Tensor::from_slice(&values))
}

/// BLAKE3 of flat weights' [`flat_bytes`]: what an artifact's header claims its payload was
/// computed with, and what a stage's miners compare after a merge.
///
/// # Errors
/// When libtorch fails.
pub fn hash_flat(flat: &Tensor) -> Result<WeightsHash, FlatError> {
    Ok(WeightsHash::of_bytes(&flat_bytes(flat)?))
}

/// Loads `flat` (as [`flatten`] lays it out) into `vs`.
///
/// # Errors
/// [`FlatError::Length`] or [`FlatError::NonFinite`]; nothing is changed then.
pub fn load_flat(vs: &mut nn::VarStore, flat: &Tensor) -> Result<(), FlatError> {
    let vars = sorted_variables(vs);
    let expected: i64 = vars.iter().map(|(_, t)| t.numel() as i64).sum();
    let got = flat.numel() as i64;
    if got != expected {
        return Err(FlatError::Length { expected, got });
    }
    if !bool::try_from(flat.f_isfinite()?.f_all()?)? {
        return Err(FlatError::NonFinite);
    }
    tch::no_grad(|| {
        let mut at = 0i64;
        for (_, mut t) in vars {
            let n = t.numel() as i64;
            let src = flat
                .f_narrow(0, at, n)?
                .f_view(t.size().as_slice())?
                .f_to_device(t.device())?
                .f_to_kind(t.kind())?;
            t.f_copy_(&src)?;
            at += n;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_and_load_round_trip_and_refuse_what_does_not_fit() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _a = vs.root().var("a", &[2, 3], nn::Init::Const(1.0));
        let _b = vs.root().var("b", &[4], nn::Init::Const(2.0));
        let flat = flatten(&vs).unwrap();
        assert_eq!(flat.size(), [10]);
        let mut other = nn::VarStore::new(Device::Cpu);
        let _a = other.root().var("a", &[2, 3], nn::Init::Const(0.0));
        let _b = other.root().var("b", &[4], nn::Init::Const(0.0));
        load_flat(&mut other, &flat).unwrap();
        assert!(flatten(&other).unwrap().equal(&flat));
        assert_eq!(
            hash_flat(&flatten(&other).unwrap()).unwrap(),
            hash_flat(&flat).unwrap()
        );
        assert!(matches!(
            load_flat(&mut other, &Tensor::zeros([3], (Kind::Float, Device::Cpu))),
            Err(FlatError::Length {
                expected: 10,
                got: 3
            })
        ));
        let nan = Tensor::full([10], f64::NAN, (Kind::Float, Device::Cpu));
        assert!(matches!(
            load_flat(&mut other, &nan),
            Err(FlatError::NonFinite)
        ));
        let back = flat_from_bytes(&flat_bytes(&flat).unwrap()).unwrap();
        assert!(back.equal(&flat));
        assert!(flat_from_bytes(&[0; 5]).is_none());
    }
}

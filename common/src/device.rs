//! The compute device, as given by `--neuron.device cpu|cuda|cuda:N|mps`.

use std::str::FromStr;

use tch::Device;

/// A device flag that names no usable device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// Not one of the accepted forms.
    #[error("unknown device {0:?}: expected cpu, cuda, cuda:N or mps")]
    Unknown(String),
    /// CUDA was asked for but this build or machine has none.
    #[error(
        "device {requested} requested but CUDA is not available (this build {build} the `cuda` feature; {count} GPUs visible)"
    )]
    NoCuda {
        /// The flag value.
        requested: String,
        /// "has" or "lacks".
        build: &'static str,
        /// GPUs libtorch sees.
        count: i64,
    },
    /// MPS was asked for but is not available.
    #[error("device mps requested but Metal is not available on this machine")]
    NoMps,
}

/// A parsed, checked device choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec(pub Device);

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    /// Parses and checks that the device exists.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let device = match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Device::Cpu,
            "mps" => Device::Mps,
            "cuda" => Device::Cuda(0),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(n)) => Device::Cuda(n),
                _ => return Err(DeviceError::Unknown(s.to_string())),
            },
        };
        match device {
            Device::Cuda(n) => {
                let count = tch::Cuda::device_count();
                if !tch::Cuda::is_available() || n as i64 >= count {
                    let build = if cfg!(feature = "cuda") {
                        "has"
                    } else {
                        "lacks"
                    };
                    return Err(DeviceError::NoCuda {
                        requested: s.to_string(),
                        build,
                        count,
                    });
                }
            }
            Device::Mps if !tch::utils::has_mps() => return Err(DeviceError::NoMps),
            _ => {}
        }
        Ok(Self(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_nonsense() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap().0, Device::Cpu);
        assert_eq!(" CPU ".parse::<DeviceSpec>().unwrap().0, Device::Cpu);
        let err = "tpu".parse::<DeviceSpec>().unwrap_err().to_string();
        assert!(err.contains("expected cpu, cuda, cuda:N or mps"), "{err}");
        assert!(matches!(
            "cuda:x".parse::<DeviceSpec>(),
            Err(DeviceError::Unknown(_))
        ));
        if !tch::Cuda::is_available() {
            let err = "cuda:0".parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(err.contains("CUDA is not available"), "{err}");
        }
    }
}

//! Picking the burn device for a spec's backend.

use burn::tensor::Device;
use nd_spec::Backend;

use crate::TrainError;

/// The autodiff device training runs on.
pub fn device(backend: Backend) -> Result<Device, TrainError> {
    Ok(inference_device(backend)?.autodiff())
}

/// The plain (no autodiff) device for `backend`.
pub fn inference_device(backend: Backend) -> Result<Device, TrainError> {
    match backend {
        // burn 0.22 deprecates ndarray in favour of its new `flex` CPU backend; ndarray is the
        // measured, deterministic one the project is built on.
        #[allow(deprecated)]
        Backend::Ndarray => Ok(Device::ndarray()),
        Backend::Wgpu => Err(TrainError::Backend {
            backend: "wgpu".into(),
            problem: "this build has no wgpu support; use --backend ndarray".into(),
        }),
    }
}

//! Picking the burn device for a spec's backend.
//!
//! `ndarray` and `flex` (burn 0.22's pure-Rust CPU backend, ndarray's successor) are always
//! there. `wgpu` exists when the crate is built with the `wgpu` feature; it
//! takes the adapter wgpu's default selection finds (a real GPU, or Mesa's software Vulkan
//! driver, lavapipe, on a machine without one). The runtime is set up once per process, so a
//! missing adapter is reported on the first request as a one-line [`TrainError::Backend`].
//!
//! Networks are always initialized on the CPU (see [`crate::init_network`]) and then moved, so
//! that one spec and seed give the same initial weights on every backend.

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
        Backend::Ndarray => Ok(ndarray()),
        Backend::Flex => Ok(Device::flex()),
        Backend::Wgpu => wgpu::device(),
    }
}

/// What a backend computes on, for reports and benchmarks: "CPU (ndarray)" or the wgpu
/// adapter's name, driver and graphics API.
pub fn describe(backend: Backend) -> Result<String, TrainError> {
    match backend {
        Backend::Ndarray => Ok("CPU (ndarray)".to_string()),
        Backend::Flex => Ok("CPU (flex)".to_string()),
        Backend::Wgpu => wgpu::describe(),
    }
}

/// Whether this build can compute on `backend` at all (the `wgpu` cargo feature); it says
/// nothing about whether an adapter is present.
pub fn compiled(backend: Backend) -> bool {
    match backend {
        Backend::Ndarray | Backend::Flex => true,
        Backend::Wgpu => cfg!(feature = "wgpu"),
    }
}

/// The plain ndarray device: where networks are initialized, whatever they train on.
pub(crate) fn ndarray() -> Device {
    // burn 0.22 deprecates ndarray in favour of its new `flex` CPU backend; ndarray is the
    // measured, deterministic one the project is built on.
    #[allow(deprecated)]
    Device::ndarray()
}

fn backend_error(problem: impl Into<String>) -> TrainError {
    TrainError::Backend {
        backend: "wgpu".into(),
        problem: problem.into(),
    }
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use std::sync::OnceLock;

    use burn::tensor::wgpu::WgpuBackend;
    use burn::tensor::Device;

    use super::backend_error;
    use crate::TrainError;

    /// The device and its description, or why there is none: settled on first use.
    static RUNTIME: OnceLock<Result<(Device, String), String>> = OnceLock::new();

    fn runtime() -> Result<&'static (Device, String), TrainError> {
        RUNTIME
            .get_or_init(|| {
                // Vulkan first: wgpu's automatic choice also opens OpenGL through EGL, which
                // on a headless Linux box prints Mesa's and Wayland's complaints to stderr
                // even when Vulkan then wins. Elsewhere (Metal, DX12, GL only) the automatic
                // choice decides.
                let (device, setup) = Device::wgpu_options()
                    .graphics_api(WgpuBackend::Vulkan)
                    .init_with_setup()
                    .or_else(|_| Device::wgpu_options().init_with_setup())
                    .map_err(|error| explain(&error.to_string()))?;
                let info = setup.adapter.get_info();
                let mut described = format!("{} ({:?}", info.name.trim(), info.backend);
                let driver = format!("{} {}", info.driver.trim(), info.driver_info.trim());
                if !driver.trim().is_empty() {
                    described.push_str(&format!(", {}", driver.trim()));
                }
                described.push(')');
                Ok((device, described))
            })
            .as_ref()
            .map_err(|problem| backend_error(problem.clone()))
    }

    /// One line: wgpu's own message (first line only) and what to do about it.
    fn explain(message: &str) -> String {
        let first = message.lines().next().unwrap_or("").trim();
        let first = if first.chars().count() > 200 {
            format!("{}...", first.chars().take(200).collect::<String>())
        } else {
            first.to_string()
        };
        format!(
            "no usable GPU adapter ({first}); install a Vulkan driver (on Debian/Ubuntu without a GPU: `apt-get install mesa-vulkan-drivers`, Mesa's software Vulkan) or use a CPU backend, --backend flex"
        )
    }

    pub fn device() -> Result<Device, TrainError> {
        runtime().map(|(device, _)| device.clone())
    }

    pub fn describe() -> Result<String, TrainError> {
        runtime().map(|(_, described)| described.clone())
    }
}

/// Why a build without the `wgpu` feature cannot compute on wgpu, and what to do. Compiled in
/// every build, so that the one lint and test pass CI runs (with the feature) covers it.
#[cfg_attr(feature = "wgpu", allow(dead_code))]
fn not_built() -> TrainError {
    backend_error(
        "this build has no wgpu support; rebuild with `--features wgpu` (e.g. `cargo run -p neuron-doctor --features wgpu -- ...`) or use a CPU backend, --backend flex",
    )
}

#[cfg(not(feature = "wgpu"))]
mod wgpu {
    use burn::tensor::Device;

    use crate::TrainError;

    pub fn device() -> Result<Device, TrainError> {
        Err(super::not_built())
    }

    pub fn describe() -> Result<String, TrainError> {
        Err(super::not_built())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_build_without_wgpu_says_how_to_get_it() {
        let message = super::not_built().to_string();
        assert!(message.starts_with("backend wgpu: "), "{message}");
        assert!(message.contains("--features wgpu"), "{message}");
        assert!(message.contains("--backend flex"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}

//! Choosing the compute backend at run time: `auto` takes CUDA, then wgpu, then the CPU,
//! among those compiled in (`--features cuda`, `--features wgpu`). The CPU backend is
//! burn-flex (`cpu`); burn-ndarray (`ndarray`) stays selectable as the slower reference.
//! Model code is generic over burn's `Backend`; [`with_backend!`] instantiates it for the
//! chosen one.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Cpu,
    NdArray,
    #[cfg(feature = "wgpu")]
    Wgpu,
    #[cfg(feature = "cuda")]
    Cuda,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::NdArray => "ndarray",
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => "wgpu",
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => "cuda",
        })
    }
}

impl BackendKind {
    /// The device a stage's record names (which kernels ran is [`kernel_class`]'s part).
    pub fn device(self) -> String {
        match self {
            BackendKind::Cpu | BackendKind::NdArray => "cpu".into(),
            #[cfg(feature = "wgpu")]
            BackendKind::Wgpu => "wgpu".into(),
            #[cfg(feature = "cuda")]
            BackendKind::Cuda => "cuda:0".into(),
        }
    }
}

#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda<f32, i32>;
#[cfg(feature = "wgpu")]
pub type Wgpu = burn::backend::Wgpu<f32, i32>;

/// Whether a device of this kind answers: a tiny tensor op, with a panic (no driver, no
/// adapter) taken as "no".
#[cfg_attr(not(any(feature = "cuda", feature = "wgpu")), allow(dead_code))]
fn usable(kind: BackendKind) -> bool {
    #[cfg(feature = "cuda")]
    if kind == BackendKind::Cuda && !driver_present() {
        return false;
    }
    // The backends report a missing device by panicking, on their own threads too: keep
    // those messages off the user's terminal while probing.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(|| match kind {
        BackendKind::Cpu | BackendKind::NdArray => true,
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => {
            use burn::prelude::*;
            let t = Tensor::<Cuda, 1>::ones([4], &Default::default());
            t.sum().into_scalar() == 4.0
        }
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => {
            use burn::prelude::*;
            let t = Tensor::<Wgpu, 1>::ones([4], &Default::default());
            t.sum().into_scalar() == 4.0
        }
    });
    std::panic::set_hook(hook);
    probe.unwrap_or(false)
}

/// Whether the CUDA driver library can be loaded at all (cheap, and no panic).
#[cfg(feature = "cuda")]
fn driver_present() -> bool {
    ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
        let c = std::ffi::CString::new(*name).expect("no NUL");
        // SAFETY: dlopen with a valid C string; the handle is closed at once.
        unsafe {
            let h = libc::dlopen(c.as_ptr(), libc::RTLD_LAZY);
            if h.is_null() {
                false
            } else {
                libc::dlclose(h);
                true
            }
        }
    })
}

/// Resolves a pipeline's `backend` (auto | cpu | ndarray | wgpu | cuda) to a usable backend.
pub fn resolve(requested: &str) -> anyhow::Result<BackendKind> {
    match requested {
        "cpu" => Ok(BackendKind::Cpu),
        "ndarray" => Ok(BackendKind::NdArray),
        #[cfg(feature = "cuda")]
        "cuda" => usable(BackendKind::Cuda)
            .then_some(BackendKind::Cuda)
            .ok_or_else(|| anyhow::anyhow!("backend `cuda` was requested but no CUDA device answers (driver or GPU missing?)")),
        #[cfg(feature = "wgpu")]
        "wgpu" => usable(BackendKind::Wgpu)
            .then_some(BackendKind::Wgpu)
            .ok_or_else(|| anyhow::anyhow!("backend `wgpu` was requested but no GPU adapter answers")),
        "auto" => {
            #[cfg(feature = "cuda")]
            if usable(BackendKind::Cuda) {
                return Ok(BackendKind::Cuda);
            }
            #[cfg(feature = "wgpu")]
            if usable(BackendKind::Wgpu) {
                return Ok(BackendKind::Wgpu);
            }
            Ok(BackendKind::Cpu)
        }
        other => anyhow::bail!(
            "backend `{other}` is not compiled into this hhi\n  = help: rebuild with `cargo build --release --features {other}`, or use backend = \"auto\""
        ),
    }
}

/// Runs `$body` with `$B` bound to the burn backend type of `$kind` (and `$AD` to its
/// autodiff wrapper).
#[macro_export]
macro_rules! with_backend {
    ($kind:expr, $B:ident, $AD:ident => $body:expr) => {
        match $kind {
            $crate::backend::BackendKind::Cpu => {
                type $B = $crate::models::Cpu;
                type $AD = burn::backend::Autodiff<$B>;
                $body
            }
            $crate::backend::BackendKind::NdArray => {
                type $B = $crate::models::NdArray;
                type $AD = burn::backend::Autodiff<$B>;
                $body
            }
            #[cfg(feature = "wgpu")]
            $crate::backend::BackendKind::Wgpu => {
                type $B = $crate::backend::Wgpu;
                type $AD = burn::backend::Autodiff<$B>;
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::BackendKind::Cuda => {
                type $B = $crate::backend::Cuda;
                type $AD = burn::backend::Autodiff<$B>;
                $body
            }
        }
    };
}

/// Keeps glibc from returning tensor buffers to the kernel after every free: a training
/// step allocates and frees the same few hundred MiB each time, and every buffer that
/// comes from a fresh `mmap` faults its pages in again (~0.25 µs per 4 KiB page, zeroed by
/// the kernel). glibc serves anything over `M_MMAP_THRESHOLD` (at most 32 MiB) from its
/// own `mmap`, so `M_MMAP_MAX = 0` sends those buffers to the heap as well, where a free
/// keeps the pages for the next step: a vocabulary-sized gradient (66 MB for T5-small,
/// 154 MB for GPT-2) is such a buffer. Measured (issue "Speed", docs/benchmarks.md): T5-small
/// fwd+bwd 485 → 655 tokens/s, GPT-2-small 177 → 211, at 6–17% more peak RSS. Values are
/// unchanged; only where memory comes from. Call once, before threads start.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
}

/// The kernel class of a backend on this machine: which compiled kernels its arithmetic
/// runs through, so a record can say whether a rerun elsewhere should give the same bits.
/// On the CPU, `gemm` and burn-flex pick AVX-512, AVX2+FMA or baseline kernels at run time,
/// and their results differ in the last bits; the classes follow the x86-64
/// microarchitecture levels (`cpu-x86-64-v4` needs AVX-512 F/BW/CD/DQ/VL). GPU classes
/// name the backend only: the device's compute capability is not queried yet.
pub fn kernel_class(kind: BackendKind) -> String {
    let cpu = cpu_class();
    match kind {
        BackendKind::Cpu => cpu,
        BackendKind::NdArray => format!("ndarray-{cpu}"),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => "wgpu".into(),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => "cuda".into(),
    }
}

fn cpu_class() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let v4 = has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl");
        let v3 = has!("avx2") && has!("fma") && has!("bmi2");
        if v4 {
            "cpu-x86-64-v4".into()
        } else if v3 {
            "cpu-x86-64-v3".into()
        } else {
            "cpu-x86-64".into()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        format!("cpu-{}", std::env::consts::ARCH)
    }
}

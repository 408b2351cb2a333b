//! The fuzz targets of smartcharged, shared by the fuzz binaries in
//! `fuzz_targets/` and by the replay test `tests/fuzz_regressions.rs`.

pub mod targets;

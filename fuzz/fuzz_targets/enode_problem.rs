//! Fuzz target `enode_problem`: see `smartcharged_fuzz::targets::enode_problem`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::enode_problem(data));

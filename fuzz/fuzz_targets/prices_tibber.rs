//! Fuzz target `prices_tibber`: see `smartcharged_fuzz::targets::prices_tibber`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::prices_tibber(data));

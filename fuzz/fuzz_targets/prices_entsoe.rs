//! Fuzz target `prices_entsoe`: see `smartcharged_fuzz::targets::prices_entsoe`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::prices_entsoe(data));

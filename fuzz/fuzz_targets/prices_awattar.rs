//! Fuzz target `prices_awattar`: see `smartcharged_fuzz::targets::prices_awattar`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::prices_awattar(data));

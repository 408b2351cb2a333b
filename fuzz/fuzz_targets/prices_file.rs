//! Fuzz target `prices_file`: see `smartcharged_fuzz::targets::prices_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::prices_file(data));

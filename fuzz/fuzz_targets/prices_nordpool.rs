//! Fuzz target `prices_nordpool`: see `smartcharged_fuzz::targets::prices_nordpool`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::prices_nordpool(data));

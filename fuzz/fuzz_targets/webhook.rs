//! Fuzz target `webhook`: see `smartcharged_fuzz::targets::webhook`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::webhook(data));

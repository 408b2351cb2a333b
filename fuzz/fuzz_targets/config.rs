//! Fuzz target `config`: see `smartcharged_fuzz::targets::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::config(data));

//! Fuzz target `plan_request`: see `smartcharged_fuzz::targets::plan_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::plan_request(data));

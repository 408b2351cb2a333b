//! Fuzz target `prices_octopus`: see `smartcharged_fuzz::targets::prices_octopus`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::prices_octopus(data));

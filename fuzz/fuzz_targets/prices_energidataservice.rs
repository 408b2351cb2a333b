//! Fuzz target `prices_energidataservice`: see `smartcharged_fuzz::targets::prices_energidataservice`.
#![no_main]

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| smartcharged_fuzz::targets::prices_energidataservice(data)
);

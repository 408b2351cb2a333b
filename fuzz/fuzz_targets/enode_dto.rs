//! Fuzz target `enode_dto`: see `smartcharged_fuzz::targets::enode_dto`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::enode_dto(data));

//! Fuzz target `enode_token`: see `smartcharged_fuzz::targets::enode_token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| smartcharged_fuzz::targets::enode_token(data));

//! `cargo fuzz run managesieve_commands` (from `server/`): see `mailsite::fuzzing::managesieve`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::managesieve(data));

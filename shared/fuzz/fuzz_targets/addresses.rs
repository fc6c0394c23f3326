//! `cargo fuzz run addresses` (from `shared/`): see `mailsite_shared::fuzzing::addresses`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite_shared::fuzzing::addresses(data));

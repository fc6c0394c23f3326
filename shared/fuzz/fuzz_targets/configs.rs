//! `cargo fuzz run configs` (from `shared/`): see `mailsite_shared::fuzzing::configs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite_shared::fuzzing::configs(data));

//! `cargo fuzz run documents` (from `shared/`): see `mailsite_shared::fuzzing::documents`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite_shared::fuzzing::documents(data));

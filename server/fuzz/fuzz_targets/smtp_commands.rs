//! `cargo fuzz run smtp_commands` (from `server/`): see `mailsite::fuzzing::smtp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::smtp(data));

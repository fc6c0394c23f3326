//! `cargo fuzz run pop3_commands` (from `server/`): see `mailsite::fuzzing::pop3`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::pop3(data));

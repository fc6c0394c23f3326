//! `cargo fuzz run message_headers` (from `server/`): see `mailsite::fuzzing::message_headers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::message_headers(data));

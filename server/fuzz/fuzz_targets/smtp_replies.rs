//! `cargo fuzz run smtp_replies` (from `server/`): see `mailsite::fuzzing::smtp_replies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::smtp_replies(data));

//! `cargo fuzz run console_reports` (from `server/`): see `mailsite::fuzzing::console_reports`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::console_reports(data));

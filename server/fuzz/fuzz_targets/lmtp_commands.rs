//! `cargo fuzz run lmtp_commands` (from `server/`): see `mailsite::fuzzing::lmtp`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::lmtp(data));

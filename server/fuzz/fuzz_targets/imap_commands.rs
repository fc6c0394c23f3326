//! `cargo fuzz run imap_commands` (from `server/`): see `mailsite::fuzzing::imap`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::imap(data));

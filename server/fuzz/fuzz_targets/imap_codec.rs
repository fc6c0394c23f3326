//! `cargo fuzz run imap_codec` (from `server/`): see `mailsite::fuzzing::imap_codec`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::imap_codec(data));

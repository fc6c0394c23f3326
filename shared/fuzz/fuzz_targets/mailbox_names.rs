//! `cargo fuzz run mailbox_names` (from `shared/`): see `mailsite_shared::fuzzing::mailbox_names`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite_shared::fuzzing::mailbox_names(data));

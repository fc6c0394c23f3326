//! `cargo fuzz run http_wire` (from `server/`): see `mailsite::fuzzing::http_wire`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::http_wire(data));

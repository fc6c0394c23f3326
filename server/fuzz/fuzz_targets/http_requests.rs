//! `cargo fuzz run http_requests` (from `server/`): see `mailsite::fuzzing::http_requests`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::http_requests(data));

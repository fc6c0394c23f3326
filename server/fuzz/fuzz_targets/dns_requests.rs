//! `cargo fuzz run dns_requests` (from `server/`): see `mailsite::fuzzing::dns_requests`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailsite::fuzzing::dns_requests(data));

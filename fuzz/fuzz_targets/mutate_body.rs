#![no_main]
//! See `sts_fuzz::mutate_body`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sts_fuzz::mutate_body(data));

#![no_main]
//! See `sts_fuzz::diff_json`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sts_fuzz::diff_json(data));

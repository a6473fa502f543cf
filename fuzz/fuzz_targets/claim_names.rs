#![no_main]
//! See `sts_fuzz::claim_names`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| sts_fuzz::claim_names(data));

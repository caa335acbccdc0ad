#![no_main]
include!("../checks.rs");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((ctx, body)) = data.split_first() {
        check_decode(&framed(2, body), &ctx_from(*ctx));
    }
});

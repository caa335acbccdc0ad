#![no_main]
include!("../checks.rs");

// Framing and every decoder: raw bytes, header included.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((ctx, bytes)) = data.split_first() {
        let _ = bgpintent_speaker::wire::frame_len(bytes);
        check_decode(bytes, &ctx_from(*ctx));
    }
});

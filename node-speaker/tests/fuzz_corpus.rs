//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same checks
//! the fuzz targets run, without a fuzzing engine, so CI catches regressions on every
//! input the fuzzer ever found interesting.

include!("../fuzz/checks.rs");

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus for {target}");
    files
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

fn replay(target: &str, check: impl Fn(&[u8])) {
    for (name, data) in corpus(target) {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        assert!(r.is_ok(), "{target}: {name} fails");
    }
}

#[test]
fn message_corpus() {
    replay("message", |d| {
        if let Some((ctx, bytes)) = d.split_first() {
            let _ = bgpintent_speaker::wire::frame_len(bytes);
            check_decode(bytes, &ctx_from(*ctx));
        }
    });
}

fn body_target(target: &str, ty: u8) {
    replay(target, |d| {
        if let Some((ctx, body)) = d.split_first() {
            check_decode(&framed(ty, body), &ctx_from(*ctx));
        }
    });
}

#[test]
fn open_corpus() {
    body_target("open", 1);
}

#[test]
fn update_corpus() {
    body_target("update", 2);
}

#[test]
fn notification_corpus() {
    body_target("notification", 3);
}

#[test]
fn session_corpus() {
    replay("session", check_session);
}

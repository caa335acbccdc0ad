fn main() {
    eprintln!("bgp-intent-speaker: not implemented yet");
    std::process::exit(2);
}

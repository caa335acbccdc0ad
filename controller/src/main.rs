fn main() {
    eprintln!("bgp-intent-controller: not implemented yet");
    std::process::exit(2);
}

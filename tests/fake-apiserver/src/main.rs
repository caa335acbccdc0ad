//! `fake-apiserver`: the in-memory API server as a process, for end-to-end tests that run the
//! shipped binaries and real `kubectl` against it.
//!
//! ```text
//! fake-apiserver [--listen ADDR] [--admin ADDR] [--crds PATH]... [--with-egress] [--ready-file PATH]
//! ```
//!
//! Once both listeners are bound it prints one JSON line to stdout,
//! `{"api":"http://IP:PORT","admin":"http://IP:PORT"}`, and writes the same to `--ready-file`
//! (atomically: a temporary file renamed). Logs go to stderr. SIGTERM or SIGINT ends it at once.
//! The admin API is described in `fake_apiserver::admin`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc};

use fake_apiserver::{FakeApiServer, admin, antrea_egress_type, default_types, merge_types, types_from_path};
use serde_json::json;
use tokio::{net::TcpListener, signal::unix::SignalKind};

const USAGE: &str = "usage: fake-apiserver [--listen ADDR] [--admin ADDR] [--crds PATH]... [--with-egress] [--ready-file PATH]";

#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    admin: SocketAddr,
    crds: Vec<PathBuf>,
    with_egress: bool,
    ready_file: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut out = Args {
        listen: loopback,
        admin: loopback,
        crds: Vec::new(),
        with_egress: false,
        ready_file: None,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        let addr = |v: String| {
            v.parse::<SocketAddr>()
                .map_err(|e| format!("{flag} {v}: not an IP:PORT address: {e}"))
        };
        match flag.as_str() {
            "--listen" => out.listen = addr(value()?)?,
            "--admin" => out.admin = addr(value()?)?,
            "--crds" => out.crds.push(PathBuf::from(value()?)),
            "--with-egress" => out.with_egress = true,
            "--ready-file" => out.ready_file = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(out)
}

fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

async fn run(args: Args) -> Result<(), String> {
    let mut types = default_types();
    for path in &args.crds {
        let crds = types_from_path(path)?;
        if crds.is_empty() {
            return Err(format!("{}: no CustomResourceDefinition in it", path.display()));
        }
        types = merge_types(types, crds);
    }
    if args.with_egress {
        types = merge_types(types, vec![antrea_egress_type()]);
    }
    let served: Vec<String> = types
        .iter()
        .map(|t| format!("{}.{}", t.plural, t.api_version()))
        .collect();
    let server = FakeApiServer::bind(args.listen, types)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let admin_listener = TcpListener::bind(args.admin)
        .await
        .map_err(|e| format!("cannot listen on {} (admin): {e}", args.admin))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| format!("admin address: {e}"))?;
    // Written by hand to keep the documented key order.
    let ready = format!(
        "{{\"api\":{},\"admin\":{}}}",
        json!(server.url()),
        json!(format!("http://{admin_addr}"))
    );
    eprintln!("fake-apiserver: serving {}", served.join(", "));
    let server = Arc::new(tokio::sync::Mutex::new(server));
    let app = admin::router(server.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(admin_listener, app).await {
            eprintln!("fake-apiserver: admin server failed: {e}");
        }
    });
    // The file first: whoever saw the stdout line may read it at once.
    if let Some(path) = &args.ready_file {
        write_atomically(path, &format!("{ready}\n"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    println!("{ready}");
    let mut term = tokio::signal::unix::signal(SignalKind::terminate())
        .map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    tokio::select! {
        _ = term.recv() => eprintln!("fake-apiserver: SIGTERM, exiting"),
        _ = tokio::signal::ctrl_c() => eprintln!("fake-apiserver: SIGINT, exiting"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fake-apiserver: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    // Logs to stderr, plain text; RUST_LOG overrides the level.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fake-apiserver: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // Open watches and silent requests must not hold the exit up.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-apiserver: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn arguments() {
        let a = parse(&[
            "--listen",
            "127.0.0.1:6443",
            "--admin=127.0.0.1:6444",
            "--crds",
            "crd",
            "--crds",
            "x.yaml",
            "--with-egress",
            "--ready-file",
            "/tmp/r",
        ])
        .unwrap();
        assert_eq!(a.listen.port(), 6443);
        assert_eq!(a.admin.port(), 6444);
        assert_eq!(a.crds, [PathBuf::from("crd"), PathBuf::from("x.yaml")]);
        assert!(a.with_egress);
        assert_eq!(a.ready_file, Some(PathBuf::from("/tmp/r")));
        let d = parse(&[]).unwrap();
        assert_eq!(d.listen.port(), 0);
        assert!(parse(&["--listen"]).is_err());
        assert!(parse(&["--listen", "nowhere"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
    }
}

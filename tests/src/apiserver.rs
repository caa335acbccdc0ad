//! The fake API server (crate `fake-apiserver`) inside the speaker's namespace, for the
//! speaker in Kubernetes mode: it listens on 127.0.0.1 there, so the speaker reaches it
//! through a kubeconfig, and the test drives it from outside over a channel.
//!
//! ```text
//!   test ── put / get / stop / restart ──▶ thread in <id>-spk: FakeApiServer (127.0.0.1:N)
//!                                                   ▲ KUBECONFIG (plain HTTP)
//!                                           bgp-intent-speaker (same namespace)
//! ```

use std::{path::Path, time::Duration};

use bgpintent_api::NodeIntent;
use bgpintent_crd::BGPNodeIntentSpec;

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{
    lab::{Lab, SPEAKER},
    speaker::{Options, Speaker},
};

/// Namespace of the speaker (and of the passwords Secret) in the kubeconfig.
pub const NAMESPACE: &str = "bgp-intent";
pub const API_VERSION: &str = "bgpintent.io/v1alpha1";

enum Command {
    Put(Value, oneshot::Sender<Value>),
    Get(String, String, String, oneshot::Sender<Option<Value>>),
    Stop(oneshot::Sender<()>),
    Restart(oneshot::Sender<()>),
}

/// A fake API server running in the lab's speaker namespace.
#[derive(Debug)]
pub struct ApiServer {
    url: String,
    commands: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Put(..) => "Put",
            Command::Get(..) => "Get",
            Command::Stop(_) => "Stop",
            Command::Restart(_) => "Restart",
        })
    }
}

impl ApiServer {
    pub fn start(lab: &Lab) -> Self {
        let (commands, mut rx) = mpsc::unbounded_channel::<Command>();
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        // Detached: the thread ends when the `ApiServer` (its command sender) is dropped.
        drop(lab.ns(SPEAKER).spawn(move || async move {
            let mut server = FakeApiServer::start().await;
            url_tx.send(server.url()).expect("the test waits for the url");
            while let Some(command) = rx.recv().await {
                match command {
                    Command::Put(object, reply) => drop(reply.send(server.put(object))),
                    Command::Get(api_version, kind, name, reply) => {
                        drop(reply.send(server.get(&api_version, &kind, "", &name)))
                    }
                    Command::Stop(reply) => {
                        server.stop().await;
                        let _ = reply.send(());
                    }
                    Command::Restart(reply) => {
                        server.restart().await;
                        let _ = reply.send(());
                    }
                }
            }
        }));
        let url = url_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake API server started");
        Self { url, commands }
    }

    fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> T {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .unwrap_or_else(|_| panic!("fake API server thread ended"));
        rx.blocking_recv().expect("fake API server replies")
    }

    /// Creates or replaces an object (no HTTP; watches see the change).
    pub fn put(&self, object: Value) -> Value {
        self.call(|tx| Command::Put(object, tx))
    }

    /// A cluster-scoped object.
    pub fn get(&self, api_version: &str, kind: &str, name: &str) -> Option<Value> {
        let (a, k, n) = (api_version.to_owned(), kind.to_owned(), name.to_owned());
        self.call(|tx| Command::Get(a, k, n, tx))
    }

    /// Stops serving (an outage: watches end, connections are refused); the store is kept.
    pub fn stop(&self) {
        self.call(Command::Stop)
    }

    /// Serves again on the same address.
    pub fn restart(&self) {
        self.call(Command::Restart)
    }

    /// Creates or replaces the speaker Node's BGPNodeIntent with `intent`; the stored object
    /// (with its `metadata.generation`).
    pub fn put_intent(&self, intent: &NodeIntent) -> Value {
        self.put(json!({
            "apiVersion": API_VERSION,
            "kind": "BGPNodeIntent",
            "metadata": {"name": SPEAKER},
            "spec": BGPNodeIntentSpec::from(intent),
        }))
    }

    /// Starts the speaker in Kubernetes mode against this server (a kubeconfig in the lab
    /// directory; `options.kubeconfig` is set to it).
    pub fn start_speaker<'a>(&self, lab: &'a Lab, mut options: Options) -> crate::lab::Result<Speaker<'a>> {
        let kubeconfig = lab.dir().join("kubeconfig");
        self.kubeconfig(&kubeconfig);
        options.kubeconfig = Some(kubeconfig);
        Speaker::start_with(lab, None, options)
    }

    /// Writes a kubeconfig for this server (plain HTTP, no credentials, namespace
    /// [`NAMESPACE`]) to `path`.
    pub fn kubeconfig(&self, path: &Path) {
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
             users:\n- name: speaker\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    \
             cluster: fake\n    user: speaker\n    namespace: {NAMESPACE}\ncurrent-context: fake\n",
            self.url
        );
        std::fs::write(path, config).expect("write kubeconfig");
    }
}

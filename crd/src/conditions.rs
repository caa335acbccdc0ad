//! Condition types and reasons, as constants so every writer and reader agrees.

/// Condition types of `BGPPolicy.status.conditions`.
pub mod types {
    /// The spec is valid and resolvable.
    pub const ACCEPTED: &str = "Accepted";
    /// The policy selects Nodes an older policy owns.
    pub const CONFLICTED: &str = "Conflicted";
    /// Every Node the policy owns reports its sessions Established.
    pub const READY: &str = "Ready";
    /// The override annotations (`bgpintent.io/local-asn`, `bgpintent.io/peers`,
    /// `bgpintent.io/as-path-prepend`) of every Node the policy owns are valid.
    pub const NODE_OVERRIDES_VALID: &str = "NodeOverridesValid";
}

/// Reasons, one constant each.
pub mod reasons {
    pub const VALID: &str = "Valid";
    pub const INVALID_SPEC: &str = "InvalidSpec";
    pub const UNSUPPORTED_FIELDS_IGNORED: &str = "UnsupportedFieldsIgnored";
    pub const NO_CONFLICT: &str = "NoConflict";
    pub const NODES_OWNED_BY_OLDER_POLICY: &str = "NodesOwnedByOlderPolicy";
    pub const ALL_SESSIONS_ESTABLISHED: &str = "AllSessionsEstablished";
    pub const SESSIONS_NOT_ESTABLISHED: &str = "SessionsNotEstablished";
    pub const NO_NODES: &str = "NoNodes";
    pub const NOT_ACCEPTED: &str = "NotAccepted";
    /// A Node's override annotation breaks a rule; that Node keeps its last valid intent.
    pub const INVALID_NODE_ANNOTATION: &str = "InvalidNodeAnnotation";
}

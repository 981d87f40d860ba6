//! The core's refusals: every rule of the registry that says no to a request (not allowed, not
//! found, in conflict with what is stored), each a variant with the fields that name what was
//! refused, never a sentence for the wire.
//!
//! Each surface words them in its own table, keyed by the variant: `/v1` in
//! `api::error::refusal_wording` (the native wording, which the other surfaces fall back to where
//! their seed is silent), GBDX in `Violation::wording`, Mystic in its `Detail`, Acumos in its
//! `wording`. [`Refusal::code`] is the stable machine name of a rule; [`Refusal::kind`] says
//! which of the three families it belongs to, which is what a surface's status follows.
//! `Display` is a plain developer message, for logs and for the errors a workflow records.
//!
//! A rule that a request's content breaks (a name, a version, a policy) is not here: those are
//! [`super::Finding`]s, with codes of their own.

use crate::plugins::PluginId;

use super::Surface;

/// Which family a refusal belongs to: a surface's status follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalKind {
    /// The caller may not do this (403).
    Forbidden,
    /// What the request names does not exist, or is not the caller's to see (404).
    NotFound,
    /// The request conflicts with what is stored or active now (409).
    Conflict,
}

/// An action only members of the server's admin account (`--admin-account`) may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminAction {
    AddPlugins,
    ActivatePlugins,
    DeactivatePlugins,
    RollBackPlugins,
    ChangePolicyBindings,
}

impl AdminAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminAction::AddPlugins => "add plugins",
            AdminAction::ActivatePlugins => "activate plugins",
            AdminAction::DeactivatePlugins => "deactivate plugins",
            AdminAction::RollBackPlugins => "roll back plugins",
            AdminAction::ChangePolicyBindings => "change policy bindings",
        }
    }
}

/// Every refusal of the core, with what it refused. A new one needs an example in
/// `examples()` and a row in every surface's table test (`/v1`'s lists every code literally and
/// checks that the examples are exactly those).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    // Forbidden.
    /// A write into the namespace another surface keeps for its own registrations.
    #[error("namespace {namespace} is reserved for the {} surface's own registrations", surface.as_str())]
    NamespaceReserved { namespace: String, surface: Surface },
    /// A change to a pipeline by someone outside the account that owns it.
    #[error("{namespace}/{name} is owned by account {owner_account}; {user} is not a member")]
    NotAMember {
        namespace: String,
        name: String,
        owner_account: String,
        user: String,
    },
    /// Anything in an account's namespace asked by a non-member (naming the namespace only).
    #[error("namespace {namespace} belongs to another account")]
    NamespaceOfAnotherAccount { namespace: String },
    #[error("only members of the server's admin account (--admin-account) may {}", action.as_str())]
    NotAnAdmin { action: AdminAction },
    #[error("workflow {id} belongs to another account")]
    WorkflowOfAnotherAccount { id: String },

    // Not found.
    #[error("pipeline {namespace}/{name} not found")]
    PipelineNotFound { namespace: String, name: String },
    #[error("{namespace}/{name}:{version} not found")]
    VersionNotFound {
        namespace: String,
        name: String,
        version: String,
    },
    /// "Latest" of a pipeline that has no version at all.
    #[error("{namespace}/{name} not found")]
    NoVersion { namespace: String, name: String },
    #[error("plugin {name} not found")]
    PluginNotFound { name: String },
    #[error("plugin {name}@{version} not found")]
    PluginVersionNotFound { name: String, version: String },
    /// Clearing the operator's chain of a scope that has none.
    #[error("a binding set for {scope} not found")]
    BindingNotFound { scope: String },
    /// A run that does not exist or that another account submitted (the same answer).
    #[error("run {id} not found")]
    RunNotFound { id: String },
    #[error("pipeline type {type_id} not found")]
    TypeNotFound { type_id: String },
    #[error("project {id} not found")]
    ProjectNotFound { id: String },
    #[error("workflow {id} not found")]
    WorkflowNotFound { id: String },
    #[error("pointer {namespace}/{name}:{pointer} not found")]
    PointerNotFound {
        namespace: String,
        name: String,
        pointer: String,
    },
    /// An upload that does not exist, expired, or another account's (the same answer).
    #[error("file {id} not found")]
    UploadNotFound { id: String },
    #[error("workflow {workflow} has no task {task}")]
    WorkflowTaskNotFound { workflow: String, task: String },

    // Conflict.
    /// A new user whose name an account has already: it cannot be their personal account.
    #[error(
        "an account named `{user}` exists already; it cannot become user {user}'s personal account"
    )]
    AccountNameTaken { user: String },
    #[error("pipeline {namespace}/{name} exists already")]
    PipelineExists { namespace: String, name: String },
    #[error("{name}:{version} is registered already")]
    VersionExists {
        namespace: String,
        name: String,
        version: String,
    },
    /// A registration that lost the race for the pipeline's versions every time it retried.
    #[error("{namespace}/{name} is changing too fast; try again")]
    ChangingTooFast { namespace: String, name: String },
    /// A deletion that lost the race for the pipeline's versions.
    #[error("{namespace}/{name} changed meanwhile; try again")]
    ChangedMeanwhile { namespace: String, name: String },
    #[error("{user} has a project named {name} already")]
    ProjectExists { user: String, name: String },
    /// A plugin version added again with other bytes: versions are immutable.
    #[error("plugin {name}@{version} exists with other content ({digest}); versions are immutable: add a new version")]
    PluginVersionExists {
        name: String,
        version: String,
        digest: String,
    },
    /// A type handler whose type id an active plugin of another name handles.
    #[error("plugin {plugin} handles type `{type_id}`, which the active plugin {holder} handles already")]
    TypeTaken {
        plugin: PluginId,
        type_id: String,
        holder: PluginId,
    },
    #[error("no version of plugin {name} is active")]
    NoActivePluginVersion { name: String },
    /// Deactivating a plugin that a policy binding names: the chain would have nothing to run.
    #[error("plugin {name} is bound in {}: bind another chain there first", scopes.join(", "))]
    PluginBound { name: String, scopes: Vec<String> },
    #[error("plugin {name} has no earlier active version to roll back to")]
    NoEarlierPluginVersion { name: String },
    #[error("pointer {namespace}/{name}:{pointer} exists already")]
    PointerExists {
        namespace: String,
        name: String,
        pointer: String,
    },
    /// Moving or deleting a locked pointer.
    #[error("pointer {namespace}/{name}:{pointer} is locked")]
    PointerLocked {
        namespace: String,
        name: String,
        pointer: String,
    },
    /// A pointer named as a version of its pipeline: it would shadow that version.
    #[error("{namespace}/{name}:{pointer} is a version; a pointer cannot take its name")]
    NameIsAVersion {
        namespace: String,
        name: String,
        pointer: String,
    },
    /// A version named as a pointer of its pipeline.
    #[error("{namespace}/{name}:{version} is a pointer; a version cannot take its name")]
    NameIsAPointer {
        namespace: String,
        name: String,
        version: String,
    },
    /// A cancel of a workflow that has ended (succeeded, failed, timed out or cancelled).
    #[error("workflow {id} is complete already; there is nothing to cancel")]
    WorkflowComplete { id: String },
}

impl Refusal {
    /// The rule's stable machine name.
    pub fn code(&self) -> &'static str {
        use Refusal::*;
        match self {
            NamespaceReserved { .. } => "namespace-reserved",
            NotAMember { .. } => "not-a-member",
            NamespaceOfAnotherAccount { .. } => "namespace-of-another-account",
            NotAnAdmin { .. } => "not-an-admin",
            WorkflowOfAnotherAccount { .. } => "workflow-of-another-account",
            PipelineNotFound { .. } => "pipeline-not-found",
            VersionNotFound { .. } => "version-not-found",
            NoVersion { .. } => "no-version",
            PluginNotFound { .. } => "plugin-not-found",
            PluginVersionNotFound { .. } => "plugin-version-not-found",
            BindingNotFound { .. } => "binding-not-found",
            RunNotFound { .. } => "run-not-found",
            TypeNotFound { .. } => "type-not-found",
            ProjectNotFound { .. } => "project-not-found",
            WorkflowNotFound { .. } => "workflow-not-found",
            PointerNotFound { .. } => "pointer-not-found",
            UploadNotFound { .. } => "upload-not-found",
            WorkflowTaskNotFound { .. } => "workflow-task-not-found",
            AccountNameTaken { .. } => "account-name-taken",
            PipelineExists { .. } => "pipeline-exists",
            VersionExists { .. } => "version-exists",
            ChangingTooFast { .. } => "changing-too-fast",
            ChangedMeanwhile { .. } => "changed-meanwhile",
            ProjectExists { .. } => "project-exists",
            PluginVersionExists { .. } => "plugin-version-exists",
            TypeTaken { .. } => "type-taken",
            NoActivePluginVersion { .. } => "no-active-plugin-version",
            PluginBound { .. } => "plugin-bound",
            NoEarlierPluginVersion { .. } => "no-earlier-plugin-version",
            PointerExists { .. } => "pointer-exists",
            PointerLocked { .. } => "pointer-locked",
            NameIsAVersion { .. } => "name-is-a-version",
            NameIsAPointer { .. } => "name-is-a-pointer",
            WorkflowComplete { .. } => "workflow-complete",
        }
    }

    pub fn kind(&self) -> RefusalKind {
        use Refusal::*;
        match self {
            NamespaceReserved { .. }
            | NotAMember { .. }
            | NamespaceOfAnotherAccount { .. }
            | NotAnAdmin { .. }
            | WorkflowOfAnotherAccount { .. } => RefusalKind::Forbidden,
            PipelineNotFound { .. }
            | VersionNotFound { .. }
            | NoVersion { .. }
            | PluginNotFound { .. }
            | PluginVersionNotFound { .. }
            | BindingNotFound { .. }
            | RunNotFound { .. }
            | TypeNotFound { .. }
            | ProjectNotFound { .. }
            | WorkflowNotFound { .. }
            | PointerNotFound { .. }
            | UploadNotFound { .. } => RefusalKind::NotFound,
            WorkflowTaskNotFound { .. } => RefusalKind::NotFound,
            AccountNameTaken { .. }
            | PipelineExists { .. }
            | VersionExists { .. }
            | ChangingTooFast { .. }
            | ChangedMeanwhile { .. }
            | ProjectExists { .. }
            | PluginVersionExists { .. }
            | TypeTaken { .. }
            | NoActivePluginVersion { .. }
            | PluginBound { .. }
            | NoEarlierPluginVersion { .. }
            | PointerExists { .. }
            | PointerLocked { .. }
            | NameIsAVersion { .. }
            | NameIsAPointer { .. } => RefusalKind::Conflict,
            WorkflowComplete { .. } => RefusalKind::Conflict,
        }
    }

    /// One of each refusal, for the surfaces' table tests: each walks these and checks its
    /// wording of every one.
    #[cfg(test)]
    pub(crate) fn examples() -> Vec<Refusal> {
        use Refusal::*;
        let s = |text: &str| text.to_string();
        let id = |name: &str, version: &str| PluginId {
            name: s(name),
            version: s(version),
        };
        let all = vec![
            NamespaceReserved {
                namespace: s("gbdx"),
                surface: Surface::Gbdx,
            },
            NotAMember {
                namespace: s("shared"),
                name: s("p"),
                owner_account: s("acme"),
                user: s("bob"),
            },
            NamespaceOfAnotherAccount {
                namespace: s("alice"),
            },
            NotAnAdmin {
                action: AdminAction::AddPlugins,
            },
            WorkflowOfAnotherAccount { id: s("w1") },
            PipelineNotFound {
                namespace: s("alice"),
                name: s("p"),
            },
            VersionNotFound {
                namespace: s("alice"),
                name: s("p"),
                version: s("1.0.0"),
            },
            NoVersion {
                namespace: s("alice"),
                name: s("p"),
            },
            PluginNotFound { name: s("house") },
            PluginVersionNotFound {
                name: s("house"),
                version: s("1.0.0"),
            },
            BindingNotFound {
                scope: s("namespace:alice"),
            },
            RunNotFound { id: s("r1") },
            TypeNotFound { type_id: s("csv") },
            ProjectNotFound { id: s("pr1") },
            WorkflowNotFound { id: s("w1") },
            PointerNotFound {
                namespace: s("alice"),
                name: s("p"),
                pointer: s("prod"),
            },
            UploadNotFound { id: s("f1") },
            WorkflowTaskNotFound {
                workflow: s("w1"),
                task: s("t1"),
            },
            AccountNameTaken { user: s("acme") },
            PipelineExists {
                namespace: s("alice"),
                name: s("p"),
            },
            VersionExists {
                namespace: s("alice"),
                name: s("p"),
                version: s("1.0.0"),
            },
            ChangingTooFast {
                namespace: s("alice"),
                name: s("p"),
            },
            ChangedMeanwhile {
                namespace: s("alice"),
                name: s("p"),
            },
            ProjectExists {
                user: s("alice"),
                name: s("demo"),
            },
            PluginVersionExists {
                name: s("house"),
                version: s("1.0.0"),
                digest: s("sha256:ab"),
            },
            TypeTaken {
                plugin: id("my-zeppelin", "1.0.0"),
                type_id: s("zeppelin"),
                holder: id("zeppelin", "0.1.0"),
            },
            NoActivePluginVersion { name: s("house") },
            PluginBound {
                name: s("house"),
                scopes: vec![s("namespace:alice"), s("global")],
            },
            NoEarlierPluginVersion { name: s("house") },
            PointerExists {
                namespace: s("alice"),
                name: s("p"),
                pointer: s("prod"),
            },
            PointerLocked {
                namespace: s("alice"),
                name: s("p"),
                pointer: s("prod"),
            },
            NameIsAVersion {
                namespace: s("alice"),
                name: s("p"),
                pointer: s("1.0.0"),
            },
            NameIsAPointer {
                namespace: s("alice"),
                name: s("p"),
                version: s("prod"),
            },
            WorkflowComplete { id: s("w1") },
        ];
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_one_example_and_its_own_code() {
        let examples = Refusal::examples();
        let mut codes: Vec<&str> = examples.iter().map(Refusal::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), examples.len(), "{codes:?}");
    }
}

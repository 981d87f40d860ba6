//! Policy bindings and their evaluation.
//!
//! A binding is an ordered chain of policy plugin names bound to a scope: a namespace, a pipeline
//! type, an API surface, or global. The most specific scope wins (namespace, then type, then
//! surface, then global). Every policy of the chain must approve; each sees the candidate as the
//! previous one normalized it. The chain in force is taken as one `Arc` snapshot, so a request
//! sees one chain whole.
//!
//! Out of the box, the global chain is `policy-semver`, the Acumos surface (whose versions
//! are labels like `1.0`, not semver) has `policy-acumos`, and runnable pipelines (Mystic's)
//! have `policy-lowercase` then `policy-semver`. Persisted, swappable bindings arrive
//! with the plugin registry; the model is here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::plugins::{Pipeline, PluginHost, PluginId, PolicyContext};

use super::{Finding, RegistryError, Surface};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Global,
    /// A pipeline type id, lowercased.
    Type(String),
    /// A namespace key.
    Namespace(String),
    /// Everything registered through one API surface whose protocol has its own rules.
    Surface(Surface),
}

impl Scope {
    /// `global`, `type:<id>`, `namespace:<key>` or `surface:<name>`.
    pub fn parse(text: &str) -> Option<Scope> {
        match text.split_once(':') {
            None if text == "global" => Some(Scope::Global),
            Some(("type", id)) if !id.is_empty() => Some(Scope::Type(id.to_lowercase())),
            Some(("namespace", ns)) if !ns.is_empty() => Some(Scope::Namespace(ns.to_lowercase())),
            Some(("surface", name)) => Surface::parse(name).map(Scope::Surface),
            _ => None,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Global => write!(f, "global"),
            Scope::Type(id) => write!(f, "type:{id}"),
            Scope::Namespace(key) => write!(f, "namespace:{key}"),
            Scope::Surface(surface) => write!(f, "surface:{}", surface.as_str()),
        }
    }
}

pub type Chain = Arc<Vec<String>>;

pub struct PolicyBindings {
    chains: RwLock<HashMap<Scope, Chain>>,
}

impl Default for PolicyBindings {
    fn default() -> Self {
        PolicyBindings {
            chains: RwLock::new(Self::defaults()),
        }
    }
}

impl PolicyBindings {
    /// The built-in bindings, before any an operator sets.
    fn defaults() -> HashMap<Scope, Chain> {
        let mut chains = HashMap::new();
        chains.insert(Scope::Global, Arc::new(vec!["policy-semver".to_string()]));
        chains.insert(
            Scope::Surface(Surface::Acumos),
            Arc::new(vec!["policy-acumos".to_string()]),
        );
        // Runnable pipelines follow Mystic's rules: lowercase names, semver that increments.
        chains.insert(
            Scope::Type("runnable".to_string()),
            Arc::new(vec![
                "policy-lowercase".to_string(),
                "policy-semver".to_string(),
            ]),
        );
        chains
    }

    /// Makes the operator's `overrides` (over the defaults) the bindings in force, in one step.
    pub fn replace_overrides(&self, overrides: Vec<(Scope, Vec<String>)>) {
        let mut chains = Self::defaults();
        for (scope, chain) in overrides {
            chains.insert(scope, Arc::new(chain));
        }
        *self.chains.write().unwrap() = chains;
    }

    /// Every binding in force, ordered by scope.
    pub fn snapshot(&self) -> Vec<(Scope, Chain)> {
        let mut all: Vec<(Scope, Chain)> = self
            .chains
            .read()
            .unwrap()
            .iter()
            .map(|(scope, chain)| (scope.clone(), chain.clone()))
            .collect();
        all.sort_by_key(|(scope, _)| scope.to_string());
        all
    }

    /// Replaces the chain of `scope` in one step.
    pub fn bind(&self, scope: Scope, chain: Vec<String>) {
        self.chains.write().unwrap().insert(scope, Arc::new(chain));
    }

    /// The chain in force for a pipeline of `type_id` in `namespace_key` (none for surfaces
    /// without namespaces) registered through `surface`.
    pub fn chain_for(&self, namespace_key: Option<&str>, type_id: &str, surface: Surface) -> Chain {
        let chains = self.chains.read().unwrap();
        let namespace = namespace_key.map(|key| Scope::Namespace(key.to_string()));
        namespace
            .into_iter()
            .chain([
                Scope::Type(type_id.to_lowercase()),
                Scope::Surface(surface),
                Scope::Global,
            ])
            .find_map(|scope| chains.get(&scope).cloned())
            .unwrap_or_default()
    }
}

/// Runs `chain` on `candidate`. Ok: the candidate as normalized and who approved it.
/// Blocking: call from `spawn_blocking`.
pub fn evaluate(
    plugins: &PluginHost,
    chain: &[String],
    mut candidate: Pipeline,
    existing_versions: &[String],
    context: &PolicyContext,
) -> Result<(Pipeline, Vec<PluginId>), RegistryError> {
    let mut approvals = Vec::with_capacity(chain.len());
    for name in chain {
        let policy = plugins.policy(name).ok_or_else(|| {
            RegistryError::Internal(anyhow::anyhow!("bound policy `{name}` is not loaded"))
        })?;
        match policy.check(&candidate, existing_versions, context)? {
            Ok(normalized) => {
                candidate = normalized;
                approvals.push(policy.id.clone());
            }
            Err(violations) => {
                let findings = violations
                    .into_iter()
                    .map(|v| Finding {
                        code: v.code,
                        field: v.field,
                        message: v.message,
                        source: Some(policy.id.to_string()),
                    })
                    .collect();
                return Err(RegistryError::Invalid(findings));
            }
        }
    }
    Ok((candidate, approvals))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_specific_scope_wins() {
        let bindings = PolicyBindings::default();
        let v1 = |ns, ty| bindings.chain_for(Some(ns), ty, Surface::V1);
        assert_eq!(*v1("alice", "jupyter"), ["policy-semver"]);
        assert_eq!(
            *bindings.chain_for(None, "jupyter", Surface::Acumos),
            ["policy-acumos"]
        );
        bindings.bind(
            Scope::Type("jupyter".into()),
            vec!["policy-lowercase".into()],
        );
        assert_eq!(*v1("alice", "Jupyter"), ["policy-lowercase"]);
        assert_eq!(*v1("alice", "zeppelin"), ["policy-semver"]);
        assert_eq!(
            *bindings.chain_for(None, "jupyter", Surface::Acumos),
            ["policy-lowercase"],
            "a type binding is more specific than a surface's"
        );
        bindings.bind(
            Scope::Namespace("alice".into()),
            vec!["policy-lowercase".into(), "policy-semver".into()],
        );
        assert_eq!(
            *v1("alice", "jupyter"),
            ["policy-lowercase", "policy-semver"]
        );
        assert_eq!(*v1("bob", "jupyter"), ["policy-lowercase"]);
    }

    #[test]
    fn a_taken_chain_is_a_snapshot() {
        let bindings = PolicyBindings::default();
        let before = bindings.chain_for(Some("ns"), "t", Surface::V1);
        bindings.bind(Scope::Global, vec!["policy-lowercase".into()]);
        assert_eq!(*before, ["policy-semver"]);
        assert_eq!(
            *bindings.chain_for(Some("ns"), "t", Surface::V1),
            ["policy-lowercase"]
        );
    }
}

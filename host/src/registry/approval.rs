//! The one approval path. Whatever a version (or an Acumos record) comes to be through, it passes
//! the same two checks on one candidate ([`candidate`]):
//! - the **policy chain** bound to its scope (namespace, type, surface), at the request, as the
//!   caller through that surface ([`Registry::approve`]); each policy may amend the candidate,
//!   the next sees the amended one, and every approving `plugin@version` is recorded;
//! - its **type handler's `validate`** on the content, once the content is there
//!   ([`validate_content`]): at the request for content sent with it, in the registration worker
//!   for content fetched later ([`super::registration`]), and on a replaced definition. A
//!   workbench record has no content of its own to validate (its files are its handler's own
//!   scaffold), so it passes the chain only.
//!
//! A refusal is findings, each credited to the policy or handler that said so.

use super::{names, policies, Caller, Finding, Registry, RegistryError, Surface};
use crate::plugins::{self, PluginHost, PluginId};

/// A pipeline as policies and type handlers see it: its names, version, type and description
/// (ports and properties stay in the definition). Every check builds it here.
pub(crate) fn candidate(
    namespace: &str,
    name: &str,
    version: Option<&str>,
    type_id: &str,
    description: Option<String>,
) -> plugins::Pipeline {
    plugins::Pipeline {
        namespace: namespace.to_string(),
        name: name.to_string(),
        version: version.map(str::to_string),
        type_: type_id.to_string(),
        description,
        inputs: Vec::new(),
        outputs: Vec::new(),
        properties: Vec::new(),
    }
}

/// What the type handler validates when the chain has approved.
pub(super) enum Content {
    /// Sent with the request: validated now.
    Here(Vec<plugins::File>),
    /// Fetched later: validated by the registration worker once it is there.
    Later,
    /// A workbench record: nothing of its own to validate.
    None,
}

/// Why the type handler could not give its verdict.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error("no type handler for `{0}` is loaded")]
    NoTypeHandler(String),
    /// It failed as a plugin (trap, deadline, memory).
    #[error("{0}")]
    Plugin(#[from] plugins::PluginError),
}

impl From<ValidateError> for RegistryError {
    fn from(error: ValidateError) -> Self {
        match error {
            ValidateError::Plugin(error) => RegistryError::Plugin(error),
            error => RegistryError::Internal(error.into()),
        }
    }
}

/// The candidate's type handler's verdict on `content`: its error diagnostics as findings,
/// credited to the handler (`plugin@version`); empty when it accepts (warnings are not
/// refusals). Blocking (a plugin call).
pub(super) fn validate_content(
    plugins: &PluginHost,
    candidate: &plugins::Pipeline,
    content: &[plugins::File],
) -> Result<Vec<Finding>, ValidateError> {
    let handler = plugins
        .type_handler(&candidate.type_)
        .ok_or_else(|| ValidateError::NoTypeHandler(candidate.type_.clone()))?;
    Ok(handler
        .validate(candidate, content)?
        .into_iter()
        .filter(|d| d.severity == plugins::Severity::Error)
        .map(|d| Finding {
            code: d.code,
            field: d.field,
            message: d.message,
            source: Some(handler.id.to_string()),
        })
        .collect())
}

impl Registry {
    /// The policy chain bound to the candidate's scope (`namespace`, when it has one), as
    /// `caller` through `surface`, then the type handler on `content`. Ok: who approved.
    pub(super) async fn approve(
        &self,
        caller: &Caller,
        surface: Surface,
        namespace: Option<&str>,
        candidate: plugins::Pipeline,
        existing: Vec<String>,
        content: Content,
    ) -> Result<Vec<PluginId>, RegistryError> {
        let chain = self.bindings.chain_for(
            namespace.map(names::key).as_deref(),
            &candidate.type_,
            surface,
        );
        let context = plugins::PolicyContext {
            surface: surface.as_str().into(),
            account: caller.account.clone(),
            user: caller.user.clone(),
            config: Vec::new(),
        };
        let plugins = self.plugins.clone();
        tokio::task::spawn_blocking(move || {
            let (candidate, approvals) =
                policies::evaluate(&plugins, &chain, candidate, &existing, &context)?;
            if let Content::Here(content) = content {
                let findings = validate_content(&plugins, &candidate, &content)?;
                if !findings.is_empty() {
                    return Err(RegistryError::Invalid(findings));
                }
            }
            Ok(approvals)
        })
        .await
        .map_err(|e| RegistryError::Internal(anyhow::anyhow!("approval task failed: {e}")))?
    }

    /// The type handler alone on `content` (a replaced definition: the chain approved the
    /// version's name and version when it was registered, and those never change).
    pub(super) async fn validate(
        &self,
        candidate: plugins::Pipeline,
        content: Vec<plugins::File>,
    ) -> Result<(), RegistryError> {
        let plugins = self.plugins.clone();
        let findings =
            tokio::task::spawn_blocking(move || validate_content(&plugins, &candidate, &content))
                .await
                .map_err(|e| {
                    RegistryError::Internal(anyhow::anyhow!("validation task failed: {e}"))
                })??;
        if findings.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::Invalid(findings))
        }
    }
}

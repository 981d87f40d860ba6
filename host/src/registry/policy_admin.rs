//! Changing policy bindings at run time: operators (members of the `--admin-account`) set or
//! clear the chain of a scope; the change is stored, applies to this server at once, and every
//! other server picks it up within its poll interval ([`super::changes`]). A request
//! takes one chain whole ([`super::policies`]), so it sees the old chain or the new.

use std::sync::atomic::Ordering;

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::{self, bindings as rows};

use super::accounts::Caller;
use super::policies::Scope;
use super::{AdminAction, Refusal, Registry, RegistryError};

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BindingInfo {
    /// `global`, `type:<id>`, `namespace:<key>` or `surface:<name>`.
    pub scope: String,
    pub chain: Vec<String>,
}

impl Registry {
    /// The same registry, with members of `account` allowed to change bindings.
    pub fn with_admin_account(mut self, account: Option<String>) -> Self {
        self.admin_account = account;
        self
    }

    /// Every binding in force (defaults and operators' alike).
    pub fn list_bindings(&self) -> Vec<BindingInfo> {
        self.bindings
            .snapshot()
            .into_iter()
            .map(|(scope, chain)| BindingInfo {
                scope: scope.to_string(),
                chain: chain.to_vec(),
            })
            .collect()
    }

    /// Sets the chain of `scope`: every policy must be loaded.
    pub async fn set_binding(
        &self,
        caller: &Caller,
        scope: &str,
        chain: Vec<String>,
    ) -> Result<BindingInfo, RegistryError> {
        let scope = self.admin_scope(caller, scope).await?;
        if let Some(missing) = chain
            .iter()
            .find(|name| self.plugins.policy(name).is_none())
        {
            return Err(RegistryError::invalid(super::Finding::new(
                "unknown-policy",
                "chain",
                format!("no policy `{missing}` is loaded"),
            )));
        }
        let json = serde_json::to_string(&chain).expect("a list of strings serializes");
        let mut tx = self.store.begin().await?;
        rows::upsert(
            &mut tx,
            &scope.to_string(),
            &json,
            &caller.user_id,
            store::now_millis(),
        )
        .await?;
        tx.commit().await?;
        self.reload_bindings().await?;
        tracing::info!(%scope, chain = ?chain, by = %caller.user, "policy binding set");
        Ok(BindingInfo {
            scope: scope.to_string(),
            chain,
        })
    }

    /// Removes the operator's chain of `scope`; the default (if any) applies again.
    pub async fn clear_binding(&self, caller: &Caller, scope: &str) -> Result<(), RegistryError> {
        let scope = self.admin_scope(caller, scope).await?;
        let mut tx = self.store.begin().await?;
        let existed = rows::delete(&mut tx, &scope.to_string()).await?;
        tx.commit().await?;
        if !existed {
            return Err(Refusal::BindingNotFound {
                scope: scope.to_string(),
            }
            .into());
        }
        self.reload_bindings().await?;
        tracing::info!(%scope, by = %caller.user, "policy binding cleared");
        Ok(())
    }

    /// Reads the stored bindings into memory; the change counter it saw.
    pub async fn reload_bindings(&self) -> Result<i64, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let revision = rows::revision(&mut conn).await?;
        let mut overrides = Vec::new();
        for row in rows::list(&mut conn).await? {
            match (
                Scope::parse(&row.scope),
                serde_json::from_str::<Vec<String>>(&row.chain),
            ) {
                (Some(scope), Ok(chain)) => overrides.push((scope, chain)),
                _ => {
                    tracing::error!(scope = %row.scope, "unreadable stored policy binding; ignored")
                }
            }
        }
        self.bindings.replace_overrides(overrides);
        self.bindings_revision.store(revision, Ordering::Release);
        Ok(revision)
    }

    async fn admin_scope(&self, caller: &Caller, scope: &str) -> Result<Scope, RegistryError> {
        self.require_admin(caller, AdminAction::ChangePolicyBindings)
            .await?;
        Scope::parse(scope).ok_or_else(|| {
            RegistryError::invalid(super::Finding::new(
                "invalid-scope",
                "scope",
                format!("`{scope}` is not a scope: global, type:<id>, namespace:<name> or surface:<name>"),
            ))
        })
    }

    /// Refuses anyone but members of the server's admin account (`--admin-account`).
    pub(super) async fn require_admin(
        &self,
        caller: &Caller,
        action: AdminAction,
    ) -> Result<(), RegistryError> {
        if !self.is_admin(caller).await? {
            return Err(Refusal::NotAnAdmin { action }.into());
        }
        Ok(())
    }

    /// Whether the caller acts for the server's admin account (`--admin-account`): what every
    /// change to plugins and bindings requires.
    pub async fn is_admin(&self, caller: &Caller) -> Result<bool, RegistryError> {
        let admin = match &self.admin_account {
            Some(account) => {
                let mut conn = self.store.pool().acquire().await?;
                store::accounts::account_by_key(&mut conn, &super::names::key(account))
                    .await?
                    .map(|a| a.id)
            }
            None => None,
        };
        let allowed = match admin {
            Some(id) => {
                let mut conn = self.store.pool().acquire().await?;
                self.acts_for(&mut conn, caller, &id).await?
            }
            None => false,
        };
        Ok(allowed)
    }
}

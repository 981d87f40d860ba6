//! Accounts, users and API tokens: who is calling, and for which account.
//!
//! Every user has a personal account named after them; accounts may have several members.
//! A token is `pw_<id>_<secret>`: the id finds the row, only sha256(secret) is stored, and the
//! comparison is constant-time. Rows of tokens seen lately are kept in memory for
//! [`TOKEN_CACHE_TTL`] ([`TokenCache`]): every request checks its token, and that store round trip
//! was about a tenth of a warm `/v4` run (p50 569 -> 500 µs). The presented secret is still hashed and
//! compared with the stored hash each time; only the read is saved.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{self, accounts as rows, Store};

use super::{names, Refusal, Registry, RegistryError};

/// An authenticated caller: a user acting for one account.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user_id: String,
    pub user: String,
    pub account_id: String,
    pub account: String,
}

const TOKEN_PREFIX: &str = "pw_";

/// Creates the user (with a personal account), and the account if named and absent (adding
/// the user as a member), then issues a new token for that user in that account.
pub async fn create_token(
    store: &Store,
    user: &str,
    account: Option<&str>,
) -> Result<String, RegistryError> {
    names::check("user", user).map_err(RegistryError::invalid)?;
    refuse_uppercase("user", user)?;
    if let Some(account) = account {
        names::check("account", account).map_err(RegistryError::invalid)?;
        refuse_uppercase("account", account)?;
        refuse_reserved("account", account)?;
    }
    let now = store::now_millis();
    let mut tx = store.begin().await?;
    let user_row = ensure_user(&mut tx, user, now).await?;
    let account_id = match account {
        None => user_row.personal_account_id.clone(),
        Some(name) => {
            let id = match rows::account_by_key(&mut tx, &names::key(name)).await? {
                Some(existing) => existing.id,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    rows::insert_account(&mut tx, &id, name, &names::key(name), now).await?;
                    id
                }
            };
            if !rows::is_member(&mut tx, &id, &user_row.id).await? {
                rows::add_member(&mut tx, &id, &user_row.id).await?;
            }
            id
        }
    };
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let (id, secret) = (hex::encode(id), hex::encode(secret));
    rows::insert_token(
        &mut tx,
        &id,
        &hash_secret(&secret),
        &user_row.id,
        &account_id,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(format!("{TOKEN_PREFIX}{id}_{secret}"))
}

/// The user called `user`, created on first sight with a personal account of the same name.
/// An account named like a namespace a surface reserves would own that namespace: refused.
/// User and account names made here are lowercase: they name namespaces, and Mystic's rule
/// (its users' pipelines are `account/name`, lowercase) would otherwise refuse the user's first
/// push, long after the name was chosen. Refused where the name is made, naming the fix.
fn refuse_uppercase(field: &str, name: &str) -> Result<(), RegistryError> {
    if name.chars().any(char::is_uppercase) {
        return Err(RegistryError::invalid(super::Finding::new(
            "uppercase-name",
            field,
            format!(
                "{field} names are lowercase (they name namespaces, lowercase in Mystic's rules): use `{}`",
                name.to_lowercase()
            ),
        )));
    }
    Ok(())
}

fn refuse_reserved(field: &str, name: &str) -> Result<(), RegistryError> {
    match super::reserving_surface(name) {
        Some(surface) => Err(RegistryError::invalid(super::Finding::new(
            "reserved-name",
            field,
            format!(
                "`{name}` is reserved: it is the {} surface's shared namespace",
                surface.as_str()
            ),
        ))),
        None => Ok(()),
    }
}

async fn ensure_user(
    conn: &mut sqlx::AnyConnection,
    user: &str,
    now: i64,
) -> Result<rows::UserRow, RegistryError> {
    if let Some(row) = rows::user_by_key(conn, &names::key(user)).await? {
        return Ok(row);
    }
    refuse_reserved("user", user)?;
    if rows::account_by_key(conn, &names::key(user))
        .await?
        .is_some()
    {
        return Err(Refusal::AccountNameTaken {
            user: user.to_string(),
        }
        .into());
    }
    let account_id = uuid::Uuid::new_v4().to_string();
    rows::insert_account(conn, &account_id, user, &names::key(user), now).await?;
    let row = rows::UserRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: user.to_string(),
        personal_account_id: account_id.clone(),
    };
    rows::insert_user(conn, &row, &names::key(user), now).await?;
    rows::add_member(conn, &account_id, &row.id).await?;
    Ok(row)
}

impl Registry {
    /// The caller a trusted gateway vouches for by user name: the user (added on first sight)
    /// acting for their personal account.
    pub async fn caller_for_user(&self, user: &str) -> Result<Caller, RegistryError> {
        names::check("user", user).map_err(RegistryError::invalid)?;
        let mut tx = self.store.begin().await?;
        let row = match ensure_user(&mut tx, user, store::now_millis()).await {
            Err(RegistryError::Internal(_)) => {
                // A concurrent first sight of the same user won the insert: read theirs.
                drop(tx);
                tx = self.store.begin().await?;
                ensure_user(&mut tx, user, store::now_millis()).await?
            }
            other => other?,
        };
        let account = rows::account_by_id(&mut tx, &row.personal_account_id)
            .await?
            .ok_or_else(|| {
                RegistryError::Internal(anyhow::anyhow!("user {user} has no personal account"))
            })?;
        tx.commit().await?;
        Ok(Caller {
            user_id: row.id,
            user: row.name,
            account_id: account.id,
            account: account.name,
        })
    }

    /// The caller a bearer token stands for.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, RegistryError> {
        let (id, secret) = token_parts(token).ok_or(RegistryError::Unauthenticated)?;
        let (secret_hash, caller) = self.token(id).await?;
        let presented = hash_secret(secret);
        if !bool::from(presented.as_bytes().ct_eq(secret_hash.as_bytes())) {
            return Err(RegistryError::Unauthenticated);
        }
        Ok(caller)
    }

    /// The stored secret hash of token `id` and the caller it stands for, from the cache while
    /// fresh.
    pub(super) async fn token(&self, id: &str) -> Result<(String, Caller), RegistryError> {
        if let Some(known) = self.tokens.get(id) {
            return Ok(known);
        }
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::token_by_id(&mut conn, id)
            .await?
            .ok_or(RegistryError::Unauthenticated)?;
        let caller = Caller {
            user_id: row.user_id,
            user: row.user_name,
            account_id: row.account_id,
            account: row.account_name,
        };
        self.tokens.put(id, &row.secret_hash, &caller);
        Ok((row.secret_hash, caller))
    }

    /// Whether `user_id` may act for `account_id`.
    pub(super) async fn is_member(
        &self,
        conn: &mut sqlx::AnyConnection,
        account_id: &str,
        user_id: &str,
    ) -> Result<bool, RegistryError> {
        Ok(rows::is_member(conn, account_id, user_id).await?)
    }
}

/// How long a token's row is trusted from memory. Tokens cannot be revoked yet; when they can,
/// a revocation takes effect on every server within this.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(60);
/// Token rows kept at most; past it the cache starts over (a bound, not an LRU).
const TOKEN_CACHE_MAX: usize = 10_000;

/// Token rows read lately: id → (stored secret hash, caller, when read).
#[derive(Default)]
pub struct TokenCache {
    rows: Mutex<HashMap<String, (String, Caller, Instant)>>,
}

impl TokenCache {
    fn get(&self, id: &str) -> Option<(String, Caller)> {
        let rows = self.rows.lock().unwrap();
        let (hash, caller, read) = rows.get(id)?;
        (read.elapsed() < TOKEN_CACHE_TTL).then(|| (hash.clone(), caller.clone()))
    }

    fn put(&self, id: &str, secret_hash: &str, caller: &Caller) {
        let mut rows = self.rows.lock().unwrap();
        if rows.len() >= TOKEN_CACHE_MAX {
            rows.clear();
        }
        rows.insert(
            id.to_string(),
            (secret_hash.to_string(), caller.clone(), Instant::now()),
        );
    }
}

/// A token's id and secret: `pw_<id>_<secret>`.
pub(super) fn token_parts(token: &str) -> Option<(&str, &str)> {
    token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|rest| rest.split_once('_'))
}

pub(super) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

//! Console sessions: a person signs in to the web console ([`crate::console`]) with an API
//! token and is then known by a cookie. The session acts as that token's caller, so a page sees
//! exactly what a request with the token would: the console calls the same operations with the
//! same [`Caller`].
//!
//! The cookie holds a random secret; the store keeps only its sha256 (a copy of the table
//! opens no session), the token it acts as, and the session's CSRF token, which every form it
//! posts must send back. Sessions live in the store rather than in a signed cookie so that
//! signing out ends one on every replica at once, and a session ends with its token's row.
//! A session lasts [`SESSION_LIFETIME`] from sign-in, whatever its use.

use std::time::Duration;

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::store::{self, sessions as rows};

use super::accounts::{hash_secret, token_parts};
use super::{Caller, Registry, RegistryError};

/// How long a console session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// A session just opened: the cookie's secret and the session's CSRF token.
#[derive(Debug)]
pub struct OpenedSession {
    pub secret: String,
    pub csrf_token: String,
}

/// A session in force: who it acts as, and the token its forms must carry.
#[derive(Clone, Debug)]
pub struct ConsoleSession {
    pub caller: Caller,
    pub csrf_token: String,
}

impl ConsoleSession {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(self.csrf_token.as_bytes()))
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Registry {
    /// Opens a session for the caller `token` stands for; `Unauthenticated` if it stands for
    /// no one. Sessions that ended are removed on the way.
    pub async fn open_session(&self, token: &str) -> Result<OpenedSession, RegistryError> {
        let caller = self.authenticate(token).await?;
        let (token_id, _) = token_parts(token).ok_or(RegistryError::Unauthenticated)?;
        let opened = OpenedSession {
            secret: random_hex(),
            csrf_token: random_hex(),
        };
        let now = store::now_millis();
        let mut conn = self.store.pool().acquire().await?;
        rows::delete_expired(&mut conn, now).await?;
        rows::insert(
            &mut conn,
            &rows::NewSession {
                secret_hash: &hash_secret(&opened.secret),
                token_id,
                csrf_token: &opened.csrf_token,
                created_at: now,
                expires_at: now + SESSION_LIFETIME.as_millis() as i64,
            },
        )
        .await?;
        tracing::info!(user = %caller.user, account = %caller.account, "console session opened");
        Ok(opened)
    }

    /// The session a cookie's secret opens; `Unauthenticated` when it opens none (never
    /// opened, signed out, or ended).
    pub async fn session(&self, secret: &str) -> Result<ConsoleSession, RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        let row = rows::by_secret_hash(&mut conn, &hash_secret(secret))
            .await?
            .filter(|row| row.expires_at > store::now_millis())
            .ok_or(RegistryError::Unauthenticated)?;
        drop(conn);
        let (_, caller) = self.token(&row.token_id).await?;
        Ok(ConsoleSession {
            caller,
            csrf_token: row.csrf_token,
        })
    }

    /// Ends the session a cookie's secret opens, if any.
    pub async fn close_session(&self, secret: &str) -> Result<(), RegistryError> {
        let mut conn = self.store.pool().acquire().await?;
        rows::delete(&mut conn, &hash_secret(secret)).await?;
        Ok(())
    }
}

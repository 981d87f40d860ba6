//! Accounts, users, memberships and API tokens.

use sqlx::AnyConnection;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub personal_account_id: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub secret_hash: String,
    pub user_id: String,
    pub user_name: String,
    pub account_id: String,
    pub account_name: String,
}

pub async fn account_by_key(
    conn: &mut AnyConnection,
    name_key: &str,
) -> sqlx::Result<Option<AccountRow>> {
    sqlx::query_as("SELECT id, name FROM accounts WHERE name_key = $1")
        .bind(name_key)
        .fetch_optional(conn)
        .await
}

pub async fn account_by_id(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<AccountRow>> {
    sqlx::query_as("SELECT id, name FROM accounts WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn insert_account(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    name_key: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO accounts (id, name, name_key, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(name)
        .bind(name_key)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn user_by_key(
    conn: &mut AnyConnection,
    name_key: &str,
) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("SELECT id, name, personal_account_id FROM users WHERE name_key = $1")
        .bind(name_key)
        .fetch_optional(conn)
        .await
}

pub async fn insert_user(
    conn: &mut AnyConnection,
    user: &UserRow,
    name_key: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO users (id, name, name_key, personal_account_id, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(&user.id)
        .bind(&user.name)
        .bind(name_key)
        .bind(&user.personal_account_id)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn is_member(
    conn: &mut AnyConnection,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<bool> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT user_id FROM account_members WHERE account_id = $1 AND user_id = $2",
    )
    .bind(account_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

pub async fn add_member(
    conn: &mut AnyConnection,
    account_id: &str,
    user_id: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO account_members (account_id, user_id) VALUES ($1, $2)")
        .bind(account_id)
        .bind(user_id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn insert_token(
    conn: &mut AnyConnection,
    id: &str,
    secret_hash: &str,
    user_id: &str,
    account_id: &str,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO api_tokens (id, secret_hash, user_id, account_id, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(secret_hash)
        .bind(user_id)
        .bind(account_id)
        .bind(now)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn token_by_id(conn: &mut AnyConnection, id: &str) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as(
        "SELECT t.id, t.secret_hash, t.user_id, u.name AS user_name, t.account_id, a.name AS account_name
         FROM api_tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = t.account_id
         WHERE t.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

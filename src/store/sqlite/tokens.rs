//! Tokens on SQLite: reading, storing, replacing and deleting token rows, and the changes an
//! admin makes to one (active, description, PIN, owner, counter). The trait's calls in
//! `store.rs` come here.

use rusqlite::params;

use super::super::{StoreError, Token};
use super::rows::{insert_all, query_tokens, to_i64};
use super::{SELECT_TOKEN, SELECT_TOKENS_OF_USER, SqliteStore, execute_cached};

impl SqliteStore {
    pub(super) async fn tokens_of_user_sqlite(
        &self,
        user: &str,
        realm: &str,
    ) -> Result<Vec<Token>, StoreError> {
        let (user, realm) = (user.to_string(), realm.to_string());
        self.read(move |conn, key| query_tokens(conn, key, SELECT_TOKENS_OF_USER, &[&user, &realm]))
            .await
    }

    pub(super) async fn token_sqlite(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let serial = serial.to_string();
        self.read(move |conn, key| {
            Ok(query_tokens(conn, key, SELECT_TOKEN, &[&serial])?
                .into_iter()
                .next())
        })
        .await
    }

    pub(super) async fn list_tokens_sqlite(
        &self,
        user: Option<&str>,
        realm: Option<&str>,
    ) -> Result<Vec<Token>, StoreError> {
        let (user, realm) = (user.map(str::to_string), realm.map(str::to_string));
        self.read_large(move |conn, key| {
            let sql = concat!(
                "SELECT ",
                token_columns!(),
                " FROM tokens WHERE (?1 IS NULL OR user = ?1) AND (?2 IS NULL OR realm = ?2) \
                 ORDER BY realm, user, serial"
            );
            query_tokens(conn, key, sql, &[&user, &realm])
        })
        .await
    }

    pub(super) async fn insert_token_sqlite(&self, token: Token) -> Result<(), StoreError> {
        self.call(move |conn, key| insert_all(conn, key, std::slice::from_ref(&token)))
            .await
    }

    pub(super) async fn insert_tokens_sqlite(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.call(move |conn, key| insert_all(conn, key, &tokens))
            .await
    }

    pub(super) async fn replace_tokens_sqlite(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        self.call(move |conn, key| {
            for token in &tokens {
                execute_cached(
                    conn,
                    "DELETE FROM tokens WHERE serial = ?1",
                    [&token.serial],
                )?;
            }
            insert_all(conn, key, &tokens)
        })
        .await
    }

    pub(super) async fn delete_token_sqlite(&self, serial: &str) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        self.call(move |conn, _| {
            Ok(execute_cached(conn, "DELETE FROM tokens WHERE serial = ?1", [&serial])? > 0)
        })
        .await
    }

    pub(super) async fn set_active_sqlite(
        &self,
        serial: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET active = ?2, pending = 0 WHERE serial = ?1",
                params![serial, active],
            )? > 0)
        })
        .await
    }

    pub(super) async fn confirm_token_sqlite(
        &self,
        serial: &str,
        counter: u64,
    ) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        let counter = to_i64(counter);
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET active = 1, pending = 0, counter = ?2, fail_count = 0 \
                 WHERE serial = ?1 AND pending = 1 AND counter <= ?2",
                params![serial, counter],
            )? > 0)
        })
        .await
    }

    pub(super) async fn set_description_sqlite(
        &self,
        serial: &str,
        description: &str,
    ) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        let description = super::super::decide::description(description);
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET description = ?2 WHERE serial = ?1",
                params![serial, description],
            )? > 0)
        })
        .await
    }

    pub(super) async fn set_pin_hash_sqlite(
        &self,
        serial: &str,
        pin_hash: Option<String>,
    ) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET pin_hash = ?2 WHERE serial = ?1",
                params![serial, pin_hash],
            )? > 0)
        })
        .await
    }

    pub(super) async fn set_token_owner_sqlite(
        &self,
        serial: &str,
        user: &str,
    ) -> Result<bool, StoreError> {
        let (serial, user) = (serial.to_string(), user.to_string());
        self.call(move |conn, _| {
            execute_cached(conn, "DELETE FROM challenges WHERE serial = ?1", [&serial])?;
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET user = ?2 WHERE serial = ?1",
                params![serial, user],
            )? > 0)
        })
        .await
    }

    pub(super) async fn assign_token_sqlite(
        &self,
        serial: &str,
        user: &str,
        realm: &str,
    ) -> Result<bool, StoreError> {
        let (serial, user, realm) = (serial.to_string(), user.to_string(), realm.to_string());
        self.call(move |conn, _| {
            execute_cached(conn, "DELETE FROM challenges WHERE serial = ?1", [&serial])?;
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET user = ?2, realm = ?3, owner_id = NULL WHERE serial = ?1",
                params![serial, user, realm],
            )? > 0)
        })
        .await
    }

    pub(super) async fn set_counter_sqlite(
        &self,
        serial: &str,
        counter: u64,
    ) -> Result<bool, StoreError> {
        let serial = serial.to_string();
        let counter = to_i64(counter);
        self.call(move |conn, _| {
            Ok(execute_cached(
                conn,
                "UPDATE tokens SET counter = ?2 WHERE serial = ?1",
                params![serial, counter],
            )? > 0)
        })
        .await
    }
}

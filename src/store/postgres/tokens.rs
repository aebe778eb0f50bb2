//! Tokens on PostgreSQL: reading, storing, replacing and deleting token rows, and the changes
//! an admin makes to one (active, description, PIN, owner, counter). The trait's calls in
//! `store.rs` come here.

use super::super::{Store, StoreError, Token};
use super::rows::{insert_tokens, to_i64, tokens_from_rows};
use super::{PgStore, SELECT_TOKENS_OF_USER, execute, query};

impl PgStore {
    pub(super) async fn tokens_of_user_pg(
        &self,
        user: &str,
        realm: &str,
    ) -> Result<Vec<Token>, StoreError> {
        self.timed(async {
            let c = self.client().await?;
            let rows = query(&c, SELECT_TOKENS_OF_USER, &[&user, &realm]).await?;
            tokens_from_rows(&rows, &self.key)
        })
        .await
    }

    pub(super) async fn token_pg(&self, serial: &str) -> Result<Option<Token>, StoreError> {
        let c = self.client().await?;
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE serial = $1"
        );
        let rows = query(&c, sql, &[&serial]).await?;
        Ok(tokens_from_rows(&rows, &self.key)?.into_iter().next())
    }

    pub(super) async fn list_tokens_pg(
        &self,
        user: Option<&str>,
        realm: Option<&str>,
    ) -> Result<Vec<Token>, StoreError> {
        let c = self.client().await?;
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE ($1::text IS NULL OR username = $1) \
             AND ($2::text IS NULL OR realm = $2) ORDER BY realm, username, serial"
        );
        let rows = query(&c, sql, &[&user, &realm]).await?;
        tokens_from_rows(&rows, &self.key)
    }

    pub(super) async fn insert_token_pg(&self, token: Token) -> Result<(), StoreError> {
        self.insert_tokens(vec![token]).await
    }

    pub(super) async fn insert_tokens_pg(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        insert_tokens(&tx, &self.key, &self.name, &tokens).await?;
        Ok(tx.commit().await?)
    }

    pub(super) async fn replace_tokens_pg(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        for token in &tokens {
            execute(
                &tx,
                "DELETE FROM tokens WHERE serial = $1",
                &[&token.serial],
            )
            .await?;
        }
        insert_tokens(&tx, &self.key, &self.name, &tokens).await?;
        Ok(tx.commit().await?)
    }

    pub(super) async fn delete_token_pg(&self, serial: &str) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(&c, "DELETE FROM tokens WHERE serial = $1", &[&serial]).await? > 0)
    }

    pub(super) async fn set_active_pg(
        &self,
        serial: &str,
        active: bool,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET active = $2, pending = false WHERE serial = $1",
            &[&serial, &active],
        )
        .await?
            > 0)
    }

    pub(super) async fn confirm_token_pg(
        &self,
        serial: &str,
        counter: u64,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET active = true, pending = false, counter = $2, fail_count = 0 \
             WHERE serial = $1 AND pending AND counter <= $2",
            &[&serial, &to_i64(counter)],
        )
        .await?
            > 0)
    }

    pub(super) async fn set_description_pg(
        &self,
        serial: &str,
        description: &str,
    ) -> Result<bool, StoreError> {
        let description = super::super::decide::description(description);
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET description = $2 WHERE serial = $1",
            &[&serial, &description],
        )
        .await?
            > 0)
    }

    pub(super) async fn set_pin_hash_pg(
        &self,
        serial: &str,
        pin_hash: Option<String>,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET pin_hash = $2 WHERE serial = $1",
            &[&serial, &pin_hash],
        )
        .await?
            > 0)
    }

    pub(super) async fn set_token_owner_pg(
        &self,
        serial: &str,
        user: &str,
    ) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(&tx, "DELETE FROM challenges WHERE serial = $1", &[&serial]).await?;
        let changed = execute(
            &tx,
            "UPDATE tokens SET username = $2 WHERE serial = $1",
            &[&serial, &user],
        )
        .await?;
        tx.commit().await?;
        Ok(changed > 0)
    }

    pub(super) async fn assign_token_pg(
        &self,
        serial: &str,
        user: &str,
        realm: &str,
    ) -> Result<bool, StoreError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        execute(&tx, "DELETE FROM challenges WHERE serial = $1", &[&serial]).await?;
        let changed = execute(
            &tx,
            "UPDATE tokens SET username = $2, realm = $3, owner_id = NULL WHERE serial = $1",
            &[&serial, &user, &realm],
        )
        .await?;
        tx.commit().await?;
        Ok(changed > 0)
    }

    pub(super) async fn set_counter_pg(
        &self,
        serial: &str,
        counter: u64,
    ) -> Result<bool, StoreError> {
        let c = self.client().await?;
        Ok(execute(
            &c,
            "UPDATE tokens SET counter = $2 WHERE serial = $1",
            &[&serial, &to_i64(counter)],
        )
        .await?
            > 0)
    }
}

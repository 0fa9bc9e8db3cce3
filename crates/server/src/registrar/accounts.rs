//! The accounts the core authenticates and routes to, kept in memory.
//!
//! The store is the source of truth; the runtime reloads this table whenever the store's
//! account generation changes (the CLI changed an account), so the per-request path never waits
//! on the database.

use std::collections::HashMap;
use std::sync::Arc;

/// What the core needs of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    /// The SIP user part, lower-case.
    pub username: String,
    pub display_name: String,
    pub extension: Option<String>,
    /// The realm the HA1 values were made for.
    pub realm: String,
    pub ha1_md5: String,
    pub ha1_sha256: String,
    pub disabled: bool,
}

/// Accounts by username and by extension.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    by_name: HashMap<String, Arc<Account>>,
    by_extension: HashMap<String, Arc<Account>>,
    by_id: HashMap<i64, Arc<Account>>,
}

impl Accounts {
    pub fn new(accounts: impl IntoIterator<Item = Account>) -> Accounts {
        let mut table = Accounts::default();
        for account in accounts {
            let account = Arc::new(account);
            if let Some(ext) = &account.extension {
                table.by_extension.insert(ext.clone(), account.clone());
            }
            table.by_id.insert(account.id, account.clone());
            table.by_name.insert(account.username.to_ascii_lowercase(), account);
        }
        table
    }

    /// The account whose username is `name` (case-insensitive).
    pub fn by_username(&self, name: &str) -> Option<&Arc<Account>> {
        self.by_name.get(&name.to_ascii_lowercase())
    }

    /// The account a user part addresses: a username or a numeric extension.
    pub fn by_user_part(&self, user: &str) -> Option<&Arc<Account>> {
        self.by_username(user).or_else(|| self.by_extension.get(user))
    }

    pub fn by_id(&self, id: i64) -> Option<&Arc<Account>> {
        self.by_id.get(&id)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

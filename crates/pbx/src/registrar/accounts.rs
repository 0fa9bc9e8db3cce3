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
    /// What happens to calls for this account: forwarding, do-not-disturb, voicemail.
    pub routing: Routing,
}

/// Where a forwarded call goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A local username or extension.
    Local(String),
    /// An outside SIP URI.
    Uri(sambung_sip::Uri),
}

impl Target {
    /// A stored target: a `sip:`/`sips:` URI, else a local username or extension. `None` for
    /// what is neither (the store checks targets, so only a hand-edited row gets here).
    pub fn parse(text: &str) -> Option<Target> {
        let text = text.trim();
        if text.is_empty() || text.contains(char::is_whitespace) {
            return None;
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            return sambung_sip::Uri::parse(text).ok().map(Target::Uri);
        }
        Some(Target::Local(text.to_owned()))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Local(user) => f.write_str(user),
            Target::Uri(uri) => write!(f, "{uri}"),
        }
    }
}

/// An account's call settings, as routing needs them (the store keeps the rest: PIN, email).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    pub forward_always: Option<Target>,
    pub forward_busy: Option<Target>,
    pub forward_no_answer: Option<Target>,
    pub forward_offline: Option<Target>,
    /// How long the devices ring before no-answer forwarding or voicemail.
    pub no_answer_secs: u32,
    pub dnd: bool,
    pub voicemail: bool,
}

impl Default for Routing {
    /// The settings of an account that never changed them: voicemail on after 20 s.
    fn default() -> Routing {
        Routing {
            forward_always: None,
            forward_busy: None,
            forward_no_answer: None,
            forward_offline: None,
            no_answer_secs: 20,
            dnd: false,
            voicemail: true,
        }
    }
}

/// Accounts by username and by extension.
#[derive(Clone, Debug, Default)]
pub struct Accounts {
    by_name: HashMap<String, Arc<Account>>,
    by_extension: HashMap<String, Arc<Account>>,
    by_id: HashMap<i64, Arc<Account>>,
    /// The service's phone numbers (E.164 with `+`) assigned to accounts.
    by_number: HashMap<String, i64>,
    /// Each account's numbers, the one its outgoing calls show first.
    numbers_of: HashMap<i64, Vec<String>>,
    /// Numbers that ring a ring group, with the group's name.
    group_numbers: HashMap<String, String>,
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

    /// The table with these phone numbers (E.164 with `+`) assigned to accounts, in order: an
    /// account's first number is the one its outgoing calls show.
    pub fn with_numbers(mut self, numbers: impl IntoIterator<Item = (String, i64)>) -> Accounts {
        for (number, id) in numbers {
            if self.by_id.contains_key(&id) {
                self.numbers_of.entry(id).or_default().push(number.clone());
                self.by_number.insert(number, id);
            }
        }
        self
    }

    /// The table with these phone numbers ringing ring groups (number, group name).
    pub fn with_group_numbers(mut self, numbers: impl IntoIterator<Item = (String, String)>) -> Accounts {
        self.group_numbers.extend(numbers);
        self
    }

    /// The ring group (by name) a phone number of the service rings.
    pub fn group_of_number(&self, number: &str) -> Option<&str> {
        self.group_numbers.get(number).map(String::as_str)
    }

    /// The account a phone number (E.164 with `+`) of the service is assigned to.
    pub fn by_number(&self, number: &str) -> Option<&Arc<Account>> {
        self.by_number.get(number).and_then(|id| self.by_id.get(id))
    }

    /// The phone numbers of account `id`, the one its calls show first.
    pub fn numbers_of(&self, id: i64) -> &[String] {
        self.numbers_of.get(&id).map_or(&[], Vec::as_slice)
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

    /// Every account, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.by_id.values()
    }

    /// Replaces account `id`'s routing (a feature code changed it); false for an unknown id.
    pub fn set_routing(&mut self, id: i64, routing: Routing) -> bool {
        let Some(old) = self.by_id.get(&id) else { return false };
        let account = Arc::new(Account { routing, ..Account::clone(old) });
        if let Some(ext) = &account.extension {
            self.by_extension.insert(ext.clone(), account.clone());
        }
        self.by_name.insert(account.username.to_ascii_lowercase(), account.clone());
        self.by_id.insert(id, account);
        true
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

//! The auto-attendant's menus and the call queues, as call control routes to them: a name (and
//! extension) that an application answers. What a menu says and offers (prompts, keys, office
//! hours), and how a queue holds its callers and picks its agents, is the application's; call
//! control only answers the call with it and connects the caller where the application asks
//! ([`crate::Input::AppConnect`]).

/// Which application answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    /// The auto-attendant ([`crate::App::Attendant`]).
    #[default]
    Attendant,
    /// A call queue ([`crate::App::Queue`]).
    Queue,
}

/// One menu a call can be routed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Menu {
    /// Its user part (`main` in `sip:main@example.com`), lower-case.
    pub name: String,
    /// A number that reaches it too (`500`).
    pub extension: Option<String>,
    pub kind: Kind,
}

impl Menu {
    /// The application that answers its calls.
    pub fn app(&self) -> crate::App {
        match self.kind {
            Kind::Attendant => crate::App::Attendant { menu: self.name.clone() },
            Kind::Queue => crate::App::Queue { queue: self.name.clone() },
        }
    }

    /// True when `user` (a dialled user part) names this menu.
    pub fn is_called(&self, user: &str) -> bool {
        self.name.eq_ignore_ascii_case(user) || self.extension.as_deref() == Some(user)
    }
}

/// The menus of a server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Menus {
    pub menus: Vec<Menu>,
}

/// The parking slot `user` names, if it is one of `slots` (first, last).
pub fn parking_slot(slots: Option<(u32, u32)>, user: &str) -> Option<String> {
    let (first, last) = slots?;
    let digits =
        !user.is_empty() && user.len() <= 6 && user.bytes().all(|b| b.is_ascii_digit()) && !user.starts_with('0');
    let n: u32 = user.parse().ok().filter(|_| digits)?;
    (first..=last).contains(&n).then(|| user.to_owned())
}

impl Menus {
    /// The menu a dialled user part names.
    pub fn find(&self, user: &str) -> Option<&Menu> {
        self.menus.iter().find(|m| m.is_called(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn menus_are_found_by_name_or_extension() {
        let menus = Menus {
            menus: vec![
                Menu { name: "main".into(), extension: Some("500".into()), kind: Kind::Attendant },
                Menu { name: "closed".into(), extension: None, kind: Kind::Queue },
            ],
        };
        assert_eq!(menus.find("MAIN").map(|m| m.name.as_str()), Some("main"));
        assert_eq!(menus.find("500").map(|m| m.name.as_str()), Some("main"));
        assert_eq!(menus.find("closed").map(|m| m.name.as_str()), Some("closed"));
        assert!(menus.find("501").is_none());
    }
}

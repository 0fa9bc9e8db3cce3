//! Accounts from CSV (RFC 4180), for `sambung user import` and the administration page.
//!
//! The first line names the columns: `username` and `password` are required, `display_name`,
//! `email`, `extension` and `admin` (`yes`/`no`, `true`/`false`, `1`/`0`) optional, in any
//! order. Fields may be quoted (`"..."`, with `""` for a quote); empty optional fields are left
//! unset.

use sambung_store::NewAccount;

/// Most rows one import takes.
pub const MAX_ROWS: usize = 100_000;

/// Parses `text` into accounts for `realm`; the errors say which line (from 1) and why.
pub fn parse(text: &str, realm: &str) -> Result<Vec<NewAccount>, Vec<String>> {
    let records = records(text).map_err(|e| vec![e])?;
    let mut lines = records.into_iter();
    let Some((_, header)) = lines.next() else { return Err(vec!["the file is empty".into()]) };
    let mut columns = Columns::default();
    for (i, name) in header.iter().enumerate() {
        let slot = match name.trim().to_ascii_lowercase().as_str() {
            "username" => &mut columns.username,
            "password" => &mut columns.password,
            "display_name" => &mut columns.display_name,
            "email" => &mut columns.email,
            "extension" => &mut columns.extension,
            "admin" => &mut columns.admin,
            other => {
                return Err(vec![format!(
                    "line 1: unknown column {other:?} (known: username, password, display_name, email, extension, admin)"
                )]);
            }
        };
        if slot.replace(i).is_some() {
            return Err(vec![format!("line 1: column {:?} twice", name.trim())]);
        }
    }
    let (Some(user_col), Some(pass_col)) = (columns.username, columns.password) else {
        return Err(vec!["line 1: the columns username and password are required".into()]);
    };
    let mut accounts = Vec::new();
    let mut errors = Vec::new();
    for (line, fields) in lines {
        if fields.len() == 1 && fields[0].trim().is_empty() {
            continue;
        }
        if fields.len() != header.len() {
            errors.push(format!("line {line}: {} fields where the header has {}", fields.len(), header.len()));
            continue;
        }
        let get = |col: Option<usize>| col.map(|c| fields[c].trim().to_owned()).filter(|v| !v.is_empty());
        let admin = match get(columns.admin).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("no" | "false" | "0") => false,
            Some("yes" | "true" | "1") => true,
            Some(other) => {
                errors.push(format!("line {line}: admin is {other:?}: use yes or no"));
                continue;
            }
        };
        accounts.push((
            line,
            NewAccount {
                username: fields[user_col].trim().to_owned(),
                // A password is taken as it is: spaces may be part of it.
                password: fields[pass_col].clone(),
                realm: realm.to_owned(),
                display_name: get(columns.display_name),
                email: get(columns.email),
                extension: get(columns.extension),
                admin,
            },
        ));
        if accounts.len() > MAX_ROWS {
            return Err(vec![format!("more than {MAX_ROWS} accounts: split the file")]);
        }
    }
    if errors.is_empty() { Ok(accounts.into_iter().map(|(_, a)| a).collect()) } else { Err(errors) }
}

#[derive(Default)]
struct Columns {
    username: Option<usize>,
    password: Option<usize>,
    display_name: Option<usize>,
    email: Option<usize>,
    extension: Option<usize>,
    admin: Option<usize>,
}

/// The records of `text`, each with the line it starts on.
fn records(text: &str) -> Result<Vec<(usize, Vec<String>)>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                fields.push(std::mem::take(&mut field));
                out.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("line {start}: a quoted field is not closed"));
    }
    if !field.is_empty() || !fields.is_empty() {
        fields.push(field);
        out.push((start, fields));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_quotes_and_errors() {
        let text = "\u{feff}username,extension,password,admin,display_name\r\n\
                    alice,201,\"a, quoted \"\"secret\"\"\",yes,\"Alice\nLiddell\"\r\n\
                    bob,,bob-secret-9,,\n\n";
        let accounts = parse(text, "example.com").unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].password, "a, quoted \"secret\"");
        assert_eq!(accounts[0].extension.as_deref(), Some("201"));
        assert_eq!(accounts[0].display_name.as_deref(), Some("Alice\nLiddell"));
        assert!(accounts[0].admin && !accounts[1].admin);
        assert_eq!((accounts[1].extension.as_deref(), accounts[1].realm.as_str()), (None, "example.com"));

        assert!(parse("", "r").unwrap_err()[0].contains("empty"));
        assert!(parse("username,pin\n", "r").unwrap_err()[0].contains("unknown column \"pin\""));
        assert!(parse("username\nalice\n", "r").unwrap_err()[0].contains("required"));
        let errors = parse("username,password,admin\nalice,x\nbob,y,maybe\ncarol,\"open\n", "r").unwrap_err();
        assert_eq!(errors, ["line 4: a quoted field is not closed"]);
        let errors = parse("username,password,admin\nalice,x\nbob,y,maybe\n", "r").unwrap_err();
        assert_eq!(errors, ["line 2: 2 fields where the header has 3", "line 3: admin is \"maybe\": use yes or no"]);
    }
}

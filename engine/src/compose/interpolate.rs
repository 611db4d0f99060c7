//! Compose's variables: the `.env` file, `${VAR}` interpolation in every
//! value of the compose file, and splitting a command string into words
//! (compose splits `command: echo "a b"` as a shell would, without one).

use crate::error::{err, Error, Result};
use std::collections::BTreeMap;

/// Reads a `.env` file: `KEY=VALUE` lines, `export` allowed, `#` comments;
/// single quotes keep text as is, double quotes take `\n`-style escapes and
/// `${VAR}` of the variables before them.
pub fn dotenv(text: &str, outer: &dyn Fn(&str) -> Option<String>) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            return err(format!("line {}: unexpected character in variable name {line:?} (KEY=VALUE)", n + 1));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-') {
            return err(format!("line {}: unexpected character in variable name {key:?}", n + 1));
        }
        let value = value.trim();
        let value = if let Some(v) = value.strip_prefix('\'') {
            v.strip_suffix('\'').ok_or_else(|| Error(format!("line {}: unterminated quoted value", n + 1)))?.to_string()
        } else if let Some(v) = value.strip_prefix('"') {
            let v = v.strip_suffix('"').ok_or_else(|| Error(format!("line {}: unterminated quoted value", n + 1)))?;
            let v = v.replace("\\n", "\n").replace("\\t", "\t").replace("\\\"", "\"").replace("\\\\", "\\");
            let lookup = |k: &str| vars.get(k).cloned().or_else(|| outer(k));
            interpolate(&v, &lookup)?
        } else {
            // An unquoted value ends at ` #`.
            let v = value.find(" #").map_or(value, |i| value[..i].trim_end());
            let lookup = |k: &str| vars.get(k).cloned().or_else(|| outer(k));
            interpolate(v, &lookup)?
        };
        vars.insert(key.to_string(), value);
    }
    Ok(vars)
}

/// `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
/// `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, `$$` for a dollar; defaults
/// may hold variables themselves.
pub fn interpolate(s: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = rest.strip_prefix('{') {
            let end = closing_brace(r).ok_or_else(|| Error(format!("invalid interpolation format for {s:?}: a '${{' has no '}}'")))?;
            out.push_str(&braced(&r[..end], s, vars)?);
            rest = &r[end + 1..];
        } else {
            let n = rest.bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_').count();
            if n == 0 {
                out.push('$');
            } else {
                out.push_str(&vars(&rest[..n]).unwrap_or_default());
            }
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `}` that closes a `${` is, past nested ones.
fn closing_brace(s: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn braced(inner: &str, whole: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let n = inner.bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_').count();
    let (name, op) = inner.split_at(n);
    if name.is_empty() {
        return err(format!("invalid interpolation format for {whole:?}: no variable name in '${{{inner}}}'"));
    }
    let value = vars(name);
    let set = value.is_some();
    let nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    let (colon, op) = match op.strip_prefix(':') {
        Some(o) => (true, o),
        None => (false, op),
    };
    let present = if colon { nonempty } else { set };
    let Some(kind) = op.chars().next() else {
        if colon {
            return err(format!("invalid interpolation format for {whole:?}: '${{{inner}}}'"));
        }
        return Ok(value.unwrap_or_default());
    };
    let arg = &op[1..];
    match kind {
        '-' if present => Ok(value.unwrap_or_default()),
        '-' => interpolate(arg, vars),
        '+' if present => interpolate(arg, vars),
        '+' => Ok(String::new()),
        '?' if present => Ok(value.unwrap_or_default()),
        '?' => err(format!("required variable {name} is missing a value: {}", interpolate(arg, vars)?)),
        _ => err(format!("invalid interpolation format for {whole:?}: '${{{inner}}}'")),
    }
}

/// Words of a command string as a shell splits them: blanks separate,
/// quotes group, backslash escapes (nothing is expanded).
pub fn split(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return err(format!("unterminated quote in {s:?}")),
                        },
                        Some(c) => w.push(c),
                        None => return err(format!("unterminated quote in {s:?}")),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

/// Quotes `words` for `sh -c` so that it runs exactly them.
pub fn shell_quote(words: &[String]) -> String {
    let q = |w: &String| {
        if !w.is_empty() && w.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&c)) {
            w.clone()
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    words.iter().map(q).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables() {
        let vars = |k: &str| match k {
            "TAG" => Some("1.25".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let i = |s: &str| interpolate(s, &vars);
        assert_eq!(i("nginx:${TAG}").unwrap(), "nginx:1.25");
        assert_eq!(i("nginx:$TAG-x").unwrap(), "nginx:1.25-x");
        assert_eq!(i("${NOPE:-def}/${EMPTY:-e}/${EMPTY-e}/${NOPE-n}").unwrap(), "def/e//n");
        assert_eq!(i("${NOPE:-${TAG}}").unwrap(), "1.25");
        assert_eq!(i("${TAG:+set}${NOPE:+x}").unwrap(), "set");
        assert_eq!(i("cost $$5 ${NOPE}|").unwrap(), "cost $5 |");
        assert_eq!(i("${EMPTY?ok}").unwrap(), "");
        assert!(i("${NOPE:?must be set}").unwrap_err().0.contains("required variable NOPE is missing a value: must be set"));
        assert!(i("${TAG").unwrap_err().0.contains("invalid interpolation format"));
        assert!(i("${:-x}").is_err());
        assert!(i("${TAG:x}").is_err());
    }

    #[test]
    fn env_file() {
        let outer = |k: &str| (k == "HOME").then(|| "/root".to_string());
        let v = dotenv("# c\nexport A=1\nB='x $A'\nC=\"l1\\nl2 ${A}\"\nD=v # note\nE=${HOME}/d\n\n", &outer).unwrap();
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "x $A");
        assert_eq!(v["C"], "l1\nl2 1");
        assert_eq!(v["D"], "v");
        assert_eq!(v["E"], "/root/d");
        assert!(dotenv("A=1\njunk\n", &outer).unwrap_err().0.starts_with("line 2:"));
        assert!(dotenv("A='x\n", &outer).unwrap_err().0.contains("unterminated"));
    }

    #[test]
    fn words() {
        assert_eq!(split(r#"sh -c "echo \"a b\" $X" 'c d' e\ f"#).unwrap(), ["sh", "-c", "echo \"a b\" $X", "c d", "e f"]);
        assert_eq!(split("  a   ''  ").unwrap(), ["a", ""]);
        assert!(split("'open").is_err());
        let w: Vec<String> = ["echo", "it's", "a b", "$x", "plain"].map(String::from).to_vec();
        assert_eq!(shell_quote(&w), r#"echo 'it'\''s' 'a b' '$x' plain"#);
    }
}

//! `--format` templates: the part of Go's text/template that docker
//! scripts use, over the JSON docker prints (`inspect -f`, `ps --format`).
//!
//! Actions: `{{.A.B}}` (a missing key prints `<no value>`), `{{$v.A}}`,
//! `{{json X}}`, `{{index X K...}}`, `{{join X SEP}}`, `{{upper X}}`,
//! `{{lower X}}`, `{{len X}}`, `{{println X...}}`, `{{printf FMT X...}}`
//! (%s %d %v %q), `eq`, `ne`, `not`, `and`, `or`, pipes (`{{.Name | upper}}`), parentheses with a field
//! after them (`{{(index .Ports "80/tcp" 0).HostPort}}`), `{{if X}}`,
//! `{{else}}`, `{{range X}}` with `$v :=` or `$k, $v :=`, `{{end}}`,
//! and `{{-`/`-}}` trimming. Values print as Go prints them: lists as
//! `[a b]`, objects as `map[k:v]`.

use crate::error::{err, Error, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(String),
    If(String, Vec<Node>, Vec<Node>),
    Range(Vec<String>, String, Vec<Node>),
}

/// `values` rendered with `--format`, one line each; `None` when there is
/// no format (or docker's `json`, which is the default output).
pub fn lines(values: &[Value], format: Option<&str>) -> Result<Option<String>> {
    let Some(f) = format.filter(|f| !f.is_empty() && *f != "json") else { return Ok(None) };
    let t = Template::parse(f)?;
    let mut out = String::new();
    for v in values {
        out.push_str(&t.render(v)?);
        out.push('\n');
    }
    Ok(Some(out))
}

/// What `inspect` prints: `values` through `--format`, else docker's
/// indented JSON list.
pub fn inspect_text(values: &[Value], format: Option<&str>) -> Result<String> {
    Ok(match lines(values, format)? {
        Some(text) => text,
        None => serde_json::to_string_pretty(values).unwrap_or_default() + "\n",
    })
}

/// docker's list `--format` (`ps`, `images`) for `rows`: `None` for the
/// default table (no format, or `table` alone); `json` one JSON object a
/// line; `table TEMPLATE` a header (each `{{.Field}}` named by
/// `headers`, else upper-cased) and the rows, columns split at tabs and
/// aligned; any other template, the rows as rendered.
pub fn list(rows: &[Value], format: Option<&str>, headers: &[(&str, &str)]) -> Result<Option<String>> {
    let Some(f) = format.map(str::trim).filter(|f| !f.is_empty() && *f != "table") else { return Ok(None) };
    if f == "json" || f == "{{json .}}" {
        return Ok(Some(rows.iter().map(|r| format!("{r}\n")).collect()));
    }
    let Some(t) = f.strip_prefix("table ") else { return lines(rows, Some(f)).map(|o| o.or(Some(String::new()))) };
    let t = t.replace("\\t", "\t");
    let template = Template::parse(&t)?;
    let mut header = t.clone();
    for node in &template.nodes {
        if let Node::Action(a) = node {
            let name = a.trim_start_matches('.');
            let title = headers.iter().find(|(k, _)| *k == name).map(|(_, h)| h.to_string()).unwrap_or_else(|| name.to_uppercase());
            header = header.replacen(&format!("{{{{{a}}}}}"), &title, 1);
        }
    }
    let mut table: Vec<Vec<String>> = vec![header.split('\t').map(String::from).collect()];
    for r in rows {
        table.push(template.render(r)?.split('\t').map(String::from).collect());
    }
    Ok(Some(crate::commands::images::tabulate(&table)))
}

/// `list` for a command whose plain table is `default` (a `table ...`
/// template): no format, or `table` alone, prints that.
pub fn list_or(rows: &[Value], format: Option<&str>, default: &str, headers: &[(&str, &str)]) -> Result<String> {
    let format = format.filter(|f| f.trim() != "table").unwrap_or(default);
    Ok(list(rows, Some(format), headers)?.unwrap_or_default())
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

/// Splits `src` into text and `{{...}}` actions, applying trim markers.
fn lex(src: &str) -> Result<Vec<(bool, String)>> {
    let mut out: Vec<(bool, String)> = Vec::new();
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| Error(format!("template: unclosed action in {src:?}")))?;
        let mut inner = &after[..end];
        if let Some(t) = inner.strip_prefix("- ") {
            text = text.trim_end().to_string();
            inner = t;
        }
        let trim_next = inner.ends_with(" -");
        if trim_next {
            inner = &inner[..inner.len() - 2];
        }
        if !text.is_empty() {
            out.push((false, text));
        }
        out.push((true, inner.trim().to_string()));
        rest = &after[end + 2..];
        if trim_next {
            rest = rest.trim_start();
        }
    }
    if !rest.is_empty() {
        out.push((false, rest.to_string()));
    }
    Ok(out)
}

/// Builds the tree of `tokens[*i..]` up to an `end` or `else` (returned).
fn tree(tokens: &[(bool, String)], i: &mut usize) -> Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while *i < tokens.len() {
        let (action, s) = &tokens[*i];
        *i += 1;
        if !action {
            nodes.push(Node::Text(s.clone()));
            continue;
        }
        let word = s.split_whitespace().next().unwrap_or("");
        match word {
            "end" | "else" => return Ok((nodes, Some(word.to_string()))),
            "if" => {
                let (then, stop) = tree(tokens, i)?;
                let other = if stop.as_deref() == Some("else") { tree(tokens, i)?.0 } else { Vec::new() };
                if stop.is_none() {
                    return err(format!("template: {{{{{s}}}}} has no {{{{end}}}}"));
                }
                nodes.push(Node::If(s[2..].trim().to_string(), then, other));
            }
            "range" => {
                let spec = s[5..].trim();
                let (vars, pipe) = match spec.split_once(":=") {
                    Some((v, p)) => (v.split(',').map(|x| x.trim().to_string()).collect(), p.trim().to_string()),
                    None => (Vec::new(), spec.to_string()),
                };
                if vars.iter().any(|v: &String| !v.starts_with('$')) || vars.len() > 2 {
                    return err(format!("template: bad range variables in {{{{{s}}}}}"));
                }
                let (body, stop) = tree(tokens, i)?;
                if stop.as_deref() != Some("end") {
                    return err(format!("template: {{{{{s}}}}} has no {{{{end}}}}"));
                }
                nodes.push(Node::Range(vars, pipe, body));
            }
            _ => nodes.push(Node::Action(s.clone())),
        }
    }
    Ok((nodes, None))
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        let tokens = lex(src)?;
        let mut i = 0;
        let (nodes, stop) = tree(&tokens, &mut i)?;
        if let Some(s) = stop {
            return err(format!("template: unexpected {{{{{s}}}}} in {src:?}"));
        }
        Ok(Template { nodes })
    }

    /// Renders the template for `data`.
    pub fn render(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        let mut scope = Scope { root: data, dot: data.clone(), vars: Vec::new() };
        run(&self.nodes, &mut scope, &mut out)?;
        Ok(out)
    }
}

struct Scope<'a> {
    root: &'a Value,
    dot: Value,
    vars: Vec<(String, Value)>,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn run(nodes: &[Node], s: &mut Scope, out: &mut String) -> Result<()> {
    for n in nodes {
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Action(a) => {
                // An assignment or a bare value; nothing else prints.
                let v = eval_pipe(a, s)?;
                out.push_str(&show(&v));
            }
            Node::If(p, then, other) => {
                let v = eval_pipe(p, s)?;
                run(if truthy(&v) { then } else { other }, s, out)?;
            }
            Node::Range(vars, p, body) => {
                let v = eval_pipe(p, s)?;
                let items: Vec<(Value, Value)> = match v {
                    Value::Array(a) => a.into_iter().enumerate().map(|(i, x)| (Value::from(i), x)).collect(),
                    // Go ranges over maps in key order.
                    Value::Object(o) => {
                        let mut kv: Vec<_> = o.into_iter().map(|(k, x)| (Value::String(k), x)).collect();
                        kv.sort_by(|a, b| a.0.as_str().cmp(&b.0.as_str()));
                        kv
                    }
                    Value::Null => Vec::new(),
                    other => return err(format!("template: range can't iterate over {}", show(&other))),
                };
                let saved = (s.dot.clone(), s.vars.len());
                for (k, x) in items {
                    match vars.as_slice() {
                        [v] => s.vars.push((v.clone(), x.clone())),
                        [kn, vn] => {
                            s.vars.push((kn.clone(), k));
                            s.vars.push((vn.clone(), x.clone()));
                        }
                        _ => {}
                    }
                    s.dot = x;
                    run(body, s, out)?;
                    s.vars.truncate(saved.1);
                }
                s.dot = saved.0;
            }
        }
    }
    Ok(())
}

/// Go's `%v` of a value.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut kv: Vec<_> = o.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            format!("map[{}]", kv.iter().map(|(k, x)| format!("{k}:{}", show(x))).collect::<Vec<_>>().join(" "))
        }
        other => other.to_string(),
    }
}

/// Words of an action: quoted strings, parenthesized groups, the rest.
fn words(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' => i += 1,
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if i >= b.len() {
                    return err(format!("template: unterminated string in {s:?}"));
                }
                i += 1;
                out.push(s[start..i].to_string());
            }
            b'(' => {
                let start = i;
                let mut depth = 0;
                while i < b.len() {
                    match b[i] {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return err(format!("template: unclosed ( in {s:?}"));
                }
                i += 1;
                // A field path may follow the group: (x).Field
                while i < b.len() && b[i] != b' ' {
                    i += 1;
                }
                out.push(s[start..i].to_string());
            }
            _ => {
                let start = i;
                while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                out.push(s[start..i].to_string());
            }
        }
    }
    Ok(out)
}

fn split_pipes(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quoted, mut start) = (Vec::new(), 0, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '|' if !quoted && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn eval_pipe(p: &str, s: &mut Scope) -> Result<Value> {
    if let Some((var, rest)) = p.split_once(":=").filter(|(v, _)| v.trim().starts_with('$') && !v.contains('"')) {
        let v = eval_pipe(rest.trim(), s)?;
        s.vars.push((var.trim().to_string(), v));
        return Ok(Value::String(String::new()));
    }
    let mut carried: Option<Value> = None;
    for stage in split_pipes(p) {
        let mut args: Vec<Value> = Vec::new();
        let w = words(stage.trim())?;
        let Some((head, rest)) = w.split_first() else { return err(format!("template: empty command in {p:?}")) };
        for a in rest {
            args.push(arg(a, s)?);
        }
        if let Some(c) = carried.take() {
            args.push(c);
        }
        carried = Some(match head.as_str() {
            "json" | "upper" | "lower" | "len" | "index" | "join" | "println" | "printf" | "print" | "eq" | "ne" | "not" | "and"
            | "or" => call(head, &args)?,
            _ if args.is_empty() => arg(head, s)?,
            _ => return err(format!("template: function {head:?} not defined")),
        });
    }
    Ok(carried.unwrap_or(Value::Null))
}

fn field(v: &Value, path: &str) -> Value {
    let mut cur = v.clone();
    for k in path.split('.').filter(|k| !k.is_empty()) {
        cur = match cur {
            Value::Object(mut o) => o.remove(k).unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    cur
}

fn arg(a: &str, s: &mut Scope) -> Result<Value> {
    if a.starts_with('"') {
        return serde_json::from_str(a).map_err(|_| Error(format!("template: bad string {a}")));
    }
    if let Some(inner) = a.strip_prefix('(') {
        let close = inner.rfind(')').ok_or_else(|| Error(format!("template: unclosed ( in {a}")))?;
        let v = eval_pipe(&inner[..close], s)?;
        return Ok(field(&v, &inner[close + 1..]));
    }
    if a == "." {
        return Ok(s.dot.clone());
    }
    if let Some(path) = a.strip_prefix('.') {
        return Ok(field(&s.dot, path));
    }
    if let Some(var) = a.strip_prefix('$') {
        let (name, path) = var.split_once('.').unwrap_or((var, ""));
        if name.is_empty() {
            return Ok(field(s.root, path));
        }
        let v = s.vars.iter().rev().find(|(n, _)| n[1..] == *name).map(|(_, v)| v.clone());
        return match v {
            Some(v) => Ok(field(&v, path)),
            None => err(format!("template: undefined variable ${name}")),
        };
    }
    match a {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        "nil" => Ok(Value::Null),
        n => n.parse::<i64>().map(Value::from).or_else(|_| err(format!("template: can't evaluate {n:?}"))),
    }
}

fn call(f: &str, args: &[Value]) -> Result<Value> {
    let one = || args.first().cloned().ok_or_else(|| Error(format!("template: {f} needs an argument")));
    Ok(match f {
        "json" => Value::String(serde_json::to_string(&one()?).unwrap_or_default()),
        "upper" => Value::String(show(&one()?).to_uppercase()),
        "lower" => Value::String(show(&one()?).to_lowercase()),
        "len" => Value::from(match one()? {
            Value::Array(a) => a.len(),
            Value::Object(o) => o.len(),
            Value::String(s) => s.len(),
            v => return err(format!("template: len of {}", show(&v))),
        }),
        "index" => {
            let mut cur = one()?;
            for k in &args[1..] {
                cur = match (cur, k) {
                    (Value::Object(mut o), Value::String(k)) => o.remove(k).unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                        a.get(i).cloned().ok_or_else(|| Error(format!("template: index out of range: {i}")))?
                    }
                    (Value::Null, _) => Value::Null,
                    (c, k) => return err(format!("template: can't index {} with {}", show(&c), show(k))),
                };
            }
            cur
        }
        "join" => match args {
            [Value::Array(a), Value::String(sep)] => Value::String(a.iter().map(show).collect::<Vec<_>>().join(sep)),
            _ => return err("template: join takes a list and a separator"),
        },
        "eq" | "ne" => {
            let Some((a, rest)) = args.split_first().filter(|(_, r)| !r.is_empty()) else { return err(format!("template: {f} needs two arguments")) };
            let same = rest.iter().any(|b| a == b || (a.is_number() && b.is_number() && a.as_f64() == b.as_f64()));
            Value::Bool(same == (f == "eq"))
        }
        "not" => Value::Bool(!truthy(&one()?)),
        // Go's: the first falsy (and) or truthy (or) argument, else the last.
        "and" => args.iter().find(|a| !truthy(a)).or(args.last()).cloned().unwrap_or(Value::Null),
        "or" => args.iter().find(|a| truthy(a)).or(args.last()).cloned().unwrap_or(Value::Null),
        "print" => Value::String(args.iter().map(show).collect::<Vec<_>>().join("")),
        "println" => Value::String(args.iter().map(show).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            let Some((Value::String(fmt), rest)) = args.split_first() else { return err("template: printf needs a format string") };
            let mut out = String::new();
            let mut rest = rest.iter();
            let mut chars = fmt.chars();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('s' | 'd' | 'v') => out.push_str(&rest.next().map(show).unwrap_or_else(|| "%!v(MISSING)".into())),
                    Some('q') => out.push_str(&rest.next().map(|v| format!("{:?}", show(v))).unwrap_or_default()),
                    Some(o) => return err(format!("template: printf verb %{o} is not supported (%s %d %v %q)")),
                    None => out.push('%'),
                }
            }
            Value::String(out)
        }
        _ => unreachable!("listed in eval_pipe"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn what_docker_scripts_write() {
        let v = json!({
            "Id": "abc", "Name": "/web",
            "State": {"Status": "running", "Running": true, "Pid": 42, "ExitCode": 0},
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"x": "1", "a": "2"}},
            "NetworkSettings": {"IPAddress": "10.88.0.2", "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": null},
                                "Networks": {"bridge": {"IPAddress": "10.88.0.2"}}},
            "Mounts": [{"Source": "/a", "Destination": "/b"}, {"Source": "/c", "Destination": "/d"}]
        });
        assert_eq!(r("{{.State.Status}} {{.State.Pid}} {{.State.Running}}", &v), "running 42 true");
        assert_eq!(r("{{.NetworkSettings.IPAddress}}", &v), "10.88.0.2");
        assert_eq!(r("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", &v), "10.88.0.2");
        assert_eq!(r("{{(index (index .NetworkSettings.Ports \"80/tcp\") 0).HostPort}}", &v), "8080");
        assert_eq!(r("{{range $p, $conf := .NetworkSettings.Ports}}{{$p}}={{if $conf}}{{(index $conf 0).HostPort}}{{else}}-{{end}} {{end}}", &v), "53/udp=- 80/tcp=8080 ");
        assert_eq!(r("{{json .Config.Labels}}", &v), r#"{"a":"2","x":"1"}"#);
        assert_eq!(r("{{.Config.Env}} {{.Config.Labels}}", &v), "[A=1 B=2] map[a:2 x:1]");
        assert_eq!(r("{{join .Config.Env \",\"}}|{{len .Mounts}}|{{.Name | upper}}", &v), "A=1,B=2|2|/WEB");
        assert_eq!(r("{{range .Mounts}}{{.Source}}:{{.Destination}}\n{{end}}", &v), "/a:/b\n/c:/d\n");
        assert_eq!(r("{{- range $i, $m := .Mounts -}} {{$i}}{{$m.Source}} {{- end}}", &v), "0/a1/c");
        assert_eq!(r("{{printf \"%s has %d\" .Name .State.Pid}} {{.Nope}} {{index .Config.Labels \"zz\"}}", &v), "/web has 42 <no value> <no value>");
        assert_eq!(r("{{if eq .State.Status \"running\"}}up{{end}} {{if ne .State.Pid 42}}x{{else}}y{{end}} {{not .State.Running}}", &v), "up y false");
        assert_eq!(r("{{if and .State.Running (eq .State.ExitCode 0)}}ok{{end}} {{or .Nope \"dflt\"}}", &v), "ok dflt");
    }

    #[test]
    fn list_formats() {
        let rows = [json!({"ID": "abc", "Names": "web", "Status": "Up 1 second"}), json!({"ID": "defgh", "Names": "db", "Status": "Exited (0)"})];
        let h = [("ID", "CONTAINER ID"), ("Names", "NAMES")];
        assert_eq!(list(&rows, None, &h).unwrap(), None);
        assert_eq!(list(&rows, Some("table"), &h).unwrap(), None);
        assert_eq!(list(&rows, Some("{{.Names}}"), &h).unwrap().unwrap(), "web\ndb\n");
        assert_eq!(list(&rows, Some("json"), &h).unwrap().unwrap().lines().count(), 2);
        let t = list(&rows, Some("table {{.ID}}\\t{{.Names}}\t{{.Status}}"), &h).unwrap().unwrap();
        assert_eq!(t, "CONTAINER ID   NAMES     STATUS\nabc            web       Up 1 second\ndefgh          db        Exited (0)\n");
    }

    #[test]
    fn errors_say_what() {
        let e = |t: &str| Template::parse(t).and_then(|t| t.render(&json!({"a": [1]}))).unwrap_err().0;
        assert!(e("{{.a").contains("unclosed action"));
        assert!(e("{{if .a}}x").contains("has no {{end}}"));
        assert!(e("{{end}}").contains("unexpected {{end}}"));
        assert!(e("{{nosuch .a}}").contains("function \"nosuch\" not defined"));
        assert!(e("{{index .a 3}}").contains("index out of range: 3"));
        assert!(e("{{$x}}").contains("undefined variable $x"));
    }
}

//! `engine compose`: docker compose (v2) over the engine, daemonless.
//! The project model is read with the engine's small YAML reader; every
//! service becomes the flags of the engine's own `create`.

pub mod commands;
pub mod interpolate;
pub mod project;

use serde_json::Value;

/// `v` as block YAML, as `compose config` prints the model.
pub fn emit(v: &Value) -> String {
    let mut out = String::new();
    block(v, 0, &mut out);
    out
}

fn block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                out.push_str(&format!("{pad}{}:", scalar(&Value::String(k.clone()))));
                nested(x, indent, out);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for x in a {
                if matches!(x, Value::Object(m) if !m.is_empty()) {
                    // `- key: value` with the other keys under the first.
                    let mut inner = String::new();
                    block(x, indent + 2, &mut inner);
                    out.push_str(&format!("{pad}- {}", &inner[indent + 2..]));
                } else {
                    out.push_str(&format!("{pad}-"));
                    nested(x, indent, out);
                }
            }
        }
        x => out.push_str(&format!("{pad}{}\n", scalar(x))),
    }
}

fn nested(x: &Value, indent: usize, out: &mut String) {
    match x {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            block(x, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block(x, indent + 2, out);
        }
        x => out.push_str(&format!(" {}\n", scalar(x))),
    }
}

/// A scalar, double-quoted (JSON's escapes are YAML's) when plain would
/// read back as something else.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::String(s) => {
            let special = s.is_empty()
                || s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@` ".contains(c))
                || s.ends_with([' ', ':'])
                || s.contains(": ")
                || s.contains(" #")
                || s.chars().any(char::is_control)
                || ["true", "false", "null", "~", "yes", "no", "on", "off"].contains(&s.to_lowercase().as_str())
                || s.parse::<f64>().is_ok()
                || s.starts_with("0x")
                || s.starts_with("0o")
                || s.starts_with('.');
            if special {
                serde_json::to_string(s).unwrap_or_default()
            } else {
                s.clone()
            }
        }
        x => x.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn emitted_yaml_reads_back() {
        let v = serde_json::json!({"name": "demo", "services": {"web": {"image": "nginx:1.25", "ports": ["8080:80", "53:53/udp"],
            "command": ["sh", "-c", "echo 'a: b' # no"], "environment": {"A": "1", "B": "", "C": "true", "D": null}, "scale": 2,
            "healthcheck": {"test": ["CMD", "true"]}, "x": [], "y": {}, "nested": [{"a": 1, "b": [true]}, ["z"]], "multi": "l1\nl2"}}});
        let text = super::emit(&v);
        assert!(text.contains("    image: nginx:1.25\n"), "{text}");
        assert_eq!(crate::yaml::parse(&text).unwrap(), v, "{text}");
    }
}

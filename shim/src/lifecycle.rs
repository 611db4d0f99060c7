//! docker's `events`: one JSON line per lifecycle change (of a container,
//! a network, a volume) in `<root>/events.jsonl`, in docker's shape. A line
//! is one O_APPEND write, so the engine's and the shims' lines never mix;
//! past 1 MiB the file moves to `.1`. The engine writes most events; a
//! container's shim writes the `start` and `die` that only it sees
//! (restarts included). Built as text: serde_json's Value would cost the
//! shim's size budget more than this.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub const FILE: &str = "events.jsonl";
const MAX: u64 = 1 << 20;

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Appends one event; best effort (a full disk must not stop a container).
/// Attributes are written sorted by name, as docker shows them.
pub fn emit(root: &Path, kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let sorted: BTreeMap<&str, &str> = attrs.iter().copied().collect();
    let attributes: Vec<String> = sorted.iter().map(|(k, v)| format!("{}:{}", quoted(k), quoted(v))).collect();
    let (kind_q, action_q, id_q) = (quoted(kind), quoted(action), quoted(id));
    // docker's older fields, still in its JSON, for containers
    let old = if kind == "container" { format!("\"status\":{action_q},\"id\":{id_q},\"from\":{},", quoted(sorted.get("image").unwrap_or(&""))) } else { String::new() };
    let line = format!(
        "{{{old}\"Type\":{kind_q},\"Action\":{action_q},\"Actor\":{{\"ID\":{id_q},\"Attributes\":{{{}}}}},\"scope\":\"local\",\"time\":{},\"timeNano\":{}}}\n",
        attributes.join(","),
        t.as_secs(),
        t.as_nanos()
    );
    let path = root.join(FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > MAX) {
        let _ = std::fs::rename(&path, root.join(format!("{FILE}.1")));
    }
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&path) {
        let _ = f.write_all(line.as_bytes());
    }
}

#[derive(serde::Deserialize, Default)]
struct Record {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// A container event from its state dir (`<root>/containers/<id>`): its
/// labels, image and name from its record, then `extra`.
pub fn emit_container(state_dir: &Path, action: &str, extra: &[(&str, &str)]) {
    let (Some(root), Some(id)) = (state_dir.parent().and_then(Path::parent), state_dir.file_name().and_then(|n| n.to_str())) else { return };
    let rec: Record = std::fs::read(state_dir.join("container.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
    let mut attrs: Vec<(&str, &str)> = rec.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    attrs.extend([("image", rec.image.as_str()), ("name", rec.name.as_str())]);
    attrs.extend_from_slice(extra);
    emit(root, "container", action, id, &attrs);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_docker_shaped_json() {
        let root = std::env::temp_dir().join(format!("skiff-shim-lifecycle-{}", std::process::id()));
        std::fs::create_dir_all(root.join("containers/abc")).unwrap();
        std::fs::write(root.join("containers/abc/container.json"), r#"{"name":"web","image":"busybox","labels":{"a \"q\"":"1"}}"#).unwrap();
        emit_container(&root.join("containers/abc"), "die", &[("exitCode", "3")]);
        emit(&root, "volume", "create", "data", &[("driver", "local")]);
        let text = std::fs::read_to_string(root.join(FILE)).unwrap();
        let v: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(v[0]["Action"], "die");
        assert_eq!(v[0]["status"], "die");
        assert_eq!(v[0]["from"], "busybox");
        assert_eq!(v[0]["Actor"]["Attributes"], serde_json::json!({"a \"q\"": "1", "exitCode": "3", "image": "busybox", "name": "web"}));
        assert!(v[0]["timeNano"].as_u64().unwrap() > 1_600_000_000_000_000_000);
        assert_eq!((v[1]["Type"].as_str(), v[1]["Actor"]["ID"].as_str(), v[1].get("status")), (Some("volume"), Some("data"), None));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

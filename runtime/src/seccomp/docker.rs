//! Docker's seccomp profile format (moby's profiles/seccomp): what `docker
//! run --security-opt seccomp=PATH` reads and what Docker's default profile
//! is written in. It is `linux.seccomp` plus per-rule conditions: a rule
//! applies only if the container has (`includes.caps`) or lacks
//! (`excludes.caps`) capabilities, runs on given architectures (Go names:
//! amd64, arm64...), or on a kernel at least `minKernel`; and `archMap`
//! lists each native architecture with the ones it can also run.
//!
//! [`to_oci`] settles those conditions for one container, as moby's
//! setupSeccomp does, and gives the plain `linux.seccomp` a runtime takes.

use crate::error::{err, Result};
use serde_json::{json, Map, Value};

/// What the profile's conditions are judged against.
pub struct Target<'a> {
    /// The container's bounding capabilities (`CAP_...`).
    pub caps: &'a [String],
    /// Go's name of the architecture (`amd64`, `arm64`, ...).
    pub goarch: &'a str,
    /// The kernel's (major, minor).
    pub kernel: (u32, u32),
}

/// Go's name for the architecture this program was built for.
pub fn host_goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The running kernel's (major, minor); (0, 0) if uname cannot tell.
pub fn host_kernel() -> (u32, u32) {
    let release = nix::sys::utsname::uname().map(|u| u.release().to_string_lossy().into_owned()).unwrap_or_default();
    parse_version(&release).unwrap_or((0, 0))
}

/// "6.18.44-fc" -> (6, 18); "4.8" -> (4, 8).
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| if m.is_empty() { Some(0) } else { m.parse().ok() })?;
    Some((major, minor))
}

/// libseccomp's name of a Go architecture's native ABI.
fn native_arch(goarch: &str) -> Option<&'static str> {
    Some(match goarch {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "mips64" => "SCMP_ARCH_MIPS64",
        "loong64" => "SCMP_ARCH_LOONGARCH64",
        _ => return None,
    })
}

fn strings<'a>(v: Option<&'a Value>, what: &str) -> Result<Vec<&'a str>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().ok_or(())).collect::<std::result::Result<_, _>>().or_else(|_| err(format!("{what} must be a list of strings"))),
        Some(_) => err(format!("{what} must be a list of strings")),
    }
}

/// Whether condition block `c` (`includes` or `excludes`) of rule `i` holds,
/// each of its parts: `None` when the block is absent or empty.
fn holds(c: Option<&Value>, t: &Target, i: usize, which: &str) -> Result<Option<[Option<bool>; 3]>> {
    let Some(c) = c.filter(|c| !c.is_null()) else { return Ok(None) };
    let Some(c) = c.as_object() else { return err(format!("syscalls[{i}].{which} must be an object")) };
    let arches = strings(c.get("arches"), &format!("syscalls[{i}].{which}.arches"))?;
    let caps = strings(c.get("caps"), &format!("syscalls[{i}].{which}.caps"))?;
    let kernel = match c.get("minKernel") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => match parse_version(s) {
            Some(v) if s.chars().all(|c| c.is_ascii_digit() || c == '.') => Some(t.kernel >= v),
            _ => return err(format!("syscalls[{i}].{which}.minKernel: invalid kernel version {s:?}")),
        },
        Some(_) => return err(format!("syscalls[{i}].{which}.minKernel must be a string")),
    };
    let has = |c: &str| t.caps.iter().any(|x| x == c);
    Ok(Some([
        (!arches.is_empty()).then(|| arches.contains(&t.goarch)),
        // includes: all of them; excludes: any of them (moby's reading).
        (!caps.is_empty()).then(|| if which == "includes" { caps.iter().all(|c| has(c)) } else { caps.iter().any(|c| has(c)) }),
        kernel,
    ]))
}

/// `profile` (Docker's format; a plain `linux.seccomp` is one too) as the
/// `linux.seccomp` of a container judged by `t`. `None`: the profile names
/// neither a default action nor rules, which Docker takes as no filter.
pub fn to_oci(profile: &Value, t: &Target) -> Result<Option<Value>> {
    let Some(p) = profile.as_object() else { return err("a seccomp profile must be a JSON object") };
    let rules = match p.get("syscalls") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return err("syscalls must be a list"),
    };
    let default = p.get("defaultAction").and_then(Value::as_str).unwrap_or("");
    if default.is_empty() && rules.is_empty() {
        return Ok(None);
    }
    if default.is_empty() {
        return err("the seccomp profile has no defaultAction");
    }
    let listed = strings(p.get("architectures"), "architectures")?;
    let arch_map = match p.get("archMap") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return err("archMap must be a list"),
    };
    if !listed.is_empty() && !arch_map.is_empty() {
        return err("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
    }
    let mut arches: Vec<Value> = listed.iter().map(|a| json!(a)).collect();
    if let Some(native) = native_arch(t.goarch) {
        for (i, m) in arch_map.iter().enumerate() {
            if m.get("architecture").and_then(Value::as_str) == Some(native) {
                arches.push(json!(native));
                arches.extend(strings(m.get("subArchitectures"), &format!("archMap[{i}].subArchitectures"))?.into_iter().map(|a| json!(a)));
            }
        }
    }
    let mut out = Map::new();
    out.insert("defaultAction".into(), json!(default));
    for key in ["defaultErrnoRet", "flags", "listenerPath", "listenerMetadata"] {
        if let Some(v) = p.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if !arches.is_empty() {
        out.insert("architectures".into(), Value::Array(arches));
    }
    let mut calls = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let Some(r) = r.as_object() else { return err(format!("syscalls[{i}] must be an object")) };
        let names = match (r.get("name").and_then(Value::as_str), strings(r.get("names"), &format!("syscalls[{i}].names"))?) {
            (Some(_), n) if !n.is_empty() => {
                return err(format!("syscalls[{i}]: use either 'name' or 'names', not both"));
            }
            (Some(n), _) => vec![n],
            (None, n) if n.is_empty() => return err(format!("syscalls[{i}] names no syscall")),
            (None, n) => n,
        };
        // Excluded if any part of `excludes` holds; kept only if every part
        // of `includes` holds.
        if let Some(ex) = holds(r.get("excludes"), t, i, "excludes")? {
            if ex.contains(&Some(true)) {
                continue;
            }
        }
        if let Some(inc) = holds(r.get("includes"), t, i, "includes")? {
            if inc.contains(&Some(false)) {
                continue;
            }
        }
        let Some(action) = r.get("action").and_then(Value::as_str) else {
            return err(format!("syscalls[{i}] ({}) has no action", names.join(", ")));
        };
        let mut call = json!({"names": names, "action": action});
        for key in ["errnoRet", "args"] {
            if let Some(v) = r.get(key).filter(|v| !v.is_null()) {
                call[key] = v.clone();
            }
        }
        calls.push(call);
    }
    out.insert("syscalls".into(), Value::Array(calls));
    Ok(Some(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: &[&str], goarch: &'static str, kernel: (u32, u32)) -> (Vec<String>, &'static str, (u32, u32)) {
        (caps.iter().map(|c| c.to_string()).collect(), goarch, kernel)
    }

    fn names(v: &Value) -> Vec<String> {
        v["syscalls"].as_array().unwrap().iter().map(|c| c["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect::<Vec<_>>().join(",")).collect()
    }

    fn convert(p: &Value, caps: &[&str], goarch: &'static str, kernel: (u32, u32)) -> Result<Option<Value>> {
        let (caps, goarch, kernel) = target(caps, goarch, kernel);
        to_oci(p, &Target { caps: &caps, goarch, kernel })
    }

    #[test]
    fn conditions_are_settled_as_moby_does() {
        let p = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
            ],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {"name": "arch_prctl", "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["both"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_BPF"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
                 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]
        });
        let v = convert(&p, &["CAP_CHOWN"], "amd64", (6, 1)).unwrap().unwrap();
        assert_eq!(v["architectures"], json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]));
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(names(&v), ["read,write", "arch_prctl", "clone", "ptrace", "clone3"]);
        assert_eq!(v["syscalls"][2]["args"][0]["value"], 2114060288u64);
        assert_eq!(v["syscalls"][4]["errnoRet"], 38);

        let v = convert(&p, &["CAP_SYS_ADMIN"], "arm64", (4, 4)).unwrap().unwrap();
        assert_eq!(v["architectures"], json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]));
        assert_eq!(names(&v), ["read,write", "mount"]);
        let v = convert(&p, &["CAP_SYS_ADMIN", "CAP_BPF"], "arm64", (4, 8)).unwrap().unwrap();
        assert_eq!(names(&v), ["read,write", "mount", "both", "ptrace"]);
    }

    #[test]
    fn plain_linux_seccomp_passes_through() {
        let p = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                       "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
        let v = convert(&p, &[], "amd64", (6, 1)).unwrap().unwrap();
        assert_eq!(v["architectures"], json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(v["flags"], json!(["SECCOMP_FILTER_FLAG_LOG"]));
        assert_eq!(v["syscalls"], p["syscalls"]);
        assert!(convert(&json!({}), &[], "amd64", (6, 1)).unwrap().is_none());
    }

    #[test]
    fn bad_profiles_are_named() {
        let bad = |p: Value| convert(&p, &[], "amd64", (6, 1)).unwrap_err().0;
        assert!(bad(json!([])).contains("JSON object"));
        assert!(bad(json!({"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]})).contains("no defaultAction"));
        let both = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                          "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]});
        assert!(bad(both).contains("use either 'architectures' or 'archMap'"));
        let e = bad(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(e.contains("syscalls[0]") && e.contains("'name' or 'names'"), "{e}");
        let e = bad(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "four"}}]}));
        assert!(e.contains("invalid kernel version \"four\""), "{e}");
        let e = bad(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"]}]}));
        assert!(e.contains("(mkdir) has no action"), "{e}");
        assert!(bad(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": "mkdir", "action": "SCMP_ACT_ERRNO"}]})).contains("list of strings"));
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.18.44-fc-v1300"), Some((6, 18)));
        assert_eq!(parse_version("4.8"), Some((4, 8)));
        assert_eq!(parse_version("5"), Some((5, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(host_kernel() >= (3, 0));
    }
}

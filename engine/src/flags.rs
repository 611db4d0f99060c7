//! docker's flag syntax: `-d`, combined `-dit`, `-p 80:80` / `-p80:80`,
//! `--name x` / `--name=x`, repeatable flags, `--` and (for run/create/exec)
//! options ending at the first positional argument.

use crate::error::{err, Result};

/// One accepted flag.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub value: bool,
}

pub const fn flag(long: &'static str, short: Option<char>, value: bool) -> Flag {
    Flag { long, short, value }
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub values: Vec<(&'static str, String)>,
    pub args: Vec<String>,
}

impl Parsed {
    /// The last value given for `long`.
    pub fn get(&self, long: &str) -> Option<&str> {
        self.values.iter().rev().find(|(k, _)| *k == long).map(|(_, v)| v.as_str())
    }

    /// Every value given for `long`, in order.
    pub fn all(&self, long: &str) -> Vec<&str> {
        self.values.iter().filter(|(k, _)| *k == long).map(|(_, v)| v.as_str()).collect()
    }

    /// A boolean flag: present and not `=false`.
    pub fn on(&self, long: &str) -> bool {
        self.get(long).is_some_and(|v| v != "false")
    }
}

/// Parses `args` against `flags`. With `stop_at_positional`, everything from
/// the first positional argument on is positional (the image and command).
pub fn parse(flags: &[Flag], args: &[String], stop_at_positional: bool, cmd: &str) -> Result<Parsed> {
    let mut p = Parsed::default();
    let mut i = 0;
    let unknown = |f: &str| err(format!("unknown flag: {f}\nSee 'engine {cmd} --help'."));
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            p.args.extend(args[i + 1..].iter().cloned());
            break;
        }
        if a == "--help" && !flags.iter().any(|f| f.long == "help") {
            // docker prints help on stdout and succeeds
            print!("{}", help(cmd, flags));
            std::process::exit(0);
        }
        if let Some(long) = a.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(f) = flags.iter().find(|f| f.long == name) else { return unknown(a) };
            let v = if f.value {
                match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        match args.get(i) {
                            Some(v) => v.clone(),
                            None => return err(format!("flag needs an argument: --{name}")),
                        }
                    }
                }
            } else {
                inline.unwrap_or_else(|| "true".into())
            };
            p.values.push((f.long, v));
            i += 1;
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                let Some(f) = flags.iter().find(|f| f.short == Some(c)) else { return unknown(&format!("-{c}")) };
                if f.value {
                    let rest: String = chars[j + 1..].iter().collect();
                    let v = if !rest.is_empty() {
                        rest.strip_prefix('=').unwrap_or(&rest).to_string()
                    } else {
                        i += 1;
                        match args.get(i) {
                            Some(v) => v.clone(),
                            None => return err(format!("flag needs an argument: -{c}")),
                        }
                    };
                    p.values.push((f.long, v));
                    break;
                }
                p.values.push((f.long, "true".into()));
                j += 1;
            }
            i += 1;
            continue;
        }
        if stop_at_positional {
            p.args.extend(args[i..].iter().cloned());
            break;
        }
        p.args.push(a.clone());
        i += 1;
    }
    Ok(p)
}

/// docker's rule for `--filter key=value`s: the values given for one key
/// are alternatives, and every key given must match.
pub fn filters_pass(given: &[(&str, &str)], matches: impl Fn(&str, &str) -> bool) -> bool {
    given.iter().all(|(k, _)| given.iter().filter(|(k2, _)| k2 == k).any(|(_, v)| matches(k, v)))
}

/// A `label=` filter value, `KEY` (present) or `KEY=VALUE` (that value),
/// against the labels `value_of` looks up.
pub fn label_matches(filter: &str, value_of: impl Fn(&str) -> Option<String>) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => value_of(k).as_deref() == Some(v),
        None => value_of(filter).is_some(),
    }
}

/// `--label KEY=VALUE` values (a bare `KEY` has an empty value) as a map;
/// a later one wins.
pub fn labels<'a>(given: impl IntoIterator<Item = &'a str>) -> std::collections::BTreeMap<String, String> {
    given.into_iter().map(|l| l.split_once('=').unwrap_or((l, ""))).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// docker's usage line for `cmd` (what follows `engine CMD`).
pub fn usage(cmd: &str) -> &'static str {
    match cmd {
        "run" | "create" => "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        "build" => "[OPTIONS] PATH",
        "commit" => "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        "exec" => "[OPTIONS] CONTAINER COMMAND [ARG...]",
        "cp" => "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n        engine cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        "rename" => "CONTAINER NEW_NAME",
        "tag" => "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        "import" => "[OPTIONS] file|- [REPOSITORY[:TAG]]",
        "pull" | "push" => "[OPTIONS] NAME[:TAG]",
        "images" => "[OPTIONS] [REPOSITORY[:TAG]]",
        "rmi" | "save" => "[OPTIONS] IMAGE [IMAGE...]",
        "history" => "[OPTIONS] IMAGE",
        "login" | "logout" => "[OPTIONS] [SERVER]",
        "logs" | "port" | "diff" | "export" | "attach" | "update" => "[OPTIONS] CONTAINER",
        "top" => "CONTAINER [ps OPTIONS]",
        "start" | "stop" | "restart" | "kill" | "rm" | "wait" | "pause" | "unpause" | "inspect" | "stats" => "[OPTIONS] CONTAINER [CONTAINER...]",
        _ => "[OPTIONS]",
    }
}

/// `engine CMD --help`: the usage line and the flags.
pub fn help(cmd: &str, flags: &[Flag]) -> String {
    let mut out = format!("\nUsage:  engine {cmd} {}\n", usage(cmd));
    if !flags.is_empty() {
        out.push_str("\nOptions:\n");
        for f in flags.iter().filter(|f| f.long != "help") {
            let short = f.short.map(|c| format!("-{c}, ")).unwrap_or_else(|| "    ".into());
            out.push_str(&format!("  {short}--{}{}\n", f.long, if f.value { " string" } else { "" }));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: &[Flag] = &[
        flag("detach", Some('d'), false),
        flag("interactive", Some('i'), false),
        flag("tty", Some('t'), false),
        flag("publish", Some('p'), true),
        flag("name", None, true),
        flag("env", Some('e'), true),
    ];

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn docker_style() {
        let p = parse(F, &v(&["-dit", "-p", "8080:80", "-p9090:90", "--name=web", "-e", "A=1", "busybox", "httpd", "-f"]), true, "run").unwrap();
        assert!(p.on("detach") && p.on("interactive") && p.on("tty"));
        assert_eq!(p.all("publish"), ["8080:80", "9090:90"]);
        assert_eq!(p.get("name"), Some("web"));
        assert_eq!(p.args, ["busybox", "httpd", "-f"]);
    }

    #[test]
    fn help_lists_the_flags() {
        let h = help("run", F);
        assert!(h.contains("Usage:  engine run [OPTIONS] IMAGE [COMMAND] [ARG...]"), "{h}");
        assert!(h.contains("  -d, --detach\n") && h.contains("      --name string\n") && h.contains("  -p, --publish string\n"), "{h}");
        assert_eq!(usage("pause"), "[OPTIONS] CONTAINER [CONTAINER...]");
    }

    #[test]
    fn filter_values_of_a_key_are_alternatives() {
        let given = [("status", "exited"), ("status", "running"), ("name", "web")];
        let row = |status: &'static str, name: &'static str| move |k: &str, v: &str| if k == "status" { v == status } else { v == name };
        assert!(filters_pass(&given, row("running", "web")));
        assert!(!filters_pass(&given, row("created", "web")));
        assert!(!filters_pass(&given, row("exited", "db")));
        assert!(filters_pass(&[], row("x", "y")));
    }

    #[test]
    fn errors() {
        assert!(parse(F, &v(&["--nope"]), true, "run").unwrap_err().0.contains("unknown flag: --nope"));
        assert!(parse(F, &v(&["-x"]), true, "run").unwrap_err().0.contains("unknown flag: -x"));
        assert!(parse(F, &v(&["--name"]), true, "run").unwrap_err().0.contains("needs an argument"));
        let p = parse(F, &v(&["a", "-d", "b"]), false, "rm").unwrap();
        assert_eq!(p.args, ["a", "b"]);
        assert!(p.on("detach"));
    }
}

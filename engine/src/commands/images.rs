//! docker's image commands: `import`, `load`, `save`, `tag`, `images`,
//! `rmi`, `image inspect`, printing what docker prints.

use crate::error::{err, Context, Error, Result};
use crate::images::archive::{self, Loaded};
use crate::images::reference::{self, Reference};
use crate::images::remove::{self, Removed};
use crate::images::{config, import as import_, Details, Store};
use crate::registry::{self, progress::Progress};
use serde::Serialize;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

pub(crate) fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the fd.
    unsafe { libc::isatty(fd) == 1 }
}

/// `FILE` or `-` (stdin) as a reader.
fn input(source: &str) -> Result<Box<dyn Read>> {
    if source == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        Ok(Box::new(File::open(source).ctx(|| format!("open {source}"))?))
    }
}

/// `engine import FILE|- [NAME[:TAG]]`: prints the new image's id.
pub fn import(store: &Store, source: &str, name: Option<&str>, changes: &[String], message: Option<&str>) -> Result<()> {
    if source == "-" && is_tty(0) {
        return err("import: requested import from stdin, but stdin is a terminal");
    }
    let id = import_::import(store, input(source)?, name, source, changes, message)?;
    writeln!(io::stdout(), "{id}").ctx(|| "write stdout")
}

/// `engine load [-i FILE|-]` (None: stdin): prints `Loaded image: NAME`
/// per tag, `Loaded image ID: ID` for untagged images.
pub fn load(store: &Store, input_file: Option<&str>) -> Result<()> {
    let source = input_file.unwrap_or("-");
    if source == "-" && is_tty(0) {
        return err("requested load from stdin, but stdin is empty");
    }
    let loaded = archive::load(store, input(source)?)?;
    let mut out = io::stdout().lock();
    for Loaded { id, tags } in loaded {
        if tags.is_empty() {
            writeln!(out, "Loaded image ID: {id}").ctx(|| "write stdout")?;
        }
        for t in tags {
            writeln!(out, "Loaded image: {}", reference::familiar_tagged(&t)).ctx(|| "write stdout")?;
        }
    }
    Ok(())
}

/// `engine save [-o FILE] NAME...` (None: stdout, never a terminal). The
/// file appears whole or not at all.
pub fn save(store: &Store, output: Option<&str>, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return err("\"save\" requires at least 1 argument");
    }
    let Some(path) = output.filter(|o| *o != "-") else {
        if is_tty(1) {
            return err("cowardly refusing to save to a terminal. Use the -o flag or redirect");
        }
        return archive::save(store, names, BufWriter::with_capacity(1 << 16, io::stdout().lock()));
    };
    let path = Path::new(path);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let f = File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 16, f);
        archive::save(store, names, &mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error()).ctx(|| format!("write {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
        std::fs::rename(&tmp, path).ctx(|| format!("rename {} to {}", tmp.display(), path.display()))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// `engine tag SOURCE TARGET`.
pub fn tag(store: &Store, src: &str, dst: &str) -> Result<()> {
    store.tag(src, dst)
}

/// `engine rmi [-f] NAME...`: prints `Untagged: ...` and `Deleted: ...`
/// lines; goes on past a failing name and fails at the end naming each.
pub fn rmi(store: &Store, names: &[String], force: bool) -> Result<()> {
    let mut errors = Vec::new();
    let mut out = io::stdout().lock();
    for n in names {
        match remove::remove(store, n, force) {
            Ok(events) => {
                for e in events {
                    let line = match e {
                        Removed::Untagged(t) => format!("Untagged: {t}"),
                        Removed::Deleted(id) => format!("Deleted: {id}"),
                    };
                    writeln!(out, "{line}").ctx(|| "write stdout")?;
                }
            }
            Err(e) => errors.push(e.0),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error(errors.join("\n")))
    }
}

/// One row of `engine images`.
struct Row<'a> {
    repo: String,
    tag: String,
    image: &'a Details,
}

/// `engine images [--quiet] [--format json] [REPOSITORY[:TAG]]`: docker's
/// table (REPOSITORY TAG IMAGE ID CREATED SIZE), newest first, untagged
/// images as `<none>`; `--format json` prints one JSON object per line as
/// docker 24+ does; `--quiet` the distinct short ids.
/// `images`' flags besides the name.
pub struct ImagesOptions<'a> {
    pub quiet: bool,
    pub format: Option<&'a str>,
    /// `-f dangling=|reference=|label=|before=|since=`.
    pub filters: &'a [String],
    pub digests: bool,
    pub no_trunc: bool,
}

/// Whether image row (`repo`, `tag`) of `d` passes `-f key=value`
/// (values of one key are alternatives, keys all apply).
fn image_passes(store: &Store, d: &Details, repo: &str, tag: &str, filters: &[(&str, &str)]) -> Result<bool> {
    // before=/since= name images: resolved first, so a bad name is an error
    let mut times = std::collections::BTreeMap::new();
    for (k, v) in filters.iter().filter(|(k, _)| *k == "before" || *k == "since") {
        times.insert((*k, *v), store.details(v)?.config.created_unix());
    }
    Ok(crate::flags::filters_pass(filters, |key, v| {
        let created = |k: &str| times.get(&(k, v)).copied().flatten();
        match key {
            "dangling" => d.tags.is_empty() == (v == "true" || v == "1"),
            "reference" => {
                let g = |t: &str| crate::build::glob(v.as_bytes(), t.as_bytes());
                g(repo) || g(&format!("{repo}:{tag}"))
            }
            "before" => d.config.created_unix() < created("before"),
            "since" => d.config.created_unix() > created("since"),
            _ => {
                let labels = d.config.run_config().labels.unwrap_or_default();
                crate::flags::label_matches(v, |k| labels.get(k).cloned())
            }
        }
    }))
}

pub fn images(store: &Store, filter: Option<&str>, o: &ImagesOptions) -> Result<()> {
    let (quiet, format) = (o.quiet, o.format);
    let mut fs = Vec::new();
    for f in o.filters {
        match f.split_once('=') {
            Some((k @ ("dangling" | "reference" | "label" | "before" | "since"), v)) => fs.push((k, v)),
            _ => return err(format!("invalid filter '{f}' (dangling=, reference=, label=, before=, since=)")),
        }
    }
    let all = store.list()?;
    let want = match filter {
        Some(f) => {
            let r = Reference::parse(f)?;
            let has_tag = f[f.rfind('/').map(|i| i + 1).unwrap_or(0)..].contains(':');
            Some((r.name(), if has_tag { r.tag } else { None }))
        }
        None => None,
    };
    let mut rows = Vec::new();
    for d in &all {
        if d.tags.is_empty() && want.is_none() {
            rows.push(Row { repo: "<none>".into(), tag: "<none>".into(), image: d });
        }
        for key in &d.tags {
            let (name, tag) = key.rsplit_once(':').map(|(n, t)| (n.to_string(), t.to_string())).unwrap_or_default();
            if let Some((wname, wtag)) = &want {
                if *wname != name || wtag.as_ref().is_some_and(|t| *t != tag) {
                    continue;
                }
            }
            rows.push(Row { repo: reference::familiar_name(&name), tag, image: d });
        }
    }
    let mut kept = Vec::new();
    for r in rows {
        if image_passes(store, r.image, &r.repo, &r.tag, &fs)? {
            kept.push(r);
        }
    }
    let rows = kept;
    let id_of = |d: &Details| if o.no_trunc { d.id.clone() } else { remove::short_id(&d.id).to_string() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let mut out = io::stdout().lock();
    if quiet {
        let mut seen = Vec::new();
        for r in &rows {
            let id = id_of(r.image);
            if !seen.contains(&id) {
                writeln!(out, "{id}").ctx(|| "write stdout")?;
                seen.push(id);
            }
        }
        return Ok(());
    }
    let created_since = |d: &Details| match d.config.created_unix() {
        Some(t) => format!("{} ago", human_duration(now - t)),
        None => "N/A".into(),
    };
    {
        let mut objects = Vec::new();
        for r in &rows {
            let created_at = r.image.config.created_unix().map(|t| {
                let (y, mo, d, h, mi, s) = config::civil(t);
                format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} +0000 UTC")
            });
            let v = serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": created_at.unwrap_or_default(),
                "CreatedSince": created_since(r.image),
                "Digest": "<none>",
                "ID": id_of(r.image),
                "Repository": r.repo,
                "SharedSize": "N/A",
                "Size": human_size(r.image.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(r.image.size),
            });
            objects.push(v);
        }
        let headers = [("ID", "IMAGE ID"), ("CreatedSince", "CREATED"), ("CreatedAt", "CREATED AT")];
        if let Some(text) = crate::template::list(&objects, format, &headers)? {
            return write!(out, "{text}").ctx(|| "write stdout");
        }
    }
    let mut table = vec![vec!["REPOSITORY".to_string(), "TAG".into(), "DIGEST".into(), "IMAGE ID".into(), "CREATED".into(), "SIZE".into()]];
    for r in &rows {
        table.push(vec![r.repo.clone(), r.tag.clone(), "<none>".into(), id_of(r.image), created_since(r.image), human_size(r.image.size)]);
    }
    if !o.digests {
        table.iter_mut().for_each(|row| drop(row.remove(2)));
    }
    write!(out, "{}", tabulate(&table)).ctx(|| "write stdout")
}

/// Go's tabwriter as docker sets it up (min width 10, padding 3); the last
/// column is not padded.
pub fn tabulate<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for r in rows {
        for (i, c) in r.as_ref().iter().enumerate() {
            if widths.len() <= i {
                widths.push(10);
            }
            widths[i] = widths[i].max(c.chars().count() + 3);
        }
    }
    let mut s = String::new();
    for r in rows {
        let r = r.as_ref();
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                s.push_str(c);
                s.push_str(&" ".repeat(widths[i] - c.chars().count()));
            } else {
                s.push_str(c);
            }
        }
        s.push('\n');
    }
    s
}

/// `history [-q] [--no-trunc] [--format F] IMAGE`: the config's history,
/// newest first, as docker prints it (the image id on the newest line,
/// `<missing>` below; each non-empty step with its layer's size).
pub fn history(store: &Store, name: &str, quiet: bool, no_trunc: bool, format: Option<&str>) -> Result<()> {
    let d = store.details(name)?;
    let cfg: serde_json::Value = serde_json::from_slice(&d.config_bytes).ctx(|| format!("parse the config of {name}"))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_secs() as i64).unwrap_or(0);
    let mut steps: Vec<serde_json::Value> = cfg["history"].as_array().cloned().unwrap_or_default();
    if steps.is_empty() {
        steps = d.layers.iter().map(|_| serde_json::json!({})).collect();
    }
    let mut layers = d.layers.iter();
    let mut rows = Vec::new();
    for h in &steps {
        let size = if h["empty_layer"].as_bool() == Some(true) { 0 } else { layers.next().map_or(0, |l| l.size) };
        let created = h["created"].as_str().unwrap_or("");
        let since = config::parse_rfc3339(created).map(|t| format!("{} ago", human_duration(now - t))).unwrap_or_else(|| "N/A".into());
        let mut by = h["created_by"].as_str().unwrap_or("").replace(['\t', '\n'], " ");
        if !no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        rows.push(serde_json::json!({
            "ID": "<missing>", "CreatedSince": since, "CreatedAt": created, "CreatedBy": by,
            "Size": human_size(size), "Comment": h["comment"].as_str().unwrap_or(""),
        }));
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top["ID"] = if no_trunc { d.id.clone() } else { remove::short_id(&d.id).to_string() }.into();
    }
    let mut out = io::stdout().lock();
    if quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or("")).ctx(|| "write stdout")?;
        }
        return Ok(());
    }
    let headers = [("ID", "IMAGE"), ("CreatedSince", "CREATED"), ("CreatedBy", "CREATED BY"), ("CreatedAt", "CREATED AT")];
    let table = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
    let text = crate::template::list_or(&rows, format, table, &headers)?;
    write!(out, "{text}").ctx(|| "write stdout")
}

/// docker's units.HumanDuration.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = (s + 1800) / 3600;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", s / 3600 / 24 / 365)
    }
}

/// docker's units.HumanSizeWithPrecision(size, 3): decimal units and Go's
/// `%.3g`, in integers (no float parsing or printing in the binary).
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let v = size as u128;
    let (mut i, mut div) = (0, 1u128);
    while v >= div * 1000 && i < UNITS.len() - 1 {
        div *= 1000;
        i += 1;
    }
    let int_digits = (v / div).max(1).to_string().len() as u32;
    let mut decimals = 3u32.saturating_sub(int_digits);
    // round half up to 3 significant digits
    let mut scaled = (v * 10u128.pow(decimals) * 2 + div) / (2 * div);
    if scaled >= 1000 {
        if decimals == 0 {
            return format!("1e+03{}", UNITS[i]);
        }
        decimals -= 1;
        scaled = (scaled + 5) / 10;
    }
    let scale = 10u128.pow(decimals);
    let mut s = (scaled / scale).to_string();
    let frac = format!("{:0w$}", scaled % scale, w = decimals as usize);
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        s.push('.');
        s.push_str(frac);
    }
    s + UNITS[i]
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InspectImage {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    parent: String,
    comment: String,
    created: String,
    docker_version: String,
    author: String,
    config: serde_json::Value,
    architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    os: String,
    size: u64,
    virtual_size: u64,
    graph_driver: GraphDriver,
    #[serde(rename = "RootFS")]
    root_fs: InspectRootFs,
    metadata: InspectMetadata,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GraphDriver {
    data: serde_json::Value,
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InspectRootFs {
    #[serde(rename = "Type")]
    kind: String,
    layers: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InspectMetadata {
    last_tag_time: String,
}

/// The JSON object `image inspect` shows for one image (close to docker's;
/// `GraphDriver.Data.LowerDir` lists the unpacked layers, top first).
pub fn inspect_json(store: &Store, d: &Details) -> Result<serde_json::Value> {
    let mut lower = Vec::new();
    for l in d.layers.iter().rev() {
        lower.push(store.layer_dir(&l.chain_id)?.join(crate::images::layers::DIFF).display().to_string());
    }
    let c = &d.config;
    let v = InspectImage {
        id: d.id.clone(),
        repo_tags: d.tags.iter().map(|t| reference::familiar_tagged(t)).collect(),
        repo_digests: Vec::new(),
        parent: String::new(),
        comment: c.comment.clone().unwrap_or_default(),
        created: c.created.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        docker_version: String::new(),
        author: c.author.clone().unwrap_or_default(),
        config: c.config.clone().filter(|v| !v.is_null()).unwrap_or_else(|| serde_json::json!({})),
        architecture: c.architecture.clone(),
        variant: c.variant.clone(),
        os: c.os.clone(),
        size: d.size,
        virtual_size: d.size,
        graph_driver: GraphDriver { data: serde_json::json!({ "LowerDir": lower.join(":") }), name: "overlay".into() },
        root_fs: InspectRootFs { kind: "layers".into(), layers: c.rootfs.diff_ids.clone() },
        metadata: InspectMetadata { last_tag_time: d.record.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()) },
    };
    serde_json::to_value(v).ctx(|| "serialize image inspect")
}

/// `engine image inspect NAME...`: a JSON array (4-space indent, as docker);
/// names not found fail at the end (`No such image: NAME`), after the array.
pub fn inspect(store: &Store, names: &[String], format: Option<&str>) -> Result<()> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match store.details(n) {
            Ok(d) => found.push(inspect_json(store, &d)?),
            Err(e) => errors.push(e.0),
        }
    }
    let mut buf = Vec::new();
    if let Some(text) = crate::template::lines(&found, format)? {
        buf = text.into_bytes();
    } else {
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, serde_json::ser::PrettyFormatter::with_indent(b"    "));
        found.serialize(&mut ser).ctx(|| "serialize image inspect")?;
        buf.push(b'\n');
    }
    io::stdout().lock().write_all(&buf).ctx(|| "write stdout")?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error(errors.join("\n")))
    }
}

/// `engine pull [--platform P] [-q] NAME[:TAG|@DIGEST]`: docker's lines
/// (per-layer progress on a terminal), then the full name pulled.
pub fn pull(store: &Store, name: &str, opts: &registry::Options) -> Result<()> {
    let mut progress = Progress::new(opts.quiet);
    let pulled = registry::pull::pull(store, name, opts, &mut progress)?;
    writeln!(io::stdout(), "{}", pulled.name).ctx(|| "write stdout")
}

/// `engine push [-q] NAME[:TAG]`: docker's lines (`TAG: digest: D size: N`).
pub fn push(store: &Store, name: &str, opts: &registry::Options) -> Result<()> {
    let mut progress = Progress::new(opts.quiet);
    let pushed = registry::push::push(store, name, opts, &mut progress)?;
    if opts.quiet {
        writeln!(io::stdout(), "{}", pushed.digest).ctx(|| "write stdout")?;
    }
    Ok(())
}

/// The registry domain a `login`/`logout` argument names (`https://index.docker.io/v1/`,
/// `http://127.0.0.1:5000`, `reg.lan:5000`); None: Docker Hub.
pub fn login_domain(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// `engine login [SERVER] -u USER (-p PASS | --password-stdin)`: checks the
/// credentials against the registry, then stores them (`<root>/auth.json`, 0600).
pub fn login(root: &Path, server: Option<&str>, user: Option<&str>, password: Option<&str>, password_stdin: bool, insecure: &[String]) -> Result<()> {
    let domain = login_domain(server);
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return err("login: a username is required (-u USER)");
    };
    let password = match (password, password_stdin) {
        (Some(_), true) => return err("login: --password and --password-stdin are mutually exclusive"),
        (Some(p), false) => p.to_string(),
        (None, true) => {
            let mut s = String::new();
            io::stdin().lock().read_to_string(&mut s).ctx(|| "login: read the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => return err("login: a password is required (--password-stdin, or -p)"),
    };
    if password.is_empty() {
        return err("login: the password is empty");
    }
    let opts = registry::Options::new(root, insecure)?;
    let mut client = registry::client::Client::new(root, &domain, "", &opts.insecure, Vec::new())?;
    client.set_credentials(Some((user.to_string(), password.clone())));
    client.check_login()?;
    registry::auth::set(root, &domain, Some((user, &password)))?;
    writeln!(io::stdout(), "Login Succeeded").ctx(|| "write stdout")
}

/// `engine logout [SERVER]`.
pub fn logout(root: &Path, server: Option<&str>) -> Result<()> {
    let domain = login_domain(server);
    let key = registry::auth::key(&domain);
    if registry::auth::set(root, &domain, None)? {
        writeln!(io::stdout(), "Removing login credentials for {key}").ctx(|| "write stdout")
    } else {
        writeln!(io::stdout(), "Not logged in to {key}").ctx(|| "write stdout")
    }
}

/// `image prune [-a]`: removes dangling images (no tag), or with `all`
/// every image no container uses; prints what went and the space freed.
pub fn prune(store: &Store, all: bool, pick: &dyn Fn(&Details) -> bool) -> Result<()> {
    let freed = prune_section(store, all, pick)?;
    writeln!(io::stdout(), "Total reclaimed space: {}", human_size(freed)).ctx(|| "write stdout")
}

/// The images half of `image prune` and `system prune`: removes the images
/// `pick` accepts among the dangling ones (with `all`: the unused ones),
/// prints the `Deleted Images:` section when any went; returns the bytes freed.
pub fn prune_section(store: &Store, all: bool, pick: &dyn Fn(&Details) -> bool) -> Result<u64> {
    let users = remove::containers_using(store.root());
    let mut freed = 0u64;
    let mut out = io::stdout().lock();
    let mut header = false;
    for d in store.list()? {
        if users.contains_key(&d.id) || (!all && !d.tags.is_empty()) || !pick(&d) {
            continue;
        }
        if !header {
            writeln!(out, "Deleted Images:").ctx(|| "write stdout")?;
            header = true;
        }
        for r in remove::remove(store, &d.id, true)? {
            match r {
                Removed::Untagged(t) => writeln!(out, "untagged: {t}"),
                Removed::Deleted(id) => writeln!(out, "deleted: {id}"),
            }
            .ctx(|| "write stdout")?;
        }
        freed += d.size;
    }
    if header {
        writeln!(out).ctx(|| "write stdout")?;
    }
    Ok(freed)
}

/// Bytes under `path` (files only, symlinks not followed); 0 when absent.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map(|rd| rd.flatten().map(|e| disk_usage(&e.path())).sum()).unwrap_or(0)
}

/// `system df`: images, containers (their writable layers) and volumes.
pub fn df(store: &Store, root: &Path, running: &[String]) -> Result<()> {
    let users = remove::containers_using(store.root());
    let images = store.list()?;
    let img_size: u64 = images.iter().map(|d| d.size).sum();
    let img_unused: u64 = images.iter().filter(|d| !users.contains_key(&d.id)).map(|d| d.size).sum();
    let active_images = images.iter().filter(|d| users.contains_key(&d.id)).count();
    let mut ctr_total = 0;
    let (mut ctr_size, mut ctr_idle) = (0u64, 0u64);
    if let Ok(rd) = std::fs::read_dir(root.join("containers")) {
        for e in rd.flatten().filter(|e| !e.file_name().to_string_lossy().starts_with('.')) {
            ctr_total += 1;
            let size = disk_usage(&e.path().join("upper"));
            ctr_size += size;
            if !running.contains(&e.file_name().to_string_lossy().into_owned()) {
                ctr_idle += size;
            }
        }
    }
    let mut vols = 0;
    let mut vol_size = 0u64;
    for name in crate::volumes::list(root)? {
        vols += 1;
        vol_size += disk_usage(&crate::volumes::data_dir(root, &name));
    }
    let pct = |part: u64, whole: u64| (part * 100).checked_div(whole).unwrap_or(0);
    let rows = [
        ["TYPE".to_string(), "TOTAL".into(), "ACTIVE".into(), "SIZE".into(), "RECLAIMABLE".into()],
        [
            "Images".into(),
            images.len().to_string(),
            active_images.to_string(),
            human_size(img_size),
            format!("{} ({}%)", human_size(img_unused), pct(img_unused, img_size)),
        ],
        [
            "Containers".into(),
            ctr_total.to_string(),
            running.len().to_string(),
            human_size(ctr_size),
            format!("{} ({}%)", human_size(ctr_idle), pct(ctr_idle, ctr_size)),
        ],
        ["Local Volumes".into(), vols.to_string(), "-".into(), human_size(vol_size), "-".into()],
    ];
    write!(io::stdout().lock(), "{}", tabulate(&rows)).ctx(|| "write stdout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_as_docker_shows_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(12), "12B");
        assert_eq!(human_size(869_000), "869kB");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(1_500_000), "1.5MB");
        assert_eq!(human_size(999_999), "1e+03kB");
        assert_eq!(human_size(9_995), "10kB");
        assert_eq!(human_size(1_234_567_890), "1.23GB");
        assert_eq!(human_size(5), "5B");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(15 * 86400), "2 weeks");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn table_like_tabwriter() {
        let t = tabulate(&[["REPOSITORY".to_string(), "TAG".into()], ["busybox".into(), "latest".into()]]);
        assert_eq!(t, "REPOSITORY   TAG\nbusybox      latest\n");
    }
}

//! `engine build`: docker's classic builder (DOCKER_BUILDKIT=0) on the
//! engine's own pieces. Each stage keeps its image config in memory; RUN
//! runs a container from it and commits the container's changes as a layer
//! (see `commit`); COPY and ADD write their layer straight from the build
//! context (or another stage) as a tar, with no container; the other
//! instructions only change the config. No build cache: every step runs.

use crate::commit::{layer_descriptor, push_history, push_layer, stage};
use crate::containers::{self, Env, RunOpts};
use crate::dockerfile::{self, Args, Instruction};
use crate::error::{err, Context, Error, Result};
use crate::images::archive::normalize as clean;
use crate::images::{config, import, layers, reference, remove, Store};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `build`'s flags.
#[derive(Debug, Default)]
pub struct Options {
    pub tags: Vec<String>,
    /// `-f`: the Dockerfile (default CONTEXT/Dockerfile).
    pub file: Option<PathBuf>,
    pub build_args: Vec<String>,
    pub labels: Vec<String>,
    pub target: Option<String>,
    /// `--network` of RUN's containers (default: the bridge, as docker).
    pub network: Option<String>,
    pub quiet: bool,
    /// `--no-cache`: run every step (the results are still cached).
    pub no_cache: bool,
}

const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// One stage's state: its image config and layers so far.
struct Stage {
    name: Option<String>,
    cfg: Value,
    descs: Vec<config::Descriptor>,
    /// The stored image `cfg` is, if any (RUN needs one).
    image: Option<String>,
    /// ARGs in scope (None: declared without a value).
    args: BTreeMap<String, Option<String>>,
    /// CMD given in this stage (then ENTRYPOINT keeps it).
    cmd_set: bool,
    /// The build cache's key for the state so far: a digest over the base
    /// image and every step with its inputs.
    key: String,
}

impl Stage {
    fn run_config(&mut self) -> &mut Value {
        if !self.cfg["config"].is_object() {
            self.cfg["config"] = json!({});
        }
        &mut self.cfg["config"]
    }

    fn env(&self) -> Vec<String> {
        serde_json::from_value(self.cfg["config"]["Env"].clone()).unwrap_or_default()
    }

    /// A variable for expansion: ENV wins over ARG, as in docker.
    fn lookup(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.env().iter().find_map(|e| e.strip_prefix(&prefix).map(String::from)).or_else(|| self.args.get(name).cloned().flatten())
    }

    fn shell(&self) -> Vec<String> {
        serde_json::from_value(self.cfg["config"]["Shell"].clone()).unwrap_or_else(|_| DEFAULT_SHELL.map(String::from).to_vec())
    }

    fn layer_dirs(&self, store: &Store) -> Result<Vec<PathBuf>> {
        let diff_ids: Vec<String> = serde_json::from_value(self.cfg["rootfs"]["diff_ids"].clone()).unwrap_or_default();
        Store::chain_ids(&diff_ids).iter().map(|c| Ok(store.layer_dir(c)?.join(layers::DIFF))).collect()
    }

    /// Moves the cache key past a step whose inputs are `parts`.
    fn advance(&mut self, parts: &[&str]) {
        self.key = step_key(&self.key, parts);
    }

    fn history(&mut self, created_by: String, empty: bool) {
        let mut h = json!({ "created": config::now_rfc3339(), "created_by": created_by });
        if empty {
            h["empty_layer"] = true.into();
        }
        push_history(&mut self.cfg, h);
    }
}

/// Everything one build shares.
struct Builder<'a> {
    env: &'a Env,
    store: Store,
    o: &'a Options,
    context: PathBuf,
    ignore: dockerfile::Ignore,
    escape: char,
    build_args: BTreeMap<String, String>,
    /// ARGs before the first FROM.
    meta: BTreeMap<String, Option<String>>,
    stages: Vec<Stage>,
    /// Images this build stored on the way (removed at the end).
    made: Vec<String>,
    base: &'a dyn Fn(&str) -> Result<()>,
}

/// Builds CONTEXT's Dockerfile; returns the image id. `base` makes sure a
/// FROM image is in the store (pulling it when missing).
pub fn build(env: &Env, context: &Path, o: &Options, base: &dyn Fn(&str) -> Result<()>) -> Result<String> {
    let store = Store::open(&env.root)?;
    // held from here: a store writer's first hold clears tmp/, the context below too
    let hold = store.hold()?;
    let stdin = Path::new("-");
    let file_from_stdin = o.file.as_deref() == Some(stdin);
    // `build - < Dockerfile` (no context) or `build - < context.tar[.gz]`
    let _unpacked;
    let context = if context == stdin {
        if file_from_stdin {
            return err("invalid argument: can't use stdin for both build context and dockerfile");
        }
        let t = crate::images::Temp::dir(store.temp_path("context"))?;
        stdin_context(t.path())?;
        _unpacked = t;
        _unpacked.path().to_path_buf()
    } else {
        context.to_path_buf()
    };
    if !context.is_dir() {
        return err(format!("unable to prepare context: path {:?} not found", context.display().to_string()));
    }
    let text = if file_from_stdin {
        std::io::read_to_string(std::io::stdin()).ctx(|| "read the Dockerfile from stdin")?
    } else {
        let file = o.file.clone().unwrap_or_else(|| context.join("Dockerfile"));
        std::fs::read_to_string(&file).ctx(|| format!("read the Dockerfile {}", file.display()))?
    };
    let df = dockerfile::parse(&text)?;
    let ignore = match std::fs::read_to_string(context.join(".dockerignore")) {
        Ok(t) => dockerfile::Ignore::parse(&t)?,
        Err(_) => dockerfile::Ignore::parse("")?,
    };
    let mut build_args = BTreeMap::new();
    for a in &o.build_args {
        match a.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => std::env::var(a).ok().map(|v| build_args.insert(a.clone(), v)).unwrap_or_default(),
        };
    }
    let context = context.canonicalize().ctx(|| format!("resolve {}", context.display()))?;
    // BuildKit's automatic platform ARGs (FROM --platform=$BUILDPLATFORM):
    // this host, for it builds and runs here
    let p = config::Platform::host();
    let platform = format!("{}/{}{}", p.os, p.architecture, p.variant.as_ref().map(|v| format!("/{v}")).unwrap_or_default());
    let mut meta = BTreeMap::new();
    for side in ["BUILD", "TARGET"] {
        meta.insert(format!("{side}PLATFORM"), Some(platform.clone()));
        meta.insert(format!("{side}OS"), Some(p.os.clone()));
        meta.insert(format!("{side}ARCH"), Some(p.architecture.clone()));
        meta.insert(format!("{side}VARIANT"), Some(p.variant.clone().unwrap_or_default()));
    }
    let mut b = Builder { env, store, o, context, ignore, escape: df.escape, build_args, meta, stages: Vec::new(), made: Vec::new(), base };
    let res = b.run(&df.instructions);
    drop(hold);
    // intermediate images go; the layers stay with the result that uses them
    for id in b.made.iter().filter(|id| res.as_ref().ok() != Some(*id)) {
        let _ = remove::remove(&b.store, id, false);
    }
    if res.is_err() {
        remove::collect_garbage_if_idle(&b.store);
    }
    res
}

impl Builder<'_> {
    fn say(&self, line: impl std::fmt::Display) {
        if !self.o.quiet {
            println!("{line}");
        }
    }

    fn run(&mut self, all: &[Instruction]) -> Result<String> {
        // Stages after --target are not built.
        let mut end = all.len();
        if let Some(t) = &self.o.target {
            let mut seen = false;
            for (i, ins) in all.iter().enumerate() {
                if ins.keyword != "FROM" {
                    continue;
                }
                if seen {
                    end = i;
                    break;
                }
                let w = self.words(ins, &|_| None)?;
                seen = w.len() == 3 && w[2].eq_ignore_ascii_case(t);
            }
            if !seen {
                return err(format!("target stage {t:?} could not be found"));
            }
        }
        let steps = &all[..end];
        for (i, ins) in steps.iter().enumerate() {
            self.say(format_args!("Step {}/{} : {}", i + 1, steps.len(), ins.original));
            self.step(ins).map_err(|e| Error(format!("{} (Dockerfile line {})", e.0, ins.line)))?;
        }
        let labels = self.o.labels.clone();
        let Some(st) = self.stages.last_mut() else { return err("no build stage in current context") };
        if !labels.is_empty() {
            let c = st.run_config();
            let mut l = c["Labels"].as_object().cloned().unwrap_or_default();
            l.extend(crate::flags::labels(labels.iter().map(String::as_str)).into_iter().map(|(k, v)| (k, Value::from(v))));
            c["Labels"] = Value::Object(l);
            st.image = None;
        }
        let tags = self.o.tags.iter().map(|t| import::tag_key(t)).collect::<Result<Vec<_>>>()?;
        let id = match (&st.image, tags.is_empty()) {
            (Some(id), true) => id.clone(),
            (Some(id), false) => {
                for t in &self.o.tags {
                    self.store.tag(id, t)?;
                }
                id.clone()
            }
            (None, _) => store_stage(&self.store, st, &tags)?,
        };
        if self.o.quiet {
            println!("{id}");
        } else {
            println!("Successfully built {}", remove::short_id(&id));
            for t in &tags {
                println!("Successfully tagged {}", reference::familiar_tagged(t));
            }
        }
        Ok(id)
    }

    fn words(&self, ins: &Instruction, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>> {
        match &ins.args {
            Args::Json(v) => v.iter().map(|w| dockerfile::expand(w, lookup, self.escape)).collect(),
            Args::Text(t) => dockerfile::words(t, lookup, self.escape),
        }
    }

    fn step(&mut self, ins: &Instruction) -> Result<()> {
        let kw = ins.keyword.as_str();
        match kw {
            "FROM" => return self.from(ins),
            "RUN" if !self.stages.is_empty() => return self.run_step(ins),
            "COPY" | "ADD" if !self.stages.is_empty() => return self.copy(ins),
            "ARG" => return self.arg(ins),
            _ => {}
        }
        let escape = self.escape;
        let st = self.stages.last_mut().ok_or_else(no_stage)?;
        match (kw, &ins.args) {
            ("SHELL", Args::Json(v)) => st.run_config()["Shell"] = json!(v),
            ("SHELL", _) => return err("SHELL requires the arguments to be in JSON form"),
            ("MAINTAINER", Args::Text(t)) => st.cfg["author"] = t.clone().into(),
            ("ONBUILD", Args::Text(t)) => {
                let c = st.run_config();
                let mut l = c["OnBuild"].as_array().cloned().unwrap_or_default();
                l.push(t.clone().into());
                c["OnBuild"] = Value::Array(l);
            }
            _ => {
                let (shell, mut cmd_set) = (st.shell(), st.cmd_set);
                let mut c = st.run_config().clone();
                let view: &Stage = st;
                apply_config(&mut c, ins, escape, &|n| view.lookup(n), &shell, &mut cmd_set)?;
                st.cfg["config"] = c;
                st.cmd_set = cmd_set;
            }
        }
        st.image = None;
        st.advance(&[&ins.original]);
        st.history(format!("/bin/sh -c #(nop)  {}", ins.original), true);
        Ok(())
    }

    /// ARG: before the first FROM a global one (usable in FROM lines); in a
    /// stage, a build arg wins, then the default, then the global's value.
    fn arg(&mut self, ins: &Instruction) -> Result<()> {
        let Args::Text(t) = &ins.args else { return err("ARG requires at least one argument") };
        let (given, meta) = (&self.build_args, &self.meta);
        let mut out = Vec::new();
        match self.stages.last() {
            None => {
                for (k, v) in dockerfile::key_values(t, &|n| meta.get(n).cloned().flatten(), self.escape, "ARG")? {
                    out.push((k.clone(), given.get(&k).cloned().or(v)));
                }
            }
            Some(st) => {
                for (k, v) in dockerfile::key_values(t, &|n| st.lookup(n), self.escape, "ARG")? {
                    let v = given.get(&k).cloned().or(v).or_else(|| meta.get(&k).cloned().flatten());
                    out.push((k, v));
                }
            }
        }
        match self.stages.last_mut() {
            None => self.meta.extend(out),
            Some(st) => {
                // the values, not only the line, decide what later steps do
                let vals: Vec<String> = out.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                st.advance(&[&ins.original, &vals.join("\n")]);
                st.args.extend(out);
            }
        }
        Ok(())
    }

    fn from(&mut self, ins: &Instruction) -> Result<()> {
        let meta = self.meta.clone();
        let w = self.words(ins, &|n| meta.get(n).cloned().flatten())?;
        let (image, name) = match w.as_slice() {
            [i] => (i.clone(), None),
            [i, a, n] if a.eq_ignore_ascii_case("as") => (i.clone(), Some(n.to_lowercase())),
            _ => return err("FROM requires either one or three arguments"),
        };
        let stage = |cfg, descs, image, key| Stage { name: None, cfg, descs, image, args: BTreeMap::new(), cmd_set: false, key };
        let mut st = if let Some(prev) = self.stages.iter().find(|s| s.name.as_deref() == Some(image.to_lowercase().as_str())) {
            stage(prev.cfg.clone(), prev.descs.clone(), prev.image.clone(), prev.key.clone())
        } else if image == "scratch" {
            let p = config::Platform::host();
            let cfg = json!({ "architecture": p.architecture, "os": p.os, "config": {}, "rootfs": { "type": "layers", "diff_ids": [] }, "history": [] });
            stage(cfg, Vec::new(), None, step_key("", &["scratch"]))
        } else {
            (self.base)(&image)?;
            let d = self.store.details(&image)?;
            let cfg: Value = serde_json::from_slice(&d.config_bytes).ctx(|| format!("parse the config of {image}"))?;
            self.say(format_args!(" ---> {}", remove::short_id(&d.id)));
            stage(cfg, d.manifest.layers.clone(), Some(d.id.clone()), step_key("", &[&d.id]))
        };
        st.name = name;
        // the base image's ONBUILD triggers run now, then are not inherited
        let triggers: Vec<String> = serde_json::from_value(st.cfg["config"]["OnBuild"].clone()).unwrap_or_default();
        if !triggers.is_empty() {
            st.run_config()["OnBuild"] = Value::Null;
            st.image = None;
        }
        self.stages.push(st);
        for t in triggers {
            self.say(format_args!("# Executing 1 build trigger: {t}"));
            let df = dockerfile::parse(&format!("FROM scratch\n{t}"))?;
            for ins in &df.instructions[1..] {
                self.step(ins)?;
            }
        }
        Ok(())
    }

    fn run_step(&mut self, ins: &Instruction) -> Result<()> {
        let mut network = self.o.network.clone().unwrap_or_default();
        for (k, v) in &ins.flags {
            match (k.as_str(), v.as_str()) {
                ("network", "default") => {}
                ("network", n @ ("none" | "host")) => network = n.to_string(),
                _ => return err(format!("RUN --{k}={v} is not supported here (it needs BuildKit); RUN takes --network=default|none|host")),
            }
        }
        let st = self.stages.last_mut().ok_or_else(no_stage)?;
        let script = match &ins.args {
            // `RUN <<EOF`: the here-document is the script
            Args::Text(t) if ins.heredocs.len() == 1 && dockerfile::heredoc(t.trim()).is_some() => Some(ins.heredocs[0].body.clone()),
            // here-documents feeding a command: the shell reads them as written
            Args::Text(t) if !ins.heredocs.is_empty() => Some(format!("{t}\n{}", ins.heredocs.iter().map(|h| format!("{}{}\n", h.body, h.name)).collect::<String>())),
            Args::Text(t) => Some(t.clone()),
            Args::Json(_) => None,
        };
        let cmd = match (&ins.args, script) {
            (Args::Json(v), _) => v.clone(),
            (_, s) => st.shell().into_iter().chain(s).collect(),
        };
        // ARGs reach RUN's environment, not the image's
        let env: Vec<String> = st.args.iter().filter_map(|(k, v)| Some(format!("{k}={}", v.as_ref()?))).collect();
        let created_by = match &ins.args {
            Args::Json(v) => v.join(" "),
            Args::Text(_) => format!("/bin/sh -c {}", cmd.last().map(String::as_str).unwrap_or("")),
        };
        let bodies: String = ins.heredocs.iter().map(|h| h.body.as_str()).collect();
        let key = step_key(&st.key, &[&ins.original, &env.join("\n"), &bodies]);
        if self.reuse(&key, &created_by)? {
            return Ok(());
        }
        let st = self.stages.last_mut().ok_or_else(no_stage)?;
        let image = match st.image.clone() {
            Some(id) => id,
            None => {
                let id = store_stage(&self.store, st, &[])?;
                self.made.push(id.clone());
                id
            }
        };
        // a build step is not probed: the image's HEALTHCHECK is for its containers
        let ro = RunOpts { image, cmd: cmd.clone(), entrypoint: Some(String::new()), env, network, no_healthcheck: true, ..Default::default() };
        let quiet = self.o.quiet.then(Silence::new).transpose()?;
        let ran = containers::run_kept(self.env, &ro);
        drop(quiet);
        let (rec, code) = ran.map_err(|f| Error(f.msg))?;
        let staged = match code {
            Ok(0) => {
                let upper = crate::record::dir(&self.env.root, &rec.id).join("upper");
                let mut hidden: Vec<String> = rec.mounts.iter().map(|m| m.destination.clone()).collect();
                hidden.push("/dev/init".into());
                crate::commit::layer_from_dir(&self.store, &upper, &hidden)
            }
            Ok(n) => Err(Error(format!("The command '{}' returned a non-zero code: {n}", cmd.join(" ")))),
            Err(f) => Err(Error(f.msg)),
        };
        self.say(format_args!("Removing intermediate container {}", &rec.id[..12.min(rec.id.len())]));
        containers::remove_exited(self.env, &rec)?;
        self.add_layer(staged?, created_by, &key)
    }

    /// A cache hit for step `key`: its layer, still in the store, goes on
    /// the stage as the step would have made it. False on a miss.
    fn reuse(&mut self, key: &str, created_by: &str) -> Result<bool> {
        if self.o.no_cache {
            return Ok(false);
        }
        let Some(hit) = cache_get(&self.store, key) else { return Ok(false) };
        let st = self.stages.last_mut().ok_or_else(no_stage)?;
        let diff_ids: Vec<String> = serde_json::from_value(st.cfg["rootfs"]["diff_ids"].clone()).unwrap_or_default();
        let chain = crate::images::digest::chain_id(Store::chain_ids(&diff_ids).last().map(String::as_str), &hit.diff_id);
        if self.store.layer(&chain)?.is_none() {
            return Ok(false);
        }
        push_layer(&mut st.cfg, &hit.diff_id);
        st.descs.push(layer_descriptor(&hit.diff_id, hit.tar_size));
        st.image = None;
        st.key = key.to_string();
        st.history(created_by.to_string(), false);
        self.say(" ---> Using cache");
        Ok(true)
    }

    fn add_layer(&mut self, staged: layers::StagedLayer, created_by: String, key: &str) -> Result<()> {
        let st = self.stages.last_mut().ok_or_else(no_stage)?;
        let diff_ids: Vec<String> = serde_json::from_value(st.cfg["rootfs"]["diff_ids"].clone()).unwrap_or_default();
        let parent = Store::chain_ids(&diff_ids).pop();
        let (diff_id, tar_size) = (staged.diff_id.clone(), staged.tar_size);
        layers::commit(&self.store, staged, parent.as_deref())?;
        push_layer(&mut st.cfg, &diff_id);
        st.descs.push(layer_descriptor(&diff_id, tar_size));
        st.image = None;
        st.key = key.to_string();
        st.history(created_by, false);
        // best effort: a cache that cannot be written only costs a rebuild
        let _ = cache_put(&self.store, key, Cached { diff_id: diff_id.clone(), tar_size, used: now() });
        let short = diff_id.trim_start_matches("sha256:").get(..12).unwrap_or("").to_string();
        self.say(format_args!(" ---> layer {short}"));
        Ok(())
    }

    fn copy(&mut self, ins: &Instruction) -> Result<()> {
        let add = ins.keyword == "ADD";
        let st = self.stages.last().ok_or_else(no_stage)?;
        let lookup = |n: &str| st.lookup(n);
        let mut w = match &ins.args {
            Args::Json(v) => v.iter().map(|x| dockerfile::expand(x, &lookup, self.escape)).collect::<Result<Vec<_>>>()?,
            Args::Text(t) => dockerfile::words(t, &lookup, self.escape)?,
        };
        if w.len() < 2 {
            return err(format!("{} requires at least two arguments", ins.keyword));
        }
        let dest_word = w.pop().unwrap_or_default();
        let workdir = st.cfg["config"]["WorkingDir"].as_str().unwrap_or("").to_string();
        let (mut from, mut owner, mut mode) = (None, None, None);
        for (k, v) in &ins.flags {
            match k.as_str() {
                "from" => from = Some(v.clone()),
                "chown" => owner = Some(v.clone()),
                "chmod" => mode = Some(u32::from_str_radix(v, 8).map_err(|_| Error(format!("invalid --chmod {v:?}: an octal mode")))?),
                "link" => {}
                _ => return err(format!("unknown flag: --{k} ({})", ins.keyword)),
            }
        }
        let image_layers = st.layer_dirs(&self.store)?;
        let owner = match owner {
            Some(o) => Some(owner_ids(&o, &image_layers)?),
            None => None,
        };
        let dir_word = dest_word.ends_with('/') || dest_word == "." || dest_word.ends_with("/.");
        let dest_dir = dir_word || w.len() > 1 || w.iter().any(|s| has_wildcard(s));
        let dest = absolute(&dest_word, &workdir);
        if w.len() > 1 && !dir_word {
            return err(format!("When using {} with more than one source file, the destination must be a directory and end with a /", ins.keyword));
        }
        let dest_is_dir = dest_dir || lookup_in(&image_layers, &dest).is_some_and(|m| m.is_dir());
        // the source tree: the context, another stage, or an image
        let (root, mounted, ignore, source_key) = match &from {
            None => (self.context.clone(), None, true, String::new()),
            Some(f) => {
                let (dirs, source_key) = self.stage_or_image_layers(f)?;
                let m = Merged::mount(&self.store, &dirs)?;
                (m.path.clone(), Some(m), false, source_key)
            }
        };
        let mut items = Vec::new();
        let mut fetched = None;
        for src in &w {
            let heredoc = dockerfile::heredoc(src).and_then(|(n, _)| ins.heredocs.iter().find(|h| h.name == n));
            if heredoc.is_some() || (add && (src.starts_with("http://") || src.starts_with("https://"))) {
                // a here-document's file, or a URL fetched: in the store's
                // tmp/ (under the build's hold); not extracted
                let dir = match &fetched {
                    Some(d) => d,
                    None => fetched.insert(crate::images::Temp::dir(self.store.temp_path("add"))?),
                };
                let path = match heredoc {
                    Some(h) => {
                        let p = dir.path().join(&h.name);
                        std::fs::write(&p, &h.body).ctx(|| format!("write {}", p.display()))?;
                        p
                    }
                    None => fetch(&self.env.root, src, dir.path())?,
                };
                let meta = std::fs::metadata(&path).ctx(|| format!("stat {}", path.display()))?;
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let target = if dest_is_dir { join(&dest, &name) } else { dest.clone() };
                items.push((path, meta, target, false));
                continue;
            }
            let found = self.sources(&root, src, ignore)?;
            if found.is_empty() {
                return err(format!("{} failed: file not found in build context or excluded by .dockerignore: stat {src}: file does not exist", ins.keyword));
            }
            for (path, meta) in found {
                let target = if add && meta.is_file() && is_archive(&path) {
                    dest.clone()
                } else if meta.is_dir() || dest_is_dir {
                    let name = if meta.is_dir() { String::new() } else { path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default() };
                    join(&dest, &name)
                } else {
                    dest.clone()
                };
                let extract = add && meta.is_file() && is_archive(&path);
                items.push((path, meta, target, extract));
            }
        }
        let ig = self.ignore.clone();
        let mut spec = Spec { owner, mode, root: root.clone(), ignore: if ignore { Some(&ig) } else { None }, image_layers: &image_layers, hashing: true };
        let created_by = format!("/bin/sh -c #(nop) {} {} in {dest}", ins.keyword, w.join(" "));
        // the step's inputs: what it would write (times left out, as docker does)
        let mut h = crate::images::digest::HashWriter::default();
        spec.write(&items, &mut h)?;
        let key = step_key(&st.key, &[&ins.original, &source_key, &h.digest()]);
        spec.hashing = false;
        let staged = match self.reuse(&key, &created_by)? {
            true => None,
            false => Some(stage(&self.store, |out| spec.write(&items, out))),
        };
        drop(mounted);
        match staged {
            Some(staged) => self.add_layer(staged?, created_by, &key),
            None => Ok(()),
        }
    }

    /// Layer dirs of `--from=NAME` and a cache key for them: an earlier
    /// stage (by name or index), or an image.
    fn stage_or_image_layers(&self, from: &str) -> Result<(Vec<PathBuf>, String)> {
        let n = self.stages.len().saturating_sub(1);
        let by_name = self.stages[..n].iter().find(|s| s.name.as_deref() == Some(from.to_lowercase().as_str()));
        let by_index = from.parse::<usize>().ok().filter(|i| *i < n).map(|i| &self.stages[i]);
        if let Some(s) = by_name.or(by_index) {
            return Ok((s.layer_dirs(&self.store)?, s.key.clone()));
        }
        (self.base)(from)?;
        let image = self.store.resolve(from)?;
        Ok((image.layers, image.id))
    }

    /// The paths SRC names under `root` (a wildcard may name several);
    /// symlinks on the way resolve inside `root`.
    fn sources(&self, root: &Path, src: &str, ignore: bool) -> Result<Vec<(PathBuf, std::fs::Metadata)>> {
        let rel = clean(src).ok_or_else(|| Error(format!("forbidden path outside the build context: {src}")))?;
        let skip = |r: &str| ignore && !r.is_empty() && self.ignore.matches(r);
        if !has_wildcard(&rel) {
            if skip(&rel) {
                return Ok(Vec::new());
            }
            let p = resolve_in(root, &rel)?;
            return Ok(std::fs::metadata(&p).map(|m| vec![(p, m)]).unwrap_or_default());
        }
        let (dir, pattern) = rel.rsplit_once('/').unwrap_or(("", &rel));
        if has_wildcard(dir) {
            return err(format!("{src}: wildcards are supported in the last path component only"));
        }
        let base = resolve_in(root, dir)?;
        let mut out = Vec::new();
        let mut names: Vec<String> = std::fs::read_dir(&base).ctx(|| format!("read {}", base.display()))?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        for n in names {
            let r = if dir.is_empty() { n.clone() } else { format!("{dir}/{n}") };
            if glob(pattern.as_bytes(), n.as_bytes()) && !skip(&r) {
                let p = base.join(&n);
                if let Ok(m) = std::fs::metadata(&p) {
                    out.push((p, m));
                }
            }
        }
        Ok(out)
    }
}

/// The cache key after a step: a digest over the key before it and the
/// step's inputs.
fn step_key(before: &str, parts: &[&str]) -> String {
    let mut h = crate::images::digest::HashWriter::default();
    for p in std::iter::once(&before).chain(parts) {
        let _ = h.write_all(p.as_bytes());
        let _ = h.write_all(b"\0");
    }
    h.digest()
}

/// The build cache, `images/build-cache.json`: for each step key, the layer
/// it made. A hit needs that layer still in the store (it goes with the
/// last image using it).
const CACHE_FILE: &str = "build-cache.json";
/// Entries kept (the least recently used go first).
const CACHE_MAX: usize = 1024;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Cached {
    diff_id: String,
    tar_size: u64,
    /// Last used, seconds since the epoch.
    used: u64,
}

/// `builder prune` (and `system prune`): forgets every cached step; the
/// layers belong to images, so no space is freed. Returns how many.
pub fn prune_cache(store: &Store) -> Result<usize> {
    let _lock = crate::images::index::FileLock::exclusive(&store.dir.join("build-cache.lock"))?;
    let n = cache_read(store).len();
    match std::fs::remove_file(store.dir.join(CACHE_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).ctx(|| "remove the build cache"),
        _ => Ok(n),
    }
}

fn cache_read(store: &Store) -> BTreeMap<String, Cached> {
    std::fs::read(store.dir.join(CACHE_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn cache_get(store: &Store, key: &str) -> Option<Cached> {
    cache_read(store).remove(key)
}

fn cache_put(store: &Store, key: &str, c: Cached) -> Result<()> {
    let _lock = crate::images::index::FileLock::exclusive(&store.dir.join("build-cache.lock"))?;
    let mut all = cache_read(store);
    all.insert(key.to_string(), c);
    while all.len() > CACHE_MAX {
        let Some(oldest) = all.iter().min_by_key(|(_, c)| c.used).map(|(k, _)| k.clone()) else { break };
        all.remove(&oldest);
    }
    let bytes = serde_json::to_vec(&all).ctx(|| "serialize the build cache")?;
    crate::images::index::write_atomic(&store.dir.join(CACHE_FILE), &bytes)
}

/// ADD URL: the file fetched into `dir`, named after the URL's last path
/// segment, mode 0600 (docker's). Loopback URLs go without a proxy.
fn fetch(root: &Path, url: &str, dir: &Path) -> Result<PathBuf> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let name = path.split(['?', '#']).next().unwrap_or("").rsplit('/').next().unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return err(format!("ADD {url}: cannot determine a file name from the URL; give the destination as a file"));
    }
    let insecure = if url.starts_with("http://") { vec![host.to_string()] } else { Vec::new() };
    let mut c = crate::registry::client::Client::new(root, host, "", &insecure, Vec::new())?;
    let what = format!("ADD {url}");
    let resp = c.get(&what, url, None)?;
    if !resp.status().is_success() {
        return Err(c.status_error(&what, resp));
    }
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).ctx(|| format!("create {}", p.display()))?;
    std::io::copy(&mut c.reader(resp), &mut f).ctx(|| format!("{what}: download"))?;
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).ctx(|| format!("chmod {}", p.display()))?;
    Ok(p)
}

/// Fills empty `dir` from stdin: a tar (plain, gzip, zstd) is the context,
/// unpacked; anything else is the Dockerfile of an empty context.
fn stdin_context(dir: &Path) -> Result<()> {
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut data).ctx(|| "read the build context from stdin")?;
    if !archive_head(&data) {
        return std::fs::write(dir.join("Dockerfile"), &data).ctx(|| format!("write {}", dir.join("Dockerfile").display()));
    }
    let (r, _) = layers::decompress(std::io::Cursor::new(data)).ctx(|| "the build context from stdin")?;
    // entries are kept under `dir` (the tar crate refuses `..` and absolute names)
    tar::Archive::new(r).unpack(dir).ctx(|| "unpack the build context from stdin")
}

/// Stores a stage's config as an image (tagged `tags`); returns its id.
fn store_stage(store: &Store, st: &mut Stage, tags: &[String]) -> Result<String> {
    st.cfg["created"] = config::now_rfc3339().into();
    let bytes = serde_json::to_vec(&st.cfg).ctx(|| "serialize the image config")?;
    let id = import::store_image(store, &bytes, st.descs.clone(), tags)?;
    st.image = Some(id.clone());
    Ok(id)
}

/// How COPY/ADD write their files.
struct Spec<'a> {
    owner: Option<(u64, u64)>,
    mode: Option<u32>,
    root: PathBuf,
    ignore: Option<&'a dockerfile::Ignore>,
    image_layers: &'a [PathBuf],
    /// Writing for the cache key: no parent dirs, no times.
    hashing: bool,
}

impl Spec<'_> {
    /// Writes `items` (source, its metadata, where it goes, whether it is
    /// an archive ADD extracts) as a layer tar.
    fn write(&self, items: &[(PathBuf, std::fs::Metadata, String, bool)], out: impl Write) -> Result<()> {
        let mut b = tar::Builder::new(out);
        let mut made_dirs = std::collections::BTreeSet::new();
        for (path, meta, target, extract) in items {
            self.parents(&mut b, target, &mut made_dirs)?;
            if meta.is_dir() {
                if target != "/" {
                    self.put(&mut b, path, meta, target)?;
                }
                self.tree(&mut b, path, target)?;
            } else if *extract {
                self.parents(&mut b, &join(target, "x"), &mut made_dirs)?;
                self.extract(&mut b, path, target)?;
            } else {
                self.put(&mut b, path, meta, target)?;
            }
        }
        b.into_inner().ctx(|| "write the layer").map(drop)
    }

    /// Directory entries for the parents of `target` the image lacks.
    fn parents(&self, b: &mut tar::Builder<impl Write>, target: &str, made: &mut std::collections::BTreeSet<String>) -> Result<()> {
        if self.hashing {
            return Ok(());
        }
        let mut p = String::new();
        let comps: Vec<&str> = target.split('/').filter(|c| !c.is_empty()).collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            p = format!("{p}/{c}");
            if made.contains(&p) || lookup_in(self.image_layers, &p).is_some() {
                continue;
            }
            let mut h = crate::commit::new_header(tar::EntryType::Directory, 0o755, self.owner.unwrap_or((0, 0)), now());
            b.append_data(&mut h, &p[1..], std::io::empty()).ctx(|| format!("write {p} to the layer"))?;
            made.insert(p.clone());
        }
        Ok(())
    }

    /// A directory's contents, symlinks kept as links.
    fn tree(&self, b: &mut tar::Builder<impl Write>, dir: &Path, target: &str) -> Result<()> {
        let mut names: Vec<_> = std::fs::read_dir(dir).ctx(|| format!("read {}", dir.display()))?.flatten().map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let p = dir.join(&n);
            let m = std::fs::symlink_metadata(&p).ctx(|| format!("stat {}", p.display()))?;
            if let (Some(ig), Ok(rel)) = (self.ignore, p.strip_prefix(&self.root)) {
                // an ignored directory is still walked for `!` exceptions under it
                if ig.matches(&rel.to_string_lossy()) && !(m.is_dir() && ig.exceptions()) {
                    continue;
                }
            }
            let t = join(target, &n.to_string_lossy());
            self.put(b, &p, &m, &t)?;
            if m.is_dir() {
                self.tree(b, &p, &t)?;
            }
        }
        Ok(())
    }

    fn put(&self, b: &mut tar::Builder<impl Write>, path: &Path, m: &std::fs::Metadata, target: &str) -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
        let (u, g) = self.owner.unwrap_or((0, 0));
        h.set_uid(u);
        h.set_gid(g);
        if let Some(mode) = self.mode {
            h.set_mode(mode);
        }
        if self.hashing {
            h.set_mtime(0);
        }
        let name = target.trim_start_matches('/');
        let w = if m.file_type().is_symlink() {
            let to = std::fs::read_link(path).ctx(|| format!("readlink {}", path.display()))?;
            b.append_link(&mut h, name, to)
        } else if m.is_file() {
            h.set_entry_type(tar::EntryType::Regular);
            let f = std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?;
            b.append_data(&mut h, name, f)
        } else if m.is_dir() {
            b.append_data(&mut h, name, std::io::empty())
        } else {
            return Ok(()); // sockets, fifos and devices of a context are not copied
        };
        w.ctx(|| format!("write {} to the layer", path.display()))
    }

    /// ADD of a local tar archive (plain, gzip, zstd): its entries under `target`.
    fn extract(&self, b: &mut tar::Builder<impl Write>, path: &Path, target: &str) -> Result<()> {
        let f = std::fs::File::open(path).ctx(|| format!("open {}", path.display()))?;
        let (r, _) = layers::decompress(f).ctx(|| format!("ADD {}", path.display()))?;
        let mut a = tar::Archive::new(r);
        for e in a.entries().ctx(|| format!("read {}", path.display()))? {
            let mut e = e.ctx(|| format!("read {}", path.display()))?;
            let raw = e.path_bytes().into_owned();
            let Some(rel) = clean(&String::from_utf8_lossy(&raw)) else { continue };
            if rel.is_empty() {
                continue;
            }
            let mut h = e.header().clone();
            let name = join(target, &rel);
            let res = match e.header().entry_type() {
                tar::EntryType::Link => {
                    let to = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
                    let Some(to) = clean(&to) else { continue };
                    b.append_link(&mut h, name.trim_start_matches('/'), join(target, &to).trim_start_matches('/'))
                }
                tar::EntryType::Symlink => {
                    let to = e.link_name_bytes().map(|l| l.into_owned()).unwrap_or_default();
                    b.append_link(&mut h, name.trim_start_matches('/'), Path::new(std::ffi::OsStr::from_bytes(&to)))
                }
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader | tar::EntryType::GNULongName | tar::EntryType::GNULongLink => continue,
                _ => b.append_data(&mut h, name.trim_start_matches('/'), &mut e),
            };
            res.ctx(|| format!("write {name} to the layer"))?;
        }
        Ok(())
    }
}

fn no_stage() -> Error {
    Error("no build stage in current context".into())
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A plain, gzip or zstd tar, by its first bytes.
fn is_archive(p: &Path) -> bool {
    let mut head = [0u8; 512];
    let n = std::fs::File::open(p).and_then(|mut f| crate::images::blobs::read_full(&mut f, &mut head)).unwrap_or(0);
    archive_head(&head[..n])
}

/// Whether bytes start a plain, gzip or zstd tar.
fn archive_head(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&crate::images::zstd::MAGIC) || head.get(257..262) == Some(b"ustar")
}

fn join(dir: &str, name: &str) -> String {
    let d = dir.trim_end_matches('/');
    if name.is_empty() {
        return if d.is_empty() { "/".into() } else { d.into() };
    }
    format!("{d}/{name}")
}

/// DEST made absolute against WORKDIR, cleaned.
fn absolute(dest: &str, workdir: &str) -> String {
    let full = if dest.starts_with('/') { dest.to_string() } else { format!("{}/{dest}", if workdir.is_empty() { "/" } else { workdir }) };
    format!("/{}", clean(&full).unwrap_or_default())
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's filepath.Match for one path component (`*`, `?`, `[...]`).
pub(crate) fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(b'['), Some(c)) => {
            let Some(end) = p.iter().skip(1).position(|x| *x == b']').map(|i| i + 1) else { return false };
            let (neg, set) = if p.get(1) == Some(&b'^') { (true, &p[2..end]) } else { (false, &p[1..end]) };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= *c && *c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == *c;
                    i += 1;
                }
            }
            hit != neg && glob(&p[end + 1..], &s[1..])
        }
        (Some(b'\\'), Some(c)) => p.get(1) == Some(c) && glob(&p[2..], &s[1..]),
        (Some(a), Some(c)) => a == c && glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// `rel` under `root` with every symlink on the way resolved inside
/// `root` (an absolute link restarts at `root`, `..` stops there), so a
/// source can never name a file outside the context or the stage.
fn resolve_in(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut todo: Vec<String> = rel.split('/').filter(|c| !c.is_empty() && *c != ".").rev().map(String::from).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let p = root.join(cur.join("/")).join(&c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return err(format!("{rel}: too many levels of symbolic links"));
                }
                let to = std::fs::read_link(&p).ctx(|| format!("readlink {}", p.display()))?;
                let to = to.to_string_lossy().into_owned();
                if to.starts_with('/') {
                    cur.clear();
                }
                todo.extend(to.split('/').filter(|c| !c.is_empty() && *c != ".").rev().map(String::from));
            }
            _ => cur.push(c),
        }
    }
    Ok(root.join(cur.join("/")))
}

/// What the image has at absolute `path` (the topmost layer that has it;
/// None when absent or deleted by a whiteout).
fn lookup_in(layers: &[PathBuf], path: &str) -> Option<std::fs::Metadata> {
    let rel = path.trim_start_matches('/');
    for l in layers.iter().rev() {
        if let Ok(m) = std::fs::symlink_metadata(l.join(rel)) {
            use std::os::unix::fs::FileTypeExt;
            return (!(m.file_type().is_char_device() && m.rdev() == 0)).then_some(m);
        }
    }
    None
}

/// `--chown=USER[:GROUP]`: numbers, or names from the image's
/// /etc/passwd and /etc/group (the topmost layer that has them), as a
/// container's user is found; a lone number is the group too (docker).
fn owner_ids(spec: &str, layers: &[PathBuf]) -> Result<(u64, u64)> {
    if let Ok(n) = spec.parse::<u64>() {
        return Ok((n, n));
    }
    let read = |f: &str| layers.iter().rev().find_map(|l| std::fs::read_to_string(l.join(f)).ok()).unwrap_or_default();
    let (u, g) = crate::oci::user_from(spec, &read).map_err(|e| Error(format!("--chown={spec}: {}", e.0)))?;
    Ok((u as u64, g as u64))
}

/// A read-only merged view of some layers, for COPY --from (one layer is
/// used as it is; more are mounted as an overlay without an upper dir).
struct Merged {
    path: PathBuf,
    mount: Option<crate::images::Temp>,
}

impl Merged {
    fn mount(store: &Store, dirs: &[PathBuf]) -> Result<Merged> {
        match dirs {
            [] => err("COPY --from: the stage has no files"),
            [one] => Ok(Merged { path: one.clone(), mount: None }),
            _ => {
                let t = crate::images::Temp::dir(store.temp_path("from"))?;
                let lower: Vec<String> = dirs.iter().rev().map(|d| d.display().to_string()).collect();
                let data = std::ffi::CString::new(format!("lowerdir={}", lower.join(":"))).map_err(|_| Error("a layer path has a NUL byte".into()))?;
                let target = std::ffi::CString::new(t.path().as_os_str().as_encoded_bytes()).map_err(|_| Error("bad temp path".into()))?;
                // SAFETY: mount with valid NUL-terminated strings.
                let r = unsafe { libc::mount(c"overlay".as_ptr(), target.as_ptr(), c"overlay".as_ptr(), libc::MS_RDONLY, data.as_ptr().cast()) };
                if r != 0 {
                    return Err(std::io::Error::last_os_error()).ctx(|| format!("mount the layers for COPY --from on {}", t.path().display()));
                }
                Ok(Merged { path: t.path().to_path_buf(), mount: Some(t) })
            }
        }
    }
}

impl Drop for Merged {
    fn drop(&mut self) {
        if self.mount.is_some() {
            if let Ok(c) = std::ffi::CString::new(self.path.as_os_str().as_encoded_bytes()) {
                // SAFETY: umount2 with a valid path.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// Sends stdout and stderr to /dev/null while it lives (`build -q`'s RUN
/// output), then puts them back.
struct Silence {
    saved: [libc::c_int; 2],
}

impl Silence {
    fn new() -> Result<Silence> {
        let _ = std::io::stdout().flush();
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null").ctx(|| "open /dev/null")?;
        use std::os::fd::AsRawFd;
        // SAFETY: dup/dup2 on fds this process owns.
        let saved = unsafe { [libc::dup(1), libc::dup(2)] };
        // SAFETY: as above.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(null.as_raw_fd(), 2);
        }
        Ok(Silence { saved })
    }
}

impl Drop for Silence {
    fn drop(&mut self) {
        // SAFETY: the saved fds are ours.
        unsafe {
            libc::dup2(self.saved[0], 1);
            libc::dup2(self.saved[1], 2);
            libc::close(self.saved[0]);
            libc::close(self.saved[1]);
        }
    }
}

/// Applies one config instruction (CMD ENTRYPOINT ENV LABEL EXPOSE USER
/// WORKDIR VOLUME STOPSIGNAL HEALTHCHECK) to the run config `c`.
fn apply_config(c: &mut Value, ins: &Instruction, escape: char, lookup: &dyn Fn(&str) -> Option<String>, shell: &[String], cmd_set: &mut bool) -> Result<()> {
    let text = || match &ins.args {
        Args::Text(t) => t.clone(),
        Args::Json(v) => serde_json::to_string(v).unwrap_or_default(),
    };
    let command = || match &ins.args {
        Args::Json(v) => json!(v),
        Args::Text(t) => json!(shell.iter().cloned().chain([t.clone()]).collect::<Vec<_>>()),
    };
    let words = || match &ins.args {
        Args::Json(v) => v.iter().map(|w| dockerfile::expand(w, lookup, escape)).collect::<Result<Vec<_>>>(),
        Args::Text(t) => dockerfile::words(t, lookup, escape),
    };
    let mut map = |key: &str, pairs: Vec<(String, String)>| {
        let mut m = c[key].as_object().cloned().unwrap_or_default();
        for (k, v) in pairs {
            m.insert(k, v.into());
        }
        c[key] = Value::Object(m);
    };
    match ins.keyword.as_str() {
        "CMD" => {
            c["Cmd"] = command();
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            c["Entrypoint"] = command();
            if !*cmd_set {
                c["Cmd"] = Value::Null;
            }
        }
        "ENV" => {
            let mut env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap_or_default();
            for (k, v) in dockerfile::key_values(&text(), lookup, escape, "ENV")? {
                let v = v.unwrap_or_default();
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            c["Env"] = json!(env);
        }
        "LABEL" => {
            let pairs = dockerfile::key_values(&text(), lookup, escape, "LABEL")?;
            map("Labels", pairs.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect());
        }
        "EXPOSE" => {
            let mut ports = Vec::new();
            for p in words()? {
                let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                let (a, b) = num.split_once('-').unwrap_or((num, num));
                let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) else { return err(format!("invalid containerPort: {num}")) };
                if !["tcp", "udp", "sctp"].contains(&proto.to_lowercase().as_str()) || a > b {
                    return err(format!("invalid port {p:?} (EXPOSE)"));
                }
                ports.extend((a..=b).map(|n| (format!("{n}/{}", proto.to_lowercase()), String::new())));
            }
            let mut m = c["ExposedPorts"].as_object().cloned().unwrap_or_default();
            m.extend(ports.into_iter().map(|(k, _)| (k, json!({}))));
            c["ExposedPorts"] = Value::Object(m);
        }
        // one word each, expanded as a whole (docker)
        "USER" => c["User"] = dockerfile::expand(&text(), lookup, escape)?.into(),
        "STOPSIGNAL" => c["StopSignal"] = dockerfile::expand(&text(), lookup, escape)?.into(),
        "WORKDIR" => {
            let w = dockerfile::expand(&text(), lookup, escape)?;
            c["WorkingDir"] = absolute(&w, c["WorkingDir"].as_str().unwrap_or("/")).into();
        }
        "VOLUME" => {
            let mut m = c["Volumes"].as_object().cloned().unwrap_or_default();
            for v in words()? {
                if v.is_empty() {
                    return err("VOLUME specified can not be an empty string");
                }
                m.insert(v, json!({}));
            }
            c["Volumes"] = Value::Object(m);
        }
        "HEALTHCHECK" => c["Healthcheck"] = healthcheck(ins)?,
        k => return err(format!("{k} is not a config instruction here")),
    }
    Ok(())
}

fn healthcheck(ins: &Instruction) -> Result<Value> {
    let text = match &ins.args {
        Args::Text(t) => t.trim().to_string(),
        Args::Json(v) => serde_json::to_string(v).unwrap_or_default(),
    };
    if text.eq_ignore_ascii_case("none") {
        return Ok(json!({ "Test": ["NONE"] }));
    }
    let rest = match text.get(..3) {
        Some(k) if k.eq_ignore_ascii_case("cmd") && text[3..].starts_with([' ', '[', '\t']) => text[3..].trim(),
        _ => return err("HEALTHCHECK takes NONE or CMD followed by a command"),
    };
    let test: Vec<String> = match serde_json::from_str::<Vec<String>>(rest) {
        Ok(v) => ["CMD".to_string()].into_iter().chain(v).collect(),
        Err(_) => vec!["CMD-SHELL".into(), rest.into()],
    };
    let mut h = json!({ "Test": test });
    for (k, v) in &ins.flags {
        let key = match k.as_str() {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                h["Retries"] = v.parse::<u32>().map_err(|_| Error(format!("invalid --retries {v:?} (HEALTHCHECK)")))?.into();
                continue;
            }
            _ => return err(format!("unknown flag: --{k} (HEALTHCHECK)")),
        };
        let d = skiff_runtime::container::parse_duration(v).map_err(|_| Error(format!("invalid --{k} {v:?} (HEALTHCHECK): a duration such as 30s")))?;
        h[key] = (d.as_nanos() as i64).into();
    }
    Ok(h)
}

/// `commit --change`: one Dockerfile config instruction (docker's list:
/// CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD STOPSIGNAL USER VOLUME WORKDIR)
/// applied to run config `c`; variables come from its Env.
pub fn apply_change(c: &mut Value, change: &str) -> Result<()> {
    let df = dockerfile::parse(&format!("FROM scratch\n{change}"))?;
    let [_, ins] = df.instructions.as_slice() else { return err(format!("invalid --change {change:?}: one instruction, such as CMD [\"sh\"]")) };
    const ALLOWED: [&str; 10] = ["CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "ONBUILD", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"];
    if !ALLOWED.contains(&ins.keyword.as_str()) {
        return err(format!("{} is not a valid change command", ins.keyword.to_lowercase()));
    }
    if ins.keyword == "ONBUILD" {
        let mut l = c["OnBuild"].as_array().cloned().unwrap_or_default();
        if let Args::Text(t) = &ins.args {
            l.push(t.clone().into());
        }
        c["OnBuild"] = Value::Array(l);
        return Ok(());
    }
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).unwrap_or_default();
    let lookup = |n: &str| env.iter().find_map(|e| e.strip_prefix(&format!("{n}=")).map(String::from));
    let shell: Vec<String> = serde_json::from_value(c["Shell"].clone()).unwrap_or_else(|_| DEFAULT_SHELL.map(String::from).to_vec());
    let mut cmd_set = true;
    let mut out = c.clone();
    apply_config(&mut out, ins, df.escape, &lookup, &shell, &mut cmd_set)?;
    *c = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaned_paths_stay_inside() {
        assert_eq!(clean("./a/../b//c/"), Some("b/c".into()));
        assert_eq!(clean("../etc/passwd"), None);
        assert_eq!(clean("a/../../x"), None);
        assert_eq!(absolute("app/", "/srv"), "/srv/app");
        assert_eq!(absolute("/x/./y", "/srv"), "/x/y");
        assert_eq!(absolute(".", ""), "/");
    }

    #[test]
    fn globs_match_as_go_does() {
        assert!(glob(b"*.txt", b"a.txt"));
        assert!(!glob(b"*.txt", b"a.txt.bak"));
        assert!(glob(b"fil?", b"file"));
        assert!(glob(b"[a-c]x", b"bx"));
        assert!(!glob(b"[^a-c]x", b"bx"));
        assert!(glob(b"a\\*", b"a*"));
        assert!(!glob(b"a\\*", b"ab"));
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let d = std::env::temp_dir().join(format!("skiff-build-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("ctx/sub")).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("ctx/abs")).unwrap();
        std::os::unix::fs::symlink("../../..", d.join("ctx/sub/up")).unwrap();
        let root = d.join("ctx");
        assert_eq!(resolve_in(&root, "abs/passwd").unwrap(), root.join("etc/passwd"));
        assert_eq!(resolve_in(&root, "sub/up/x").unwrap(), root.join("x"));
        std::os::unix::fs::symlink("loop", d.join("ctx/loop")).unwrap();
        assert!(resolve_in(&root, "loop").unwrap_err().0.contains("too many levels"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn config_instructions_change_the_config() {
        let mut c = json!({ "Env": ["PATH=/bin"], "Cmd": ["sh"] });
        apply_change(&mut c, "ENV A=1 B=\"two words\"").unwrap();
        apply_change(&mut c, "ENV PATH=/x:$PATH").unwrap();
        assert_eq!(c["Env"], json!(["A=1", "B=two words", "PATH=/x:/bin"]));
        apply_change(&mut c, "EXPOSE 80 53/udp 9000-9001").unwrap();
        assert_eq!(c["ExposedPorts"], json!({ "80/tcp": {}, "53/udp": {}, "9000/tcp": {}, "9001/tcp": {} }));
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        apply_change(&mut c, "WORKDIR app").unwrap();
        assert_eq!(c["WorkingDir"], "/srv/app");
        apply_change(&mut c, "CMD echo $A").unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo $A"]));
        apply_change(&mut c, "LABEL a=b").unwrap();
        assert_eq!(c["Labels"], json!({ "a": "b" }));
        assert!(apply_change(&mut c, "RUN true").unwrap_err().0.contains("not a valid change"));
        assert!(apply_change(&mut c, "EXPOSE 80/foo").is_err());
        assert_eq!(c["ExposedPorts"].as_object().map(|m| m.len()), Some(4), "a failed change leaves the config as it was");
    }

    #[test]
    fn entrypoint_resets_an_inherited_cmd() {
        let ins = |t: &str| dockerfile::parse(&format!("FROM scratch\n{t}")).unwrap().instructions.remove(1);
        let sh = DEFAULT_SHELL.map(String::from).to_vec();
        let mut c = json!({ "Cmd": ["sh"] });
        let mut set = false;
        apply_config(&mut c, &ins("ENTRYPOINT [\"/bin/app\"]"), '\\', &|_| None, &sh, &mut set).unwrap();
        assert_eq!(c["Cmd"], Value::Null);
        apply_config(&mut c, &ins("CMD [\"-v\"]"), '\\', &|_| None, &sh, &mut set).unwrap();
        apply_config(&mut c, &ins("ENTRYPOINT [\"/bin/other\"]"), '\\', &|_| None, &sh, &mut set).unwrap();
        assert_eq!(c["Cmd"], json!(["-v"]));
    }

    #[test]
    fn healthchecks_take_docker_forms() {
        let ins = |t: &str| dockerfile::parse(&format!("FROM scratch\n{t}")).unwrap().instructions.remove(1);
        let h = healthcheck(&ins("HEALTHCHECK --interval=5s --retries=2 CMD wget -q -O- localhost")).unwrap();
        assert_eq!(h, json!({ "Test": ["CMD-SHELL", "wget -q -O- localhost"], "Interval": 5_000_000_000i64, "Retries": 2 }));
        let h = healthcheck(&ins("HEALTHCHECK CMD [\"/bin/true\"]")).unwrap();
        assert_eq!(h["Test"], json!(["CMD", "/bin/true"]));
        assert_eq!(healthcheck(&ins("HEALTHCHECK NONE")).unwrap()["Test"], json!(["NONE"]));
        assert!(healthcheck(&ins("HEALTHCHECK --retries=many CMD true")).unwrap_err().0.contains("--retries"));
        assert!(healthcheck(&ins("HEALTHCHECK --timeout=soon CMD true")).unwrap_err().0.contains("--timeout"));
    }
}

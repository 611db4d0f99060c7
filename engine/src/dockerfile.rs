//! The Dockerfile front end of `engine build` and `commit --change`, after
//! buildkit's dockerfile frontend: the parser (directives, continuations,
//! comments, `--flags`, JSON vs shell form, argument checks), the shell-word
//! expansion of `$VAR`/`${VAR:-word}` and quotes, and `.dockerignore`.
//! Pure functions: the builder expands with its own environment, since the
//! base image's ENV is only known at build time.

use crate::error::{err, Error, Result};
use serde_json::Value;

/// Form of an instruction's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Exec form, `["a", "b"]`.
    Json(Vec<String>),
    /// Anything else, trimmed and not yet expanded.
    Text(String),
}

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// Upper case: FROM RUN CMD ...
    pub keyword: String,
    /// Leading `--name=value` flags (`--name` alone has value "").
    pub flags: Vec<(String, String)>,
    pub args: Args,
    /// As written, continuations joined (docker's "Step 1/5 : RUN ..." and history).
    pub original: String,
    /// RUN/COPY/ADD here-documents (BuildKit's `<<EOF` ... `EOF`), in order.
    pub heredocs: Vec<Heredoc>,
}

/// A here-document: the word that names it (`EOF`) and its lines, each
/// ending in a newline (`<<-` strips their leading tabs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

const KEYWORDS: [&str; 18] = [
    "FROM", "RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "ENV", "ARG", "LABEL", "EXPOSE", "WORKDIR", "USER", "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
    "ONBUILD", "MAINTAINER",
];

/// The flags buildkit accepts per instruction (support is the builder's call).
fn known_flags(keyword: &str) -> &'static [&'static str] {
    match keyword {
        "FROM" => &["platform"],
        "RUN" => &["mount", "network", "security"],
        "COPY" => &["from", "chown", "chmod", "link", "parents", "exclude"],
        "ADD" => &["chown", "chmod", "link", "keep-git-dir", "checksum", "exclude"],
        "HEALTHCHECK" => &["interval", "timeout", "start-period", "start-interval", "retries"],
        _ => &[],
    }
}

/// Parses a whole Dockerfile. Comment and blank lines are dropped, also
/// inside continuations; errors read `dockerfile parse error on line N: ...`.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let lines: Vec<&str> = text.strip_prefix('\u{feff}').unwrap_or(text).lines().collect();
    let (mut escape, mut directives, mut seen) = ('\\', true, Vec::new());
    let mut instructions: Vec<Instruction> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i + 1;
        let first = lines[i].trim_start();
        i += 1;
        let at = |msg: String| Error(format!("dockerfile parse error on line {start}: {msg}"));
        if directives {
            // Directives only lead the file; anything else (an unknown one too) ends them.
            match directive(first) {
                Some((k, v)) if ["escape", "syntax", "check"].contains(&k.as_str()) => {
                    if seen.contains(&k) {
                        return Err(at(format!("only one {k} parser directive can be used")));
                    }
                    if k == "escape" {
                        escape = match v.as_str() {
                            "\\" => '\\',
                            "`" => '`',
                            _ => return Err(at(format!("invalid escape token '{v}' does not match ` or \\"))),
                        };
                    }
                    seen.push(k);
                    continue;
                }
                _ => directives = false,
            }
        }
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let (part, mut more) = continuation(first, escape);
        let mut joined = part.to_string();
        while more && i < lines.len() {
            let line = lines[i];
            i += 1;
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            // Continuation lines keep their leading blanks, as in docker.
            let (part, m) = continuation(line, escape);
            joined.push_str(part);
            more = m;
        }
        if joined.trim().is_empty() {
            continue;
        }
        let mut ins = instruction(&joined, start, escape)?;
        if matches!(ins.keyword.as_str(), "RUN" | "COPY" | "ADD") {
            // each opener's lines follow the instruction, up to its name alone on a line
            for (name, strip) in joined.split_whitespace().filter_map(heredoc) {
                let mut body = String::new();
                loop {
                    let Some(line) = lines.get(i) else { return Err(at(format!("unterminated heredoc {name}"))) };
                    i += 1;
                    let line = if strip { line.trim_start_matches('\t') } else { line };
                    if line == name {
                        break;
                    }
                    body.push_str(line);
                    body.push('\n');
                }
                ins.heredocs.push(Heredoc { name, body });
            }
        }
        if !matches!(ins.keyword.as_str(), "ARG" | "FROM") && instructions.iter().all(|i| i.keyword == "ARG") {
            return Err(at("no build stage in current context".into()));
        }
        instructions.push(ins);
    }
    if instructions.is_empty() {
        return err("file with no instructions");
    }
    if !instructions.iter().any(|i| i.keyword == "FROM") {
        return err("dockerfile contains no stages to build");
    }
    Ok(Dockerfile { escape, instructions })
}

/// `# name=value`: a parser directive's lower-cased name and value.
fn directive(line: &str) -> Option<(String, String)> {
    let (k, v) = line.strip_prefix('#')?.split_once('=')?;
    let (k, v) = (k.trim(), v.trim());
    let ok = k.starts_with(|c: char| c.is_ascii_alphabetic()) && k.chars().all(|c| c.is_ascii_alphanumeric()) && !v.is_empty();
    ok.then(|| (k.to_ascii_lowercase(), v.to_string()))
}

/// The line without a trailing escape char (blanks after it allowed), and whether it had one.
fn continuation(line: &str, escape: char) -> (&str, bool) {
    match line.trim_end_matches([' ', '\t']).strip_suffix(escape) {
        Some(l) => (l, true),
        None => (line, false),
    }
}

/// One instruction (continuations joined) as `parse` reads it; `line` is
/// for the error messages and `Instruction::line`.
pub fn instruction(text: &str, line: usize, escape: char) -> Result<Instruction> {
    parse_line(text, line, escape).map_err(|e| Error(format!("dockerfile parse error on line {line}: {}", e.0)))
}

fn parse_line(text: &str, line: usize, escape: char) -> Result<Instruction> {
    let original = text.trim();
    let (word, rest) = original.split_once(char::is_whitespace).unwrap_or((original, ""));
    let keyword = word.to_ascii_uppercase();
    let kw = keyword.as_str();
    if !KEYWORDS.contains(&kw) {
        return err(format!("unknown instruction: {keyword}"));
    }
    // ONBUILD's flags belong to its trigger.
    let (flags, rest) = if kw == "ONBUILD" { (Vec::new(), rest.trim()) } else { builder_flags(rest) };
    if let Some((name, _)) = flags.iter().find(|(f, _)| !known_flags(kw).contains(&f.as_str())) {
        return err(format!("unknown flag: {name}"));
    }
    let args = match kw {
        "RUN" | "CMD" | "ENTRYPOINT" | "SHELL" | "COPY" | "ADD" | "VOLUME" => json_or_text(rest)?,
        _ => Args::Text(rest.to_string()),
    };
    let count = match &args {
        Args::Json(v) => v.len(),
        Args::Text(t) => t.split_whitespace().count(),
    };
    let need = |ok: bool, what: &str| if ok { Ok(()) } else { err(format!("{kw} requires {what}")) };
    match kw {
        "FROM" => {
            let w: Vec<&str> = rest.split_whitespace().collect();
            match w[..] {
                [_] => {}
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    let n = name.to_ascii_lowercase();
                    if !n.starts_with(|c: char| c.is_ascii_lowercase()) || !n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)) {
                        return err(format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"));
                    }
                }
                _ => return err("FROM requires either one or three arguments"),
            }
        }
        "RUN" | "EXPOSE" | "VOLUME" | "ONBUILD" | "HEALTHCHECK" => need(count > 0, "at least one argument")?,
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => need(count > 0, "exactly one argument")?,
        "COPY" | "ADD" => need(count > 1, "at least two arguments, but only one was provided. Destination could not be determined")?,
        "ENV" | "LABEL" | "ARG" => drop(split_kv(rest, escape, kw)?),
        "SHELL" => {
            need(count > 0, "at least one argument")?;
            need(matches!(args, Args::Json(_)), "the arguments to be in JSON form")?;
        }
        _ => {}
    }
    match (kw, &args) {
        ("VOLUME", Args::Json(v)) if v.iter().any(|s| s.trim().is_empty()) => return err("VOLUME specified can not be an empty string"),
        ("HEALTHCHECK", _) => {
            let (typ, cmd) = rest.split_once(char::is_whitespace).map_or((rest, ""), |(t, c)| (t, c.trim()));
            match typ.to_ascii_uppercase().as_str() {
                "NONE" if !cmd.is_empty() => return err("HEALTHCHECK NONE takes no arguments"),
                "NONE" => {}
                "CMD" if cmd.is_empty() || json_or_text(cmd)? == Args::Json(Vec::new()) => return err("Missing command after HEALTHCHECK CMD"),
                "CMD" => {}
                t => return err(format!("Unknown type {t:?} in HEALTHCHECK (try CMD)")),
            }
        }
        ("ONBUILD", _) => {
            let trigger = rest.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => return err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
                "FROM" | "MAINTAINER" => return err(format!("{trigger} isn't allowed as an ONBUILD trigger")),
                _ => drop(parse_line(rest, line, escape)?),
            }
        }
        _ => {}
    }
    Ok(Instruction { line, keyword, flags, args, original: original.to_string(), heredocs: Vec::new() })
}

/// A word opening a heredoc (`<<EOF`, `<<-EOF`, `2<<"EOF"`; not `<<<`):
/// its name, unquoted, and whether `<<-` strips leading tabs.
pub fn heredoc(word: &str) -> Option<(String, bool)> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let n = w.strip_prefix("<<")?;
    let (n, strip) = match n.strip_prefix('-') {
        Some(n) => (n, true),
        None => (n, false),
    };
    let n = n.trim_matches(|c| c == '"' || c == '\'');
    (!n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))).then(|| (n.to_string(), strip))
}

/// Leading `--name[=value]` words and the rest of the line, as buildkit's
/// extractBuilderFlags: quotes and `\` work in values, `--` alone ends them.
fn builder_flags(line: &str) -> (Vec<(String, String)>, &str) {
    let mut flags = Vec::new();
    let mut rest = line.trim_start();
    while rest.starts_with("--") {
        let (mut word, mut quote, mut end) = (String::new(), None, rest.len());
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => word.extend(chars.next().map(|(_, n)| n)),
                _ => word.push(c),
            }
        }
        rest = rest[end..].trim_start();
        if word == "--" {
            break;
        }
        let w = &word[2..];
        let (k, v) = w.split_once('=').unwrap_or((w, ""));
        flags.push((k.to_string(), v.to_string()));
    }
    (flags, rest)
}

/// `text` as an exec-form JSON array of strings, else as shell-form text.
/// As in docker, a valid JSON array of other values is an error and text
/// after the array is ignored.
pub fn json_or_text(text: &str) -> Result<Args> {
    let text = text.trim();
    if text.starts_with('[') {
        if let Some(Ok(v)) = serde_json::Deserializer::from_str(text).into_iter::<Vec<Value>>().next() {
            let strings = v.into_iter().map(|v| match v {
                Value::String(s) => Ok(s),
                _ => err("when using JSON array syntax, arrays must be comprised of strings only"),
            });
            return strings.collect::<Result<_>>().map(Args::Json);
        }
    }
    Ok(Args::Text(text.to_string()))
}

/// Expands one word: `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`,
/// `${VAR:+word}`, `${VAR+word}`, `${VAR:?msg}`, `${VAR?msg}`; quotes are
/// removed (single quotes literal), `escape` escapes the next char, unknown
/// variables are empty. Blanks are kept (ENV's legacy value, WORKDIR).
pub fn expand(word: &str, env: &dyn Fn(&str) -> Option<String>, escape: char) -> Result<String> {
    lex(word, env, escape).map(|(s, _)| s)
}

/// `text` split at unquoted blanks (also inside unquoted variable values),
/// each word expanded as by `expand`; empty words are dropped, as in docker.
pub fn words(text: &str, env: &dyn Fn(&str) -> Option<String>, escape: char) -> Result<Vec<String>> {
    lex(text, env, escape).map(|(_, w)| w)
}

/// The pairs of ENV, LABEL or ARG (`keyword`), keys and values expanded:
/// `K=V K2="v 2"`, ENV/LABEL's legacy `KEY value with blanks`, ARG's
/// `NAME` (value `None`) or `NAME=default`.
pub fn key_values(text: &str, env: &dyn Fn(&str) -> Option<String>, escape: char, keyword: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for (k, v) in split_kv(text, escape, keyword)? {
        let k = expand(&k, env, escape)?;
        if k.is_empty() {
            return err(format!("{keyword} names can not be blank"));
        }
        out.push((k, v.map(|v| expand(&v, env, escape)).transpose()?));
    }
    Ok(out)
}

/// `key_values` before expansion: names and values still quoted.
fn split_kv(text: &str, escape: char, keyword: &str) -> Result<Vec<(String, Option<String>)>> {
    let words = raw_words(text, escape);
    if words.is_empty() {
        return err(format!("{keyword} requires at least one argument"));
    }
    // A first word without `=` is the legacy one-pair form.
    if keyword != "ARG" && !words[0].contains('=') {
        let Some((k, v)) = text.trim().split_once(char::is_whitespace) else { return err(format!("{keyword} must have two arguments")) };
        return Ok(vec![(k.to_string(), Some(v.trim_start().to_string()))]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => err(format!("{keyword} names can not be blank")),
            Some((k, v)) => Ok((k.to_string(), Some(v.to_string()))),
            None if keyword == "ARG" => Ok((w, None)),
            None => err(format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value")),
        })
        .collect()
}

/// buildkit's parseWords: split at blanks outside quotes, keeping quotes
/// and escapes for the expansion.
fn raw_words(text: &str, escape: char) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut quote) = (Vec::new(), String::new(), false, None);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if quoted || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                quoted = false;
                continue;
            }
            None if c == '\'' || c == '"' => (quote, quoted) = (Some(c), true),
            Some(q) if c == q => quote = None,
            _ if c == escape && quote != Some('\'') => {
                if let Some(n) = chars.next() {
                    word.extend([c, n]);
                }
                continue;
            }
            _ => {}
        }
        word.push(c);
    }
    if quoted || !word.is_empty() {
        words.push(word);
    }
    words
}

/// Both results of one pass, as buildkit's lexer: the expanded text and its words.
fn lex(text: &str, env: &dyn Fn(&str) -> Option<String>, escape: char) -> Result<(String, Vec<String>)> {
    let mut l = Lexer { s: text.chars().collect(), i: 0, env, escape };
    let (s, mut w) = l.process(false).map_err(|e| Error(format!("failed to process {text:?}: {}", e.0)))?;
    if !w.word.is_empty() {
        w.done.push(w.word);
    }
    Ok((s, w.done))
}

#[derive(Default)]
struct Words {
    done: Vec<String>,
    word: String,
}

impl Words {
    /// Appends `s`; with `split` (unquoted text) its blanks end words.
    fn add(&mut self, s: &str, split: bool) {
        for c in s.chars() {
            if !split || !c.is_whitespace() {
                self.word.push(c);
            } else if !self.word.is_empty() {
                self.done.push(std::mem::take(&mut self.word));
            }
        }
    }
}

struct Lexer<'a> {
    s: Vec<char>,
    i: usize,
    env: &'a dyn Fn(&str) -> Option<String>,
    escape: char,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.i += 1;
        c
    }

    /// Reads to the end, or with `brace` (a `${VAR:-word}` word) through the closing `}`.
    fn process(&mut self, brace: bool) -> Result<(String, Words)> {
        let (mut out, mut words) = (String::new(), Words::default());
        while let Some(c) = self.peek() {
            if brace && c == '}' {
                self.i += 1;
                return Ok((out, words));
            }
            let (text, split) = match c {
                '\'' => (self.single()?, false),
                '"' => (self.double()?, false),
                '$' => (self.dollar()?, true),
                _ => {
                    self.i += 1;
                    if c != self.escape {
                        (c.to_string(), true)
                    } else if let Some(n) = self.next() {
                        (n.to_string(), false)
                    } else {
                        break;
                    }
                }
            };
            out.push_str(&text);
            words.add(&text, split);
        }
        if brace {
            return err("syntax error: missing '}'");
        }
        Ok((out, words))
    }

    fn single(&mut self) -> Result<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => return err("unexpected end of statement while looking for matching single-quote"),
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    /// `"..."`: `$` expands; the escape char escapes only `"`, `$` and itself.
    fn double(&mut self) -> Result<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return err("unexpected end of statement while looking for matching double-quote"),
                Some('"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(mut c) => {
                    self.i += 1;
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => (c, self.i) = (n, self.i + 1),
                            _ => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn dollar(&mut self) -> Result<String> {
        self.i += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(if name.is_empty() { "$".into() } else { (self.env)(&name).unwrap_or_default() });
        }
        self.i += 1;
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            _ => {}
        }
        let name = self.name();
        let value = (self.env)(&name);
        let c = self.next();
        let colon = c == Some(':');
        let op = if colon { self.next() } else { c };
        match op {
            Some('}') if !colon => return Ok(value.unwrap_or_default()),
            Some('+' | '-' | '?') => {}
            None => return err("syntax error: missing '}'"),
            Some(c) if colon => return err(format!("unsupported modifier ({c}) in substitution")),
            Some(_) => return err("missing ':' in substitution"),
        }
        let word = self.process(true)?.0;
        // With the colon, empty counts as unset.
        let value = value.filter(|v| !colon || !v.is_empty());
        match (op, value) {
            (Some('+'), v) => Ok(if v.is_some() { word } else { String::new() }),
            (Some('-'), v) => Ok(v.unwrap_or(word)),
            (_, Some(v)) => Ok(v),
            _ if !word.is_empty() => err(format!("{name}: {word}")),
            _ => err(format!("{name}: is not allowed to be {}", if colon { "empty" } else { "unset" })),
        }
    }

    /// A variable name: letters, digits and `_`; or digits; or one special parameter.
    fn name(&mut self) -> String {
        let start = self.i;
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
            Some('@' | '*' | '#' | '?' | '-' | '$' | '!') => self.i += 1,
            _ => {
                while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    self.i += 1;
                }
            }
        }
        self.s[start..self.i].iter().collect()
    }
}

/// `.dockerignore`, as docker reads it with moby/patternmatcher.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// In file order; `true` marks a `!` exception.
    patterns: Vec<(bool, Vec<Tok>)>,
}

/// A compiled pattern item.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Char(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one char but `/`.
    One,
    /// `[...]`, negated with `^`: inclusive ranges.
    Class(bool, Vec<(char, char)>),
    /// `**` (and `**/`) inside: zero or more whole segments, `(.*/)?`.
    Deep,
    /// `**` at the end: anything.
    Rest,
}

impl Ignore {
    /// One pattern a line; `#` lines (at column 0) and blank lines skipped;
    /// patterns cleaned as Go's filepath.Clean, a leading `/` dropped.
    pub fn parse(text: &str) -> Result<Ignore> {
        let mut patterns = Vec::new();
        for line in text.strip_prefix('\u{feff}').unwrap_or(text).lines() {
            let mut p = line.trim();
            if line.starts_with('#') || p.is_empty() {
                continue;
            }
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
                if p.is_empty() {
                    return err("illegal exclusion pattern: \"!\"");
                }
            }
            let p = clean(p);
            let p = if p.len() > 1 { p.trim_start_matches('/') } else { &p };
            patterns.push((exception, compile(p)?));
        }
        Ok(Ignore { patterns })
    }

    /// Whether `rel_path` (from the context root, `/`-separated) is ignored:
    /// the last pattern matching it or one of its parent directories wins.
    pub fn matches(&self, rel_path: &str) -> bool {
        let path: Vec<char> = clean(rel_path).trim_start_matches('/').chars().collect();
        let mut prefixes: Vec<&[char]> = (0..path.len()).filter(|&i| path[i] == '/').map(|i| &path[..i]).collect();
        prefixes.push(&path);
        let mut matched = false;
        for (exception, toks) in &self.patterns {
            if *exception == matched && prefixes.iter().any(|p| glob(toks, p)) {
                matched = !exception;
            }
        }
        matched
    }

    /// Whether there are `!` patterns: then an ignored directory may still
    /// hold included files and must be walked.
    pub fn exceptions(&self) -> bool {
        self.patterns.iter().any(|(e, _)| *e)
    }
}

/// Go's filepath.Clean for `/` paths.
fn clean(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => drop(parts.pop()),
            ".." if abs => {}
            s => parts.push(s),
        }
    }
    match (abs, parts.join("/")) {
        (true, body) => format!("/{body}"),
        (false, body) if body.is_empty() => ".".into(),
        (false, body) => body,
    }
}

fn compile(p: &str) -> Result<Vec<Tok>> {
    let bad = || Error(format!("syntax error in pattern: {p}"));
    let mut out = Vec::new();
    let mut it = p.chars().peekable();
    while let Some(c) = it.next() {
        out.push(match c {
            '*' if it.next_if_eq(&'*').is_some() => {
                it.next_if_eq(&'/');
                if it.peek().is_none() { Tok::Rest } else { Tok::Deep }
            }
            '*' => Tok::Star,
            '?' => Tok::One,
            '\\' => Tok::Char(it.next().ok_or_else(bad)?),
            '[' => {
                let negated = it.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    let mut lo = it.next().ok_or_else(bad)?;
                    if lo == ']' && !ranges.is_empty() {
                        break;
                    }
                    if lo == '\\' {
                        lo = it.next().ok_or_else(bad)?;
                    }
                    let mut hi = lo;
                    if it.next_if_eq(&'-').is_some() {
                        hi = it.next().ok_or_else(bad)?;
                        if hi == '\\' {
                            hi = it.next().ok_or_else(bad)?;
                        }
                    }
                    ranges.push((lo, hi));
                }
                Tok::Class(negated, ranges)
            }
            c => Tok::Char(c),
        });
    }
    Ok(out)
}

fn glob(p: &[Tok], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((Tok::Rest, _)) => true,
        Some((Tok::Star, r)) => (0..=s.len()).take_while(|&k| k == 0 || s[k - 1] != '/').any(|k| glob(r, &s[k..])),
        Some((Tok::Deep, r)) => glob(r, s) || (0..s.len()).any(|k| s[k] == '/' && glob(r, &s[k + 1..])),
        Some((t, r)) => match s.split_first() {
            Some((&c, rest)) => {
                let one = match t {
                    Tok::Char(x) => c == *x,
                    Tok::One => c != '/',
                    Tok::Class(neg, ranges) => c != '/' && ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *neg,
                    _ => false,
                };
                one && glob(r, rest)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<Instruction> {
        parse(text).unwrap().instructions
    }

    fn text(s: &str) -> Args {
        Args::Text(s.into())
    }

    fn json(v: &[&str]) -> Args {
        Args::Json(v.iter().map(|s| s.to_string()).collect())
    }

    fn perr(text: &str) -> String {
        parse(text).unwrap_err().0
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("alpha".into()),
            "E" => Some(String::new()),
            "SP" => Some("x  y".into()),
            _ => None,
        }
    }

    fn x(word: &str) -> String {
        expand(word, &env, '\\').unwrap()
    }

    fn xerr(word: &str) -> String {
        expand(word, &env, '\\').unwrap_err().0
    }

    fn w(t: &str) -> Vec<String> {
        words(t, &env, '\\').unwrap()
    }

    fn kv(t: &str, keyword: &str) -> Result<Vec<(String, Option<String>)>> {
        key_values(t, &env, '\\', keyword)
    }

    fn pair(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.into(), v.map(String::from))
    }

    #[test]
    fn continuation_lines_join_as_docker() {
        let i = p("FROM alpine\nRUN echo a \\\n    && echo b\\   \n c\nCMD [\"sh\"]\n");
        assert_eq!(i.len(), 3);
        assert_eq!((i[1].line, i[1].keyword.as_str()), (2, "RUN"));
        assert_eq!(i[1].args, text("echo a     && echo b c"));
        assert_eq!(i[1].original, "RUN echo a     && echo b c");
        assert_eq!((i[2].line, &i[2].args), (5, &json(&["sh"])));
        // the joined text is exact: no blank added between the parts
        assert_eq!(p("FROM a\nRUN echo ab\\\ncd")[1].args, text("echo abcd"));
    }

    #[test]
    fn comments_and_blank_lines_inside_continuations() {
        let i = p("# top\n\nFROM a\n\n  # indented comment\nRUN a \\\n# inside\n\n  b \\\n   # again\n c\nUSER x");
        assert_eq!(i.iter().map(|i| i.line).collect::<Vec<_>>(), [3, 6, 12]);
        assert_eq!(i[1].args, text("a   b  c"));
        assert_eq!(i[2].keyword, "USER");
        // a trailing continuation at the end of the file
        assert_eq!(p("FROM a\nRUN x \\")[1].args, text("x"));
    }

    #[test]
    fn escape_directive_backtick() {
        let d = parse("# escape=`\nFROM windows\nRUN dir `\n  c:\\\nCOPY a\\ b\\\nUSER x").unwrap();
        assert_eq!(d.escape, '`');
        assert_eq!(d.instructions[1].args, text("dir   c:\\"));
        // `\` is no continuation any more
        assert_eq!(d.instructions[2].args, text("a\\ b\\"));
        assert_eq!(d.instructions[3].keyword, "USER");
        assert_eq!(expand("a`$b`\"", &env, d.escape).unwrap(), "a$b\"");
    }

    #[test]
    fn escape_directive_backslash_syntax_and_placement() {
        let d = parse("#syntax=docker/dockerfile:1\n  # ESCAPE = \\\nFROM a\nRUN x \\\n y").unwrap();
        assert_eq!((d.escape, &d.instructions[1].args), ('\\', &text("x  y")));
        // after a plain comment, a blank line or an instruction a directive is only a comment
        assert_eq!(parse("# hello\n# escape=`\nFROM a").unwrap().escape, '\\');
        assert_eq!(parse("\n# escape=`\nFROM a").unwrap().escape, '\\');
        assert_eq!(parse("FROM a\n# escape=`\nRUN x `\n").unwrap().escape, '\\');
        assert_eq!(perr("# escape=`\n# escape=\\\nFROM a"), "dockerfile parse error on line 2: only one escape parser directive can be used");
        assert!(perr("# escape=x\nFROM a").contains("invalid escape token 'x'"), "{}", perr("# escape=x\nFROM a"));
    }

    #[test]
    fn bom_crlf_and_lowercase_keywords() {
        let i = p("\u{feff}from alpine AS build\r\nrun echo \\\r\n hi\r\n");
        assert_eq!((i[0].keyword.as_str(), &i[0].args), ("FROM", &text("alpine AS build")));
        assert_eq!((i[1].keyword.as_str(), &i[1].args), ("RUN", &text("echo  hi")));
    }

    #[test]
    fn json_and_shell_forms() {
        let i = p("FROM a\nRUN [\"echo\", \"a b\"]\nCMD echo hi\nENTRYPOINT []\nCOPY [\"a b\", \"/c\"]\nVOLUME [\"/v\"]\nVOLUME /a /b\nENV A [\"x\"]\nSHELL [\"/bin/bash\", \"-c\"]");
        assert_eq!(i[1].args, json(&["echo", "a b"]));
        assert_eq!(i[2].args, text("echo hi"));
        assert_eq!(i[3].args, json(&[]));
        assert_eq!(i[4].args, json(&["a b", "/c"]));
        assert_eq!(i[5].args, json(&["/v"]));
        assert_eq!(i[6].args, text("/a /b"));
        assert_eq!(i[7].args, text("A [\"x\"]"));
        assert_eq!(i[8].args, json(&["/bin/bash", "-c"]));
    }

    #[test]
    fn malformed_json_falls_back_to_text() {
        let i = p("FROM a\nRUN [ -f x ] && echo y\nCMD [\"a\", ]\nENTRYPOINT [\"unterminated\nCOPY [a] /b");
        assert_eq!(i[1].args, text("[ -f x ] && echo y"));
        assert_eq!(i[2].args, text("[\"a\", ]"));
        assert_eq!(i[3].args, text("[\"unterminated"));
        assert_eq!(i[4].args, text("[a] /b"));
        assert!(perr("FROM a\nCMD [\"a\", 1]").ends_with("line 2: when using JSON array syntax, arrays must be comprised of strings only"));
        // docker decodes the first JSON value and ignores what follows
        assert_eq!(json_or_text(" [\"a\"] b").unwrap(), json(&["a"]));
    }

    #[test]
    fn flags() {
        let i = p("FROM --platform=$BUILDPLATFORM alpine\nCOPY --from=build --chown=\"1:1\" --link a /b\nRUN --network=none echo --x\nHEALTHCHECK --interval=5s CMD true\nRUN -- --x");
        let f = |i: &Instruction| i.flags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>();
        assert_eq!((f(&i[0]), &i[0].args), (vec!["platform=$BUILDPLATFORM".to_string()], &text("alpine")));
        assert_eq!((f(&i[1]), &i[1].args), (vec!["from=build".into(), "chown=1:1".into(), "link=".into()], &text("a /b")));
        assert_eq!((f(&i[2]), &i[2].args), (vec!["network=none".to_string()], &text("echo --x")));
        assert_eq!((f(&i[3]), &i[3].args), (vec!["interval=5s".to_string()], &text("CMD true")));
        assert_eq!((i[4].flags.len(), &i[4].args), (0, &text("--x")));
        assert_eq!(p("FROM a\nRUN --mount=type=cache,target=/c [\"make\"]")[1].args, json(&["make"]));
        assert_eq!(perr("FROM a\nCOPY --form=x a b"), "dockerfile parse error on line 2: unknown flag: form");
        assert_eq!(perr("FROM a\nENV --x=1 A=1"), "dockerfile parse error on line 2: unknown flag: x");
    }

    #[test]
    fn onbuild() {
        let i = p("FROM a\nONBUILD run --network=none echo hi\nONBUILD COPY . /app");
        assert_eq!((i[1].keyword.as_str(), &i[1].args, i[1].flags.len()), ("ONBUILD", &text("run --network=none echo hi"), 0));
        assert_eq!(i[2].args, text("COPY . /app"));
        assert_eq!(perr("FROM a\nONBUILD ONBUILD RUN x"), "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        assert_eq!(perr("FROM a\nONBUILD from b"), "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger");
        assert_eq!(perr("FROM a\nONBUILD MAINTAINER me"), "dockerfile parse error on line 2: MAINTAINER isn't allowed as an ONBUILD trigger");
        assert_eq!(perr("FROM a\n\nONBUILD FOO x"), "dockerfile parse error on line 3: unknown instruction: FOO");
        assert_eq!(perr("FROM a\nONBUILD COPY a"), "dockerfile parse error on line 2: COPY requires at least two arguments, but only one was provided. Destination could not be determined");
        assert_eq!(perr("FROM a\nONBUILD"), "dockerfile parse error on line 2: ONBUILD requires at least one argument");
    }

    #[test]
    fn unknown_instruction_line_number() {
        assert_eq!(perr("FROM a\nRUN a \\\n  b\n# c\n\nfoo bar"), "dockerfile parse error on line 6: unknown instruction: FOO");
        assert_eq!(instruction("BAD x", 9, '\\').unwrap_err().0, "dockerfile parse error on line 9: unknown instruction: BAD");
    }

    #[test]
    fn missing_arguments() {
        let cases = [
            ("FROM a\nRUN", "RUN requires at least one argument"),
            ("FROM", "FROM requires either one or three arguments"),
            ("FROM a b", "FROM requires either one or three arguments"),
            ("FROM a AS b c", "FROM requires either one or three arguments"),
            ("FROM a AS 1st", "invalid name for build stage: \"1st\", name can't start with a number or contain symbols"),
            ("FROM a\nCOPY", "COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
            ("FROM a\nADD [\"x\"]", "ADD requires at least two arguments, but only one was provided. Destination could not be determined"),
            ("FROM a\nENV", "ENV requires at least one argument"),
            ("FROM a\nENV A", "ENV must have two arguments"),
            ("FROM a\nLABEL =x", "LABEL names can not be blank"),
            ("FROM a\nARG", "ARG requires at least one argument"),
            ("FROM a\nWORKDIR", "WORKDIR requires exactly one argument"),
            ("FROM a\nUSER", "USER requires exactly one argument"),
            ("FROM a\nEXPOSE", "EXPOSE requires at least one argument"),
            ("FROM a\nVOLUME [\"/a\", \" \"]", "VOLUME specified can not be an empty string"),
            ("FROM a\nSHELL sh -c", "SHELL requires the arguments to be in JSON form"),
            ("FROM a\nSHELL []", "SHELL requires at least one argument"),
            ("FROM a\nHEALTHCHECK", "HEALTHCHECK requires at least one argument"),
            ("FROM a\nHEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
            ("FROM a\nHEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
            ("FROM a\nHEALTHCHECK CMD []", "Missing command after HEALTHCHECK CMD"),
            ("FROM a\nHEALTHCHECK RUN x", "Unknown type \"RUN\" in HEALTHCHECK (try CMD)"),
        ];
        for (df, msg) in cases {
            assert!(perr(df).ends_with(&format!(": {msg}")), "{df:?}: {}", perr(df));
        }
        // the accepted forms around them
        let i = p("FROM a AS Build-1.x\nHEALTHCHECK none\nHEALTHCHECK CMD [\"true\"]\nCMD\nENTRYPOINT []\nUSER a b");
        assert_eq!((i[1].args.clone(), i[2].args.clone()), (text("none"), text("CMD [\"true\"]")));
    }

    #[test]
    fn first_instruction_and_empty_files() {
        assert_eq!(perr("RUN x\nFROM a"), "dockerfile parse error on line 1: no build stage in current context");
        assert_eq!(perr("ARG V=1\n\nENV A=1\nFROM a"), "dockerfile parse error on line 3: no build stage in current context");
        assert_eq!(p("ARG V=1\nARG W\nFROM a:$V\nRUN x").len(), 4);
        assert_eq!(perr(""), "file with no instructions");
        assert_eq!(perr("# escape=`\n\n# just a comment\n   \n"), "file with no instructions");
        assert_eq!(perr("ARG V"), "dockerfile contains no stages to build");
    }

    #[test]
    fn heredocs_are_read() {
        let d = parse("FROM a\nRUN <<EOF\necho hi\n  \\\nEOF\nCOPY <<-\"A\" <<B /x/\n\tone\n\tA\ntwo\nB\nCMD x").unwrap();
        assert_eq!(d.instructions.len(), 4);
        assert_eq!(d.instructions[1].heredocs, [Heredoc { name: "EOF".into(), body: "echo hi\n  \\\n".into() }]);
        assert_eq!(d.instructions[2].heredocs, [Heredoc { name: "A".into(), body: "one\n".into() }, Heredoc { name: "B".into(), body: "two\n".into() }]);
        assert!(perr("FROM a\nRUN cat 3<<X\nline").contains("line 2: unterminated heredoc X"));
        // here-strings, shifts and quoted text are not heredocs
        assert_eq!(p("FROM a\nRUN cat <<< x && echo $((1<<2)) \"<<EOF\"").len(), 2);
        assert_eq!(p("FROM a\nCMD cat <<EOF").len(), 2);
    }

    #[test]
    fn expand_variables() {
        assert_eq!(x("$A"), "alpha");
        assert_eq!(x("${A}"), "alpha");
        assert_eq!(x("${A}b/$A.c-$A_x"), "alphab/alpha.c-");
        assert_eq!(x("$U|${U}"), "|");
        assert_eq!(x("a$"), "a$");
        assert_eq!(x("$ $/"), "$ $/");
        assert_eq!(x("$1x"), "x");
        assert_eq!(x("${A:-d}|${U:-d}|${E:-d}"), "alpha|d|d");
        assert_eq!(x("${A-d}|${U-d}|${E-d}"), "alpha|d|");
        assert_eq!(x("${A:+p}|${U:+p}|${E:+p}"), "p||");
        assert_eq!(x("${A+p}|${U+p}|${E+p}"), "p||p");
        assert_eq!(x("${U:-${A}/x}"), "alpha/x");
        assert_eq!(x("${U:-a b}"), "a b");
        assert_eq!(x("${U:-\\}}"), "}");
        assert_eq!(x("${A:?no}|${E?no}"), "alpha|");
        assert!(xerr("${U:?must set}").ends_with("U: must set"));
        assert!(xerr("${E:?}").ends_with("E: is not allowed to be empty"));
        assert!(xerr("${U?}").ends_with("U: is not allowed to be unset"));
    }

    #[test]
    fn expand_quotes_and_escapes() {
        assert_eq!(x("'$A \"x\"'"), "$A \"x\"");
        assert_eq!(x("\"$A  'b'\""), "alpha  'b'");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("\"\\$A\\\"\\\\\\n\""), "$A\"\\\\n");
        assert_eq!(x("a\\ b\\'c"), "a b'c");
        assert_eq!(x("'a\\'"), "a\\");
        assert_eq!(x("x\\"), "x");
        assert_eq!(x("hello   world"), "hello   world");
        assert_eq!(expand("`$A\\", &env, '`').unwrap(), "$A\\");
        assert_eq!(xerr("a\"b"), "failed to process \"a\\\"b\": unexpected end of statement while looking for matching double-quote");
        assert!(xerr("'ab").ends_with("matching single-quote"));
        assert_eq!(xerr("x${A"), "failed to process \"x${A\": syntax error: missing '}'");
        assert!(xerr("${U:-abc").ends_with("missing '}'"));
        assert!(xerr("${}").ends_with("bad substitution"));
        assert!(xerr("${A:x}").ends_with("unsupported modifier (x) in substitution"));
        assert!(xerr("${A x}").ends_with("missing ':' in substitution"));
    }

    #[test]
    fn words_split_on_unquoted_blanks() {
        assert_eq!(w("  a  b\t$A "), ["a", "b", "alpha"]);
        assert_eq!(w("\"a b\" 'c d'e f\\ g"), ["a b", "c de", "f g"]);
        // unquoted values split, quoted ones do not
        assert_eq!(w("$SP \"$SP\" ${U:-p q}"), ["x", "y", "x  y", "p", "q"]);
        // empty words vanish, as in docker
        assert_eq!(w("a \"\" $U ''"), ["a"]);
        assert!(words("a 'b", &env, '\\').is_err());
    }

    #[test]
    fn key_values_modern_forms() {
        assert_eq!(kv("A=1 B=\"two words\" C=$A D=${U:-d} E= F='$A'", "ENV").unwrap(), [
            pair("A", Some("1")),
            pair("B", Some("two words")),
            pair("C", Some("alpha")),
            pair("D", Some("d")),
            pair("E", Some("")),
            pair("F", Some("$A")),
        ]);
        assert_eq!(kv("a=b=c x\\ y=1 \"q r\"=2", "LABEL").unwrap(), [pair("a", Some("b=c")), pair("x y", Some("1")), pair("q r", Some("2"))]);
        assert_eq!(kv("K=\"a\\\"b\" ${A}_K=v", "ENV").unwrap(), [pair("K", Some("a\"b")), pair("alpha_K", Some("v"))]);
        assert_eq!(kv("N V=1 W=\"$A x\"", "ARG").unwrap(), [pair("N", None), pair("V", Some("1")), pair("W", Some("alpha x"))]);
    }

    #[test]
    fn key_values_legacy_forms_and_errors() {
        assert_eq!(kv("  PATH   /a:$A  \"b c\"  d ", "ENV").unwrap(), [pair("PATH", Some("/a:alpha  b c  d"))]);
        assert_eq!(kv("maintainer me <me@x.org>", "LABEL").unwrap(), [pair("maintainer", Some("me <me@x.org>"))]);
        assert_eq!(kv("A \"x=y\"", "ENV").unwrap(), [pair("A", Some("x=y"))]);
        assert_eq!(kv("A", "ENV").unwrap_err().0, "ENV must have two arguments");
        assert_eq!(kv("=x", "ENV").unwrap_err().0, "ENV names can not be blank");
        assert_eq!(kv("=x", "ARG").unwrap_err().0, "ARG names can not be blank");
        assert_eq!(kv("$U=x", "LABEL").unwrap_err().0, "LABEL names can not be blank");
        assert_eq!(kv("A=1 B", "ENV").unwrap_err().0, "Syntax error - can't find = in \"B\". Must be of the form: name=value");
        assert_eq!(kv("  ", "LABEL").unwrap_err().0, "LABEL requires at least one argument");
        assert!(kv("A=\"x", "ENV").unwrap_err().0.contains("double-quote"));
    }

    fn ig(patterns: &str) -> Ignore {
        Ignore::parse(patterns).unwrap()
    }

    #[test]
    fn ignore_basic_and_directory_prefix() {
        let i = ig("# comment\n\n  node_modules  \n/build/\n./tmp/../dist\n *.log\n #not a comment\n");
        for (path, want) in [
            ("node_modules", true),
            ("node_modules/a/b.js", true),
            ("node_modulesx", false),
            ("src/node_modules", false),
            ("build/out/x", true),
            ("dist/a", true),
            ("tmp/a", false),
            ("x.log", true),
            ("logs/x.log", false),
            ("#not a comment", true),
            ("# comment", false),
            ("src/main.rs", false),
        ] {
            assert_eq!(i.matches(path), want, "{path}");
        }
        assert!(!i.exceptions());
        assert!(!ig("").matches("a"));
    }

    #[test]
    fn ignore_double_star() {
        let i = ig("**/*.md\na/**/z\ncache/**\n");
        for (path, want) in [
            ("README.md", true),
            ("docs/x/y.md", true),
            ("docs/x.mdx", false),
            ("a/z", true),
            ("a/b/c/z", true),
            ("a/b/zz", false),
            ("b/a/z", false),
            ("cache", false),
            ("cache/x/y", true),
        ] {
            assert_eq!(i.matches(path), want, "{path}");
        }
        assert!(ig("**").matches("any/thing"));
    }

    #[test]
    fn ignore_exceptions_last_match_wins() {
        let i = ig("*.md\n!README*.md\nREADME-secret.md\nlogs\n!logs/keep\n");
        assert!(i.exceptions());
        for (path, want) in [
            ("a.md", true),
            ("README.md", false),
            ("README-secret.md", true),
            ("logs", true),
            ("logs/x", true),
            ("logs/keep", false),
            ("logs/keep/deep", false),
        ] {
            assert_eq!(i.matches(path), want, "{path}");
        }
        // an exception before the pattern it would except does nothing
        assert!(ig("!a.txt\n*.txt").matches("a.txt"));
        assert_eq!(Ignore::parse("!\n").unwrap_err().0, "illegal exclusion pattern: \"!\"");
    }

    #[test]
    fn ignore_go_match_syntax() {
        let i = ig("f?le\n[a-c]x\n[^0-9]y\nlit\\*\nsrc/*/gen\n");
        for (path, want) in [
            ("file", true),
            ("f/le", false),
            ("bx", true),
            ("dx", false),
            ("ay", true),
            ("5y", false),
            ("lit*", true),
            ("litx", false),
            ("src/a/gen/x", true),
            ("src/a/b/gen", false),
        ] {
            assert_eq!(i.matches(path), want, "{path}");
        }
        assert!(Ignore::parse("[a-").is_err());
        assert!(Ignore::parse("x\\").is_err());
        assert_eq!(clean("a//b/./../c/"), "a/c");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("../x/.."), "..");
    }
}

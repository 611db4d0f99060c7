//! YAML for docker compose files, read into `serde_json` values.
//!
//! Why our own parser: serde_yaml and yaml-rust2 were weighed in bytes
//! against the engine's size budget (the workspace Cargo.toml); this one,
//! for the subset compose files use, adds about 30 KiB to a release build.
//! Supported: block and flow collections; plain, quoted and block scalars;
//! comments; anchors, aliases and merge keys (`<<`); the YAML 1.2 core
//! schema as go-yaml v3 (which compose uses) resolves it; the `!!` standard
//! tags and compose's `!reset`/`!override`. Refused, with an error naming
//! the line: explicit keys (`? `), a second document, `%TAG`, other tags.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// Deeper nesting is an error rather than a stack overflow.
const MAX_DEPTH: usize = 256;
/// Aliases copy their node: this caps what a "billion laughs" file can build.
const MAX_NODES: usize = 1_000_000;

type Res<T> = Result<T, String>;

/// Where a node starts: `Block` first on its line or after "- " (a block
/// collection may start there), `Value` after "key:" (on that line only a
/// scalar or a flow collection), `Flow` inside `[]` or `{}`.
#[derive(Clone, Copy, PartialEq)]
enum Ctx { Block, Value, Flow }

/// A node before its tag and the core schema are applied.
enum Raw { Plain(String), Quoted(String), Done(Value) }

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    depth: usize,
    nodes: usize,
    /// An anchored value and the number of nodes it counts for.
    anchors: HashMap<String, (Value, usize)>,
}

/// Parses one YAML document (a docker compose file) into JSON values.
pub fn parse(text: &str) -> Result<Value, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).replace("\r\n", "\n");
    let mut p = Parser { s: &text, b: text.as_bytes(), pos: 0, depth: 0, nodes: 0, anchors: HashMap::new() };
    // Refused up front so that 0 can stand for the end of the input.
    if let Some(i) = text.find('\0') { return Err(p.err(i, "NUL character")) }
    p.document()
}

fn blank(c: u8) -> bool { matches!(c, b' ' | b'\t' | b'\n' | 0) }
fn flow_char(c: u8) -> bool { b",[]{}".contains(&c) }
/// What folded line breaks become: one is a space, n empty lines are n newlines.
fn breaks(empty: usize) -> String { if empty == 0 { " ".into() } else { "\n".repeat(empty) } }

impl<'a> Parser<'a> {
    fn err(&self, p: usize, msg: impl std::fmt::Display) -> String {
        format!("line {}: {msg}", self.b.iter().take(p).filter(|&&c| c == b'\n').count() + 1)
    }
    fn at(&self, p: usize) -> u8 { self.b.get(p).copied().unwrap_or(0) }
    fn starts(&self, p: usize, pat: &str) -> bool { self.s.get(p..).is_some_and(|r| r.starts_with(pat)) }
    fn eol(&self, p: usize) -> usize { self.b.get(p..).and_then(|r| r.iter().position(|&c| c == b'\n')).map_or(self.b.len(), |i| p + i) }
    fn col(&self, p: usize) -> isize { (p - self.b.get(..p).and_then(|r| r.iter().rposition(|&c| c == b'\n')).map_or(0, |i| i + 1)) as isize }
    fn dash(&self, p: usize) -> bool { self.at(p) == b'-' && blank(self.at(p + 1)) }
    /// "---" or "..." (the caller checks that it starts a line).
    fn marker(&self, p: usize) -> bool { matches!(self.b.get(p..p + 3), Some(b"---" | b"...")) && blank(self.at(p + 3)) }
    fn skip_space(&mut self) { while matches!(self.at(self.pos), b' ' | b'\t') { self.pos += 1 } }

    fn flow_ws(&mut self) {
        while let c @ (b' ' | b'\t' | b'\n' | b'#') = self.at(self.pos) { self.pos = if c == b'#' { self.eol(self.pos) } else { self.pos + 1 } }
    }

    /// The first line after `p` (a line end) that is not blank: its indentation
    /// (-1 at the end), where its text starts, how many blank lines came before
    /// it, and whether a tab came before its text.
    fn ahead(&self, mut p: usize) -> (isize, usize, usize, bool) {
        let mut blanks = 0;
        while p < self.b.len() {
            p += usize::from(self.at(p) == b'\n');
            let start = p;
            while self.at(p) == b' ' { p += 1 }
            let (col, mut tab) = ((p - start) as isize, false);
            while matches!(self.at(p), b' ' | b'\t') { (tab, p) = (true, p + 1) }
            if self.at(p) != b'\n' && p < self.b.len() { return (col, p, blanks, tab) }
            blanks += usize::from(self.at(p) == b'\n');
        }
        (-1, p, blanks, false)
    }

    /// The next line with content, past comments: its indentation (-1 at the
    /// end or at a document marker) and where its text starts.
    fn peek(&self) -> Res<(isize, usize)> {
        let mut p = self.pos;
        loop {
            let (col, at, _, tab) = self.ahead(p);
            match self.at(at) {
                _ if col < 0 => return Ok((-1, at)),
                b'#' => p = self.eol(at),
                _ if tab => return Err(self.err(at, "tab character in indentation")),
                _ => return Ok((if col == 0 && self.marker(at) { -1 } else { col }, at)),
            }
        }
    }

    /// Ends the current line (a comment may follow) and peeks the next.
    fn line_end(&mut self) -> Res<(isize, usize)> {
        self.skip_space();
        if self.at(self.pos) == b'#' { self.pos = self.eol(self.pos) }
        match self.at(self.pos) {
            0 | b'\n' => self.peek(),
            b':' => Err(self.err(self.pos, "mapping values are not allowed here")),
            _ => Err(self.err(self.pos, "unexpected text after a value")),
        }
    }

    fn document(&mut self) -> Res<Value> {
        let (mut c, mut at) = self.peek()?;
        while c == 0 && self.at(at) == b'%' {
            if !self.starts(at, "%YAML") { return Err(self.err(at, "only the %YAML directive is supported")) }
            self.pos = self.eol(at);
            (c, at) = self.peek()?;
        }
        let root = if c < 0 && !self.starts(at, "---") {
            Value::Null
        } else {
            // A node may follow "---" on its line, as after "key:".
            self.pos = if c >= 0 { at } else { at + 3 };
            self.skip_space();
            let root = self.node(-1, if c >= 0 { Ctx::Block } else { Ctx::Value })?;
            (c, at) = self.line_end()?;
            root
        };
        if c >= 0 { return Err(self.err(at, "unexpected content (bad indentation?)")) }
        if self.starts(at, "...") {
            self.pos = at + 3;
            at = self.line_end()?.1;
        }
        if at < self.b.len() { return Err(self.err(at, "multiple documents are not supported")) }
        Ok(root)
    }

    /// A node whose lines are indented more than `n` (its parent's column).
    fn node(&mut self, n: isize, ctx: Ctx) -> Res<Value> {
        if self.depth >= MAX_DEPTH { return Err(self.err(self.pos, format!("nesting deeper than {MAX_DEPTH} levels"))) }
        self.depth += 1;
        // (Only block nodes need their column: finding it scans back to the line start.)
        let (start, col) = (self.nodes, if ctx == Ctx::Block { self.col(self.pos) } else { 0 });
        let (mut anchor, mut tag) = (None, None);
        loop {
            match self.at(self.pos) {
                b'&' if anchor.is_none() => anchor = Some(self.name(1)),
                b'!' if tag.is_none() => tag = Some((self.pos, self.name(0))),
                _ => break,
            }
            if ctx == Ctx::Flow { self.flow_ws() } else { self.skip_space() }
        }
        let raw = if ctx != Ctx::Flow && matches!(self.at(self.pos), 0 | b'\n' | b'#') {
            // Nothing more on this line: the node is on the next ones, or empty.
            // A sequence may sit at its parent key's column ("ports:\n- 80").
            let (c, p) = self.line_end()?;
            if c > n || (ctx == Ctx::Value && c == n && self.dash(p)) { self.block(n, c, p)? } else { Raw::Plain(String::new()) }
        } else if ctx == Ctx::Block {
            self.block(n, col, self.pos)?
        } else {
            self.scalar(n, ctx)?
        };
        self.nodes += 1;
        if self.nodes > MAX_NODES { return Err(self.err(self.pos, format!("more than {MAX_NODES} nodes"))) }
        let v = self.typed(raw, tag)?;
        if let Some(a) = anchor { self.anchors.insert(a, (v.clone(), self.nodes - start)); }
        self.depth -= 1;
        Ok(v)
    }

    /// An anchor, alias or tag: the sigil (kept unless skipped) and what follows up to a space.
    fn name(&mut self, skip: usize) -> String {
        let start = self.pos;
        self.pos += 1;
        while !blank(self.at(self.pos)) && !flow_char(self.at(self.pos)) { self.pos += 1 }
        self.s.get(start + skip..self.pos).unwrap_or("").to_string()
    }

    /// A node at `at`, column `c`, that may be a block sequence or mapping.
    fn block(&mut self, n: isize, c: isize, at: usize) -> Res<Raw> {
        self.pos = at;
        if self.dash(at) { return Ok(Raw::Done(self.seq(c)?)) }
        if self.key()?.is_none() { return self.scalar(n, Ctx::Block) }
        self.pos = at;
        Ok(Raw::Done(self.map(c)?))
    }

    fn scalar(&mut self, n: isize, ctx: Ctx) -> Res<Raw> {
        let at = self.pos;
        Ok(match self.at(at) {
            b'*' => {
                let name = self.name(1);
                let Some((v, count)) = self.anchors.get(&name) else { return Err(self.err(at, format!("unknown alias *{name}"))) };
                // Counted before the copy is made (node() counts one of them).
                self.nodes += count - 1;
                if self.nodes >= MAX_NODES { return Err(self.err(at, format!("more than {MAX_NODES} nodes"))) }
                Raw::Done(v.clone())
            }
            b'[' | b'{' => Raw::Done(self.flow(n)?),
            b'"' | b'\'' => Raw::Quoted(self.quoted()?),
            b'|' | b'>' if ctx != Ctx::Flow => Raw::Quoted(self.block_scalar(n)?),
            _ => Raw::Plain(self.plain(n, ctx == Ctx::Flow)?),
        })
    }

    fn seq(&mut self, s: isize) -> Res<Value> {
        let mut items = Vec::new();
        loop {
            self.pos += 1;
            self.skip_space();
            items.push(self.node(s, Ctx::Block)?);
            let (c, p) = self.line_end()?;
            if c > s { return Err(self.err(p, "bad indentation of a sequence entry")) }
            if c < s || !self.dash(p) { return Ok(Value::Array(items)) }
            self.pos = p;
        }
    }

    fn map(&mut self, m: isize) -> Res<Value> {
        let (mut map, mut merged) = (Map::new(), Map::new());
        loop {
            let at = self.pos;
            let Some((k, merge)) = self.key()? else { return Err(self.err(at, "expected a mapping entry (key: value)")) };
            self.skip_space();
            let v = self.node(m, Ctx::Value)?;
            if merge {
                // Earlier mappings in a "<<" list win; the mapping's own keys win over all.
                for v in if let Value::Array(a) = v { a } else { vec![v] } {
                    let Value::Object(o) = v else { return Err(self.err(at, "<< takes a mapping or a list of mappings")) };
                    for (k, v) in o { merged.entry(k).or_insert(v); }
                }
            } else if map.contains_key(&k) {
                return Err(self.err(at, format!("duplicate key {k:?}")));
            } else {
                map.insert(k, v);
            }
            let (c, p) = self.line_end()?;
            if c > m { return Err(self.err(p, "bad indentation of a mapping entry")) }
            if c < m { break }
            self.pos = p;
        }
        for (k, v) in merged { map.entry(k).or_insert(v); }
        Ok(Value::Object(map))
    }

    /// A block mapping key and its ':', and whether it is the merge key "<<";
    /// `None`, with nothing consumed, when there is none here.
    fn key(&mut self) -> Res<Option<(String, bool)>> {
        let at = self.pos;
        let (k, merge) = match self.at(at) {
            b'?' if blank(self.at(at + 1)) => return Err(self.err(at, "explicit keys (\"? \") are not supported")),
            b'"' | b'\'' => (Value::String(self.quoted()?), false),
            _ if self.plain_start(false) => { let s = self.plain_line(false); (resolve(&s), s == "<<") }
            _ => return Ok(None),
        };
        self.skip_space();
        if self.at(self.pos) != b':' || !blank(self.at(self.pos + 1)) { self.pos = at; return Ok(None); }
        self.pos += 1;
        Ok(Some((self.key_string(k, at)?, merge)))
    }

    /// Keys become strings, as compose prints them ("80: x" is key "80").
    fn key_string(&self, k: Value, at: usize) -> Res<String> {
        match k {
            Value::String(s) => Ok(s),
            Value::Null => Err(self.err(at, "a mapping key cannot be null")),
            Value::Bool(_) | Value::Number(_) => Ok(k.to_string()),
            _ => Err(self.err(at, "a mapping key must be a scalar")),
        }
    }

    fn plain_start(&self, flow: bool) -> bool {
        let (c, d) = (self.at(self.pos), self.at(self.pos + 1));
        !(b"\0\n[]{},#&*!|>'\"%@`".contains(&c) || (b"-?:".contains(&c) && (blank(d) || (flow && flow_char(d)))))
    }

    /// The rest of a plain scalar's line: up to ": ", " #" or (in flow) an indicator.
    fn plain_line(&mut self, flow: bool) -> String {
        let start = self.pos;
        loop {
            let (c, d) = (self.at(self.pos), self.at(self.pos + 1));
            let comment = c == b'#' && self.pos > start && matches!(self.at(self.pos - 1), b' ' | b'\t');
            if matches!(c, b'\n' | 0) || comment || (c == b':' && (blank(d) || (flow && flow_char(d)))) || (flow && flow_char(c)) {
                return self.s.get(start..self.pos).unwrap_or("").trim_end_matches([' ', '\t']).to_string();
            }
            self.pos += 1;
        }
    }

    /// A plain scalar; lines indented more than `n` (any, in flow) continue it.
    fn plain(&mut self, n: isize, flow: bool) -> Res<String> {
        if !self.plain_start(flow) {
            let c = self.s.get(self.pos..).and_then(|r| r.chars().next());
            return Err(self.err(self.pos, c.map_or("unexpected end of input".into(), |c| format!("unexpected character {c:?}"))));
        }
        let mut out = self.plain_line(flow);
        while self.at(self.pos) == b'\n' {
            let (col, at, blanks, _) = self.ahead(self.pos);
            let c = self.at(at);
            if col < 0 || c == b'#' || (col == 0 && self.marker(at)) || if flow { flow_char(c) || c == b':' } else { col <= n } {
                break;
            }
            out += &breaks(blanks);
            self.pos = at;
            out += &self.plain_line(flow);
        }
        Ok(out)
    }

    /// A single- or double-quoted scalar, which may span lines.
    fn quoted(&mut self) -> Res<String> {
        let at = self.pos;
        let q = self.at(at) as char;
        self.pos += 1;
        // Line folding trims trailing spaces, but not those an escape wrote.
        let (mut out, mut hard) = (String::new(), 0);
        loop {
            let Some(ch) = self.s.get(self.pos..).and_then(|r| r.chars().next()) else {
                return Err(self.err(at, "unterminated quoted string"));
            };
            self.pos += ch.len_utf8();
            match ch {
                '\'' if q == '\'' && self.at(self.pos) == b'\'' => { self.pos += 1; out.push('\'') }
                c if c == q => return Ok(out),
                '\n' => {
                    while out.len() > hard && out.ends_with([' ', '\t']) { out.pop(); }
                    let mut empty = 0;
                    self.skip_space();
                    while self.at(self.pos) == b'\n' { (self.pos, empty) = (self.pos + 1, empty + 1); self.skip_space() }
                    out += &breaks(empty);
                }
                '\\' if q == '"' => {
                    let (esc, e) = (self.pos, self.at(self.pos));
                    let k = match e { b'x' => 2, b'u' => 4, b'U' => 8, _ => 0 };
                    let c = if k > 0 {
                        self.s.get(esc + 1..esc + 1 + k).and_then(|h| u32::from_str_radix(h, 16).ok()).and_then(char::from_u32)
                    } else {
                        // The one-letter escapes, in the order of the characters they stand for.
                        let i = b"0abt\tnvfre \"/\\N_LP".iter().position(|&c| c == e);
                        i.and_then(|i| "\0\x07\x08\t\t\n\x0b\x0c\r\x1b \"/\\\u{85}\u{a0}\u{2028}\u{2029}".chars().nth(i))
                    };
                    self.pos += 1 + k;
                    match c {
                        Some(c) => out.push(c),
                        // An escaped line break joins the lines without a space.
                        None if e == b'\n' => self.skip_space(),
                        None => return Err(self.err(esc, "invalid escape in a double-quoted string")),
                    }
                    hard = out.len();
                }
                c => out.push(c),
            }
        }
    }

    /// `|` or `>`, with chomping (`-`, `+`) and an indentation digit.
    fn block_scalar(&mut self, n: isize) -> Res<String> {
        let at = self.pos;
        let (mut chomp, mut explicit) = (b' ', 0);
        loop {
            self.pos += 1;
            match self.at(self.pos) {
                c @ (b'-' | b'+') if chomp == b' ' => chomp = c,
                c @ b'1'..=b'9' if explicit == 0 => explicit = usize::from(c - b'0'),
                _ => break,
            }
        }
        self.skip_space();
        if self.at(self.pos) == b'#' { self.pos = self.eol(self.pos) }
        if !matches!(self.at(self.pos), 0 | b'\n') { return Err(self.err(at, "invalid block scalar header")) }
        // An explicit indentation counts from the parent's column, as in libyaml.
        let mut indent = (explicit > 0).then(|| if n >= 0 { n as usize + explicit } else { explicit });
        let s: &'a str = self.s;
        let (mut lines, mut p) = (Vec::new(), self.pos);
        // (What follows the input's last line break is no line.)
        while p + 1 < self.b.len() {
            let end = self.eol(p + 1);
            let line = s.get(p + 1..end).unwrap_or("");
            let sp = line.len() - line.trim_start_matches(' ').len();
            if sp == line.len() {
                lines.push(line.get(indent.unwrap_or(usize::MAX)..).unwrap_or(""));
            } else {
                let ind = *indent.get_or_insert(sp);
                if sp < ind || (sp as isize) <= n { break }
                lines.push(line.get(ind..).unwrap_or(""));
                self.pos = end;
            }
            p = end;
        }
        let body = lines.iter().rposition(|l| !l.is_empty()).map_or(0, |i| i + 1);
        let (body, trailing) = (lines.get(..body).unwrap_or(&[]), lines.len() - body);
        let mut text = if self.at(at) == b'>' { fold_lines(body) } else { body.join("\n") };
        if chomp != b'-' && !body.is_empty() { text.push('\n') }
        if chomp == b'+' { text += &"\n".repeat(trailing) }
        Ok(text)
    }

    /// `[a, b]` or `{a: 1, b}`, over any number of lines.
    fn flow(&mut self, n: isize) -> Res<Value> {
        let (open, close) = (self.pos, if self.at(self.pos) == b'[' { b']' } else { b'}' });
        let unclosed = |p: &Self| p.err(open, format!("unclosed '{}'", p.at(open) as char));
        let (mut seq, mut map) = (Vec::new(), Map::new());
        self.pos += 1;
        loop {
            self.flow_ws();
            if self.at(self.pos) == close { break }
            if self.pos >= self.b.len() { return Err(unclosed(self)) }
            let at = self.pos;
            let v = self.node(n, Ctx::Flow)?;
            self.flow_ws();
            if close == b']' {
                seq.push(v);
            } else {
                let (k, mut v) = (self.key_string(v, at)?, Value::Null);
                if self.at(self.pos) == b':' {
                    self.pos += 1;
                    self.flow_ws();
                    if !matches!(self.at(self.pos), b',' | b'}') {
                        v = self.node(n, Ctx::Flow)?;
                        self.flow_ws();
                    }
                }
                if map.contains_key(&k) { return Err(self.err(at, format!("duplicate key {k:?}"))) }
                map.insert(k, v);
            }
            match self.at(self.pos) {
                b',' => self.pos += 1,
                c if c == close => break,
                0 => return Err(unclosed(self)),
                _ => return Err(self.err(self.pos, format!("expected ',' or '{}'", close as char))),
            }
        }
        self.pos += 1;
        Ok(if close == b']' { Value::Array(seq) } else { Value::Object(map) })
    }

    fn typed(&self, raw: Raw, tag: Option<(usize, String)>) -> Res<Value> {
        let (at, t) = tag.unwrap_or_default();
        let t = t.as_str();
        let v = match raw {
            Raw::Plain(s) if t != "!!str" && t != "!" => resolve(&s),
            Raw::Quoted(s) if matches!(t, "!!int" | "!!float" | "!!bool" | "!!null") => resolve(&s),
            Raw::Plain(s) | Raw::Quoted(s) => Value::String(s),
            Raw::Done(v) => v,
        };
        let ok = match t {
            // compose's override-file tags: the value stands as written.
            "" | "!reset" | "!override" => true,
            "!" | "!!str" => v.is_string(),
            "!!int" => v.is_i64() || v.is_u64(),
            "!!float" => return v.as_f64().and_then(Number::from_f64).map(Value::Number).ok_or_else(|| self.err(at, format!("{v} is not a valid {t}"))),
            "!!bool" => v.is_boolean(),
            "!!null" => v.is_null(),
            "!!map" => v.is_object(),
            "!!seq" => v.is_array(),
            _ => return Err(self.err(at, format!("unsupported tag {t}"))),
        };
        if ok { Ok(v) } else { Err(self.err(at, format!("{v} is not a valid {t}"))) }
    }
}

/// Folded (`>`) block scalar lines: a break between two lines is a space,
/// except around empty and more-indented lines.
fn fold_lines(body: &[&str]) -> String {
    let (mut out, mut empty, mut prev_more, mut started) = (String::new(), 0, false, false);
    for l in body {
        if l.is_empty() {
            empty += 1;
            continue;
        }
        let more = l.starts_with([' ', '\t']);
        if started && empty == 0 && !more && !prev_more { out.push(' ') } else { out += &"\n".repeat(empty + usize::from(started && (more || prev_more))) }
        out += l;
        (empty, prev_more, started) = (0, more, true);
    }
    out
}

/// A plain scalar's value in the core schema, as go-yaml v3 reads it:
/// "yes"/"on" stay strings, numbers that do not fit stay strings.
fn resolve(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ if !s.starts_with(|c: char| c.is_ascii_digit() || "+-.".contains(c)) => return Value::String(s.into()),
        _ => {}
    }
    let t = s.replace('_', "");
    let (neg, body) = t.strip_prefix('-').map_or((false, t.strip_prefix('+').unwrap_or(&t)), |b| (true, b));
    let rest = body.get(2..).unwrap_or("");
    let (radix, digits) = match body.get(..2) {
        Some("0x" | "0X") => (16, rest),
        Some("0o" | "0O") => (8, rest),
        Some("0b" | "0B") => (2, rest),
        // go-yaml v3 still reads YAML 1.1's 0640 as octal (file modes).
        _ if body.len() > 1 && body.starts_with('0') => (8, body.get(1..).unwrap_or("")),
        _ => (10, body),
    };
    if !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix)) {
        let n = u64::from_str_radix(digits, radix).ok();
        let v = n.and_then(|u| if neg { 0i64.checked_sub_unsigned(u).map(Value::from) } else { Some(Value::from(u)) });
        return v.unwrap_or_else(|| Value::String(s.into()));
    }
    // A float needs a '.' or an exponent: 99999999999999999999 stays a string.
    let (mant, exp) = body.split_once(['e', 'E']).map_or((body, None), |(m, e)| (m, Some(e)));
    let (int, frac) = mant.split_once('.').map_or((mant, None), |(i, f)| (i, Some(f)));
    let (digits, f) = (|d: &str| d.bytes().all(|c| c.is_ascii_digit()), frac.unwrap_or(""));
    let float = (frac.is_some() || exp.is_some()) && digits(int) && digits(f) && !(int.is_empty() && f.is_empty())
        && exp.map(|e| e.strip_prefix(['+', '-']).unwrap_or(e)).is_none_or(|e| !e.is_empty() && digits(e));
    match t.parse().ok().and_then(Number::from_f64) {
        Some(n) if float => Value::Number(n),
        _ => Value::String(s.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(src: &str) -> Value { parse(src).unwrap_or_else(|e| panic!("{e}\n{src}")) }
    fn bad(src: &str) -> String { parse(src).expect_err(src) }

    #[test]
    fn compose_file() {
        let src = r#"
x-common: &common
  restart: unless-stopped
  environment:
    TZ: UTC
services:
  web:
    <<: *common
    image: "nginx:1.25"
    ports:
      - "8080:80"
      - 8443:443
    command: ["nginx", "-g", "daemon off;"]
    depends_on: [db]
    healthcheck:
      test: >-
        wget -q -O- http://localhost/
        || exit 1
      interval: 10s
  db:
    image: postgres:16  # pinned
    environment:
      - POSTGRES_PASSWORD=secret
    volumes:
    - dbdata:/var/lib/postgresql/data
volumes:
  dbdata: {}
"#;
        assert_eq!(ok(src), json!({
            "x-common": {"restart": "unless-stopped", "environment": {"TZ": "UTC"}},
            "services": {
                "web": {
                    "restart": "unless-stopped", "environment": {"TZ": "UTC"}, "image": "nginx:1.25",
                    "ports": ["8080:80", "8443:443"], "command": ["nginx", "-g", "daemon off;"], "depends_on": ["db"],
                    "healthcheck": {"test": "wget -q -O- http://localhost/ || exit 1", "interval": "10s"},
                },
                "db": {"image": "postgres:16", "environment": ["POSTGRES_PASSWORD=secret"], "volumes": ["dbdata:/var/lib/postgresql/data"]},
            },
            "volumes": {"dbdata": {}},
        }));
    }

    #[test]
    fn block_collections() {
        let src = "ports:\n- 80:80\n- \"443:443\"\nnested:\n    - - a\n      - b\n    - - c\nservices:\n  - name: web\n    image: nginx\n  -\n    name: db\n  - - x\n  - |\n    text\nempty:\nlast: ~\n";
        assert_eq!(ok(src), json!({
            "ports": ["80:80", "443:443"], "nested": [["a", "b"], ["c"]],
            "services": [{"name": "web", "image": "nginx"}, {"name": "db"}, ["x"], "text\n"], "empty": null, "last": null,
        }));
        assert_eq!(ok("- a\n-\n- - b\n  - c\n"), json!(["a", null, ["b", "c"]]));
        assert_eq!(ok("a:\n  # comment\n  b: 1\n# at column 0\n  c: 2\n"), json!({"a": {"b": 1, "c": 2}}));
        assert_eq!(ok(""), json!(null));
        assert_eq!(ok("# only a comment\n"), json!(null));
    }

    #[test]
    fn comments_and_markers() {
        let src = "%YAML 1.2\n---\n# top\nimage: a#b # tag\n\n  # indented comment\nlabels: {a: 1} # c\nurl: http://x:8080/#frag\nq: \"# not\" # yes\n...\n# after\n";
        assert_eq!(ok(src), json!({"image": "a#b", "labels": {"a": 1}, "url": "http://x:8080/#frag", "q": "# not"}));
        assert_eq!(ok("\u{feff}a: 1\r\nb: [x,\r\n  y]\r\n"), json!({"a": 1, "b": ["x", "y"]}));
        assert_eq!(ok("--- [1]\n"), json!([1]));
    }

    #[test]
    fn plain_scalars() {
        let src = "command: bash -c\n  'echo hi'\n\n  done\nhttp://x: y\nimage: nginx:1.25\nenv: A=b:c -d\ntabbed:\tv\t# c\n";
        let want = json!({"command": "bash -c 'echo hi'\ndone", "http://x": "y", "image": "nginx:1.25", "env": "A=b:c -d", "tabbed": "v"});
        assert_eq!(ok(src), want);
        assert_eq!(ok("a\n b\n"), json!("a b"));
        assert_eq!(ok("a: -1\nb: -x\nc: :x\nd: ?x\n"), json!({"a": -1, "b": "-x", "c": ":x", "d": "?x"}));
    }

    #[test]
    fn quoted_scalars() {
        let src = "s: 'it''s # not a comment'\nm: 'one\n  two\n\n  three'\nd: \"tab\\there \\\"q\\\" \\\\ \\/ \\x41\\u00e9\\U0001F600 nul\\0end\"\n\
            f: \"a\n  b \\\n  c\"\ne: \"\"\n\"k y\": 1\n'80': 2\n";
        assert_eq!(ok(src), json!({
            "s": "it's # not a comment", "m": "one two\nthree", "d": "tab\there \"q\" \\ / A\u{e9}\u{1F600} nul\0end",
            "f": "a b c", "e": "", "k y": 1, "80": 2,
        }));
    }

    #[test]
    fn block_scalars() {
        let src = "lit: |\n  line1\n    indented\n  \n  line3\n\nkeep: |+\n  k\n\nstrip: |-\n  s\nfold: >\n  a\n  b\n\n  c\n    more\n  d\n\
            exp: |2\n    two extra\nlast: >-\n  x\n  # not a comment\n# a comment\nnone: |\nend: |+\n";
        assert_eq!(ok(src), json!({
            "lit": "line1\n  indented\n\nline3\n", "keep": "k\n\n", "strip": "s", "fold": "a b\nc\n  more\nd\n",
            "exp": "  two extra\n", "last": "x # not a comment", "none": "", "end": "",
        }));
        assert_eq!(ok("- >\n\n  a\n  b\n- |1\n  x\n- run: |+\n    a\n\n  next: 1\n"), json!(["\na b\n", " x\n", {"run": "a\n\n", "next": 1}]));
    }

    #[test]
    fn flow_collections() {
        let src = "a: [x, \"y\", [1, 2], {k: v, n: [ ]},]\nb: {\n  one: 1,\n  two: [a,\n    b],  # comment\n  \"q\": 'z', flag,\n}\n\
            c: []\nd: {}\ne: [http://h:1/p, a b, &x 3, *x]\nf: {\"j\":1}\n";
        assert_eq!(ok(src), json!({
            "a": ["x", "y", [1, 2], {"k": "v", "n": []}], "b": {"one": 1, "two": ["a", "b"], "q": "z", "flag": null},
            "c": [], "d": {}, "e": ["http://h:1/p", "a b", 3, 3], "f": {"j": 1},
        }));
    }

    #[test]
    fn core_schema_types() {
        let src = "n: [~, null, Null, NULL]\nempty:\nb: [true, True, TRUE, false, False, FALSE, yes, no, on, off]\n\
            i: [0, -12, +7, 0x1F, 0o17, 0640, 1_000, 9223372036854775807, 18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809]\n\
            f: [1.5, .5, -1e3, 1.0, 6.02E+23, .inf, -.Inf, .nan, 1e999]\ns: [\"1\", '2', 1.2.3, 08, 0x, 1e, 3.8a, +.]\n80: port\ntrue: t\n0x10: hex\n";
        assert_eq!(ok(src), json!({
            "n": [null, null, null, null], "empty": null, "b": [true, true, true, false, false, false, "yes", "no", "on", "off"],
            "i": [0, -12, 7, 31, 15, 416, 1000, i64::MAX, u64::MAX, "18446744073709551616", i64::MIN, "-9223372036854775809"],
            "f": [1.5, 0.5, -1000.0, 1.0, 6.02e23, ".inf", "-.Inf", ".nan", "1e999"], "s": ["1", "2", "1.2.3", "08", "0x", "1e", "3.8a", "+."],
            "80": "port", "true": "t", "16": "hex",
        }));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let src = "x-base: &base\n  restart: always\n  image: base\nx-env: &env\n  image: env\n  TZ: UTC\nsvc:\n  restart: \"no\"\n  <<: [*base, *env]\n\
            again:\n  <<: *env\n  TZ: CET\nlist: [*base]\nempty: &e\nref: *e\nseq: &s\n  - 1\ncopy: *s\nitems:\n- &i name: x\n- *i\n";
        let base = json!({"restart": "always", "image": "base"});
        assert_eq!(ok(src), json!({
            "x-base": base, "x-env": {"image": "env", "TZ": "UTC"}, "svc": {"restart": "no", "image": "base", "TZ": "UTC"},
            "again": {"image": "env", "TZ": "CET"}, "list": [base], "empty": null, "ref": null, "seq": [1], "copy": [1],
            "items": [{"name": "x"}, {"name": "x"}],
        }));
    }

    #[test]
    fn tags() {
        let src = "a: !!str 80\nb: !!int \"8\"\nc: !!float 1\nd: !!bool \"true\"\ne: !!null \"\"\nf: !reset []\ng: !override {x: 1}\nh: !!map {}\n\
            i: !!seq []\nj: !reset\nk: ! 12\nl: !!str\nm: !override\n  - 1\n";
        assert_eq!(ok(src), json!({
            "a": "80", "b": 8, "c": 1.0, "d": true, "e": null, "f": [], "g": {"x": 1}, "h": {}, "i": [], "j": null, "k": "12", "l": "", "m": [1],
        }));
    }

    #[test]
    fn errors_name_the_line() {
        for (src, want) in [
            ("a:\n\tb: 1\n", "line 2: tab character in indentation"),
            ("services:\n  web:\n    image: x\n   ports: []\n", "line 4: bad indentation of a mapping entry"),
            ("a:\n  - 'x'\n   - y\n", "line 3: bad indentation of a sequence entry"),
            ("a: 1\nports:\n  - 80\nports: []\n", "line 4: duplicate key \"ports\""),
            ("a: {b: 1, b: 2}\n", "line 1: duplicate key \"b\""),
            ("a: 1\nb: *nope\n", "line 2: unknown alias *nope"),
            ("a: 1\n---\nb: 2\n", "line 2: multiple documents are not supported"),
            ("a: 1\n...\nb: 2\n", "line 3: multiple documents are not supported"),
            ("a: \"abc\nb: 1\n", "line 1: unterminated quoted string"),
            ("a: 'abc\n", "line 1: unterminated quoted string"),
            ("x: 1\na: [1, 2\n", "line 2: unclosed '['"),
            ("a: {b: 1\n  c\n", "line 1: unclosed '{'"),
            ("a: [\n", "line 1: unclosed '['"),
            ("a: [b: 1]\n", "line 1: expected ',' or ']'"),
            ("a: [1 2] x\n", "line 1: unexpected text after a value"),
            ("~: x\n", "line 1: a mapping key cannot be null"),
            ("a:\n  ? b\n  : c\n", "line 2: explicit keys (\"? \") are not supported"),
            ("%TAG ! tag:x,2000:\n---\na: 1\n", "line 1: only the %YAML directive is supported"),
            ("image: nginx: latest\n", "line 1: mapping values are not allowed here"),
            ("{a: 1}: b\n", "line 1: mapping values are not allowed here"),
            ("a: 1\n\nb: \"\\q\"\n", "line 3: invalid escape in a double-quoted string"),
            ("a: \"\\u12\"\n", "line 1: invalid escape in a double-quoted string"),
            ("a: 1\nb\n", "line 2: expected a mapping entry (key: value)"),
            ("env:\n  A: 1\n  - B=2\n", "line 3: expected a mapping entry (key: value)"),
            ("- a\nb: 1\n", "line 2: unexpected content (bad indentation?)"),
            ("a: @x\n", "line 1: unexpected character '@'"),
            ("a: - b\n", "line 1: unexpected character '-'"),
            ("a: |x\n", "line 1: invalid block scalar header"),
            ("a: !custom x\n", "line 1: unsupported tag !custom"),
            ("a:\n  b: !!int abc\n", "line 2: \"abc\" is not a valid !!int"),
            ("a: !!map [1]\n", "line 1: [1] is not a valid !!map"),
            ("a: 1\nb: x\0\n", "line 2: NUL character"),
        ] {
            assert_eq!(bad(src), want, "{src:?}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(bad(&"[".repeat(100_000)), "line 1: nesting deeper than 256 levels");
        assert_eq!(bad(&"- ".repeat(100_000)), "line 1: nesting deeper than 256 levels");
        let deep: String = (0..300).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
        assert_eq!(bad(&deep), "line 256: nesting deeper than 256 levels");
        // Billion laughs: each line holds nine copies of the one before.
        let mut lol = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (prev, name) in "abcdefghi".chars().zip("bcdefghij".chars()) {
            lol += &format!("{name}: &{name} [{}]\n", vec![format!("*{prev}"); 9].join(", "));
        }
        assert_eq!(bad(&lol), "line 7: more than 1000000 nodes");
    }

    /// No input may panic: random strings built from pieces of YAML.
    #[test]
    fn random_input_never_panics() {
        let pieces = [
            "a", "b", "1", "0x", ".5", "e", " ", "  ", "\n", "\n  ", "\n    ", "- ", ": ", ":", "#", " #", "&a ", "*a", "!!str ", "!reset ",
            "!x ", "[", "]", "{", "}", ",", "'", "\"", "\\", "\\x4", "\\u00e9", "|", ">-", "|+2", "<<: ", "? ", "---", "...", "\t", "\u{e9}",
            "%YAML", "~", "''", "\r\n", "@", "\0",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as usize
        };
        for _ in 0..100_000 {
            let src: String = (0..next() % 40).map(|_| pieces[next() % pieces.len()]).collect();
            let _ = parse(&src);
        }
    }
}

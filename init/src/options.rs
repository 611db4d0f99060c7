//! tini's command line: `init [-h|-s|-p SIG|-v|-w|-g|-e CODE|-l] [--] PROGRAM [ARGS...]`,
//! `init --version`, and the `TINI_*` environment variables.
//!
//! Like glibc's getopt (which tini uses), options may follow non-options
//! unless `POSIXLY_CORRECT` is set; `--` ends option parsing either way. The
//! argument vector is permuted in place so PROGRAM and its arguments end up
//! contiguous at the tail, ready for execvp.

use crate::signals;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub subreaper: bool,
    pub pdeathsig: i32,
    pub verbosity: u8,
    pub warn_on_reap: bool,
    pub kill_process_group: bool,
    /// Bit N set: exit code N is remapped to 0.
    pub expect: [u64; 4],
    /// PROGRAM and its arguments: `args[program..end]` after parsing.
    pub program: usize,
    pub end: usize,
}

/// Why init does not run a program: a request (`-h`, `-l`, `--version`) or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Help,
    License,
    Version,
    /// Unknown option; the byte is the option letter.
    UnknownOption(u8),
    /// The option letter needs an argument and got none.
    MissingArgument(u8),
    BadSignal,
    BadExitCode,
    NoProgram,
}

impl Options {
    pub const fn new() -> Self {
        Options {
            subreaper: false,
            pdeathsig: 0,
            verbosity: 1,
            warn_on_reap: false,
            kill_process_group: false,
            expect: [0; 4],
            program: 0,
            end: 0,
        }
    }

    pub fn expects(&self, code: u8) -> bool {
        self.expect[(code / 64) as usize] & (1u64 << (code % 64)) != 0
    }

    /// Applies `TINI_SUBREAPER`, `TINI_VERBOSITY`, `TINI_KILL_PROCESS_GROUP`
    /// (given as their values, `None` when unset), as tini does before the
    /// command line: set means on, verbosity is a number.
    pub fn apply_env(
        &mut self,
        subreaper: Option<&[u8]>,
        verbosity: Option<&[u8]>,
        kill_group: Option<&[u8]>,
    ) {
        if subreaper.is_some() {
            self.subreaper = true;
        }
        if let Some(v) = verbosity {
            // atoi semantics: leading digits, anything else is 0.
            let mut n: u32 = 0;
            for &c in v.iter().take_while(|c| c.is_ascii_digit()) {
                n = (n * 10 + (c - b'0') as u32).min(255);
            }
            self.verbosity = n as u8;
        }
        if kill_group.is_some() {
            self.kill_process_group = true;
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

/// An element of the argument vector: argv pointers in the binary, byte
/// strings in unit tests.
pub trait Arg: Copy {
    fn bytes(&self) -> &[u8];
}

impl Arg for &[u8] {
    fn bytes(&self) -> &[u8] {
        self
    }
}

/// A NUL-terminated string from the process's argv.
impl Arg for *const core::ffi::c_char {
    fn bytes(&self) -> &[u8] {
        // SAFETY: the kernel hands argv as valid NUL-terminated strings and
        // they live for the whole process.
        unsafe { core::ffi::CStr::from_ptr(*self) }.to_bytes()
    }
}

/// Parses `args` (argv including argv[0]) into `opts`, which carries the
/// environment's settings already. Permutes `args` so the program is
/// `args[opts.program..opts.end]`.
pub fn parse<A: Arg>(args: &mut [A], opts: &mut Options, posixly_correct: bool) -> Result<(), Stop> {
    if args.len() == 2 && args[1].bytes() == b"--version" {
        return Err(Stop::Version);
    }
    // Invariant: args[1..opt_end] are parsed options, args[opt_end..i] are
    // operands seen so far, args[i..] is unexamined.
    let mut opt_end = 1;
    let mut i = 1;
    let mut end = args.len();
    while i < args.len() {
        let cur = args[i];
        let a = cur.bytes();
        if a == b"--" {
            // Drop the marker: move it past the end of the program.
            args[i..].rotate_left(1);
            end -= 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            if posixly_correct {
                break;
            }
            i += 1;
            continue;
        }
        // Move the option in front of the operands seen so far.
        args[opt_end..=i].rotate_right(1);
        opt_end += 1;
        i += 1;
        let next = args.get(i).copied();
        if option_cluster(a, next, opts)? {
            // The option consumed the following argument as its value.
            args[opt_end..=i].rotate_right(1);
            opt_end += 1;
            i += 1;
        }
    }
    if opt_end >= end {
        return Err(Stop::NoProgram);
    }
    opts.program = opt_end;
    opts.end = end;
    Ok(())
}

/// Applies one `-xyz` cluster; true when its last option took `next` as value.
fn option_cluster<A: Arg>(a: &[u8], next: Option<A>, opts: &mut Options) -> Result<bool, Stop> {
    for (j, &c) in a.iter().enumerate().skip(1) {
        match c {
            b'h' => return Err(Stop::Help),
            b'l' => return Err(Stop::License),
            b's' => opts.subreaper = true,
            b'v' => opts.verbosity = opts.verbosity.saturating_add(1),
            b'w' => opts.warn_on_reap = true,
            b'g' => opts.kill_process_group = true,
            b'p' | b'e' => {
                let attached = &a[j + 1..];
                let (value, took_next) = match next {
                    _ if !attached.is_empty() => (attached, false),
                    Some(ref n) => (n.bytes(), true),
                    None => return Err(Stop::MissingArgument(c)),
                };
                if c == b'p' {
                    opts.pdeathsig = signals::by_name(value).ok_or(Stop::BadSignal)?;
                } else {
                    let code = exit_code(value).ok_or(Stop::BadExitCode)?;
                    opts.expect[(code / 64) as usize] |= 1u64 << (code % 64);
                }
                return Ok(took_next);
            }
            _ => return Err(Stop::UnknownOption(c)),
        }
    }
    Ok(false)
}

/// `-e` takes a decimal exit code 0..=255.
fn exit_code(v: &[u8]) -> Option<u8> {
    if v.is_empty() || v.len() > 3 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = v.iter().fold(0u32, |n, c| n * 10 + (c - b'0') as u32);
    u8::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str], posix: bool) -> (Result<(), Stop>, Options, Vec<String>) {
        let mut args: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
        let mut o = Options::new();
        let r = parse(&mut args, &mut o, posix);
        let prog = args[o.program.min(o.end)..o.end]
            .iter()
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect();
        (r, o, prog)
    }

    #[test]
    fn double_dash_separates_program() {
        let (r, o, p) = run(&["init", "-v", "--", "sh", "-c", "exit 3"], false);
        assert_eq!(r, Ok(()));
        assert_eq!(o.verbosity, 2);
        assert_eq!(p, ["sh", "-c", "exit 3"]);
    }

    #[test]
    fn options_after_program_are_permuted_like_glibc() {
        let (r, o, p) = run(&["init", "prog", "-w", "arg"], false);
        assert_eq!(r, Ok(()));
        assert!(o.warn_on_reap);
        assert_eq!(p, ["prog", "arg"]);
    }

    #[test]
    fn posixly_correct_stops_at_first_operand() {
        let (r, o, p) = run(&["init", "-g", "prog", "-w", "arg"], true);
        assert_eq!(r, Ok(()));
        assert!(o.kill_process_group && !o.warn_on_reap);
        assert_eq!(p, ["prog", "-w", "arg"]);
    }

    #[test]
    fn clusters_and_attached_values() {
        let (r, o, p) = run(&["init", "-vvsg", "-e143", "-e", "2", "-pSIGKILL", "--", "x"], false);
        assert_eq!(r, Ok(()));
        assert_eq!(o.verbosity, 3);
        assert!(o.subreaper && o.kill_process_group);
        assert!(o.expects(143) && o.expects(2) && !o.expects(0));
        assert_eq!(o.pdeathsig, libc::SIGKILL);
        assert_eq!(p, ["x"]);
    }

    #[test]
    fn separate_values_are_consumed() {
        let (r, o, p) = run(&["init", "-p", "TERM", "-e", "255", "prog"], false);
        assert_eq!(r, Ok(()));
        assert_eq!(o.pdeathsig, libc::SIGTERM);
        assert!(o.expects(255));
        assert_eq!(p, ["prog"]);
    }

    #[test]
    fn dash_dash_after_operands_keeps_them_first() {
        let (r, _, p) = run(&["init", "prog", "-s", "--", "-x"], false);
        assert_eq!(r, Ok(()));
        assert_eq!(p, ["prog", "-x"]);
    }

    #[test]
    fn errors_and_requests() {
        assert_eq!(run(&["init", "--version"], false).0, Err(Stop::Version));
        assert_eq!(run(&["init", "-h"], false).0, Err(Stop::Help));
        assert_eq!(run(&["init", "-l"], false).0, Err(Stop::License));
        assert_eq!(run(&["init", "-x", "p"], false).0, Err(Stop::UnknownOption(b'x')));
        assert_eq!(run(&["init", "-e"], false).0, Err(Stop::MissingArgument(b'e')));
        assert_eq!(run(&["init", "-e", "256", "p"], false).0, Err(Stop::BadExitCode));
        assert_eq!(run(&["init", "-e", "x", "p"], false).0, Err(Stop::BadExitCode));
        assert_eq!(run(&["init", "-p", "SIGNOPE", "p"], false).0, Err(Stop::BadSignal));
        assert_eq!(run(&["init"], false).0, Err(Stop::NoProgram));
        assert_eq!(run(&["init", "-v", "--"], false).0, Err(Stop::NoProgram));
    }

    #[test]
    fn environment_settings() {
        let mut o = Options::new();
        o.apply_env(Some(b""), Some(b"3x"), None);
        assert!(o.subreaper && !o.kill_process_group);
        assert_eq!(o.verbosity, 3);
        o.apply_env(None, Some(b"junk"), Some(b"1"));
        assert_eq!(o.verbosity, 0);
        assert!(o.kill_process_group);
    }
}

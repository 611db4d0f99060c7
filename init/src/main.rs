//! `init`: parses tini's command line and environment, then hands over to
//! the library. No std: see the crate docs for why.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

use core::ffi::{c_char, c_int, CStr};
use skiff_init::log::{self, write_all};
use skiff_init::options::{self, Options, Stop};

const USAGE: &str = "Usage: init [OPTIONS] PROGRAM -- [ARGS] | --version

Execute a program under the supervision of a valid init process (tini-compatible)

Command line options:

  --version: Show version and exit.
  -h: Show this help message and exit.
  -s: Register as a process subreaper (requires Linux >= 3.4).
  -p SIGNAL: Trigger SIGNAL when parent dies, e.g. \"-p SIGKILL\".
  -v: Generate more verbose output. Repeat up to 3 times.
  -w: Print a warning when processes are getting reaped.
  -g: Send signals to the child's process group.
  -e EXIT_CODE: Remap EXIT_CODE (from 0 to 255) to 0.
  -l: Show license and exit.

Environment variables:

  TINI_SUBREAPER: Register as a process subreaper (requires Linux >= 3.4).
  TINI_VERBOSITY: Set the verbosity level (default: 1).
  TINI_KILL_PROCESS_GROUP: Send signals to the child's process group.
";

const LICENSE: &str = "skiff init
Licensed under the Apache License, Version 2.0 (the \"License\");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
Unless required by applicable law or agreed to in writing, software distributed
under the License is distributed on an \"AS IS\" BASIS, WITHOUT WARRANTIES OR
CONDITIONS OF ANY KIND, either express or implied.
";

fn env(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: getenv returns null or a NUL-terminated string that lives as
    // long as the environment, which init never modifies.
    unsafe {
        let p = libc::getenv(name.as_ptr());
        (!p.is_null()).then(|| CStr::from_ptr(p).to_bytes())
    }
}

#[cfg_attr(not(test), no_mangle)]
extern "C" fn main(argc: c_int, argv: *mut *const c_char) -> c_int {
    // SAFETY: the C runtime passes argc valid pointers followed by NULL.
    let args = unsafe { core::slice::from_raw_parts_mut(argv, argc.max(0) as usize + 1) };
    let (args, _) = args.split_at_mut(argc.max(0) as usize);
    let mut opts = Options::new();
    opts.apply_env(env(c"TINI_SUBREAPER"), env(c"TINI_VERBOSITY"), env(c"TINI_KILL_PROCESS_GROUP"));
    let posix = env(c"POSIXLY_CORRECT").is_some();
    match options::parse(args, &mut opts, posix) {
        Ok(()) => {}
        Err(Stop::Version) => {
            write_all(1, b"init (skiff) version ");
            write_all(1, skiff_init::VERSION.as_bytes());
            write_all(1, b" - git.skiff\n");
            return 0;
        }
        Err(Stop::Help) => {
            write_all(1, USAGE.as_bytes());
            return 0;
        }
        Err(Stop::License) => {
            write_all(1, LICENSE.as_bytes());
            return 0;
        }
        Err(e) => {
            let mut l = log::prefix(log::FATAL);
            match e {
                Stop::UnknownOption(c) => l.str("unknown option -").bytes(&[c]),
                Stop::MissingArgument(c) => l.str("option -").bytes(&[c]).str(" requires an argument"),
                Stop::BadSignal => l.str("-p: not a valid signal name or number"),
                Stop::BadExitCode => l.str("-e: not a valid exit code (0 to 255)"),
                _ => l.str("no program to run"),
            };
            l.str("\n").write_to(2);
            write_all(2, USAGE.as_bytes());
            return 1;
        }
    }
    // PROGRAM..end must be NULL-terminated for execvp; `end` is at most argc.
    // SAFETY: argv has argc + 1 slots.
    unsafe {
        *argv.add(opts.end) = core::ptr::null();
        skiff_init::run(&opts, argv.add(opts.program) as *const *const c_char)
    }
}

// The libc crate leaves linking libc to std on musl; without std, ask for it.
#[cfg(not(test))]
#[link(name = "c")]
extern "C" {}

// rustup's prebuilt core (stable builds) refers to the unwinder's
// personality even with panic=abort; nothing ever unwinds here.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn rust_eh_personality() {}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: abort never returns.
    unsafe { libc::abort() }
}

//! The few libc calls the harness needs to keep child processes from outliving it.
//!
//! The workspace denies `unsafe_code`; this module is the one place allowed to use it, and every
//! block only calls async-signal-safe libc functions.
#![allow(unsafe_code)]

use std::io;

/// Makes the kernel SIGKILL the child when the harness dies, even by SIGKILL, so a crashed
/// harness never leaves etcd or kube-apiserver running.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked exits, so callers spawn from a
/// long-lived thread (the binaries use a current-thread runtime).
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs between fork and exec and only calls prctl and getppid, both
    // async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then nobody would kill us.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent exited before the child started"));
            }
            Ok(())
        });
    }
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub use libc::{SIGINT, SIGTERM};

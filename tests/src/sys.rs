//! The few libc calls the harness needs to keep child processes from outliving it, and to
//! read a child's peak memory (benchmarks).
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

/// How a child process ended, with what it used, as wait4(2) reports it.
#[derive(Debug, Clone, Copy)]
pub struct ChildUsage {
    /// The exit status.
    pub status: std::process::ExitStatus,
    /// Peak resident set size (`ru_maxrss`), in KiB.
    pub max_rss_kib: u64,
    /// CPU time, user and system together.
    pub cpu: std::time::Duration,
}

/// Waits for child `pid` (not yet reaped by anyone: spawned with `std::process::Command` and
/// not waited on) and returns its status and resource usage. Blocks the calling thread.
pub fn wait_with_usage(pid: u32) -> io::Result<ChildUsage> {
    use std::os::unix::process::ExitStatusExt as _;
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers are to live, writable locals of the right types.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let time = |t: libc::timeval| {
        std::time::Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + std::time::Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Ok(ChildUsage {
        status: std::process::ExitStatus::from_raw(status),
        // Linux reports ru_maxrss in KiB.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
    })
}

pub use libc::{SIGINT, SIGKILL, SIGTERM};

//! The reaper: no process of a stage outlives hhi.
//!
//! `PR_SET_PDEATHSIG` reaches only the process hhi starts (`sh`), not what `sh` forks, so a
//! `kill -9` of hhi used to leave a stage's program writing into `$HHI_WORK` while a rerun
//! started a second copy. Each command therefore runs in a process group of its own, and
//! the first command of a run forks a tiny reaper process that holds the read end of a
//! pipe. hhi writes each group's id into the pipe when the command starts and again (negated)
//! when it ends. However hhi ends, `kill -9` included, the kernel closes the write end; the
//! reaper reads end-of-file and kills every group still registered.
//!
//! Written with raw system calls because the reaper is forked from a multithreaded process
//! and may only make async-signal-safe calls (no allocation, no locks).

use std::sync::Mutex;

/// Groups a reaper can track at once (stages running concurrently).
const SLOTS: usize = 1024;

static PIPE: Mutex<Option<libc::c_int>> = Mutex::new(None);

/// A running command's process group, killed (with anything left in it) when dropped.
pub struct Group(libc::pid_t);

impl Group {
    pub fn register(pgid: libc::pid_t) -> Group {
        send(pgid);
        Group(pgid)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill with a negative id signals the group; ESRCH when it is empty.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
        send(-self.0);
    }
}

fn send(v: libc::pid_t) {
    let Ok(mut guard) = PIPE.lock() else {
        return;
    };
    if guard.is_none() {
        *guard = start();
    }
    if let Some(fd) = *guard {
        let bytes = v.to_ne_bytes();
        // SAFETY: writes 4 bytes from a live buffer; pipe writes ≤ PIPE_BUF are atomic.
        unsafe {
            libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        }
    }
}

/// Forks the reaper; returns the write end of its pipe.
fn start() -> Option<libc::c_int> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 fills two descriptors; both close on exec, so no command inherits them.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return None;
    }
    let (r, w) = (fds[0], fds[1]);
    // SAFETY: the child only makes async-signal-safe calls and ends in _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        unsafe {
            libc::close(r);
            libc::close(w);
        }
        return None;
    }
    if pid == 0 {
        unsafe { reap(r, w) }
    }
    unsafe {
        libc::close(r);
    }
    Some(w)
}

unsafe fn reap(r: libc::c_int, w: libc::c_int) -> ! {
    // SAFETY: raw system calls on descriptors this process owns; fixed-size storage.
    unsafe {
        libc::close(w);
        // Close everything else it inherited: another thread may be inside `spawn`, whose
        // exec-error channel must reach end-of-file in the parent (a copy held here would
        // hang that spawn forever), and no descriptor of hhi's should outlive it here.
        if r > 3 {
            libc::syscall(libc::SYS_close_range, 3u32, (r - 1) as u32, 0u32);
        }
        libc::syscall(libc::SYS_close_range, (r + 1) as u32, u32::MAX, 0u32);
        // Nor hold hhi's stdout: a reader of `hhi … | …` waits for every writer to close.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > 2 && null != r {
                libc::close(null);
            }
        }
        // Ctrl-C and hangups are for hhi; the reaper stays to clean up after it.
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        let mut groups = [0 as libc::pid_t; SLOTS];
        let mut buf = [0u8; 4];
        loop {
            let n = libc::read(r, buf.as_mut_ptr().cast(), 4);
            if n == 4 {
                let v = libc::pid_t::from_ne_bytes(buf);
                if v > 0 {
                    if let Some(slot) = groups.iter_mut().find(|g| **g == 0) {
                        *slot = v;
                    }
                } else if let Some(slot) = groups.iter_mut().find(|g| **g == -v) {
                    *slot = 0;
                }
                continue;
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            // End of file: hhi is gone.
            for &g in groups.iter().filter(|g| **g > 0) {
                libc::kill(-g, libc::SIGKILL);
            }
            libc::_exit(0);
        }
    }
}

//! A network namespace made by the benchmark and removed by it: created as
//! `gb-<pid>-<n>` with loopback up, deleted with everything still running
//! in it when the [`Namespace`] is dropped (also while a panic unwinds), on
//! Ctrl-C or SIGTERM (a handler installed with the first namespace), and by
//! [`cleanup_stale`] for leftovers of benchmark runs that died.
//!
//! Root commands of the emulation run only inside namespaces made here:
//! nothing touches the host's routes, iptables or qdiscs.

use super::WanError;
use super::shell::{self, ToolOutput};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every namespace this benchmark makes is named `gb-<pid>-<n>`.
pub const NAME_PREFIX: &str = "gb-";

/// Where `ip netns` keeps the handles of named namespaces.
const NETNS_DIR: &str = "/run/netns";

static NEXT: AtomicU32 = AtomicU32::new(0);
/// Namespaces of this process not yet removed, for the signal handler.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SIGNAL_HANDLER: Once = Once::new();

/// A named network namespace owned by this process; removed on drop.
#[derive(Debug)]
pub struct Namespace {
    name: String,
    removed: bool,
}

impl Namespace {
    /// Creates `gb-<pid>-<n>` and brings its loopback up. All of
    /// 127.0.0.0/8 is then local in it, so every region address is bindable.
    pub fn create() -> Result<Namespace, WanError> {
        let name = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        install_signal_cleanup();
        // Registered before `ip netns add` so a Ctrl-C in between still
        // finds it; removing a name that was never added is harmless.
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.clone());
        let ns = Namespace {
            name,
            removed: false,
        };
        shell::run_ok("ip", &["netns", "add", &ns.name], None, Some("iproute2"))?;
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's handle, for `setns`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// `ip -n <ns> args...`: configures the namespace's own network.
    pub fn ip(&self, args: &[&str]) -> Result<ToolOutput, WanError> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        shell::run_ok("ip", &all, None, Some("iproute2"))
    }

    /// Runs `program args` inside the namespace (bounded wait), failing on a
    /// non-zero exit. `package` names the apt package of `program`.
    pub fn exec(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
        package: Option<&'static str>,
    ) -> Result<ToolOutput, WanError> {
        self.exec_status(program, args, stdin, package)
            .and_then(|out| {
                if out.success {
                    Ok(out)
                } else {
                    Err(WanError::Command {
                        command: format!(
                            "ip netns exec {} {program} {}",
                            self.name,
                            args.join(" ")
                        ),
                        message: out.stderr.trim().to_string(),
                    })
                }
            })
    }

    /// Like [`Namespace::exec`] but returns a failed run instead of an error.
    pub fn exec_status(
        &self,
        program: &str,
        args: &[&str],
        stdin: Option<&str>,
        package: Option<&'static str>,
    ) -> Result<ToolOutput, WanError> {
        if let Some(package) = package
            && !shell::tool_exists(program)
        {
            return Err(WanError::ToolMissing {
                tool: shell::static_name(program),
                package,
            });
        }
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        shell::run("ip", &all, stdin, Some("iproute2"))
    }

    /// A command whose process starts inside the namespace (it enters it
    /// with `setns` between fork and exec), as root, or as `uid` (and the
    /// same gid, no supplementary groups) when given.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, uid: Option<u32>) -> Command {
        let mut cmd = Command::new(program);
        // Opened before the fork; an error is kept as its errno, since the
        // child may not allocate to report it.
        let handle = File::open(self.path()).map_err(|e| e.raw_os_error().unwrap_or(libc::ENOENT));
        // SAFETY: the closure runs in the child between fork and exec and
        // only makes async-signal-safe system calls (setns, setgroups,
        // setgid, setuid) on an fd opened before the fork.
        unsafe {
            cmd.pre_exec(move || {
                let file = handle
                    .as_ref()
                    .map_err(|errno| std::io::Error::from_raw_os_error(*errno))?;
                if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if let Some(uid) = uid
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(uid) != 0
                        || libc::setuid(uid) != 0)
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }

    /// Moves the calling thread into the namespace: sockets it creates from
    /// then on live there (and stay there wherever they are used from).
    pub fn enter_current_thread(&self) -> Result<(), WanError> {
        let file = File::open(self.path())
            .map_err(|e| WanError::io(format!("cannot open {}", self.path().display()), e))?;
        // SAFETY: setns on a valid fd; it affects only the calling thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(WanError::io(
                format!("setns into {}", self.name),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Runs `f` on a new thread that first enters the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        thread_name: &str,
        f: impl FnOnce() -> Result<T, WanError> + Send + 'static,
    ) -> Result<JoinHandle<Result<T, WanError>>, WanError> {
        let file = File::open(self.path())
            .map_err(|e| WanError::io(format!("cannot open {}", self.path().display()), e))?;
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(thread_name.to_string())
            .spawn(move || {
                // SAFETY: as in enter_current_thread.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(WanError::io(
                        format!("setns into {name}"),
                        std::io::Error::last_os_error(),
                    ));
                }
                drop(file);
                f()
            })
            .map_err(|e| WanError::io("cannot spawn a thread", e))
    }

    /// Processes whose network namespace is this one.
    pub fn pids(&self) -> Vec<i32> {
        pids_in(&self.name)
    }

    /// Kills what still runs inside and deletes the namespace.
    pub fn remove(mut self) -> Result<(), WanError> {
        self.removed = true;
        teardown(&self.name)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if !self.removed
            && let Err(e) = teardown(&self.name)
        {
            eprintln!("warning: removing network namespace {}: {e}", self.name);
        }
    }
}

/// Whether a network namespace of that name exists.
pub fn exists(name: &str) -> bool {
    PathBuf::from(NETNS_DIR).join(name).exists()
}

/// Deletes the namespaces of this process that are still up; for a signal
/// handler of the caller's own (the one installed here calls it too).
pub fn cleanup_live() {
    let names: Vec<String> = LIVE.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for name in names {
        if let Err(e) = teardown(&name) {
            eprintln!("warning: removing network namespace {name}: {e}");
        }
    }
}

/// Removes namespaces left by benchmark runs that died (`gb-<pid>-<n>`
/// whose pid is gone); returns their names. Others' are left alone.
pub fn cleanup_stale() -> Result<Vec<String>, WanError> {
    let list = shell::run_ok("ip", &["netns", "list"], None, Some("iproute2"))?;
    let mut removed = Vec::new();
    for line in list.stdout.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = owner_pid(name) else {
            continue;
        };
        if pid == std::process::id() || PathBuf::from(format!("/proc/{pid}")).exists() {
            continue;
        }
        teardown(name)?;
        removed.push(name.to_string());
    }
    Ok(removed)
}

/// The pid in a `gb-<pid>-<n>` name.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u32>().ok()?;
    pid.parse().ok()
}

/// Installs (once) a Ctrl-C / SIGTERM handler that removes this process's
/// namespaces and exits with 130. If the program already has a handler, it
/// is kept and a warning says to call [`cleanup_live`] from it.
pub fn install_signal_cleanup() {
    SIGNAL_HANDLER.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            eprintln!("interrupted: removing the benchmark's network namespaces");
            cleanup_live();
            std::process::exit(130);
        });
        if let Err(e) = installed {
            eprintln!(
                "warning: no Ctrl-C cleanup of network namespaces ({e}); \
                 call geo_bench::wan::namespace::cleanup_live from your handler"
            );
        }
    });
}

fn teardown(name: &str) -> Result<(), WanError> {
    let me = std::process::id() as i32;
    // Bounded: a process that survives SIGKILL for a second (stuck in the
    // kernel) does not block the deletion; its namespace then goes when it does.
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let pids: Vec<i32> = pids_in(name).into_iter().filter(|p| *p != me).collect();
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            // SAFETY: kill has no memory preconditions; pid is a process
            // inside a namespace this benchmark made.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let result = if exists(name) {
        shell::run_ok("ip", &["netns", "delete", name], None, Some("iproute2")).map(|_| ())
    } else {
        Ok(())
    };
    if result.is_ok() {
        LIVE.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|n| n != name);
    }
    result
}

fn pids_in(name: &str) -> Vec<i32> {
    if !exists(name) {
        return Vec::new();
    }
    match shell::run("ip", &["netns", "pids", name], None, Some("iproute2")) {
        Ok(out) => out
            .stdout
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_come_from_benchmark_names_only() {
        assert_eq!(owner_pid("gb-1234-0"), Some(1234));
        assert_eq!(owner_pid("gb-1234-17"), Some(1234));
        assert_eq!(owner_pid("gb-1234"), None);
        assert_eq!(owner_pid("gb-x-1"), None);
        assert_eq!(owner_pid("other-1234-0"), None);
        assert_eq!(owner_pid("gb-12-3-4"), None);
    }
}

//! Running the system tools of the emulation (`ip`, `iptables-restore`,
//! `tc`) with a bounded wait, so a hung tool cannot hang the benchmark.

use super::WanError;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a system tool may take before it is killed.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// What a finished tool printed.
#[derive(Debug)]
pub struct ToolOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args` (optionally feeding `stdin`), waiting at most
/// [`TOOL_TIMEOUT`]. A missing program is [`WanError::ToolMissing`] when
/// `package` names the apt package that provides it.
pub fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    package: Option<&'static str>,
) -> Result<ToolOutput, WanError> {
    let shown = shown(program, args);
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match (e.kind(), package) {
            (std::io::ErrorKind::NotFound, Some(package)) => WanError::ToolMissing {
                tool: static_name(program),
                package,
            },
            _ => WanError::io(format!("cannot start `{shown}`"), e),
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // The tools read all of stdin before acting, and our inputs are a
        // few kilobytes: writing before waiting cannot deadlock on a pipe.
        pipe.write_all(text.as_bytes())
            .map_err(|e| WanError::io(format!("writing to `{shown}`"), e))?;
    }
    let mut stdout_pipe = child.stdout.take().expect("piped");
    let mut stderr_pipe = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(WanError::Command {
                    command: shown,
                    message: format!("no answer within {} s; killed", TOOL_TIMEOUT.as_secs()),
                });
            }
            Err(e) => return Err(WanError::io(format!("waiting for `{shown}`"), e)),
        }
    };
    Ok(ToolOutput {
        success: status.success(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}

/// Like [`run`], but a non-zero exit is an error carrying what it printed.
pub fn run_ok(
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
    package: Option<&'static str>,
) -> Result<ToolOutput, WanError> {
    let out = run(program, args, stdin, package)?;
    if out.success {
        Ok(out)
    } else {
        Err(WanError::Command {
            command: shown(program, args),
            message: out.stderr.trim().to_string(),
        })
    }
}

fn shown(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `program` is on the PATH (or, given as a path, exists).
pub(crate) fn tool_exists(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).exists();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// The tool names the emulation uses, as 'static for [`WanError::ToolMissing`].
pub(crate) fn static_name(program: &str) -> &'static str {
    ["ip", "tc", "iptables", "iptables-restore"]
        .into_iter()
        .find(|t| *t == program)
        .unwrap_or("a system tool")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let err = run("iptables-restore-not-here", &[], None, Some("iptables")).unwrap_err();
        assert!(
            matches!(
                err,
                WanError::ToolMissing {
                    package: "iptables",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("apt-get install -y iptables"));
    }

    #[test]
    fn output_and_failures_are_reported() {
        let out = run_ok("sh", &["-c", "cat; echo err >&2"], Some("hello"), None).unwrap();
        assert_eq!(out.stdout, "hello");
        assert_eq!(out.stderr, "err\n");
        let err = run_ok("sh", &["-c", "echo nope >&2; exit 3"], None, None).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}

//! kvctl: the command-line client of the store. One operation per run,
//! through `client_sdk::Client` (nearest replica, deadline, failover).
//! Prints the result plainly on stdout; on any error prints one line on
//! stderr and exits with status 1.
//!
//!     kvctl --endpoints http://127.0.0.1:7101,http://127.0.0.1:7102 get KEY
//!     kvctl -e 127.0.0.1:7101 cas --absent KEY NEW

use clap::{Parser, Subcommand};
use client_sdk::{Client, ClientConfig, ClientError, ClientId};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "kvctl",
    version,
    about = "Command-line client of the key-value store"
)]
struct Cli {
    /// Replica endpoints, comma separated (http://host:port or host:port).
    /// The nearest one (by ping) is used; the others on failure.
    /// Required (clap cannot require a global option: checked in `run`).
    #[arg(long, short = 'e', value_delimiter = ',', global = true)]
    endpoints: Vec<String>,
    /// Deadline of the operation, all retries included, in milliseconds.
    #[arg(long, default_value_t = 2000, global = true)]
    timeout_ms: u64,
    /// Client id for RMW deduplication (default: random).
    #[arg(long, global = true)]
    client_id: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the value of KEY, or "(absent)".
    Get {
        key: String,
        /// Print the value as a fetch-and-add integer (8 bytes, little-endian).
        #[arg(long)]
        int: bool,
    },
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Delete KEY.
    Del { key: String },
    /// Compare-and-swap: set KEY to NEW iff it holds EXPECTED.
    /// `cas KEY EXPECTED NEW`; with --absent omit EXPECTED (KEY must be
    /// absent); with --delete omit NEW (delete on a match).
    Cas {
        key: String,
        /// EXPECTED then NEW, minus the ones replaced by --absent / --delete.
        values: Vec<String>,
        /// Expect KEY to be absent.
        #[arg(long)]
        absent: bool,
        /// Delete KEY on a match instead of storing NEW.
        #[arg(long)]
        delete: bool,
    },
    /// Fetch-and-add: add DELTA to the integer at KEY (absent = 0).
    Add {
        key: String,
        #[arg(allow_negative_numbers = true)]
        delta: i64,
    },
    /// Put-if-absent: set KEY to VALUE iff KEY is absent.
    Pia { key: String, value: String },
    /// Probe every endpoint and print replica id, region and round trip.
    Ping,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors.
            let failed = e.use_stderr();
            let _ = e.print();
            return if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("kvctl: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("kvctl: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<String, String> {
    if cli.endpoints.is_empty() {
        return Err("--endpoints is required, e.g. --endpoints http://127.0.0.1:7101".into());
    }
    let timeout = Duration::from_millis(cli.timeout_ms);
    let defaults = ClientConfig::default();
    let config = ClientConfig {
        client_id: cli.client_id.map(ClientId),
        call_timeout: timeout,
        connect_timeout: defaults.connect_timeout.min(timeout),
        attempt_timeout: defaults.attempt_timeout.min(timeout),
        ..defaults
    };
    let client = Client::connect(&cli.endpoints, config)
        .await
        .map_err(describe)?;
    execute(&client, cli.command).await
}

async fn execute(client: &Client, command: Command) -> Result<String, String> {
    match command {
        Command::Get { key, int } => {
            let value = client.get(&key).await.map_err(describe)?;
            match (value, int) {
                (None, _) => Ok("(absent)".to_string()),
                (Some(v), false) => Ok(show(&v)),
                (Some(v), true) => <[u8; 8]>::try_from(v.as_slice())
                    .map(|b| i64::from_le_bytes(b).to_string())
                    .map_err(|_| format!("not an 8-byte integer: {}", show(&v))),
            }
        }
        Command::Put { key, value } => {
            client.put(&key, &value).await.map_err(describe)?;
            Ok("OK".to_string())
        }
        Command::Del { key } => {
            client.delete(&key).await.map_err(describe)?;
            Ok("OK".to_string())
        }
        Command::Cas {
            key,
            values,
            absent,
            delete,
        } => {
            let (expected, new) = cas_operands(values, absent, delete)?;
            let out = client
                .compare_and_swap(&key, expected.as_deref(), new.as_deref())
                .await
                .map_err(describe)?;
            if out.applied {
                Ok(format!(
                    "applied: {} -> {}",
                    show_opt(&out.old),
                    show_opt(&out.new)
                ))
            } else {
                Ok(format!("not applied: current {}", show_opt(&out.old)))
            }
        }
        Command::Add { key, delta } => {
            let out = client.fetch_add(&key, delta).await.map_err(describe)?;
            Ok(format!("{} -> {}", out.old, out.new))
        }
        Command::Pia { key, value } => {
            let out = client.put_if_absent(&key, &value).await.map_err(describe)?;
            if out.applied {
                Ok("applied".to_string())
            } else {
                Ok(format!("not applied: current {}", show(&out.value)))
            }
        }
        Command::Ping => ping(client),
    }
}

/// Splits `cas` operands into (expected, new); `None` = absent.
type CasOperands = (Option<Vec<u8>>, Option<Vec<u8>>);

fn cas_operands(values: Vec<String>, absent: bool, delete: bool) -> Result<CasOperands, String> {
    let wanted = 2 - usize::from(absent) - usize::from(delete);
    if values.len() != wanted {
        return Err(format!(
            "cas needs {wanted} value(s) after KEY with these flags, got {}: \
             cas KEY EXPECTED NEW | cas --absent KEY NEW | cas --delete KEY EXPECTED",
            values.len()
        ));
    }
    let mut values = values.into_iter().map(String::into_bytes);
    let expected = if absent { None } else { values.next() };
    let new = if delete { None } else { values.next() };
    Ok((expected, new))
}

fn ping(client: &Client) -> Result<String, String> {
    let replicas = client.replicas();
    let lines: Vec<String> = replicas
        .iter()
        .map(|r| match (r.rtt, r.replica_id, &r.region) {
            (Some(rtt), Some(id), Some(region)) => format!(
                "{} replica={} region={} rtt={:.3}ms",
                r.endpoint,
                id.0,
                region,
                rtt.as_secs_f64() * 1e3
            ),
            _ => format!("{} unreachable", r.endpoint),
        })
        .collect();
    if replicas.iter().all(|r| r.rtt.is_none()) {
        return Err(format!("no replica answered:\n{}", lines.join("\n")));
    }
    Ok(lines.join("\n"))
}

/// UTF-8 values as they are, anything else as hex.
fn show(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => {
            let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}")
        }
    }
}

fn show_opt(value: &Option<Vec<u8>>) -> String {
    value.as_deref().map_or("(absent)".to_string(), show)
}

fn describe(e: ClientError) -> String {
    e.to_string()
}

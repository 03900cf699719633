//! `cachalot stats`: hit ratios and traffic breakdowns from Squid-native
//! access logs (ours or Squid's) and our JSON lines, whose `reason` also
//! gives the table of what was not cached and why (`not_stored`). A process-level command beside the proxy,
//! not on the request path.
//!
//! `reader` (files, stdin, gzip, progress) feeds lines to the pure
//! `report::Aggregator`, which parses them (`line`), classifies result codes
//! (`codes`, the hit definition) and counts; `render` prints the report;
//! `when` parses `--since/--until`. With `--simulate`, the same reader feeds
//! `sim_input::Replay` instead, which classifies lines for the LRU replay
//! (`simulate`); `sim_render` prints its table. This file knows that order
//! and turns it into an exit code.

pub mod codes;
pub mod line;
pub mod not_stored;
pub mod reader;
pub mod render;
pub mod report;
pub mod sim_input;
pub mod sim_render;
pub mod simulate;
pub mod sink;
pub mod when;

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use reader::Progress;
use report::{Aggregator, TimeFilter};
use sink::Sink;

/// Hit ratios and traffic breakdowns from Squid-native access logs (or our
/// JSON lines, which add why responses were not cached).
#[derive(Debug, Clone, Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct StatsArgs {
    /// Access logs, plain or gzip (told apart by content); none or `-` reads stdin
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// How many domains each top list shows
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub top: usize,
    /// Count lines logged at or after TIME: Unix seconds (1732471234[.567]),
    /// YYYY-MM-DD[THH:MM[:SS]] in UTC, or RFC 3339 (2024-11-24T18:00:00+01:00)
    #[arg(long, value_name = "TIME", value_parser = when::parse_time)]
    pub since: Option<i64>,
    /// Count lines logged before TIME (same forms as --since)
    #[arg(long, value_name = "TIME", value_parser = when::parse_time)]
    pub until: Option<i64>,
    /// Instead of the report: replay the logs through an LRU cache of each
    /// of these sizes (comma-separated, e.g. 1GiB,10GiB,100GiB; at most 16)
    /// and print the predicted hit ratios beside the logged ones
    #[arg(long, value_name = "SIZES", value_delimiter = ',', value_parser = parse_size)]
    pub simulate: Vec<u64>,
}

/// `1GiB`, `500MB`, `1048576` → bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| format!("`{text}` is not a size such as 512MiB, 10GiB or 1TB"))
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people
    Text,
    /// One JSON object; ratios are fractions in 0..=1
    Json,
}

const AFTER_HELP: &str = "\
Lines: `time.millis elapsed client CODE/status bytes method URL user hierarchy/peer type`,
exactly 10 fields separated by whitespace. Other lines are skipped and counted as malformed.

Hits are the result codes of Squid's LogTags::isTcpHit(): TCP_HIT, TCP_MEM_HIT, TCP_IMS_HIT,
TCP_INM_HIT, TCP_REFRESH_UNMODIFIED, TCP_REFRESH_FAIL_OLD, TCP_NEGATIVE_HIT, TCP_OFFLINE_HIT,
plus Squid 2.7's TCP_STALE_HIT, TCP_ASYNC_HIT, TCP_REFRESH_HIT, TCP_REFRESH_FAIL_HIT; the
modifiers _CF, _IGNORED, _TIMEDOUT and _ABORTED are ignored (TCP_CF_HIT is a hit).
Ratios are given over all traffic (every well-formed line in the time range) and over
cacheable traffic (TCP_* lines except TCP_TUNNEL, TCP_DENIED, TCP_DENIED_REPLY, TCP_REDIRECT
and CONNECT requests; NONE/NONE_NONE/TAG_NONE error lines and UDP_* lines are out too).
Byte hit ratio = bytes served from hits / all bytes served (the log's bytes field).

A file that cannot be read (or a gzip stream that breaks) is reported on stderr; the other
files are still counted, the report notes it, and the exit status is 1.";

/// Runs `cachalot stats`: 0 when every source was read to its end, 1 when
/// one could not be (the report still covers the others).
pub fn run(args: &StatsArgs) -> ExitCode {
    let filter = TimeFilter {
        since: args.since,
        until: args.until,
    };
    if args.simulate.len() > simulate::MAX_SIZES {
        eprintln!(
            "cachalot stats: --simulate takes at most {} sizes",
            simulate::MAX_SIZES
        );
        return ExitCode::from(2);
    }
    if !args.simulate.is_empty() {
        let mut replay = sim_input::Replay::new(&args.simulate, filter);
        let complete = read_sources(&args.files, &mut replay);
        let (outcome, counts) = replay.finish();
        let report = sim_render::SimReport::new(&outcome, counts);
        let rendered = match args.format {
            Format::Text => Ok(sim_render::text(&report)),
            Format::Json => sim_render::json(&report),
        };
        return print(rendered, complete);
    }
    let mut aggregator = Aggregator::new(filter);
    let complete = read_sources(&args.files, &mut aggregator);
    let report = aggregator.finish(args.top);
    let rendered = match args.format {
        Format::Text => Ok(render::text(&report)),
        Format::Json => render::json(&report),
    };
    print(rendered, complete)
}

/// Reads every source into `sink` (stdin when there is none); false when
/// one could not be read to its end.
fn read_sources<S: Sink>(files: &[PathBuf], sink: &mut S) -> bool {
    let mut progress = Progress::on_terminal();
    let stdin_only = [PathBuf::from("-")];
    let files = if files.is_empty() {
        &stdin_only[..]
    } else {
        files
    };
    let mut complete = true;
    for path in files {
        let name = path.display().to_string();
        sink.begin_source(&name);
        let result = if name == "-" {
            reader::read_into(io::stdin().lock(), None, &name, sink, &mut progress)
        } else {
            File::open(path).and_then(|file| {
                let size = file.metadata().ok().map(|m| m.len());
                reader::read_into(file, size, &name, sink, &mut progress)
            })
        };
        progress.clear();
        if let Err(e) = result {
            eprintln!("cachalot stats: cannot read {name}: {e}");
            sink.source_failed(e.to_string());
            complete = false;
        }
    }
    complete
}

/// Writes the rendered output and turns the run into an exit code.
fn print(rendered: Result<String, String>, complete: bool) -> ExitCode {
    let written = match rendered {
        Ok(text) => {
            let mut stdout = io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
        }
        Err(e) => {
            eprintln!("cachalot stats: {e}");
            return ExitCode::FAILURE;
        }
    };
    match written {
        // `cachalot stats | head` is not a failure.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("cachalot stats: cannot write the report: {e}");
            ExitCode::FAILURE
        }
        _ if complete => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

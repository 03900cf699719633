//! `cachalot cache purge|stats|clear`: work on the disk cache of a stopped
//! proxy (sled allows one process at a time; a running proxy holds it).

use std::path::Path;
use std::process::ExitCode;

use http::Method;

use crate::cache::policy::key::cache_key;
use crate::cache::store::disk::DiskTier;
use crate::cache::store::record::decode;
use crate::http::target::{classify, Target};

/// What to do to the cache.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CacheCommand {
    /// Remove a URL (every stored variant)
    Purge {
        /// The absolute http:// URL
        url: String,
    },
    /// Count records and bytes, and verify every record's checksum
    Stats,
    /// Remove every record
    Clear,
}

/// Runs a cache command on the disk tier at `dir`.
pub fn run(command: &CacheCommand, dir: &Path, disk_size: u64) -> ExitCode {
    let disk = match DiskTier::open(dir, disk_size) {
        Ok(disk) => disk,
        Err(e) => {
            eprintln!(
                "cachalot: cannot open the cache at {} (is the proxy still running?): {e}",
                dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        CacheCommand::Purge { url } => purge(&disk, url),
        CacheCommand::Stats => stats(&disk),
        CacheCommand::Clear => disk
            .clear()
            .map(|()| println!("cache cleared"))
            .map_err(|e| e.to_string()),
    };
    let flushed = disk.flush().map_err(|e| e.to_string());
    match result.and(flushed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cachalot: {e}");
            ExitCode::FAILURE
        }
    }
}

fn purge(disk: &DiskTier, raw: &str) -> Result<(), String> {
    let uri = raw.parse().map_err(|_| format!("not a URL: {raw}"))?;
    let Ok(Target::Http { uri, .. }) = classify(&Method::GET, &uri) else {
        return Err(format!("not an http:// URL: {raw}"));
    };
    let url = cache_key(&uri).ok_or_else(|| format!("not a cacheable URL: {raw}"))?;
    let prefix = format!("E{url}\n");
    let keys: Vec<String> = disk
        .keys()
        .filter(|k| *k == format!("I{url}") || k.starts_with(&prefix))
        .collect();
    for key in &keys {
        disk.remove(key).map_err(|e| e.to_string())?;
    }
    if keys.is_empty() {
        println!("not in the cache: {url}");
    } else {
        println!("purged {url} ({} records)", keys.len());
    }
    Ok(())
}

fn stats(disk: &DiskTier) -> Result<(), String> {
    let (mut entries, mut indexes, mut bad) = (0u64, 0u64, 0u64);
    for key in disk.keys().collect::<Vec<_>>() {
        if let Some(raw) = disk.raw_get(&key).map_err(|e| e.to_string())? {
            match decode(&raw) {
                Ok(crate::cache::store::record::Record::Entry(_)) => entries += 1,
                Ok(crate::cache::store::record::Record::Index(_)) => indexes += 1,
                Err(_) => bad += 1,
            }
        }
    }
    println!(
        "{entries} responses under {indexes} URLs, {} bytes on disk; {bad} records fail their checks",
        disk.bytes()
    );
    Ok(())
}

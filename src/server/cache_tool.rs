//! `cachalot cache purge|stats|verify|clear`: work on the disk cache of a
//! stopped proxy (sled allows one process at a time; a running proxy holds
//! it).

use std::path::Path;
use std::process::ExitCode;

use http::Method;

use crate::cache::policy::key::cache_key;
use crate::cache::store::disk::DiskTier;
use crate::cache::store::object::read_chunk;
use crate::cache::store::record::{decode, Record};
use crate::http::target::{classify, Target};

/// What to do to the cache.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CacheCommand {
    /// Remove a URL (every stored variant)
    Purge {
        /// The absolute http:// URL
        url: String,
    },
    /// Count objects, URLs and bytes, and the space the cache folder takes
    Stats,
    /// Check every head and every chunk of every body against its checksum,
    /// drop what fails, and say what was dropped
    Verify,
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
        CacheCommand::Stats => stats(&disk, dir),
        CacheCommand::Verify => verify(&disk),
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

fn stats(disk: &DiskTier, dir: &Path) -> Result<(), String> {
    let (mut entries, mut indexes, mut bad, mut body_bytes, mut largest) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut pieces, mut piece_bytes) = (0u64, 0u64);
    for key in disk.keys().collect::<Vec<_>>() {
        if let Some(raw) = disk.raw_get(&key).map_err(|e| e.to_string())? {
            match decode(&raw) {
                Ok(Record::Entry(e)) if e.part.is_some() => {
                    pieces += 1;
                    piece_bytes += e.length;
                }
                Ok(Record::Entry(e)) => {
                    entries += 1;
                    body_bytes += e.length;
                    largest = largest.max(e.length);
                }
                Ok(Record::Index(_)) => indexes += 1,
                Err(_) => bad += 1,
            }
        }
    }
    let files = disk.objects.list();
    let file_space: u64 = files.iter().map(|(_, size)| size).sum();
    let used = space_used(dir);
    println!("objects:       {entries} responses under {indexes} URLs");
    println!("partial:       {pieces} pieces of partial objects, {piece_bytes} bytes");
    println!("body bytes:    {body_bytes} (largest {largest})");
    println!(
        "accounted:     {} of {} bytes (cache.disk_size)",
        disk.bytes(),
        disk.limit()
    );
    println!(
        "on disk:       {used} bytes in {} ({} object files, {file_space} bytes)",
        dir.display(),
        files.len()
    );
    if bad > 0 {
        println!(
            "unreadable:    {bad} heads fail their checks (`cachalot cache verify` drops them)"
        );
    }
    Ok(())
}

/// Bytes the folder takes on disk (allocated blocks).
fn space_used(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

fn verify(disk: &DiskTier) -> Result<(), String> {
    let (mut checked, mut chunks, mut dropped) = (0u64, 0u64, Vec::new());
    for key in disk.keys().collect::<Vec<_>>() {
        let Some(raw) = disk.raw_get(&key).map_err(|e| e.to_string())? else {
            continue;
        };
        let problem = match decode(&raw) {
            Err(e) => Some(format!("head: {e}")),
            Ok(Record::Index(_)) => None,
            Ok(Record::Entry(entry)) => {
                checked += 1;
                match entry.object.as_deref() {
                    None => Some("no body".to_owned()),
                    Some(_) if entry.length == 0 => None,
                    Some(object) => match disk.objects.open_file(object.id) {
                        Err(e) => Some(format!("body file: {e}")),
                        Ok(file) => (0..object.crcs.len()).find_map(|i| {
                            chunks += 1;
                            read_chunk(&file, object, entry.length, i)
                                .err()
                                .map(|e| e.to_string())
                        }),
                    },
                }
            }
        };
        if let Some(problem) = problem {
            disk.drop_damaged(&key).map_err(|e| e.to_string())?;
            dropped.push((key, problem));
        }
    }
    let (orphans, dangling) = disk.unevictable().map_err(|e| e.to_string())?;
    let swept = disk.sweep(|_| false);
    println!("checked {checked} responses ({chunks} chunks)");
    for (key, problem) in &dropped {
        println!("dropped {}: {problem}", key.replacen('\n', " ", 1));
    }
    println!(
        "{} dropped; {orphans} records without an LRU position, {dangling} LRU positions without a record; {swept} object files no record names removed",
        dropped.len()
    );
    Ok(())
}

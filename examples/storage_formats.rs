//! Where should the chunks of large bodies live: sled values, or one file
//! per object? Writes 5× a bound's worth of objects of mixed sizes (64 KiB
//! to 64 MiB, log-uniform, fixed seed) in 256 KiB chunks through each
//! store with LRU eviction, then reads every live object back, and reports
//! write and read throughput and the space the folder takes against the
//! bound. Run: `cargo run --release --example storage_formats [-- BOUND_MiB]`.

use std::collections::VecDeque;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

const CHUNK: usize = 256 * 1024;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Object sizes, log-uniform in [64 KiB, 64 MiB], adding up to `total`.
fn sizes(total: u64) -> Vec<u64> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (lo, hi) = ((64.0f64 * 1024.0).ln(), (64.0f64 * 1024.0 * 1024.0).ln());
    let mut out = Vec::new();
    let mut sum = 0;
    while sum < total {
        let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let size = (lo + u * (hi - lo)).exp() as u64;
        sum += size;
        out.push(size);
    }
    out
}

fn du(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

trait Store {
    fn put(&mut self, id: u64, size: u64, chunk: &[u8]);
    fn remove(&mut self, id: u64, size: u64);
    fn read(&mut self, id: u64, size: u64) -> u64;
    fn flush(&mut self);
}

struct Sled(sled::Tree, sled::Db);
impl Store for Sled {
    fn put(&mut self, id: u64, size: u64, chunk: &[u8]) {
        for i in 0..size.div_ceil(CHUNK as u64) {
            let len = (size - i * CHUNK as u64).min(CHUNK as u64) as usize;
            let mut key = id.to_be_bytes().to_vec();
            key.extend_from_slice(&(i as u32).to_be_bytes());
            self.0.insert(key, &chunk[..len]).ok();
        }
    }
    fn remove(&mut self, id: u64, size: u64) {
        for i in 0..size.div_ceil(CHUNK as u64) {
            let mut key = id.to_be_bytes().to_vec();
            key.extend_from_slice(&(i as u32).to_be_bytes());
            self.0.remove(key).ok();
        }
    }
    fn read(&mut self, id: u64, size: u64) -> u64 {
        let mut n = 0;
        for i in 0..size.div_ceil(CHUNK as u64) {
            let mut key = id.to_be_bytes().to_vec();
            key.extend_from_slice(&(i as u32).to_be_bytes());
            n += self.0.get(key).ok().flatten().map_or(0, |v| v.len() as u64);
        }
        n
    }
    fn flush(&mut self) {
        self.1.flush().ok();
    }
}

struct Files(std::path::PathBuf);
impl Store for Files {
    fn put(&mut self, id: u64, size: u64, chunk: &[u8]) {
        let mut f = std::fs::File::create(self.0.join(format!("{id:016x}"))).unwrap_or_else(|e| {
            eprintln!("create: {e}");
            std::process::exit(1)
        });
        for i in 0..size.div_ceil(CHUNK as u64) {
            let len = (size - i * CHUNK as u64).min(CHUNK as u64) as usize;
            f.write_all(&chunk[..len]).ok();
        }
    }
    fn remove(&mut self, id: u64, _: u64) {
        std::fs::remove_file(self.0.join(format!("{id:016x}"))).ok();
    }
    fn read(&mut self, id: u64, _: u64) -> u64 {
        use std::io::Read;
        let Ok(mut f) = std::fs::File::open(self.0.join(format!("{id:016x}"))) else {
            return 0;
        };
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0;
        while let Ok(k) = f.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    }
    fn flush(&mut self) {}
}

fn run(name: &str, store: &mut dyn Store, dir: &Path, bound: u64) {
    let chunk: Vec<u8> = (0..CHUNK).map(|i| (i * 7 % 251) as u8).collect();
    let mut live: VecDeque<(u64, u64)> = VecDeque::new();
    let mut held = 0u64;
    let (mut written, started) = (0u64, Instant::now());
    for (id, size) in sizes(5 * bound).into_iter().enumerate() {
        let size = size.min(bound);
        while held + size > bound {
            let Some((old, old_size)) = live.pop_front() else {
                break;
            };
            store.remove(old, old_size);
            held -= old_size;
        }
        store.put(id as u64 + 1, size, &chunk);
        live.push_back((id as u64 + 1, size));
        held += size;
        written += size;
    }
    store.flush();
    let write_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let read: u64 = live.iter().map(|(id, size)| store.read(*id, *size)).sum();
    let read_s = started.elapsed().as_secs_f64();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "{name:6} wrote {:.0} MiB at {:.0} MiB/s, read {:.0} MiB at {:.0} MiB/s, folder {:.0} MiB for {:.0} MiB held: {:.2}x the bound",
        mib(written),
        mib(written) / write_s,
        mib(read),
        mib(read) / read_s,
        mib(du(dir)),
        mib(held),
        du(dir) as f64 / bound as f64
    );
}

fn main() {
    let bound_mib: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(512);
    let bound = bound_mib * 1024 * 1024;
    let base = std::env::temp_dir().join(format!("cachalot-storage-{}", std::process::id()));
    for name in ["files", "sled"] {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).ok();
        if name == "sled" {
            let Ok(db) = sled::Config::new()
                .path(&dir)
                .cache_capacity(16 << 20)
                .open()
            else {
                eprintln!("cannot open sled at {}", dir.display());
                return;
            };
            let Ok(tree) = db.open_tree("chunks") else {
                return;
            };
            run(name, &mut Sled(tree, db), &dir, bound);
        } else {
            run(name, &mut Files(dir.clone()), &dir, bound);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
    std::fs::remove_dir_all(&base).ok();
}

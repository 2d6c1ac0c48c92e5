//! The one way vqsim writes output: every file and run directory is filled under a temporary
//! name beside its final one and renamed into place, so a reader (or a resumed sweep) sees
//! the old version or the new one, never half of either.
//!
//! Temporary names are `.tmp~<host>~<pid>~<nonce>~<final name>`: hidden, never mistaken for
//! a result, and telling which process made them. Those of dead processes on this host are
//! removed by `remove_stale_temps` when the next command starts; those of this process are
//! removed on error, on cancel, and by the Ctrl-C handler (`remove_in_flight`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PREFIX: &str = ".tmp~";

/// Temp paths this process is filling now, for the Ctrl-C handler to remove before exiting.
static IN_FLIGHT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Host name, so that a process on one machine never mistakes another machine's temp file
/// on a shared file system for its own stale one.
pub fn host() -> String {
    let h = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let h: String = h
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .collect();
    if h.is_empty() {
        "host".into()
    } else {
        h
    }
}

/// The temporary path for `path`. The final name comes last, so the extension (which the
/// PNG encoder reads) is kept.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = format!(
        "{PREFIX}{}~{}~{:08x}~{name}",
        host(),
        std::process::id(),
        rand::random::<u32>()
    );
    path.with_file_name(tmp)
}

/// Whether `name` is a temporary name of this scheme.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// (host, pid) of the process that made temp name `name`.
fn owner(name: &str) -> Option<(&str, u32)> {
    let mut parts = name.strip_prefix(PREFIX)?.splitn(4, '~');
    let host = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    Some((host, pid))
}

/// Registers a temp path for the Ctrl-C handler while it exists.
struct InFlight(PathBuf);

impl InFlight {
    fn new(path: PathBuf) -> InFlight {
        lock_in_flight().push(path.clone());
        InFlight(path)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        lock_in_flight().retain(|p| p != &self.0);
    }
}

fn lock_in_flight() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    IN_FLIGHT.lock().unwrap_or_else(|e| e.into_inner())
}

fn remove_path(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Remove every temp file or directory this process is filling now (from a signal handler,
/// just before exiting).
pub fn remove_in_flight() {
    for path in lock_in_flight().iter() {
        let _ = remove_path(path);
    }
}

/// Write `bytes` to `path` and flush them to disk, so a crash after the rename cannot leave
/// a complete-looking name over empty contents.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Make a rename durable; best effort (not every platform can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replace `path` with `bytes` atomically: readers see the old or the new file, never a mix.
/// The error is the I/O error alone; callers name `path`.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with(path, |tmp| write_synced(tmp, bytes), |e| e)
}

/// Replace `path` atomically with the file that `fill` writes at the temporary path it is
/// given (for writers that want a path, such as the PNG encoder). `io_err` wraps the I/O
/// errors of the rename.
pub fn write_with<E>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<(), E>,
    io_err: impl FnOnce(io::Error) -> E,
) -> Result<(), E> {
    let tmp = InFlight::new(temp_path(path));
    let res = fill(&tmp.0).and_then(|()| fs::rename(&tmp.0, path).map_err(io_err));
    if res.is_err() {
        let _ = fs::remove_file(&tmp.0);
    }
    sync_dir(parent(path));
    res
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    New,
    /// Another process (a shard sharing the directory) published this directory first; ours
    /// was discarded.
    AlreadyThere,
}

/// Publish directory `target` holding `files` (name, contents): it appears complete or not
/// at all. If another process publishes it first, ours is discarded.
pub fn publish_dir(target: &Path, files: &[(&str, Vec<u8>)]) -> io::Result<Published> {
    if target.exists() {
        return Ok(Published::AlreadyThere);
    }
    let tmp = InFlight::new(temp_path(target));
    let fill = || -> io::Result<()> {
        fs::create_dir(&tmp.0)?;
        for (name, bytes) in files {
            write_synced(&tmp.0.join(name), bytes)?;
        }
        sync_dir(&tmp.0);
        Ok(())
    };
    if let Err(e) = fill() {
        let _ = fs::remove_dir_all(&tmp.0);
        return Err(e);
    }
    match fs::rename(&tmp.0, target) {
        Ok(()) => {
            sync_dir(parent(target));
            Ok(Published::New)
        }
        // rename onto a non-empty directory fails: someone else won the race.
        Err(_) if target.exists() => {
            let _ = fs::remove_dir_all(&tmp.0);
            Ok(Published::AlreadyThere)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp.0);
            Err(e)
        }
    }
}

/// Remove the temp entries in `dir` left by dead processes of this host; returns how many.
/// Those of live processes (a concurrent shard, this process) and of other hosts are left
/// alone. A missing `dir` has none.
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    // Without /proc we cannot tell dead from alive, so we remove nothing.
    if !Path::new("/proc/self").exists() {
        return Ok(0);
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let me = host();
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((h, pid)) = owner(&name) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if h != me || alive {
            continue;
        }
        remove_path(&entry.path())?;
        removed += 1;
    }
    Ok(removed)
}

/// Remove this process's own temp entries in `dir` (after a cancel or an error).
pub fn remove_own_temps(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let me = host();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if owner(&name) == Some((me.as_str(), std::process::id())) {
            let _ = remove_path(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        write(&p, b"one").unwrap();
        write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_fill_leaves_neither_temp_nor_target() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fig.png");
        let res = write_with(
            &p,
            |tmp| {
                assert!(tmp.to_string_lossy().ends_with("~fig.png"));
                fs::write(tmp, b"half")?;
                Err(io::Error::other("encoder failed"))
            },
            |e| e,
        );
        assert!(res.is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn publish_dir_is_all_or_nothing_and_first_wins() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("run");
        let files = [("a.csv", b"1".to_vec()), ("b.csv", b"2".to_vec())];
        assert_eq!(publish_dir(&target, &files).unwrap(), Published::New);
        let again = [("a.csv", b"other".to_vec())];
        assert_eq!(
            publish_dir(&target, &again).unwrap(),
            Published::AlreadyThere
        );
        assert_eq!(fs::read(target.join("a.csv")).unwrap(), b"1");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temps_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max on Linux is at most 2^22, so this pid cannot be alive.
        let dead = format!("{PREFIX}{}~4294967295~00000000~summary.csv", host());
        let live = temp_path(&dir.path().join("0123456789abcdef"));
        let other_host = format!("{PREFIX}elsewhere~4294967295~0~x.svg");
        fs::create_dir(dir.path().join(&dead)).unwrap();
        fs::create_dir(&live).unwrap();
        fs::write(dir.path().join(&other_host), b"").unwrap();
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(!dir.path().join(&dead).exists());
        assert!(live.exists());
        assert!(dir.path().join(&other_host).exists());
        remove_own_temps(dir.path());
        assert!(!live.exists());
        assert!(dir.path().join(&other_host).exists());
    }

    #[test]
    fn temps_are_registered_for_the_interrupt_handler_while_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.svg");
        let mut seen = PathBuf::new();
        write_with(
            &p,
            |tmp| {
                seen = tmp.to_path_buf();
                // What the Ctrl-C handler would remove now.
                assert!(lock_in_flight().contains(&seen));
                fs::write(tmp, b"svg")
            },
            |e| e,
        )
        .unwrap();
        assert!(!lock_in_flight().contains(&seen));
        assert_eq!(fs::read(&p).unwrap(), b"svg");
    }
}

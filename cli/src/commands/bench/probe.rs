//! The physical-limit probe: how many durable redb commits per second this disk takes.

use anyhow::Context as _;
use redb::{Database, TableDefinition};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Bytes written by each committed transaction of the probe (about one small record).
pub const RECORD_BYTES: usize = 200;

const TABLE: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("probe");

/// What the commit probe measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommitProbe {
    /// Committed write transactions.
    pub commits: u32,
    /// Bytes of the record each transaction inserted.
    pub bytes_per_commit: usize,
    /// Wall time of all commits.
    pub seconds: f64,
    /// `commits / seconds`.
    pub commits_per_second: f64,
}

/// Commits `commits` write transactions of [`RECORD_BYTES`] each, one after another with redb's
/// default durability (the commit returns after the data is on disk), into a new scratch file at
/// `path`, which is removed afterwards. Blocking: run it off the async workers.
///
/// # Errors
/// The file exists already, or redb or the file system fails.
pub fn run(path: &Path, commits: u32) -> anyhow::Result<CommitProbe> {
    anyhow::ensure!(
        !path.exists(),
        "the probe file {} exists already",
        path.display()
    );
    let result = measure(path, commits);
    let _ = std::fs::remove_file(path);
    result
}

fn measure(path: &Path, commits: u32) -> anyhow::Result<CommitProbe> {
    let db = Database::create(path)
        .with_context(|| format!("cannot create the probe database {}", path.display()))?;
    let mut record = [0u8; RECORD_BYTES];
    let started = Instant::now();
    for i in 0..u64::from(commits) {
        record[..8].copy_from_slice(&i.to_be_bytes());
        let tx = db.begin_write().context("probe: begin")?;
        {
            let mut table = tx.open_table(TABLE).context("probe: open table")?;
            table
                .insert(i, record.as_slice())
                .context("probe: insert")?;
        }
        tx.commit().context("probe: commit")?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(CommitProbe {
        commits,
        bytes_per_commit: RECORD_BYTES,
        seconds,
        commits_per_second: f64::from(commits) / seconds.max(f64::MIN_POSITIVE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_commits_every_record_and_removes_its_file() {
        let dir = std::env::temp_dir().join(format!("fp-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("probe.redb");
        let p = run(&path, 7).unwrap();
        assert_eq!(p.commits, 7);
        assert_eq!(p.bytes_per_commit, RECORD_BYTES);
        assert!(p.commits_per_second > 0.0, "{p:?}");
        assert!(!path.exists());
        // A file in the way is refused rather than overwritten.
        std::fs::write(&path, b"x").unwrap();
        assert!(run(&path, 1).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

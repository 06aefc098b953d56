//! The checkout journal: one node's durable copy of the replicated checkout
//! log, stored with [redb](https://docs.rs/redb) in
//! `<data_dir>/checkout.redb` ([`FILE_NAME`]).
//!
//! It holds three things:
//! - the **promised epoch**, the highest epoch this node has promised; it
//!   fences off older owners, so it is durable *before* the promise is
//!   answered;
//! - the **log**: entries `{ index, epoch, record }`, where `record` is
//!   opaque, already-encoded bytes;
//! - the **commit index**, the highest index known committed. It is a hint
//!   that may lag: the log protocol can always learn it again from the owner.
//!
//! The API is synchronous and blocks on `fsync`; actors call it from
//! tokio's blocking pool. Every write is one redb transaction, so after a
//! crash the journal holds the state after some prefix of the calls that
//! returned or were in flight, never a mix.
//!
//! # What is durable when
//! - [`Journal::set_promised_epoch`], [`Journal::append`],
//!   [`Journal::truncate_from`] and [`Journal::replace_from`] commit with
//!   redb's default [`Durability::Immediate`]: when they return `Ok`, the
//!   change survives a crash or power loss.
//! - [`Journal::set_commit_index`] commits with [`Durability::None`]: the
//!   update is visible at once, becomes durable with the next durable
//!   commit above or on a clean close, and is lost by a crash before
//!   either, which only makes the stored commit index lag.
//!
//! # Invariants
//! - indexes are contiguous from 1: the log is `1..=last`, checked on
//!   [`Journal::open`] (otherwise [`JournalError::Corrupt`], as for a last
//!   entry that does not decode) and kept by every write
//!   ([`JournalError::Gap`] rejects an append that would break it, and
//!   writes nothing);
//! - the promised epoch never decreases: a lower value is ignored;
//! - the stored commit index never decreases: a lower value is ignored.
//!
//! Not enforced here, the caller's job (see the log protocol in
//! `super::log`): that an entry's epoch never exceeds the epoch promised
//! when it is written, that epochs along the log never decrease, that the
//! commit index does not run past the log, and that a truncation never
//! removes a committed entry.
//!
//! Nothing read from the file is trusted: a malformed entry is reported as
//! [`JournalError::Corrupt`], never a panic.

use std::fmt;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition,
};

#[cfg(test)]
mod tests;

/// Name of the journal file inside a node's data directory.
pub const FILE_NAME: &str = "checkout.redb";

/// Version of the on-disk layout below; a file of another version is refused.
const FORMAT_VERSION: u64 = 1;

/// Scalars: [`FORMAT_VERSION_KEY`], [`PROMISED_EPOCH_KEY`], [`COMMIT_INDEX_KEY`].
const META: TableDefinition<&str, u64> = TableDefinition::new("checkout_meta");
/// The log: index -> epoch (8 bytes, little-endian) followed by the record.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("checkout_log");

const FORMAT_VERSION_KEY: &str = "format_version";
const PROMISED_EPOCH_KEY: &str = "promised_epoch";
const COMMIT_INDEX_KEY: &str = "commit_index";

/// Bytes of the epoch prefix of a stored log value.
const EPOCH_BYTES: usize = 8;

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The storage failed (I/O, file locked by another handle, ...).
    #[error("journal storage failed: {0}")]
    Storage(String),
    /// The file holds data this journal cannot have written.
    #[error("journal is corrupt: {0}")]
    Corrupt(String),
    /// An append did not continue the log contiguously; nothing was written.
    #[error("journal gap: expected index {expected}, got {got}")]
    Gap {
        /// The index the log needed next.
        expected: u64,
        /// The index that was offered instead.
        got: u64,
    },
}

impl JournalError {
    /// Whether trying again may succeed: only storage failures are transient.
    /// After a failed `fsync` redb refuses further writes until the journal
    /// is reopened, so a retry should reopen it.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Storage(_))
    }
}

impl From<redb::Error> for JournalError {
    fn from(err: redb::Error) -> Self {
        match err {
            redb::Error::Corrupted(_)
            | redb::Error::UpgradeRequired(_)
            | redb::Error::TableTypeMismatch { .. }
            | redb::Error::TableIsMultimap(_)
            | redb::Error::TypeDefinitionChanged { .. } => Self::Corrupt(err.to_string()),
            _ => Self::Storage(err.to_string()),
        }
    }
}

/// Routes every specific redb error through [`redb::Error`], so `?` works.
macro_rules! from_redb_error {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for JournalError {
            fn from(err: $error) -> Self {
                redb::Error::from(err).into()
            }
        }
    )*};
}

from_redb_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);

/// One stored log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// Position in the log, from 1.
    pub index: u64,
    /// Epoch of the owner that appended it.
    pub epoch: u64,
    /// The encoded record, opaque to the journal.
    pub record: Vec<u8>,
}

/// One node's durable log, promise and commit index (see the module doc).
pub struct Journal {
    /// The open file. redb serialises write transactions, so every
    /// read-modify-write below is atomic and `&self` methods may be called
    /// from several threads.
    db: Database,
    /// Where the file is, for logs and `Debug`.
    path: PathBuf,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal").field("path", &self.path).finish()
    }
}

impl Journal {
    /// Opens the journal at `path`, creating the file (and its directory)
    /// if missing, and checks that the stored log is contiguous from 1 and
    /// that its last entry decodes.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| {
                JournalError::Storage(format!("cannot create {}: {err}", dir.display()))
            })?;
        }
        let journal = Self {
            db: Database::create(path)?,
            path: path.to_path_buf(),
        };
        journal.initialise()?;
        let (last_index, last_epoch) = journal.last()?;
        tracing::debug!(
            path = %journal.path.display(),
            last_index,
            last_epoch,
            "checkout journal opened"
        );
        Ok(journal)
    }

    /// Creates the tables, stamps or checks the format version and
    /// validates the log's shape.
    fn initialise(&self) -> Result<(), JournalError> {
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let version = meta.get(FORMAT_VERSION_KEY)?.map(|v| v.value());
            match version {
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(JournalError::Corrupt(format!(
                        "unsupported format version {other}, expected {FORMAT_VERSION}"
                    )))
                }
                None => {
                    meta.insert(FORMAT_VERSION_KEY, FORMAT_VERSION)?;
                }
            }
            let log = txn.open_table(LOG)?;
            let len = log.len()?;
            let first = log.first()?.map(|(index, _)| index.value());
            let last = log.last()?.map(|(index, _)| index.value());
            // Keys are unique and sorted, so first == 1 and last == len
            // means exactly 1..=len.
            match (first, last) {
                (None, None) => {}
                (Some(1), Some(last)) if last == len => {}
                (first, last) => {
                    return Err(JournalError::Corrupt(format!(
                        "log is not contiguous from 1: {len} entries, first {first:?}, \
                         last {last:?}"
                    )))
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The highest epoch promised, 0 if none.
    pub fn promised_epoch(&self) -> Result<u64, JournalError> {
        self.read_meta(PROMISED_EPOCH_KEY)
    }

    /// Durably raises the promised epoch to `epoch`; a lower or equal value
    /// is ignored (and costs no write).
    pub fn set_promised_epoch(&self, epoch: u64) -> Result<(), JournalError> {
        self.raise_meta(PROMISED_EPOCH_KEY, epoch, Durability::Immediate)
    }

    /// The highest index known committed, 0 if none.
    pub fn commit_index(&self) -> Result<u64, JournalError> {
        self.read_meta(COMMIT_INDEX_KEY)
    }

    /// Raises the commit index to `index`; a lower or equal value is
    /// ignored. Not durable on its own (see the module doc).
    pub fn set_commit_index(&self, index: u64) -> Result<(), JournalError> {
        self.raise_meta(COMMIT_INDEX_KEY, index, Durability::None)
    }

    /// Index and epoch of the last entry, `(0, 0)` when the log is empty.
    pub fn last(&self) -> Result<(u64, u64), JournalError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        let last = log.last()?;
        match last {
            None => Ok((0, 0)),
            Some((index, value)) => {
                let index = index.value();
                Ok((index, decode(index, value.value())?.epoch))
            }
        }
    }

    /// The entry at `index`, if the log holds it.
    pub fn entry(&self, index: u64) -> Result<Option<StoredEntry>, JournalError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        let value = log.get(index)?;
        value.map(|value| decode(index, value.value())).transpose()
    }

    /// Up to `max` entries from index `from` on (from 1 when `from` is 0);
    /// empty when `from` is past the last entry.
    pub fn entries_from(&self, from: u64, max: usize) -> Result<Vec<StoredEntry>, JournalError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        let mut entries = Vec::new();
        for item in log.range(from..)?.take(max) {
            let (index, value) = item?;
            entries.push(decode(index.value(), value.value())?);
        }
        Ok(entries)
    }

    /// Number of entries, which is also the last index.
    pub fn len(&self) -> Result<u64, JournalError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(LOG)?;
        Ok(log.len()?)
    }

    /// Whether the log holds no entry.
    pub fn is_empty(&self) -> Result<bool, JournalError> {
        Ok(self.len()? == 0)
    }

    /// Appends contiguous entries starting at last+1 in one durable
    /// transaction; on [`JournalError::Gap`] nothing is written.
    pub fn append(&self, entries: &[StoredEntry]) -> Result<(), JournalError> {
        self.write_log(|log| append_to(log, entries))
    }

    /// Durably removes every entry with index >= `from` (a conflicting
    /// suffix); removing nothing costs no write.
    pub fn truncate_from(&self, from: u64) -> Result<(), JournalError> {
        self.write_log(|log| truncate(log, from))
    }

    /// Atomically truncates from `from` and appends `entries` (which must
    /// then start at `from`, or at last+1 if `from` is past the log), in one
    /// durable transaction; on error nothing is written.
    pub fn replace_from(&self, from: u64, entries: &[StoredEntry]) -> Result<(), JournalError> {
        self.write_log(|log| {
            let truncated = truncate(log, from)?;
            let appended = append_to(log, entries)?;
            Ok(truncated || appended)
        })
    }

    /// Runs `change` on the log in one durable write transaction, committed
    /// only if it succeeds and changed something (dropping the transaction
    /// aborts it).
    fn write_log(
        &self,
        change: impl FnOnce(&mut Table<'_, u64, &[u8]>) -> Result<bool, JournalError>,
    ) -> Result<(), JournalError> {
        let txn = self.db.begin_write()?;
        {
            let mut log = txn.open_table(LOG)?;
            if !change(&mut log)? {
                return Ok(());
            }
        }
        txn.commit()?;
        count_sync();
        Ok(())
    }

    fn read_meta(&self, key: &str) -> Result<u64, JournalError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        let value = meta.get(key)?.map(|v| v.value());
        Ok(value.unwrap_or(0))
    }

    /// Stores `max(stored, value)` under `key`, skipping the commit when the
    /// stored value is already as high.
    fn raise_meta(
        &self,
        key: &str,
        value: u64,
        durability: Durability,
    ) -> Result<(), JournalError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        {
            let mut meta = txn.open_table(META)?;
            let stored = meta.get(key)?.map(|v| v.value()).unwrap_or(0);
            if value <= stored {
                return Ok(());
            }
            meta.insert(key, value)?;
        }
        txn.commit()?;
        if matches!(durability, Durability::Immediate) {
            count_sync();
        }
        Ok(())
    }
}

/// Counts one durable transaction in `bazaar_checkout_journal_syncs_total`:
/// redb makes it durable with one `fsync` of the file.
fn count_sync() {
    metrics::counter!("bazaar_checkout_journal_syncs_total").increment(1);
}

/// Inserts `entries`, which must continue the log at last+1 contiguously;
/// returns whether it inserted anything.
fn append_to(
    log: &mut Table<'_, u64, &[u8]>,
    entries: &[StoredEntry],
) -> Result<bool, JournalError> {
    let mut last = last_index(log)?;
    let mut value = Vec::new();
    for entry in entries {
        // Only reachable after 2^64 appends, so only from a damaged file.
        let expected = last
            .checked_add(1)
            .ok_or_else(|| JournalError::Corrupt("log index space exhausted".to_string()))?;
        if entry.index != expected {
            return Err(JournalError::Gap {
                expected,
                got: entry.index,
            });
        }
        value.clear();
        value.extend_from_slice(&entry.epoch.to_le_bytes());
        value.extend_from_slice(&entry.record);
        log.insert(entry.index, value.as_slice())?;
        last = expected;
    }
    Ok(!entries.is_empty())
}

/// Removes every entry with index >= `from`; returns whether it removed any.
fn truncate(log: &mut Table<'_, u64, &[u8]>, from: u64) -> Result<bool, JournalError> {
    if from > last_index(log)? {
        return Ok(false);
    }
    log.retain_in(from.., |_, _| false)?;
    Ok(true)
}

/// Index of the last entry, 0 when the log is empty.
fn last_index(log: &Table<'_, u64, &[u8]>) -> Result<u64, JournalError> {
    Ok(log.last()?.map_or(0, |(index, _)| index.value()))
}

/// Decodes a stored log value: the epoch (8 bytes, little-endian), then the
/// record.
fn decode(index: u64, value: &[u8]) -> Result<StoredEntry, JournalError> {
    let Some((epoch, record)) = value.split_first_chunk::<EPOCH_BYTES>() else {
        return Err(JournalError::Corrupt(format!(
            "entry {index} is {} bytes, shorter than its epoch",
            value.len()
        )));
    };
    Ok(StoredEntry {
        index,
        epoch: u64::from_le_bytes(*epoch),
        record: record.to_vec(),
    })
}

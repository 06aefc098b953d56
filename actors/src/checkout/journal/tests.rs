//! Journal tests on real redb files in temporary directories.

use super::*;

use proptest::prelude::*;
use tempfile::TempDir;

fn entry(index: u64, epoch: u64) -> StoredEntry {
    StoredEntry {
        index,
        epoch,
        record: format!("record {index}@{epoch}").into_bytes(),
    }
}

fn entries(from: u64, to: u64, epoch: u64) -> Vec<StoredEntry> {
    (from..=to).map(|index| entry(index, epoch)).collect()
}

/// A fresh directory and the journal path inside it.
fn scratch() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    (dir, path)
}

fn all(journal: &Journal) -> Vec<StoredEntry> {
    journal.entries_from(1, usize::MAX).unwrap()
}

#[test]
fn new_journal_is_empty() {
    let (_dir, path) = scratch();
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.last().unwrap(), (0, 0));
    assert_eq!(journal.len().unwrap(), 0);
    assert!(journal.is_empty().unwrap());
    assert_eq!(journal.promised_epoch().unwrap(), 0);
    assert_eq!(journal.commit_index().unwrap(), 0);
    assert_eq!(journal.entry(1).unwrap(), None);
    assert!(all(&journal).is_empty());
}

#[test]
fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node-a").join("data").join(FILE_NAME);
    Journal::open(&path).unwrap();
    assert!(path.exists());
}

#[test]
fn state_survives_reopen() {
    let (_dir, path) = scratch();
    {
        let journal = Journal::open(&path).unwrap();
        journal.set_promised_epoch(3).unwrap();
        journal.append(&entries(1, 4, 2)).unwrap();
        journal.append(&entries(5, 6, 3)).unwrap();
        journal.set_commit_index(5).unwrap();
    }
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.promised_epoch().unwrap(), 3);
    assert_eq!(journal.last().unwrap(), (6, 3));
    assert_eq!(journal.len().unwrap(), 6);
    assert_eq!(journal.commit_index().unwrap(), 5);
    let mut expected = entries(1, 4, 2);
    expected.extend(entries(5, 6, 3));
    assert_eq!(all(&journal), expected);
}

#[test]
fn records_are_stored_byte_for_byte() {
    let (_dir, path) = scratch();
    let odd = [
        StoredEntry {
            index: 1,
            epoch: u64::MAX,
            record: Vec::new(),
        },
        StoredEntry {
            index: 2,
            epoch: 0,
            record: (0..=255).collect(),
        },
    ];
    Journal::open(&path).unwrap().append(&odd).unwrap();
    let journal = Journal::open(&path).unwrap();
    assert_eq!(all(&journal), odd);
    assert_eq!(journal.entry(2).unwrap().as_ref(), Some(&odd[1]));
}

#[test]
fn append_must_continue_the_log() {
    let (_dir, path) = scratch();
    let journal = Journal::open(&path).unwrap();
    let err = journal.append(&entries(2, 3, 1)).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Gap {
                expected: 1,
                got: 2
            }
        ),
        "{err}"
    );

    journal.append(&entries(1, 2, 1)).unwrap();
    let err = journal.append(&entries(2, 2, 1)).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Gap {
                expected: 3,
                got: 2
            }
        ),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(err.to_string(), "journal gap: expected index 3, got 2");

    // A hole inside the batch rejects the whole batch.
    let holey = vec![entry(3, 1), entry(5, 1)];
    let err = journal.append(&holey).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Gap {
                expected: 4,
                got: 5
            }
        ),
        "{err}"
    );
    assert_eq!(journal.last().unwrap(), (2, 1));

    let zero = journal.append(&[entry(0, 1)]).unwrap_err();
    assert!(matches!(
        zero,
        JournalError::Gap {
            expected: 3,
            got: 0
        }
    ));

    journal.append(&[]).unwrap();
    assert_eq!(all(&journal), entries(1, 2, 1));
}

#[test]
fn truncate_removes_the_suffix() {
    let (_dir, path) = scratch();
    let journal = Journal::open(&path).unwrap();
    journal.append(&entries(1, 5, 1)).unwrap();

    journal.truncate_from(9).unwrap();
    assert_eq!(journal.len().unwrap(), 5);
    journal.truncate_from(4).unwrap();
    assert_eq!(all(&journal), entries(1, 3, 1));
    assert_eq!(journal.last().unwrap(), (3, 1));

    journal.append(&entries(4, 4, 2)).unwrap();
    drop(journal);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.last().unwrap(), (4, 2));

    journal.truncate_from(1).unwrap();
    assert_eq!(journal.last().unwrap(), (0, 0));
    journal.append(&entries(1, 1, 3)).unwrap();
    journal.truncate_from(0).unwrap();
    assert!(journal.is_empty().unwrap());
}

#[test]
fn replace_swaps_a_conflicting_suffix() {
    let (_dir, path) = scratch();
    let journal = Journal::open(&path).unwrap();
    journal.append(&entries(1, 5, 1)).unwrap();

    journal.replace_from(3, &entries(3, 4, 2)).unwrap();
    let mut expected = entries(1, 2, 1);
    expected.extend(entries(3, 4, 2));
    assert_eq!(all(&journal), expected);

    // At last+1 it is a plain append; with no entries a plain truncation.
    journal.replace_from(5, &entries(5, 5, 2)).unwrap();
    assert_eq!(journal.last().unwrap(), (5, 2));
    journal.replace_from(4, &[]).unwrap();
    assert_eq!(journal.last().unwrap(), (3, 2));
    journal.replace_from(8, &[]).unwrap();
    assert_eq!(journal.last().unwrap(), (3, 2));
}

#[test]
fn failed_replace_writes_nothing() {
    let (_dir, path) = scratch();
    let journal = Journal::open(&path).unwrap();
    journal.append(&entries(1, 5, 1)).unwrap();

    let err = journal.replace_from(3, &entries(4, 6, 2)).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Gap {
                expected: 3,
                got: 4
            }
        ),
        "{err}"
    );
    let err = journal.replace_from(9, &entries(9, 9, 2)).unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Gap {
                expected: 6,
                got: 9
            }
        ),
        "{err}"
    );
    drop(journal);
    assert_eq!(all(&Journal::open(&path).unwrap()), entries(1, 5, 1));
}

#[test]
fn promise_never_lowers() {
    let (_dir, path) = scratch();
    let journal = Journal::open(&path).unwrap();
    journal.set_promised_epoch(5).unwrap();
    journal.set_promised_epoch(2).unwrap();
    journal.set_promised_epoch(5).unwrap();
    assert_eq!(journal.promised_epoch().unwrap(), 5);
    journal.set_promised_epoch(7).unwrap();
    drop(journal);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.promised_epoch().unwrap(), 7);
    journal.set_promised_epoch(0).unwrap();
    assert_eq!(journal.promised_epoch().unwrap(), 7);
}

#[test]
fn commit_index_never_lowers() {
    let (_dir, path) = scratch();
    let journal = Journal::open(&path).unwrap();
    journal.append(&entries(1, 4, 1)).unwrap();
    journal.set_commit_index(3).unwrap();
    journal.set_commit_index(1).unwrap();
    assert_eq!(journal.commit_index().unwrap(), 3);
    // Persisted by the next durable commit (or, failing that, the clean close).
    journal.set_commit_index(4).unwrap();
    journal.set_promised_epoch(2).unwrap();
    drop(journal);
    assert_eq!(Journal::open(&path).unwrap().commit_index().unwrap(), 4);
}

#[test]
fn entries_from_respects_bounds() {
    let (_dir, path) = scratch();
    let journal = Journal::open(&path).unwrap();
    journal.append(&entries(1, 10, 1)).unwrap();

    assert_eq!(journal.entries_from(0, 3).unwrap(), entries(1, 3, 1));
    assert_eq!(journal.entries_from(1, 3).unwrap(), entries(1, 3, 1));
    assert_eq!(journal.entries_from(8, 3).unwrap(), entries(8, 10, 1));
    assert_eq!(journal.entries_from(9, 100).unwrap(), entries(9, 10, 1));
    assert_eq!(journal.entries_from(10, 1).unwrap(), entries(10, 10, 1));
    assert!(journal.entries_from(11, 5).unwrap().is_empty());
    assert!(journal.entries_from(u64::MAX, 5).unwrap().is_empty());
    assert!(journal.entries_from(1, 0).unwrap().is_empty());
    assert_eq!(journal.entry(10).unwrap(), Some(entry(10, 1)));
    assert_eq!(journal.entry(11).unwrap(), None);
    assert_eq!(journal.entry(0).unwrap(), None);
}

/// Writes raw log rows, bypassing the journal's checks.
fn write_raw(path: &Path, rows: &[(u64, &[u8])]) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut log = txn.open_table(LOG).unwrap();
        for (index, value) in rows {
            log.insert(*index, *value).unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn open_rejects_a_log_with_holes() {
    let (_dir, path) = scratch();
    let value = [0u8; EPOCH_BYTES];
    write_raw(&path, &[(1, &value), (3, &value)]);
    let err = Journal::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt(_)), "{err}");
    assert!(!err.is_retryable());

    let (_dir, path) = scratch();
    write_raw(&path, &[(2, &value), (3, &value)]);
    let err = Journal::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt(_)), "{err}");
}

#[test]
fn short_values_are_corrupt_not_panics() {
    let (_dir, path) = scratch();
    write_raw(&path, &[(1, &[1, 2, 3])]);
    let err = Journal::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt(_)), "{err}");

    // A bad entry before the last one surfaces when it is read.
    let (_dir, path) = scratch();
    write_raw(&path, &[(1, &[1, 2, 3]), (2, &[0; EPOCH_BYTES])]);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.last().unwrap(), (2, 0));
    assert!(matches!(journal.entry(1), Err(JournalError::Corrupt(_))));
    assert!(matches!(
        journal.entries_from(1, 10),
        Err(JournalError::Corrupt(_))
    ));
    assert_eq!(journal.entries_from(2, 10).unwrap().len(), 1);
}

#[test]
fn open_rejects_other_files() {
    let (_dir, path) = scratch();
    std::fs::write(&path, b"definitely not a redb database, just some text").unwrap();
    let err = Journal::open(&path).unwrap_err();
    assert!(
        matches!(err, JournalError::Storage(_) | JournalError::Corrupt(_)),
        "{err}"
    );

    let (_dir, path) = scratch();
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(FORMAT_VERSION_KEY, FORMAT_VERSION + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Journal::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt(_)), "{err}");
}

#[test]
fn second_open_of_the_same_file_fails_cleanly() {
    let (_dir, path) = scratch();
    let _journal = Journal::open(&path).unwrap();
    let err = Journal::open(&path).unwrap_err();
    assert!(matches!(err, JournalError::Storage(_)), "{err}");
    assert!(err.is_retryable());
}

/// One step of the model test.
#[derive(Debug, Clone)]
enum Op {
    /// Append `count` entries at `last + 1 + skew` (skew 0 is valid).
    Append {
        count: u64,
        epoch: u64,
        skew: u64,
    },
    /// Replace from `from` with `count` entries starting at `from + skew`.
    Replace {
        from: u64,
        count: u64,
        epoch: u64,
        skew: u64,
    },
    Truncate {
        from: u64,
    },
    Promise {
        epoch: u64,
    },
    Commit {
        index: u64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let skew = prop_oneof![4 => Just(0u64), 1 => 1u64..3];
    prop_oneof![
        3 => (0u64..5, 0u64..4, skew.clone())
            .prop_map(|(count, epoch, skew)| Op::Append { count, epoch, skew }),
        3 => (0u64..25, 0u64..5, 0u64..4, skew).prop_map(|(from, count, epoch, skew)| {
            Op::Replace { from, count, epoch, skew }
        }),
        2 => (0u64..25).prop_map(|from| Op::Truncate { from }),
        1 => (0u64..8).prop_map(|epoch| Op::Promise { epoch }),
        1 => (0u64..25).prop_map(|index| Op::Commit { index }),
        1 => Just(Op::Reopen),
    ]
}

/// The model of an append: `Err(expected)` (a gap) unless `batch` continues it.
fn model_append(model: &mut Vec<StoredEntry>, batch: Vec<StoredEntry>) -> Result<(), u64> {
    let expected = model.len() as u64 + 1;
    match batch.first() {
        Some(first) if first.index != expected => Err(expected),
        _ => {
            model.extend(batch);
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn journal_matches_a_vec_model(ops in prop::collection::vec(op(), 1..30)) {
        let (_dir, path) = scratch();
        let mut journal = Journal::open(&path).unwrap();
        let mut model: Vec<StoredEntry> = Vec::new();
        let (mut promised, mut commit) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Append { count, epoch, skew } => {
                    let start = model.len() as u64 + 1 + skew;
                    let batch: Vec<_> = (start..start + count).map(|i| entry(i, epoch)).collect();
                    let got = journal.append(&batch);
                    match model_append(&mut model, batch) {
                        Ok(()) => prop_assert!(got.is_ok(), "{got:?}"),
                        Err(expected) => prop_assert!(
                            matches!(got, Err(JournalError::Gap { expected: e, .. }) if e == expected),
                            "{got:?}"
                        ),
                    }
                }
                Op::Replace { from, count, epoch, skew } => {
                    let start = from.max(1) + skew;
                    let batch: Vec<_> = (start..start + count).map(|i| entry(i, epoch)).collect();
                    let got = journal.replace_from(from, &batch);
                    let mut next = model.clone();
                    next.truncate(from.saturating_sub(1) as usize);
                    match model_append(&mut next, batch) {
                        Ok(()) => {
                            prop_assert!(got.is_ok(), "{got:?}");
                            model = next;
                        }
                        Err(expected) => prop_assert!(
                            matches!(got, Err(JournalError::Gap { expected: e, .. }) if e == expected),
                            "{got:?}"
                        ),
                    }
                }
                Op::Truncate { from } => {
                    journal.truncate_from(from).unwrap();
                    model.truncate(from.saturating_sub(1) as usize);
                }
                Op::Promise { epoch } => {
                    journal.set_promised_epoch(epoch).unwrap();
                    promised = promised.max(epoch);
                }
                Op::Commit { index } => {
                    journal.set_commit_index(index).unwrap();
                    commit = commit.max(index);
                }
                Op::Reopen => {
                    drop(journal);
                    journal = Journal::open(&path).unwrap();
                }
            }
            let last = model.last().map_or((0, 0), |e| (e.index, e.epoch));
            prop_assert_eq!(journal.last().unwrap(), last);
            prop_assert_eq!(journal.len().unwrap(), model.len() as u64);
            prop_assert_eq!(journal.promised_epoch().unwrap(), promised);
            prop_assert_eq!(journal.commit_index().unwrap(), commit);
        }
        prop_assert_eq!(&all(&journal), &model);
        drop(journal);
        let journal = Journal::open(&path).unwrap();
        prop_assert_eq!(&all(&journal), &model);
        prop_assert_eq!(journal.promised_epoch().unwrap(), promised);
        prop_assert_eq!(journal.commit_index().unwrap(), commit);
    }
}

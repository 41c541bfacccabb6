//! Durable per-call transfer state: a small key-value [`Store`] with an in-memory and a file (redb) backend.
//!
//! The orchestrator serializes each call's transfer state to JSON bytes and keeps it here, so that a restart
//! while a caller is on hold still returns or bridges them. Keys are strings ordered by bytes; a batch of
//! [`Write`]s is applied atomically. `--store memory|PATH` parses into a [`StoreSpec`].

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, DatabaseError, ReadableDatabase, StorageError, TableDefinition};

/// One write of an atomic batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Sets `key` to the value, replacing any previous value.
    Put(String, Vec<u8>),
    /// Removes `key`; removing a missing key is not an error.
    Delete(String),
}

/// Why a store could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A store spec was empty.
    #[error("the store spec is empty; pass `memory` or the path of a store file")]
    EmptySpec,
    /// The directory that should hold a new store file does not exist.
    #[error(
        "cannot create store file {}: its directory does not exist; create the directory or pass another path",
        path.display()
    )]
    MissingDirectory {
        /// The store file.
        path: PathBuf,
    },
    /// Another process (or another `FileStore` in this one) has the file open.
    #[error(
        "store file {} is locked by another process; stop the other orchestrator or pass another path",
        path.display()
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The file exists but is not a store this crate wrote.
    #[error("{} is not a ringback store file ({reason}); pass another path or move the file away", path.display())]
    NotAStore {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The database reported an error; `source` says which.
    #[error(
        "cannot {operation} store file {}; check that its disk is healthy and writable, then restart the orchestrator",
        path.display()
    )]
    Database {
        /// The store file.
        path: PathBuf,
        /// What the store was doing: `open`, `read`, `write` or `commit to`.
        operation: &'static str,
        /// The error from redb.
        #[source]
        source: Box<redb::Error>,
    },
}

/// A durable key-value store of byte values under string keys.
///
/// Calls block (the file store waits for the disk on every [`Store::apply`]); async callers that cannot afford
/// that on a runtime thread wrap them in `tokio::task::spawn_blocking`.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// The value under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Applies every write or none, in order (atomic, durable once it returns for the file store).
    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError>;
    /// Every (key, value) whose key starts with `prefix`, in ascending key order.
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Number of keys starting with `prefix` (may be O(n)).
    fn count(&self, prefix: &str) -> Result<usize, StoreError>;
}

/// The keys that start with `prefix`, as a range `prefix..successor` (no upper bound when there is none).
///
/// Strings order by their UTF-8 bytes, which is code point order, so every string starting with `prefix` is
/// below `prefix` with its last char replaced by the next char, and every string in between starts with `prefix`.
fn prefix_range(prefix: &str) -> (String, Option<String>) {
    let mut successor = prefix.to_owned();
    while let Some(last) = successor.pop() {
        // The next code point, skipping the surrogates, which are not chars.
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            successor.push(next);
            return (prefix.to_owned(), Some(successor));
        }
    }
    (prefix.to_owned(), None)
}

/// `prefix_range` as bounds that both `BTreeMap::range` and redb's `range` take.
fn bounds((start, end): &(String, Option<String>)) -> (Bound<&str>, Bound<&str>) {
    let end = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(start.as_str()), end)
}

/// In memory (tests, or deployments that accept losing state on restart).
///
/// `Clone` shares the same data, so a test can "restart" the orchestrator by building a new one over a clone.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    entries: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        // A panic elsewhere while holding the lock cannot leave the map half-written: every batch is applied
        // with plain inserts and removes, which do not panic.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        let mut entries = self.lock();
        for write in batch {
            match write {
                Write::Put(key, value) => {
                    entries.insert(key, value);
                }
                Write::Delete(key) => {
                    entries.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let range = prefix_range(prefix);
        let entries = self.lock();
        let scanned = entries.range::<str, _>(bounds(&range));
        Ok(scanned.map(|(key, value)| (key.clone(), value.clone())).collect())
    }

    fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        let range = prefix_range(prefix);
        Ok(self.lock().range::<str, _>(bounds(&range)).count())
    }
}

/// The one table of a store file.
const STATE: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("state");

/// A file: an embedded ACID database (redb), one table `state` from string keys to byte values.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    db: Database,
}

impl FileStore {
    /// Opens the store file at `path`, creating it (and its `state` table) if it is missing or empty.
    ///
    /// # Errors
    /// [`StoreError::MissingDirectory`] when the file's directory does not exist, [`StoreError::Locked`] when
    /// another process has it open, [`StoreError::NotAStore`] when it holds something else, and
    /// [`StoreError::Database`] for I/O errors and damaged files.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(error) => return Err(open_error(path, error)),
        };
        let store = Self { path, db };
        // Create the table now, so that reads never meet a file without it.
        let txn = store.db.begin_write().map_err(store.error("open"))?;
        match txn.open_table(STATE) {
            Ok(_) => {}
            Err(redb::TableError::TableTypeMismatch { .. } | redb::TableError::TableIsMultimap(_)) => {
                return Err(StoreError::NotAStore {
                    path: store.path,
                    reason: "a redb database whose `state` table has other types",
                });
            }
            Err(error) => return Err(store.error("open")(error)),
        }
        txn.commit().map_err(store.error("open"))?;
        Ok(store)
    }

    /// The file this store keeps its data in.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Maps a redb error met while doing `operation` to a [`StoreError`] naming the file.
    fn error<E: Into<redb::Error>>(&self, operation: &'static str) -> impl FnOnce(E) -> StoreError + '_ {
        move |source| StoreError::Database {
            path: self.path.clone(),
            operation,
            source: Box::new(source.into()),
        }
    }

    /// Calls `each` on every entry whose key starts with `prefix`, in key order, with a range query.
    fn read_range(&self, prefix: &str, mut each: impl FnMut(&str, &[u8])) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(self.error("read"))?;
        let table = txn.open_table(STATE).map_err(self.error("read"))?;
        let range = prefix_range(prefix);
        for entry in table.range::<&str>(bounds(&range)).map_err(self.error("read"))? {
            let (key, value) = entry.map_err(self.error("read"))?;
            each(key.value(), value.value());
        }
        Ok(())
    }
}

/// Maps an error from `Database::create` to the most specific [`StoreError`].
fn open_error(path: PathBuf, error: DatabaseError) -> StoreError {
    match error {
        DatabaseError::DatabaseAlreadyOpen => StoreError::Locked { path },
        // redb: `Database::create` opens with `create(true)`, so a missing file means a missing directory.
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == io::ErrorKind::NotFound => {
            StoreError::MissingDirectory { path }
        }
        // redb: a non-empty file without redb's magic number is refused as `InvalidData`.
        DatabaseError::Storage(StorageError::Io(io)) if io.kind() == io::ErrorKind::InvalidData => {
            StoreError::NotAStore { path, reason: "it does not start with a redb database header" }
        }
        error => StoreError::Database { path, operation: "open", source: Box::new(error.into()) },
    }
}

impl Store for FileStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(self.error("read"))?;
        let table = txn.open_table(STATE).map_err(self.error("read"))?;
        let value = table.get(key).map_err(self.error("read"))?;
        Ok(value.map(|value| value.value().to_vec()))
    }

    fn apply(&self, batch: Vec<Write>) -> Result<(), StoreError> {
        // redb: commits default to `Durability::Immediate`, persisted once `commit` returns. A transaction
        // dropped without commit (an early return below) is aborted, so a failed batch leaves nothing behind.
        let txn = self.db.begin_write().map_err(self.error("write"))?;
        {
            let mut table = txn.open_table(STATE).map_err(self.error("write"))?;
            for write in &batch {
                match write {
                    Write::Put(key, value) => {
                        table.insert(key.as_str(), value.as_slice()).map_err(self.error("write"))?;
                    }
                    Write::Delete(key) => {
                        table.remove(key.as_str()).map_err(self.error("write"))?;
                    }
                }
            }
        }
        txn.commit().map_err(self.error("commit to"))
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut entries = Vec::new();
        self.read_range(prefix, |key, value| {
            entries.push((key.to_owned(), value.to_vec()));
        })?;
        Ok(entries)
    }

    fn count(&self, prefix: &str) -> Result<usize, StoreError> {
        let mut count = 0;
        self.read_range(prefix, |_, _| count += 1)?;
        Ok(count)
    }
}

/// Where the orchestrator keeps its state: `memory` or the path of a store file (`--store memory|PATH`).
///
/// A file literally named `memory` is spelled `./memory`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreSpec {
    /// A [`MemoryStore`]: state is lost on restart.
    Memory,
    /// A [`FileStore`] at this path.
    File(PathBuf),
}

impl StoreSpec {
    /// Opens the store this spec names.
    ///
    /// # Errors
    /// Those of [`FileStore::open`]; a memory store always opens.
    pub fn open(&self) -> Result<Arc<dyn Store>, StoreError> {
        Ok(match self {
            StoreSpec::Memory => Arc::new(MemoryStore::new()),
            StoreSpec::File(path) => Arc::new(FileStore::open(path)?),
        })
    }
}

impl FromStr for StoreSpec {
    type Err = StoreError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        // A blank path is a mistake (an unset variable), not a file name.
        match spec {
            "memory" => Ok(StoreSpec::Memory),
            _ if spec.trim().is_empty() => Err(StoreError::EmptySpec),
            path => Ok(StoreSpec::File(PathBuf::from(path))),
        }
    }
}

impl fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory"),
            StoreSpec::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A file path under the temp directory, unique to this process and call, removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let file = format!("ringback-store-{}-{n}-{name}.redb", std::process::id());
            Self(std::env::temp_dir().join(file))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            // The file may never have been created.
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn put(key: &str, value: &str) -> Write {
        Write::Put(key.to_owned(), value.as_bytes().to_vec())
    }

    fn delete(key: &str) -> Write {
        Write::Delete(key.to_owned())
    }

    fn keys(store: &dyn Store, prefix: &str) -> Vec<String> {
        store.scan(prefix).unwrap().into_iter().map(|(key, _)| key).collect()
    }

    // The suite every store passes, written once.

    fn gets_what_was_put_and_nothing_after_a_delete(store: &dyn Store) {
        assert_eq!(store.get("call/1").unwrap(), None);
        store.apply(vec![put("call/1", "on hold")]).unwrap();
        assert_eq!(store.get("call/1").unwrap(), Some(b"on hold".to_vec()));
        store.apply(vec![put("call/1", "bridged")]).unwrap();
        assert_eq!(store.get("call/1").unwrap(), Some(b"bridged".to_vec()));
        store.apply(vec![delete("call/1")]).unwrap();
        assert_eq!(store.get("call/1").unwrap(), None);
        store.apply(vec![delete("never/written")]).unwrap();
        store.apply(vec![]).unwrap();
        assert_eq!(store.count("").unwrap(), 0);
    }

    fn applies_puts_and_deletes_of_a_batch_together_in_order(store: &dyn Store) {
        store.apply(vec![put("a", "1"), put("b", "2"), put("c", "3")]).unwrap();
        store
            .apply(vec![delete("a"), put("b", "two"), put("d", "4"), put("e", "5"), delete("e"), delete("c")])
            .unwrap();
        let expected = vec![("b".to_owned(), b"two".to_vec()), ("d".to_owned(), b"4".to_vec())];
        assert_eq!(store.scan("").unwrap(), expected);
    }

    fn scans_exactly_the_prefix_range_in_key_order(store: &dyn Store) {
        let all = ["cal", "call", "call/", "call/1", "call/10", "call/2", "call0", "calls", "cam", "b", "d"];
        // Written out of order, so the order of the scan comes from the store.
        store.apply(all.iter().rev().map(|key| put(key, key)).collect()).unwrap();
        assert_eq!(keys(store, "call/"), ["call/", "call/1", "call/10", "call/2"]);
        assert_eq!(keys(store, "call/1"), ["call/1", "call/10"]);
        assert_eq!(keys(store, "call"), ["call", "call/", "call/1", "call/10", "call/2", "call0", "calls"]);
        assert_eq!(keys(store, "cal").len(), 8);
        assert_eq!(keys(store, "calls/"), Vec::<String>::new());
        let mut sorted = all.to_vec();
        sorted.sort_unstable();
        assert_eq!(keys(store, ""), sorted);
        let scanned = store.scan("call/10").unwrap();
        assert_eq!(scanned, [("call/10".to_owned(), b"call/10".to_vec())]);
    }

    fn scans_prefixes_that_end_in_the_last_char_or_before_a_surrogate(store: &dyn Store) {
        let max = char::MAX.to_string();
        let before_surrogates = '\u{d7ff}'.to_string();
        let writes = [
            "a".to_owned(),
            format!("a{max}"),
            format!("a{max}{max}"),
            format!("a{max}x"),
            "b".to_owned(),
            before_surrogates.clone(),
            format!("{before_surrogates}z"),
            "\u{e000}".to_owned(),
            max.clone(),
            format!("{max}!"),
        ];
        store.apply(writes.iter().map(|key| put(key, "")).collect()).unwrap();
        assert_eq!(
            keys(store, &format!("a{max}")),
            [format!("a{max}"), format!("a{max}x"), format!("a{max}{max}")]
        );
        assert_eq!(
            keys(store, &before_surrogates),
            [before_surrogates.clone(), format!("{before_surrogates}z")]
        );
        assert_eq!(keys(store, &max), [max.clone(), format!("{max}!")]);
    }

    fn counts_the_keys_under_a_prefix(store: &dyn Store) {
        store
            .apply(
                ["call/1", "call/10", "call/2", "calls", "cal", "conf/1"].map(|key| put(key, "x")).to_vec(),
            )
            .unwrap();
        assert_eq!(store.count("").unwrap(), 6);
        assert_eq!(store.count("call/").unwrap(), 3);
        assert_eq!(store.count("call/1").unwrap(), 2);
        assert_eq!(store.count("call").unwrap(), 4);
        assert_eq!(store.count("conf/").unwrap(), 1);
        assert_eq!(store.count("queue/").unwrap(), 0);
    }

    /// Runs the shared suite against one kind of store, one `#[test]` per check.
    macro_rules! store_suite {
        ($kind:ident, $new:expr) => {
            mod $kind {
                use super::*;

                #[test]
                fn gets_what_was_put_and_nothing_after_a_delete() {
                    let (_guard, store) = $new;
                    super::gets_what_was_put_and_nothing_after_a_delete(&store);
                }

                #[test]
                fn applies_puts_and_deletes_of_a_batch_together_in_order() {
                    let (_guard, store) = $new;
                    super::applies_puts_and_deletes_of_a_batch_together_in_order(&store);
                }

                #[test]
                fn scans_exactly_the_prefix_range_in_key_order() {
                    let (_guard, store) = $new;
                    super::scans_exactly_the_prefix_range_in_key_order(&store);
                }

                #[test]
                fn scans_prefixes_that_end_in_the_last_char_or_before_a_surrogate() {
                    let (_guard, store) = $new;
                    super::scans_prefixes_that_end_in_the_last_char_or_before_a_surrogate(&store);
                }

                #[test]
                fn counts_the_keys_under_a_prefix() {
                    let (_guard, store) = $new;
                    super::counts_the_keys_under_a_prefix(&store);
                }
            }
        };
    }

    store_suite!(memory, ((), MemoryStore::new()));
    store_suite!(file, {
        let path = TempPath::new("suite");
        let store = FileStore::open(&path.0).unwrap();
        // Dropped in reverse order: the store closes before its file is removed.
        (path, store)
    });

    #[test]
    fn memory_store_clones_share_their_data() {
        let store = MemoryStore::new();
        let restarted = store.clone();
        store.apply(vec![put("call/1", "on hold")]).unwrap();
        assert_eq!(restarted.get("call/1").unwrap(), Some(b"on hold".to_vec()));
    }

    #[test]
    fn memory_store_recovers_from_a_poisoned_lock() {
        let store = MemoryStore::new();
        store.apply(vec![put("call/1", "on hold")]).unwrap();
        let poisoner = store.clone();
        let panicked = std::thread::spawn(move || {
            let _guard = poisoner.entries.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(panicked.is_err());
        assert!(store.entries.is_poisoned());
        assert_eq!(store.get("call/1").unwrap(), Some(b"on hold".to_vec()));
        store.apply(vec![delete("call/1")]).unwrap();
        assert_eq!(store.count("").unwrap(), 0);
    }

    #[test]
    fn file_store_keeps_its_data_when_dropped_and_reopened() {
        let path = TempPath::new("reopen");
        let store = FileStore::open(&path.0).unwrap();
        store.apply(vec![put("call/1", "on hold"), put("call/2", "bridged")]).unwrap();
        store.apply(vec![delete("call/2")]).unwrap();
        drop(store);
        let reopened = FileStore::open(&path.0).unwrap();
        assert_eq!(reopened.scan("").unwrap(), [("call/1".to_owned(), b"on hold".to_vec())]);
    }

    #[test]
    fn file_store_refuses_a_file_that_is_not_a_database_and_names_it() {
        let path = TempPath::new("not-a-db");
        std::fs::write(&path.0, "{\"calls\": []}\n").unwrap();
        let error = FileStore::open(&path.0).unwrap_err();
        assert!(matches!(error, StoreError::NotAStore { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&path.0.display().to_string()), "{message}");
        // The file is left as it was.
        assert_eq!(std::fs::read_to_string(&path.0).unwrap(), "{\"calls\": []}\n");
    }

    #[test]
    fn file_store_refuses_a_redb_file_whose_state_table_has_other_types() {
        let path = TempPath::new("other-types");
        {
            let db = Database::create(&path.0).unwrap();
            let txn = db.begin_write().unwrap();
            let other: TableDefinition<'_, u64, u64> = TableDefinition::new("state");
            txn.open_table(other).unwrap().insert(1, 2).unwrap();
            txn.commit().unwrap();
        }
        let error = FileStore::open(&path.0).unwrap_err();
        assert!(matches!(error, StoreError::NotAStore { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.0.display().to_string()));
    }

    #[test]
    fn file_store_explains_that_the_directory_of_a_new_file_is_missing() {
        let dir = TempPath::new("missing-dir");
        let path = dir.0.join("state.redb");
        let error = FileStore::open(&path).unwrap_err();
        assert!(matches!(error, StoreError::MissingDirectory { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("directory does not exist"), "{message}");
    }

    #[test]
    fn file_store_refuses_a_file_that_is_already_open() {
        // The file lock is per open file, so a second open in this process stands in for another process.
        let path = TempPath::new("locked");
        let _first = FileStore::open(&path.0).unwrap();
        let error = FileStore::open(&path.0).unwrap_err();
        assert!(matches!(error, StoreError::Locked { .. }), "{error:?}");
        assert!(error.to_string().contains(&path.0.display().to_string()));
    }

    #[test]
    fn file_store_names_the_path_when_it_is_a_directory() {
        let dir = std::env::temp_dir();
        let error = FileStore::open(&dir).unwrap_err();
        assert!(matches!(error, StoreError::Database { operation: "open", .. }), "{error:?}");
        assert!(error.to_string().contains(&dir.display().to_string()));
    }

    #[test]
    fn store_spec_parses_memory_or_a_path_and_refuses_a_blank_one() {
        assert_eq!("memory".parse::<StoreSpec>().unwrap(), StoreSpec::Memory);
        assert_eq!("./memory".parse::<StoreSpec>().unwrap(), StoreSpec::File(PathBuf::from("./memory")));
        assert_eq!(
            "/var/lib/ringback/state.redb".parse::<StoreSpec>().unwrap().to_string(),
            "/var/lib/ringback/state.redb"
        );
        assert!(matches!("".parse::<StoreSpec>(), Err(StoreError::EmptySpec)));
        assert!(matches!("  ".parse::<StoreSpec>(), Err(StoreError::EmptySpec)));
    }

    #[test]
    fn store_spec_opens_the_store_it_names() {
        let memory = StoreSpec::Memory.open().unwrap();
        memory.apply(vec![put("k", "v")]).unwrap();
        assert_eq!(memory.count("").unwrap(), 1);
        let path = TempPath::new("spec");
        let file = StoreSpec::File(path.0.clone()).open().unwrap();
        file.apply(vec![put("k", "v")]).unwrap();
        drop(file);
        assert_eq!(FileStore::open(&path.0).unwrap().get("k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn store_errors_can_cross_threads() {
        // `anyhow` and clap's value parsers need `Send + Sync + 'static` errors.
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<StoreError>();
    }

    /// Keys from a small alphabet, so batches overwrite and delete each other's keys and prefixes overlap.
    fn key() -> impl Strategy<Value = String> {
        "[ab/1é]{0,4}"
    }

    fn write() -> impl Strategy<Value = Write> {
        prop_oneof![
            3 => (key(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(|(key, value)| Write::Put(key, value)),
            1 => key().prop_map(Write::Delete),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn file_store_agrees_with_memory_store_on_random_batches(
            batches in prop::collection::vec(prop::collection::vec(write(), 0..8), 0..8),
            prefix in key(),
        ) {
            let path = TempPath::new("model");
            let file = FileStore::open(&path.0).unwrap();
            let memory = MemoryStore::new();
            for batch in batches {
                memory.apply(batch.clone()).unwrap();
                file.apply(batch).unwrap();
                prop_assert_eq!(file.scan("").unwrap(), memory.scan("").unwrap());
            }
            // The prefix range against a plain filter, so a shared mistake in `prefix_range` cannot hide.
            let mut filtered = memory.scan("").unwrap();
            filtered.retain(|(key, _)| key.starts_with(&prefix));
            prop_assert_eq!(&memory.scan(&prefix).unwrap(), &filtered);
            prop_assert_eq!(&file.scan(&prefix).unwrap(), &filtered);
            prop_assert_eq!(file.count(&prefix).unwrap(), memory.count(&prefix).unwrap());
            drop(file);
            let reopened = FileStore::open(&path.0).unwrap();
            prop_assert_eq!(reopened.scan("").unwrap(), memory.scan("").unwrap());
        }
    }
}

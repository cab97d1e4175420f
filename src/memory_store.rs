//! An in-memory [`Store`]: recordings kept in memory instead of the spool,
//! for tests, fuzzing and benchmarks. It counts every byte it holds so a test
//! can check that memory stays bounded, and it can simulate a full disk with
//! a byte quota.

use crate::call::metadata::Metadata;
use crate::recorder::Store;
use std::io::{self, Cursor};

/// One committed recording.
#[derive(Debug, Clone)]
pub struct StoredRecording {
    /// The recording id.
    pub id: String,
    /// The WAV bytes (empty when the store does not keep audio).
    pub wav: Vec<u8>,
    /// Length of the WAV as written, bytes.
    pub wav_len: u64,
    /// Its final metadata.
    pub metadata: Metadata,
}

/// Recordings in memory; see the module doc.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Committed recordings, in commit order.
    pub recordings: Vec<StoredRecording>,
    keep_audio: bool,
    quota: Option<u64>,
    committed_bytes: u64,
    created: u64,
    discarded: u64,
    refused: u64,
}

impl MemoryStore {
    /// A store that keeps the audio of every committed recording.
    pub fn new() -> Self {
        MemoryStore {
            keep_audio: true,
            ..MemoryStore::default()
        }
    }

    /// A store that keeps only metadata and lengths (bounded memory for
    /// long fuzzing runs).
    pub fn metadata_only() -> Self {
        MemoryStore::default()
    }

    /// Simulates a disk of `bytes`: once committed recordings reach it,
    /// [`Store::create`] and [`Store::commit`] fail with `StorageFull`.
    pub fn with_quota(mut self, bytes: u64) -> Self {
        self.quota = Some(bytes);
        self
    }

    /// Bytes of committed WAVs so far.
    pub fn committed_bytes(&self) -> u64 {
        self.committed_bytes
    }

    /// Recordings created (started).
    pub fn created(&self) -> u64 {
        self.created
    }

    /// Recordings thrown away.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Creates and commits refused because of the quota.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    fn full(&self, extra: u64) -> bool {
        self.quota
            .is_some_and(|q| self.committed_bytes.saturating_add(extra) > q)
    }
}

impl Store for MemoryStore {
    type Output = Cursor<Vec<u8>>;

    fn create(&mut self, _id: &str, _provisional: &Metadata) -> io::Result<Self::Output> {
        if self.quota.is_some_and(|q| self.committed_bytes >= q) {
            self.refused += 1;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "memory store quota reached",
            ));
        }
        self.created += 1;
        Ok(Cursor::new(Vec::new()))
    }

    fn commit(&mut self, id: &str, wav: Self::Output, metadata: &Metadata) -> io::Result<()> {
        let bytes = wav.into_inner();
        let len = bytes.len() as u64;
        if self.full(len) {
            self.refused += 1;
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "memory store quota reached",
            ));
        }
        self.committed_bytes = self.committed_bytes.saturating_add(len);
        self.recordings.push(StoredRecording {
            id: id.to_string(),
            wav: if self.keep_audio { bytes } else { Vec::new() },
            wav_len: len,
            metadata: metadata.clone(),
        });
        Ok(())
    }

    fn discard(&mut self, _id: &str, _wav: Self::Output) {
        self.discarded += 1;
    }
}

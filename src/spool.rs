//! The durable spool of finished recordings. This doc is its on-disk format.
//!
//! ```text
//! <dir>/tmp/<id>.wav.part    a recording being written (WAV header sizes
//!                            are zero until it is finished)
//! <dir>/tmp/<id>.meta.json   metadata as known at the answer (duration 0),
//!                            for recovering a recording cut by a crash
//! <dir>/tmp/<id>.json.part   its final metadata, being written at finish
//! <dir>/ready/<id>.wav       a finished recording: complete WAV, fsynced
//! <dir>/ready/<id>.json      its metadata: exactly the object to upload
//! ```
//!
//! Invariants:
//! - A file appears in `ready/` only complete: it is written under `tmp/`,
//!   fsynced, then renamed (rename is atomic within one filesystem).
//! - The WAV is renamed into `ready/` before its JSON, and the directory is
//!   fsynced after each rename; so a `ready/<id>.json` always has its WAV
//!   beside it, and a reader (the uploader) takes a recording by its JSON.
//! - `<id>` is unique and safe as a file name: `YYYYMMDDTHHMMSS.mmmZ-<hash>`
//!   of the answer time and a hash of the Call-ID, To-tag and answer time.

use crate::call::Metadata;
use crate::recorder::Store;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    tmp: PathBuf,
    ready: PathBuf,
}

impl Spool {
    /// Opens (creating if needed) a spool directory and checks it is writable.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        let tmp = dir.join("tmp");
        let ready = dir.join("ready");
        for sub in [&tmp, &ready] {
            fs::create_dir_all(sub).map_err(|e| annotate(e, sub))?;
        }
        let probe = tmp.join(".write-test");
        File::create(&probe).map_err(|e| annotate(e, &tmp))?;
        fs::remove_file(&probe)?;
        Ok(Spool {
            dir: dir.to_owned(),
            tmp,
            ready,
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/ready`.
    pub fn ready_dir(&self) -> &Path {
        &self.ready
    }

    /// Where a finished recording's WAV lives.
    pub fn ready_wav(&self, id: &str) -> PathBuf {
        self.ready.join(format!("{id}.wav"))
    }

    /// Where a finished recording's metadata lives.
    pub fn ready_json(&self, id: &str) -> PathBuf {
        self.ready.join(format!("{id}.json"))
    }

    fn part_wav(&self, id: &str) -> PathBuf {
        self.tmp.join(format!("{id}.wav.part"))
    }

    fn provisional_json(&self, id: &str) -> PathBuf {
        self.tmp.join(format!("{id}.meta.json"))
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Store for Spool {
    type Output = File;

    fn create(&mut self, id: &str, provisional: &Metadata) -> io::Result<File> {
        let path = self.part_wav(id);
        let wav = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| annotate(e, &path))?;
        let meta_path = self.provisional_json(id);
        let mut meta = File::create(&meta_path).map_err(|e| annotate(e, &meta_path))?;
        serde_json::to_writer_pretty(&mut meta, provisional)?;
        meta.sync_all()?;
        sync_dir(&self.tmp)?;
        Ok(wav)
    }

    fn commit(&mut self, id: &str, wav: File, metadata: &Metadata) -> io::Result<()> {
        wav.sync_all()?;
        drop(wav);
        let part_json = self.tmp.join(format!("{id}.json.part"));
        let mut json = File::create(&part_json).map_err(|e| annotate(e, &part_json))?;
        serde_json::to_writer_pretty(&mut json, metadata)?;
        json.write_all(b"\n")?;
        json.sync_all()?;
        drop(json);
        fs::rename(self.part_wav(id), self.ready_wav(id))?;
        sync_dir(&self.ready)?;
        fs::rename(&part_json, self.ready_json(id))?;
        sync_dir(&self.ready)?;
        fs::remove_file(self.provisional_json(id))?;
        sync_dir(&self.tmp)
    }

    fn discard(&mut self, id: &str, wav: File) {
        drop(wav);
        // Nothing else refers to the partial file; failing to remove it only
        // leaves a stray file in tmp/.
        let _ = fs::remove_file(self.part_wav(id));
        let _ = fs::remove_file(self.provisional_json(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::metadata::{LocalParty, RemoteParty};

    fn meta() -> Metadata {
        Metadata {
            start_date_time: "2026-01-01T00:00:00.000000Z".into(),
            duration: "PT1S".into(),
            direction: 1,
            local_party: LocalParty {
                username: "u".into(),
                phone_number: "1".into(),
            },
            remote_party: RemoteParty {
                phone_number: "2".into(),
            },
            pbx_call_id: "c".into(),
            notes: String::new(),
            preserved: false,
        }
    }

    #[test]
    fn commit_moves_wav_then_json_into_ready() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let mut wav = spool.create("rec1", &meta()).unwrap();
        wav.write_all(b"RIFF....").unwrap();
        assert!(!spool.ready_wav("rec1").exists());
        spool.commit("rec1", wav, &meta()).unwrap();
        assert_eq!(fs::read(spool.ready_wav("rec1")).unwrap(), b"RIFF....");
        let json: Metadata =
            serde_json::from_slice(&fs::read(spool.ready_json("rec1")).unwrap()).unwrap();
        assert_eq!(json, meta());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn discard_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let wav = spool.create("rec2", &meta()).unwrap();
        spool.discard("rec2", wav);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir.path().join("ready")).unwrap().count(), 0);
    }

    #[test]
    fn ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path()).unwrap();
        let _wav = spool.create("rec3", &meta()).unwrap();
        assert!(spool.create("rec3", &meta()).is_err());
    }
}

//! Capture files read on a thread of their own.
//!
//! Reading a capture (the kernel's copy out of the page cache, then the pcap
//! parser) is about a tenth of what `taprec replay` costs with thousands of
//! calls. A [`ReadAhead`] does that on a
//! second thread: it opens the files in order, copies their frames into
//! [`FrameBatch`]es and hands the full batches over a short bounded queue,
//! while the caller records the batch before. Batches go back to the reader
//! to be refilled ([`ReadAhead::recycle`]), so nothing is allocated once the
//! few batches in flight have grown to size. Memory is bounded by the queue:
//! at most [`BATCHES_IN_FLIGHT`] batches exist at once.

use super::batch::FrameBatch;
use super::file::FileReader;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Batches that exist at once: one being filled, the rest queued or being
/// recorded.
pub const BATCHES_IN_FLIGHT: usize = 4;

/// What the reading thread reports, in file order.
#[derive(Debug)]
pub enum ReadEvent {
    /// Frames, in capture order.
    Batch(FrameBatch),
    /// A file could not be opened; nothing after it is read.
    OpenFailed {
        /// The file.
        path: PathBuf,
        /// Why, for people.
        error: String,
    },
    /// A file was read to its end (or to where it is damaged).
    FileDone {
        /// The file.
        path: PathBuf,
        /// Frames read from it.
        frames: u64,
        /// Where and why reading stopped early, if it did.
        error: Option<String>,
    },
}

/// A thread reading capture files ahead of the recorder; see the module doc.
pub struct ReadAhead {
    events: Receiver<ReadEvent>,
    recycle: SyncSender<FrameBatch>,
    thread: Option<JoinHandle<()>>,
}

impl ReadAhead {
    /// Starts reading `paths` in order, `frames_per_batch` frames a batch.
    pub fn spawn(paths: Vec<PathBuf>, frames_per_batch: usize) -> std::io::Result<ReadAhead> {
        let frames_per_batch = frames_per_batch.max(1);
        let (events_tx, events) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let (recycle, recycled) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
        for _ in 0..BATCHES_IN_FLIGHT {
            // Cannot fail: the queue holds exactly this many.
            let _ = recycle.try_send(FrameBatch::with_capacity(
                frames_per_batch,
                frames_per_batch * 512,
            ));
        }
        let thread = std::thread::Builder::new()
            .name("taprec-read".into())
            .spawn(move || read_files(paths, frames_per_batch, &events_tx, &recycled))?;
        Ok(ReadAhead {
            events,
            recycle,
            thread: Some(thread),
        })
    }

    /// The next event; `None` once every file has been read.
    pub fn next_event(&mut self) -> Option<ReadEvent> {
        self.events.recv().ok()
    }

    /// Gives a batch back to be refilled.
    pub fn recycle(&self, mut batch: FrameBatch) {
        batch.clear();
        let _ = self.recycle.try_send(batch);
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Stop the reader: with both queues gone, its next wait for a batch
        // or send of one fails.
        let (_, closed) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.events, closed));
        let (unused, _) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.recycle, unused));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reading thread: every file in order, until done or nobody listens.
fn read_files(
    paths: Vec<PathBuf>,
    frames_per_batch: usize,
    events: &SyncSender<ReadEvent>,
    recycled: &Receiver<FrameBatch>,
) {
    let Ok(mut batch) = recycled.recv() else {
        return;
    };
    // Sends the batch being filled and takes an empty one in its place;
    // false once the owner has gone away.
    let hand_over = |batch: &mut FrameBatch| {
        let Ok(empty) = recycled.recv() else {
            return false;
        };
        let full = std::mem::replace(batch, empty);
        events.send(ReadEvent::Batch(full)).is_ok()
    };
    for path in paths {
        let mut reader = match FileReader::open(&path) {
            Ok(reader) => reader,
            Err(e) => {
                let _ = events.send(ReadEvent::OpenFailed {
                    path,
                    error: e.to_string(),
                });
                return;
            }
        };
        let error = loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    batch.push(&frame);
                    if batch.len() >= frames_per_batch && !hand_over(&mut batch) {
                        return;
                    }
                }
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
        };
        // A file's frames are all handed over before its end is reported.
        if !batch.is_empty() && !hand_over(&mut batch) {
            return;
        }
        let done = ReadEvent::FileDone {
            path,
            frames: reader.frames_read(),
            error,
        };
        if events.send(done).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap (microsecond, little-endian, Ethernet) of `n` frames whose
    /// first byte is their number.
    fn pcap(n: u8) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for i in 0..n {
            let data = [i; 60];
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&u32::from(i).to_le_bytes());
            out.extend_from_slice(&60u32.to_le_bytes());
            out.extend_from_slice(&60u32.to_le_bytes());
            out.extend_from_slice(&data);
        }
        out
    }

    #[test]
    fn frames_arrive_in_order_across_files_with_their_ends() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pcap");
        let b = dir.path().join("b.pcap");
        std::fs::write(&a, pcap(10)).unwrap();
        let mut damaged = pcap(5);
        damaged.truncate(damaged.len() - 7);
        std::fs::write(&b, damaged).unwrap();
        let missing = dir.path().join("missing.pcap");
        let mut ahead =
            ReadAhead::spawn(vec![a.clone(), b.clone(), missing.clone(), a.clone()], 3).unwrap();
        let mut seen = Vec::new();
        let mut ends = Vec::new();
        while let Some(event) = ahead.next_event() {
            match event {
                ReadEvent::Batch(batch) => {
                    assert!(batch.len() <= 3);
                    seen.extend(batch.iter().map(|f| f.data[0]));
                    ahead.recycle(batch);
                }
                ReadEvent::FileDone {
                    path,
                    frames,
                    error,
                } => ends.push((path, frames, error.is_some(), seen.len())),
                ReadEvent::OpenFailed { path, .. } => ends.push((path, 0, true, seen.len())),
            }
        }
        let expected: Vec<u8> = (0..10).chain(0..4).collect();
        assert_eq!(seen, expected);
        assert_eq!(
            ends,
            vec![(a, 10, false, 10), (b, 4, true, 14), (missing, 0, true, 14),]
        );
    }

    #[test]
    fn dropping_it_early_stops_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.pcap");
        std::fs::write(&a, pcap(200)).unwrap();
        let mut ahead = ReadAhead::spawn(vec![a.clone(), a.clone(), a], 2).unwrap();
        assert!(matches!(ahead.next_event(), Some(ReadEvent::Batch(_))));
        drop(ahead); // joins the thread: must not hang
    }
}

//! A [`Store`] whose recordings are written and committed on a thread of
//! their own.
//!
//! Copying a recording's audio into the page cache, then fsyncing and
//! renaming its files, is about a third of what `taprec replay` costs (the
//! kernel allocates and fills a page for every 4 KiB of WAV). [`WriteBehind`]
//! wraps another store and moves that work to a writer thread, beside the
//! packet path instead of inside it:
//!
//! - recordings are created by the wrapped store on the caller's thread, so
//!   a refusal (quota, full disk) is known at once, as before, but without
//!   the fsyncs that make a creation durable
//!   ([`Store::create_unsynced`]): the writer makes each staging buffer's
//!   creations durable together, before its writes
//!   ([`Store::sync_creations`]: one sync of the spool's `tmp/` for all);
//! - writes, and the creations and commits among them, are gathered in a
//!   staging buffer and handed over [`STAGING_BYTES`] at a time (one
//!   hand-over, and at most one wake-up of the writer, per megabyte of
//!   audio, not one per operation), then done in order by the writer;
//! - a commit is queued behind the recording's writes and done by the writer
//!   with its own clone of the wrapped store; its result comes back through
//!   [`Store::finished_commits`], and a recording whose write failed (a full
//!   disk) fails its commit with that write's error, exactly as if it had
//!   been written in place. The recorder reports a call's outcome once its
//!   commit has finished ([`Store::commits_later`]). The commits of one
//!   staging buffer are done together, after its writes
//!   ([`Store::commit_all`]: the spool syncs each directory once for all);
//! - staged audio is handed over at the latest when the recorder asks for
//!   finished commits (about once a second of capture time), so a crash
//!   loses about a second more of a call than when writing in place.
//!
//! Memory is bounded: [`STAGING_BUFFERS`] staging buffers circulate, each of
//! at most [`STAGING_BYTES`] of audio and [`STAGING_OPS`] operations; when
//! all are full the caller waits for the writer.

use crate::call::metadata::Metadata;
use crate::media::wav::AudioSink;
use crate::recorder::Store;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Seek, SeekFrom, Write};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

/// Bytes of audio gathered before they are handed to the writer at once.
pub const STAGING_BYTES: usize = 1 << 20;

/// Operations (writes, creations, commits) gathered before they are handed
/// to the writer at once, whatever their bytes.
pub const STAGING_OPS: usize = 8192;

/// Staging buffers in circulation (one filling, the others queued or being
/// written): the staged audio never exceeds this many times
/// [`STAGING_BYTES`].
pub const STAGING_BUFFERS: usize = 4;

/// One operation for the writer thread.
enum Op<W> {
    /// A new recording's output (and id), written by the writer from now
    /// on; its creation is made durable first.
    Adopt(u64, W, String),
    /// Write the next `len` bytes of the staged data at an offset.
    Write(u64, u64, usize),
    /// Commit the recording (id, final metadata) after its writes.
    Commit(u64, String, Box<Metadata>),
    /// Throw the recording away.
    Discard(u64, String),
}

/// Operations gathered on the caller's thread, done in order by the writer;
/// the bytes of the writes one after another in `data[..used]`. `data` is
/// [`STAGING_BYTES`] long from the start and reused: the timeline
/// interleaves its samples straight into it ([`AudioSink::write_with`]).
struct Staged<W> {
    data: Box<[u8]>,
    used: usize,
    ops: Vec<Op<W>>,
}

impl<W> Default for Staged<W> {
    fn default() -> Self {
        Staged {
            data: vec![0; STAGING_BYTES].into_boxed_slice(),
            used: 0,
            ops: Vec::new(),
        }
    }
}

/// The caller's side of the queue to the writer, shared by the store and
/// every recording's [`BehindWav`]: the staging buffer being filled.
/// Nothing reaches the writer (nor wakes it) but whole staging buffers.
struct Queue<W> {
    /// `None` once the store is gone: the writer has been told to stop.
    full: Option<SyncSender<Staged<W>>>,
    staged: Staged<W>,
    /// Emptied buffers coming back from the writer.
    spare: Receiver<Staged<W>>,
}

impl<W> Queue<W> {
    /// Hands what is staged to the writer.
    fn hand_over(&mut self) -> io::Result<()> {
        if self.staged.ops.is_empty() {
            return Ok(());
        }
        let full = self.full.as_ref().ok_or_else(stopped)?;
        let spare = self.spare.recv().map_err(|_| stopped())?;
        let staged = std::mem::replace(&mut self.staged, spare);
        full.send(staged).map_err(|_| stopped())
    }

    /// Stages one operation, with `bytes` (at most [`STAGING_BYTES`]) for
    /// a write.
    fn stage(&mut self, op: Op<W>, bytes: &[u8]) -> io::Result<()> {
        self.stage_with(op, bytes.len(), &mut |room| {
            room.copy_from_slice(bytes);
            Ok(())
        })
    }

    /// Stages one operation with `len` bytes (at most [`STAGING_BYTES`])
    /// that `fill` puts in the room it is lent; nothing is staged if it
    /// fails.
    fn stage_with(
        &mut self,
        op: Op<W>,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.full.is_none() {
            return Err(stopped());
        }
        if self.staged.used + len > self.staged.data.len() || self.staged.ops.len() >= STAGING_OPS {
            self.hand_over()?;
        }
        let end = self.staged.used + len;
        let room = self
            .staged
            .data
            .get_mut(self.staged.used..end)
            .ok_or_else(|| io::Error::other("write larger than a staging buffer"))?;
        fill(room)?;
        self.staged.used = end;
        self.staged.ops.push(op);
        Ok(())
    }
}

type Shared<W> = Rc<RefCell<Queue<W>>>;

/// Wraps a store so that recordings are written and committed on a writer
/// thread; see the module doc.
pub struct WriteBehind<S: Store> {
    inner: S,
    queue: Option<Shared<S::Output>>,
    results: Receiver<(String, io::Result<()>)>,
    /// Commits queued whose result has not been taken yet.
    queued: usize,
    thread: Option<JoinHandle<()>>,
    next: u64,
}

impl<S> WriteBehind<S>
where
    S: Store + Clone + Send + 'static,
    S::Output: Send + 'static,
{
    /// Starts the writer thread in front of `inner` (which it clones to
    /// commit).
    pub fn new(inner: S) -> io::Result<Self> {
        let (full, queue) = mpsc::sync_channel(STAGING_BUFFERS);
        let (recycle, spare) = mpsc::sync_channel(STAGING_BUFFERS);
        for _ in 1..STAGING_BUFFERS {
            let _ = recycle.try_send(Staged::default());
        }
        let (done, results) = mpsc::channel();
        let store = inner.clone();
        let thread = std::thread::Builder::new()
            .name("taprec-write".into())
            .spawn(move || write_all(store, queue, &recycle, &done))?;
        Ok(WriteBehind {
            inner,
            queue: Some(Rc::new(RefCell::new(Queue {
                full: Some(full),
                staged: Staged::default(),
                spare,
            }))),
            results,
            queued: 0,
            thread: Some(thread),
            next: 0,
        })
    }
}

impl<S: Store> WriteBehind<S> {
    /// The wrapped store (the caller's clone).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn queue(&self) -> io::Result<&Shared<S::Output>> {
        self.queue.as_ref().ok_or_else(stopped)
    }

    fn stage(&self, op: Op<S::Output>) -> io::Result<()> {
        self.queue()?.borrow_mut().stage(op, &[])
    }
}

impl<S: Store> Drop for WriteBehind<S> {
    fn drop(&mut self) {
        // Whatever is staged is done, then the writer ends; recordings still
        // open are dropped with it (their later writes fail).
        if let Some(queue) = self.queue.take() {
            let mut queue = queue.borrow_mut();
            let _ = queue.hand_over();
            queue.full = None;
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn stopped() -> io::Error {
    io::Error::other("the writer thread stopped")
}

impl<S: Store> Store for WriteBehind<S> {
    type Output = BehindWav<S::Output>;

    fn create(&mut self, id: &str, provisional: &Metadata) -> io::Result<Self::Output> {
        let queue = Rc::clone(self.queue()?);
        if queue.borrow().full.is_none() {
            return Err(stopped());
        }
        // Refusals are known here; the fsyncs are the writer's.
        let out = self.inner.create_unsynced(id, provisional)?;
        self.next += 1;
        let slot = self.next;
        // Cannot fail: the writer is known to be there.
        queue
            .borrow_mut()
            .stage(Op::Adopt(slot, out, id.to_string()), &[])?;
        Ok(BehindWav {
            slot,
            queue,
            pos: 0,
            len: 0,
        })
    }

    fn commit(&mut self, id: &str, wav: Self::Output, metadata: &Metadata) -> io::Result<()> {
        self.stage(Op::Commit(
            wav.slot,
            id.to_string(),
            Box::new(metadata.clone()),
        ))?;
        self.queued += 1;
        Ok(())
    }

    fn discard(&mut self, id: &str, wav: Self::Output) {
        let _ = self.stage(Op::Discard(wav.slot, id.to_string()));
    }

    fn commits_later(&self) -> bool {
        true
    }

    fn finished_commits(&mut self, wait: bool) -> Vec<(String, io::Result<()>)> {
        // Called about once a second of capture time: nothing staged waits
        // longer than that for the writer.
        if let Ok(queue) = self.queue() {
            let _ = queue.borrow_mut().hand_over();
        }
        let mut finished = Vec::new();
        if wait {
            while self.queued > 0 {
                match self.results.recv() {
                    Ok(result) => {
                        self.queued -= 1;
                        finished.push(result);
                    }
                    Err(_) => break,
                }
            }
        }
        while let Ok(result) = self.results.try_recv() {
            self.queued = self.queued.saturating_sub(1);
            finished.push(result);
        }
        finished
    }
}

/// A recording's output as the recorder writes it: positions are tracked
/// here, the bytes are staged for the writer thread.
pub struct BehindWav<W> {
    slot: u64,
    queue: Shared<W>,
    pos: u64,
    len: u64,
}

impl<W> Write for BehindWav<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // At most one staging buffer at a time (`write_all` goes on).
        let buf = buf.get(..STAGING_BYTES).unwrap_or(buf);
        if buf.is_empty() {
            return Ok(0);
        }
        self.queue
            .borrow_mut()
            .stage(Op::Write(self.slot, self.pos, buf.len()), buf)?;
        self.pos += buf.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W> AudioSink for BehindWav<W> {
    /// Lends the room in the staging buffer itself: the samples are
    /// produced where the writer thread will take them from.
    fn write_with(
        &mut self,
        len: usize,
        fill: &mut dyn FnMut(&mut [u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if len > STAGING_BYTES {
            // Larger than a staging buffer: through a buffer, in pieces.
            let mut buf = vec![0; len];
            fill(&mut buf)?;
            return self.write_all(&buf);
        }
        if len > 0 {
            self.queue
                .borrow_mut()
                .stage_with(Op::Write(self.slot, self.pos, len), len, fill)?;
        }
        self.pos += len as u64;
        self.len = self.len.max(self.pos);
        Ok(())
    }
}

impl<W> Seek for BehindWav<W> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = crate::spool::seek_target(self.pos, self.len, to)?;
        Ok(self.pos)
    }
}

/// The writer thread: does the operations in order until the store is gone.
/// After a recording's first failed write its later writes are skipped, and
/// its commit fails with that error (the partial file stays where the
/// wrapped store left it, as when a write fails in place).
fn write_all<S: Store>(
    mut store: S,
    queue: Receiver<Staged<S::Output>>,
    recycle: &SyncSender<Staged<S::Output>>,
    done: &Sender<(String, io::Result<()>)>,
) {
    let mut open: HashMap<u64, (S::Output, io::Result<()>)> = HashMap::new();
    let mut commits = Vec::new();
    for mut staged in queue {
        // The buffer's creations made durable together, before any of its
        // writes (the spool syncs `tmp/` once for all of them). One that
        // cannot be synced is still written: only a crash before its commit
        // could lose its provisional metadata.
        let created: Vec<String> = staged
            .ops
            .iter_mut()
            .filter_map(|op| match op {
                Op::Adopt(_, _, id) => Some(std::mem::take(id)),
                _ => None,
            })
            .collect();
        crate::spool::warn_unsynced_creations(&created, store.sync_creations(&created));
        let mut data = staged.data.get(..staged.used).unwrap_or_default();
        for op in staged.ops.drain(..) {
            match op {
                Op::Adopt(slot, out, _) => {
                    open.insert(slot, (out, Ok(())));
                }
                Op::Write(slot, pos, len) => {
                    let (bytes, rest) = data.split_at(len.min(data.len()));
                    data = rest;
                    if let Some((out, state @ Ok(()))) = open.get_mut(&slot) {
                        *state = out
                            .seek(SeekFrom::Start(pos))
                            .and_then(|_| out.write_all(bytes));
                    }
                }
                Op::Commit(slot, id, metadata) => match open.remove(&slot) {
                    // Its writes are all done (they come before it): it is
                    // committed with the others of this buffer, below.
                    Some((out, Ok(()))) => commits.push((id, out, *metadata)),
                    Some((_, Err(e))) => {
                        let _ = done.send((id, Err(e)));
                    }
                    None => {
                        let error = io::Error::other("recording unknown to the writer thread");
                        let _ = done.send((id, Err(error)));
                    }
                },
                Op::Discard(slot, id) => {
                    if let Some((out, _)) = open.remove(&slot) {
                        store.discard(&id, out);
                    }
                }
            }
        }
        // The buffer's commits together: the store may make them durable
        // at once (one sync of each spool directory for all of them).
        for result in store.commit_all(std::mem::take(&mut commits)) {
            let _ = done.send(result);
        }
        staged.used = 0;
        let _ = recycle.try_send(staged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::tests::meta;
    use std::io::Cursor;
    use std::sync::{Arc, Mutex};

    /// What a [`Kept`] store saw, shared by its clones.
    #[derive(Default)]
    struct Seen {
        committed: Vec<(String, Vec<u8>)>,
        discarded: Vec<String>,
        /// Creations and their syncs, with the thread that did them.
        created: Vec<String>,
    }

    /// "caller" or "writer": the thread running this.
    fn thread() -> &'static str {
        match std::thread::current().name() {
            Some("taprec-write") => "writer",
            _ => "caller",
        }
    }

    /// A store that keeps what is committed; its outputs fail every write
    /// beyond `room` bytes, like a full disk.
    #[derive(Clone)]
    struct Kept {
        seen: Arc<Mutex<Seen>>,
        room: usize,
    }

    impl Kept {
        fn new(room: usize) -> Self {
            Kept {
                seen: Arc::default(),
                room,
            }
        }

        /// A new recording's output, noting `line` among the creations.
        fn output(&self, line: String) -> Limited {
            self.seen.lock().unwrap().created.push(line);
            Limited {
                room: self.room,
                data: Cursor::new(Vec::new()),
            }
        }
    }

    struct Limited {
        room: usize,
        data: Cursor<Vec<u8>>,
    }

    impl Write for Limited {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.data.position() as usize + buf.len() > self.room {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            self.data.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl AudioSink for Limited {}

    impl Seek for Limited {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.data.seek(to)
        }
    }

    impl Store for Kept {
        type Output = Limited;
        fn create(&mut self, id: &str, _: &Metadata) -> io::Result<Limited> {
            Ok(self.output(format!("{id} created and synced by the {}", thread())))
        }
        fn create_unsynced(&mut self, id: &str, _: &Metadata) -> io::Result<Limited> {
            Ok(self.output(format!("{id} created by the {}", thread())))
        }
        fn sync_creations(&mut self, ids: &[String]) -> Vec<io::Result<()>> {
            let line = format!("{} synced by the {}", ids.join(" "), thread());
            self.seen.lock().unwrap().created.push(line);
            ids.iter()
                .map(|id| match id.as_str() {
                    "unsyncable" => Err(io::Error::other("cannot sync")),
                    _ => Ok(()),
                })
                .collect()
        }
        fn commit(&mut self, id: &str, wav: Limited, _: &Metadata) -> io::Result<()> {
            let mut seen = self.seen.lock().unwrap();
            seen.committed.push((id.into(), wav.data.into_inner()));
            Ok(())
        }
        fn discard(&mut self, id: &str, _: Limited) {
            self.seen.lock().unwrap().discarded.push(id.into());
        }
    }

    #[test]
    fn writes_seeks_and_commits_land_as_done_in_place() {
        let kept = Kept::new(1 << 20);
        let mut store = WriteBehind::new(kept.clone()).unwrap();
        assert!(store.commits_later());
        let mut a = store.create("a", &meta()).unwrap();
        let mut b = store.create("b", &meta()).unwrap();
        a.write_all(b"0123456789").unwrap();
        b.write_all(b"other").unwrap();
        a.seek(SeekFrom::Start(2)).unwrap();
        a.write_all(b"ab").unwrap();
        a.seek(SeekFrom::End(0)).unwrap();
        a.write_all(b"!").unwrap();
        store.commit("a", a, &meta()).unwrap();
        store.discard("b", b);
        let finished = store.finished_commits(true);
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0].0, "a");
        assert!(finished[0].1.is_ok());
        assert!(store.finished_commits(true).is_empty());
        drop(store);
        let seen = kept.seen.lock().unwrap();
        assert_eq!(
            seen.committed,
            vec![("a".to_string(), b"01ab456789!".to_vec())]
        );
        assert_eq!(seen.discarded, vec!["b".to_string()]);
    }

    #[test]
    fn creations_are_synced_by_the_writer_together_before_their_writes() {
        let kept = Kept::new(1 << 20);
        let mut store = WriteBehind::new(kept.clone()).unwrap();
        let mut recordings = Vec::new();
        for id in ["a", "unsyncable", "b"] {
            let mut wav = store.create(id, &meta()).unwrap();
            wav.write_all(id.as_bytes()).unwrap();
            recordings.push((id, wav));
        }
        for (id, wav) in recordings {
            store.commit(id, wav, &meta()).unwrap();
        }
        let finished = store.finished_commits(true);
        // One that could not be synced is still recorded (only a crash
        // could have lost its provisional metadata).
        assert!(finished.iter().all(|(_, r)| r.is_ok()), "{finished:?}");
        let c = store.create("c", &meta()).unwrap();
        store.commit("c", c, &meta()).unwrap();
        assert_eq!(store.finished_commits(true).len(), 1);
        drop(store);
        let seen = kept.seen.lock().unwrap();
        assert_eq!(
            seen.created,
            [
                "a created by the caller",
                "unsyncable created by the caller",
                "b created by the caller",
                "a unsyncable b synced by the writer",
                "c created by the caller",
                "c synced by the writer",
            ]
        );
        let committed: Vec<_> = seen
            .committed
            .iter()
            .map(|(id, d)| (id.as_str(), d.as_slice()))
            .collect();
        assert_eq!(
            committed,
            [
                ("a", &b"a"[..]),
                ("unsyncable", b"unsyncable"),
                ("b", b"b"),
                ("c", b"")
            ]
        );
    }

    #[test]
    fn a_failed_write_fails_the_commit_with_its_error() {
        let kept = Kept::new(8);
        let mut store = WriteBehind::new(kept.clone()).unwrap();
        let mut full = store.create("full", &meta()).unwrap();
        // Accepted at once: the writes happen later, on the writer thread.
        full.write_all(b"1234").unwrap();
        full.write_all(b"5678").unwrap();
        full.write_all(b"9").unwrap();
        full.write_all(b"more").unwrap();
        let mut fine = store.create("fine", &meta()).unwrap();
        fine.write_all(b"fine").unwrap();
        store.commit("full", full, &meta()).unwrap();
        store.commit("fine", fine, &meta()).unwrap();
        let finished = store.finished_commits(true);
        let result = |id: &str| &finished.iter().find(|(i, _)| i == id).unwrap().1;
        assert_eq!(
            result("full").as_ref().unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert!(result("fine").is_ok());
        drop(store);
        let seen = kept.seen.lock().unwrap();
        assert_eq!(seen.committed, vec![("fine".to_string(), b"fine".to_vec())]);
    }

    #[test]
    fn more_audio_than_the_staging_buffers_hold_is_written_whole() {
        let kept = Kept::new(usize::MAX);
        let mut store = WriteBehind::new(kept.clone()).unwrap();
        let mut wavs: Vec<_> = (0..3)
            .map(|i| store.create(&format!("r{i}"), &meta()).unwrap())
            .collect();
        let chunk = vec![7u8; 10_000];
        let rounds = STAGING_BYTES * STAGING_BUFFERS * 2 / (3 * chunk.len());
        for _ in 0..rounds {
            for wav in &mut wavs {
                wav.write_all(&chunk).unwrap();
            }
        }
        for (i, wav) in wavs.into_iter().enumerate() {
            store.commit(&format!("r{i}"), wav, &meta()).unwrap();
        }
        assert!(store.finished_commits(true).iter().all(|(_, r)| r.is_ok()));
        drop(store);
        let seen = kept.seen.lock().unwrap();
        assert_eq!(seen.committed.len(), 3);
        for (_, data) in &seen.committed {
            assert_eq!(data.len(), rounds * chunk.len());
            assert!(data.iter().all(|&b| b == 7));
        }
    }

    #[test]
    fn bytes_produced_in_place_land_like_written_ones() {
        let kept = Kept::new(usize::MAX);
        let mut store = WriteBehind::new(kept.clone()).unwrap();
        let mut lent = store.create("lent", &meta()).unwrap();
        let mut copied = store.create("copied", &meta()).unwrap();
        let block = |round: usize, len: usize| -> Vec<u8> {
            (0..len).map(|k| (round * 31 + k * 7) as u8).collect()
        };
        // Enough rounds, of lengths that do not divide the staging buffer,
        // for many hand-overs; one write larger than a staging buffer.
        let lens = [16_384, 12_290, 1, STAGING_BYTES + 5, 16_384];
        for round in 0..200 {
            let len = lens[round % lens.len()];
            let want = block(round, len);
            lent.write_with(len, &mut |room| {
                assert_eq!(room.len(), len);
                room.copy_from_slice(&want);
                Ok(())
            })
            .unwrap();
            copied.write_all(&want).unwrap();
        }
        // A failing producer stages nothing, and the recording goes on.
        let failed = lent.write_with(100, &mut |room| {
            room.fill(0xEE);
            Err(io::Error::other("no samples"))
        });
        assert!(failed.is_err());
        lent.write_with(3, &mut |room| {
            room.copy_from_slice(b"end");
            Ok(())
        })
        .unwrap();
        copied.write_all(b"end").unwrap();
        store.commit("lent", lent, &meta()).unwrap();
        store.commit("copied", copied, &meta()).unwrap();
        assert!(store.finished_commits(true).iter().all(|(_, r)| r.is_ok()));
        drop(store);
        let seen = kept.seen.lock().unwrap();
        let data = |id: &str| &seen.committed.iter().find(|(i, _)| i == id).unwrap().1;
        assert!(data("lent").len() > STAGING_BYTES * STAGING_BUFFERS);
        assert!(data("lent") == data("copied"));
    }

    #[test]
    fn dropping_it_with_recordings_open_does_not_hang() {
        let mut store = WriteBehind::new(Kept::new(1 << 20)).unwrap();
        let mut open = store.create("open", &meta()).unwrap();
        open.write_all(b"audio").unwrap();
        drop(store);
        assert!(open.write_all(b"more").is_err());
    }
}
